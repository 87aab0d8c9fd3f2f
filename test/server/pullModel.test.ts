// Integration tests of modelwright/pullModel through the spawned server against the loopback fake hub
// (HF_ENDPOINT): a download with work-done progress that the registry then lists with the summary fields of a hub
// model and that completes; a safetensors-only repository converted to ONNX (in a child process, in the dtype
// asked for); an update that fetches nothing new; cancellation from the progress UI and with $/cancelRequest
// leaving no listed model; a 401 with a clear message and the token set with modelwright/setHubToken; bad
// parameters and an untrusted workspace.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CancellationTokenSource } from 'vscode-languageserver-protocol/node';
import {
  ErrorCodes,
  LSPErrorCodes,
  WorkDoneProgressCancelNotification,
  type WorkDoneProgressBegin,
  type WorkDoneProgressReport,
} from 'vscode-languageserver-protocol';
import { parameterShapes, type GptConfig } from '../../server/src/engine/model';
import { encodeSafetensors } from '../../server/src/modelFolder/safetensors';
import { readWeights } from '../../server/src/modelFolder/weights';
import { PULLS_DIR, pullProgressMessage } from '../../server/src/features/pullModel';
import {
  DeployModel,
  ListModels,
  type ModelSummary,
  PullModel,
  SetHubToken,
  pulledModelName,
} from '../../server/src/protocol';
import { filesFromDir, HubServer } from '../helpers/hubServer';
import { ServerHarness, modelDirectories, waitFor } from './serverHarness';
import { makeParrotModel } from './testModels';

const ONNX_REPO = 'acme/parrot-coder';
const SAFETENSORS_REPO = 'acme/parrot-weights';
const SLOW_REPO = 'acme/slow-coder';
const PRIVATE_REPO = 'acme/private-coder';
const Q4_REPO = 'acme/parrot-q4';
const TOKEN = 'hf_secret_token_0123456789';
/** The slow repository's large file stops coming after this many bytes (until the request is given up). */
const STALL_BYTES = 64_000;

const README = '---\nlicense: apache-2.0\nlibrary_name: transformers.js\n---\n\n# A parrot\n';

/** The files of a parrot model as a hub repository has them: no model card of ours, a README with a license. */
async function parrotRepo(dir: string, character: string): Promise<Record<string, Buffer | string>> {
  await makeParrotModel(dir, { character });
  const files: Record<string, Buffer | string> = filesFromDir(dir);
  delete files['modelwright.json'];
  files['README.md'] = README;
  return files;
}

/** A parrot whose weights are safetensors only (like an original hub checkpoint), with a chat template file. */
async function safetensorsRepo(dir: string, character: string): Promise<Record<string, Buffer | string>> {
  await makeParrotModel(dir, { character });
  const raw = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const config: GptConfig = {
    vocabSize: raw.vocab_size,
    contextLength: raw.n_positions,
    layers: raw.n_layer,
    heads: raw.n_head,
    embedding: raw.n_embd,
  };
  const weights = readWeights(dir, config);
  const tensors = new Map(parameterShapes(config).map(([name, shape]) => [name, { shape, data: weights.get(name)! }]));
  const files: Record<string, Buffer | string> = filesFromDir(dir);
  for (const file of Object.keys(files))
    if (file.startsWith('onnx/') || file === 'modelwright.json') delete files[file];
  files['model.safetensors'] = encodeSafetensors(tensors);
  files['chat_template.jinja'] = '{% for message in messages %}{{ message.content }}{% endfor %}';
  return files;
}

async function failure(promise: Promise<unknown>): Promise<{ code?: number; message: string; data?: any }> {
  try {
    await promise;
  } catch (e) {
    return e as { code?: number; message: string; data?: any };
  }
  assert.fail('expected the request to fail');
}

describe('modelwright/pullModel', { timeout: 300_000 }, () => {
  let dirs: ReturnType<typeof modelDirectories>;
  let hub: HubServer;
  let server: ServerHarness;

  const list = async () => (await server.connection.sendRequest(ListModels.type, {})).models;
  const listed = async (name: string): Promise<ModelSummary | undefined> => (await list()).find((m) => m.name === name);
  /** Bytes of the large file the cancelled downloads left for the next one to resume. */
  const partSize = () => {
    try {
      return fs.statSync(
        path.join(dirs.models, PULLS_DIR, 'acme--slow-coder', '.incomplete', 'onnx', 'model.onnx.part'),
      ).size;
    } catch {
      return 0;
    }
  };
  const pull = (params: PullModel.Params, token?: CancellationTokenSource) =>
    server.connection.sendRequest(PullModel.type, params, token?.token);

  before(async () => {
    dirs = modelDirectories();
    await makeParrotModel(path.join(dirs.bundled, 'default'), { character: 'x' });
    const sources = path.join(dirs.root, 'sources');
    hub = await HubServer.start({ redirectLfs: true });
    hub.addRepo(ONNX_REPO, { files: await parrotRepo(path.join(sources, 'onnx'), 'p') });
    hub.addRepo(SAFETENSORS_REPO, { files: await safetensorsRepo(path.join(sources, 'safetensors'), 'q') });
    const slow = await parrotRepo(path.join(sources, 'slow'), 's');
    slow['onnx/model.onnx'] = Buffer.concat([slow['onnx/model.onnx'] as Buffer, Buffer.alloc(2_000_000)]);
    hub.addRepo(SLOW_REPO, { files: slow });
    hub.stallAfter(SLOW_REPO, 'onnx/model.onnx', STALL_BYTES);
    const q4 = await parrotRepo(path.join(sources, 'q4'), 'f');
    q4['onnx/model_q4.onnx'] = q4['onnx/model.onnx'];
    delete q4['onnx/model.onnx'];
    hub.addRepo(Q4_REPO, { files: q4 });
    hub.addRepo(PRIVATE_REPO, {
      files: await parrotRepo(path.join(sources, 'private'), 'z'),
      access: 'private',
      token: TOKEN,
    });
    server = await ServerHarness.start({
      modelsDirectory: dirs.models,
      bundledModelsDirectory: dirs.bundled,
      settings: () => ({ completion: { confidenceThreshold: 0, maxTokens: 8 } }),
      env: { HF_ENDPOINT: hub.url, HF_TOKEN: '', HUGGING_FACE_HUB_TOKEN: '', HF_HUB_OFFLINE: '' },
    });
    await server.waitForStatus((s) => s.health === 'ready');
  });
  after(async () => {
    await server?.stop();
    await hub?.close();
    dirs?.remove();
  });

  test('a download reports work-done progress, is listed with what the hub files say, and completes', async () => {
    const token = 'pull-onnx';
    server.watchProgress(token);
    const result = await pull({ repo: ONNX_REPO, workDoneToken: token });
    const name = 'acme--parrot-coder';
    assert.deepEqual(result, { name, path: path.join(dirs.models, name), converted: false });

    const values = server.progress.get(token) as (WorkDoneProgressBegin | WorkDoneProgressReport | { kind: 'end' })[];
    await waitFor(() => values.some((v) => v.kind === 'end'), 'the end of the progress');
    const begin = values[0] as WorkDoneProgressBegin;
    assert.equal(begin.kind, 'begin');
    assert.equal(begin.title, `Downloading ${ONNX_REPO}`);
    assert.equal(begin.cancellable, true);
    const reports = values.filter((v): v is WorkDoneProgressReport => v.kind === 'report');
    assert.ok(
      reports.some((r) => /^[\d.]+ (B|kB|MB) \/ [\d.]+ (B|kB|MB) · .*file \d+\/\d+/.test(r.message ?? '')),
      `a report with bytes and files: ${JSON.stringify(reports)}`,
    );
    assert.ok(reports.every((r) => r.percentage === undefined || (r.percentage >= 0 && r.percentage <= 100)));
    assert.equal(reports.at(-1)?.percentage, 100);

    const model = await listed(name);
    assert.ok(model, 'the downloaded model is listed');
    assert.equal(model.bundled, false);
    assert.equal(model.modelType, 'gpt2');
    assert.equal(model.dtype, 'fp32');
    assert.equal(model.contextLength, 128);
    assert.equal(model.fillInTheMiddle, true, 'the tokenizer has FIM tokens and there is no card saying otherwise');
    assert.equal(model.chat, false);
    assert.equal(model.license, 'apache-2.0');
    assert.deepEqual(model.origin, { repo: ONNX_REPO, revision: 'main', commit: hub.repos.get(ONNX_REPO)!.sha });
    assert.ok(!(await list()).some((m) => m.name.startsWith('.')), 'the staging folder is never listed');
    assert.ok(!fs.existsSync(path.join(dirs.models, PULLS_DIR, name)), 'the staging folder was moved into place');

    await server.connection.sendRequest(DeployModel.type, { name, role: 'completion' });
    server.open('file:///work/pulled.ts', 'const a = ');
    const completion = await server.complete('file:///work/pulled.ts', 0, 10);
    assert.equal(completion.items[0]?.insertText, 'pppppppp');
  });

  test('downloading the model again checks the files it has and fetches none', async () => {
    hub.clearRequests();
    const result = await pull({ repo: ONNX_REPO });
    assert.equal(result.name, 'acme--parrot-coder');
    assert.deepEqual(hub.requestsTo(`/${ONNX_REPO}/resolve/`), [], 'no file is downloaded again');
    assert.ok(hub.requestsTo(`/api/models/${ONNX_REPO}`).length > 0, 'the revision is resolved again');
    server.change('file:///work/pulled.ts', 'const b = ');
    assert.equal((await server.complete('file:///work/pulled.ts', 0, 10)).items[0]?.insertText, 'pppppppp');
  });

  test('a safetensors-only repository is converted to ONNX, then listed and served', async () => {
    const result = await pull({ repo: SAFETENSORS_REPO, dtype: 'q8' });
    const name = pulledModelName(SAFETENSORS_REPO, 'main', 'q8')!;
    assert.equal(name, 'acme--parrot-weights-q8');
    assert.equal(result.name, name);
    assert.equal(result.converted, true);
    assert.ok(
      fs.existsSync(path.join(result.path, 'onnx', 'model_quantized.onnx')),
      'the converted int8 graph is in place',
    );
    assert.ok(!fs.existsSync(path.join(result.path, 'onnx', 'model.onnx')), 'no float32 graph was made');
    const model = await listed(name);
    assert.ok(model);
    assert.equal(model.dtype, 'q8', 'converted to the dtype that was asked for');
    assert.equal(model.chat, true, 'chat_template.jinja is a chat template');
    assert.equal(model.origin?.repo, SAFETENSORS_REPO);
    await server.connection.sendRequest(DeployModel.type, { name, role: 'completion' });
    server.open('file:///work/converted.ts', 'let c = ');
    assert.equal((await server.complete('file:///work/converted.ts', 0, 8)).items[0]?.insertText, 'qqqqqqqq');
  });

  test('a q4 export is listed as q4, with a warning that completions cannot run it', async () => {
    const result = await pull({ repo: Q4_REPO, dtype: 'q4' });
    assert.equal(result.name, 'acme--parrot-q4-q4');
    assert.match(result.warning ?? '', /no ONNX graph the completion runtime loads .* no chat template/);
    assert.equal((await listed(result.name))?.dtype, 'q4');
  });

  test('a download cancelled from the progress UI is not listed', async () => {
    const token = 'pull-cancel';
    server.watchProgress(token);
    const pending = failure(pull({ repo: SLOW_REPO, workDoneToken: token }));
    await waitFor(() => partSize() >= STALL_BYTES, 'the first bytes of the large file');
    await server.connection.sendNotification(WorkDoneProgressCancelNotification.type, { token });
    const error = await pending;
    assert.equal(error.code, LSPErrorCodes.RequestCancelled, error.message);
    assert.match(error.message, /cancelled/);
    assert.equal(await listed('acme--slow-coder'), undefined);
    assert.ok(!fs.existsSync(path.join(dirs.models, 'acme--slow-coder')));
    const values = server.progress.get(token) as { kind: string }[];
    await waitFor(() => values.at(-1)?.kind === 'end', 'the progress to end');
  });

  test('a download cancelled with $/cancelRequest is not listed either', async () => {
    hub.clearRequests();
    const source = new CancellationTokenSource();
    const pending = failure(pull({ repo: SLOW_REPO }, source));
    await waitFor(() => partSize() >= 2 * STALL_BYTES, 'more bytes of the large file');
    source.cancel();
    const error = await pending;
    assert.equal(error.code, LSPErrorCodes.RequestCancelled, error.message);
    assert.equal(await listed('acme--slow-coder'), undefined);
    assert.ok(
      hub.requests.some((r) => r.range === `bytes=${STALL_BYTES}-`),
      'the second download resumed where the cancelled one stopped',
    );
  });

  test('a 401 says a token is needed; the token set with setHubToken is sent and never logged', async () => {
    const denied = await failure(pull({ repo: PRIVATE_REPO }));
    assert.equal(denied.code, LSPErrorCodes.RequestFailed);
    assert.match(denied.message, /cannot access acme\/private-coder/);
    assert.match(denied.message, /no token was sent \(HTTP 401\)/);
    assert.match(denied.message, /Set Hugging Face Token/);
    assert.equal(denied.data?.hubError, 'AccessDenied');

    await server.connection.sendNotification(SetHubToken.type, { token: 'hf_wrong' });
    const refused = await failure(pull({ repo: PRIVATE_REPO }));
    assert.match(refused.message, /the token sent was refused/);

    hub.clearRequests();
    await server.connection.sendNotification(SetHubToken.type, { token: TOKEN });
    const result = await pull({ repo: PRIVATE_REPO });
    assert.equal(result.name, 'acme--private-coder');
    assert.ok(hub.requests.length > 0 && hub.requests.every((r) => r.authorization === `Bearer ${TOKEN}`));
    assert.ok(await listed('acme--private-coder'));

    await server.connection.sendNotification(SetHubToken.type, {});
    await server.roundTrip();
    assert.ok(!server.logs.some((l) => l.message.includes(TOKEN) || l.message.includes('hf_wrong')));
    assert.ok(!server.errorOutput.includes(TOKEN));
  });

  test('bad parameters are InvalidParams errors', async () => {
    for (const params of [
      { repo: 'not-a-repo' },
      { repo: 'a--b/c' },
      { repo: ONNX_REPO, dtype: 'q5' },
      { repo: ONNX_REPO, revision: 'has space' },
    ]) {
      const error = await failure(pull(params as PullModel.Params));
      assert.equal(error.code, ErrorCodes.InvalidParams, `${JSON.stringify(params)}: ${error.message}`);
    }
    const missing = await failure(pull({ repo: 'acme/nothing-here' }));
    assert.equal(missing.code, LSPErrorCodes.RequestFailed);
    assert.match(missing.message, /no model acme\/nothing-here/);
    assert.equal(missing.data?.hubError, 'RepoNotFound');
  });

  test('an untrusted workspace refuses downloads', async () => {
    const untrusted = await ServerHarness.start({
      modelsDirectory: dirs.models,
      bundledModelsDirectory: dirs.bundled,
      trusted: false,
      env: { HF_ENDPOINT: hub.url },
    });
    try {
      const error = await failure(untrusted.connection.sendRequest(PullModel.type, { repo: ONNX_REPO }));
      assert.equal(error.code, LSPErrorCodes.RequestFailed);
      assert.match(error.message, /untrusted workspace/);
    } finally {
      await untrusted.stop();
    }
  });
});

test('the progress message has bytes, rate, time left and the file', () => {
  const message = pullProgressMessage({
    phase: 'downloading',
    file: 'onnx/model.onnx',
    filesDone: 2,
    filesTotal: 9,
    bytesDone: 120_000_000,
    bytesTotal: 988_000_000,
    bytesDownloaded: 100_000_000,
    bytesPerSecond: 4_200_000,
    etaSeconds: 205,
  });
  assert.equal(message, '120 MB / 988 MB · 4.20 MB/s · 3:25 left · file 3/9 onnx/model.onnx');
  const starting = pullProgressMessage({
    phase: 'downloading',
    filesDone: 0,
    filesTotal: 3,
    bytesDone: 0,
    bytesTotal: 5_000,
    bytesDownloaded: 0,
    bytesPerSecond: 0,
  });
  assert.equal(starting, '0 B / 5.00 kB · file 1/3');
});

test('pulled model names follow the model-name rule', () => {
  assert.equal(pulledModelName('Qwen/Qwen2.5-Coder-0.5B'), 'Qwen--Qwen2.5-Coder-0.5B');
  assert.equal(
    pulledModelName('onnx-community/Qwen2.5-Coder-1.5B', 'main', 'q8'),
    'onnx-community--Qwen2.5-Coder-1.5B-q8',
  );
  assert.equal(pulledModelName('a/b', 'refs/pr/1'), 'a--b-refs-pr-1');
  assert.equal(pulledModelName('a/b', '0123456789abcdef0123456789abcdef01234567', 'q4'), 'a--b-0123456789ab-q4');
  assert.equal(pulledModelName(`a/${'b'.repeat(120)}`), undefined);
});
