// Tests for pullModel against a fake hub on loopback: a full pull (files, sizes, sha256, manifest last), the
// dtype selection, resume with a Range request, corrupt downloads, 401/404 messages, offline mode with no
// request, the HF_* environment variables, cancellation, and that a failed pull never leaves a manifest.
import { describe, type TestContext, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { HubError } from '../../server/src/hub/hubError';
import { type PullOptions, pullModel } from '../../server/src/hub/pull';
import { MANIFEST_FILE, type PullManifest } from '../../server/src/hub/pullManifest';
import type { PullProgress } from '../../server/src/hub/pullProgress';
import { filesFromDir, HubServer, type HubServerOptions, type RepoSpec } from '../helpers/hubServer';

const REPO = 'acme/tiny-coder';
const TOKEN = 'hf_test_token_0123456789';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** A small transformers.js-style repo: config, tokenizer, docs, ONNX exports of three dtypes, and extras. */
function tinyRepoFiles(): Record<string, string | Buffer> {
  return {
    '.gitattributes': '*.onnx filter=lfs diff=lfs merge=lfs -text\n',
    'config.json': JSON.stringify({ model_type: 'gpt2', n_layer: 2 }),
    'generation_config.json': JSON.stringify({ eos_token_id: 0 }),
    'tokenizer.json': JSON.stringify({ model: { type: 'BPE', vocab: { a: 0, b: 1 } } }),
    'tokenizer_config.json': JSON.stringify({ model_max_length: 256 }),
    'special_tokens_map.json': JSON.stringify({ eos_token: '<|endoftext|>' }),
    'README.md': '# tiny coder\n',
    LICENSE: 'MIT\n',
    'onnx/model.onnx': randomBytes(40_000),
    'onnx/model.onnx_data': randomBytes(60_000),
    'onnx/model_quantized.onnx': randomBytes(20_000),
    'onnx/model_fp16.onnx': randomBytes(20_000),
    'onnx/model_q4.onnx': randomBytes(10_000),
    'onnx/model_q4.onnx_data': randomBytes(9_000),
    'onnx/model_q4.onnx_data_1': randomBytes(8_000),
    'model.safetensors': randomBytes(30_000),
    'pytorch_model.bin': randomBytes(30_000),
  };
}

interface Setup {
  hub: HubServer;
  out: string;
  files: Record<string, string | Uint8Array>;
  /** pullModel against the fake hub, into `out`, with quick retries. */
  pull(options?: Partial<PullOptions>): ReturnType<typeof pullModel>;
}

async function setup(
  t: TestContext,
  spec: Partial<RepoSpec> = {},
  serverOptions: HubServerOptions = {},
): Promise<Setup> {
  const hub = await HubServer.start(serverOptions);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-pull-'));
  t.after(async () => {
    await hub.close();
    fs.rmSync(scratch, { recursive: true, force: true });
  });
  const files = spec.files ?? tinyRepoFiles();
  hub.addRepo(REPO, { ...spec, files });
  const out = path.join(scratch, 'model');
  const pull = (options: Partial<PullOptions> = {}) =>
    pullModel({ repo: REPO, out, endpoint: hub.url, token: '', env: {}, retryDelayMs: 5, ...options });
  return { hub, out, files, pull };
}

function readManifest(out: string): PullManifest {
  return JSON.parse(fs.readFileSync(path.join(out, MANIFEST_FILE), 'utf8'));
}

/** Asserts that the rejection is a HubError of `code` whose message matches every pattern. */
async function rejectsWith(promise: Promise<unknown>, code: string, ...patterns: RegExp[]): Promise<HubError> {
  const error = await promise.then(
    () => assert.fail(`expected a ${code} HubError`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof HubError, `not a HubError: ${error}`);
  assert.equal(error.code, code, error.message);
  for (const pattern of patterns) assert.match(error.message, pattern);
  return error;
}

const FP32_FILES = [
  'LICENSE',
  'README.md',
  'config.json',
  'generation_config.json',
  'onnx/model.onnx',
  'onnx/model.onnx_data',
  'special_tokens_map.json',
  'tokenizer.json',
  'tokenizer_config.json',
];

describe('pullModel', () => {
  test('a full pull writes the needed files, verified, and the manifest last', async (t) => {
    const { hub, out, files, pull } = await setup(t, {}, { redirectLfs: true });
    const events: PullProgress[] = [];
    const result = await pull({
      onProgress: (p) => {
        events.push(p);
        assert.ok(!fs.existsSync(path.join(out, MANIFEST_FILE)) || p.phase === 'done', 'manifest before the end');
      },
    });

    assert.deepEqual(result.files.map((f) => f.path).sort(), FP32_FILES);
    for (const file of result.files) {
      const data = fs.readFileSync(path.join(out, file.path));
      assert.deepEqual(data, Buffer.from(files[file.path]), file.path);
      assert.equal(file.size, data.length);
      assert.equal(file.sha256, sha256(data));
    }
    assert.ok(!fs.existsSync(path.join(out, 'onnx/model_q4.onnx')), 'other dtypes are not pulled');
    assert.ok(!fs.existsSync(path.join(out, 'model.safetensors')), 'no safetensors when ONNX exists');
    assert.ok(!fs.existsSync(path.join(out, '.incomplete')), 'parts are cleaned up');

    const manifest = readManifest(out);
    assert.equal(manifest.repo, REPO);
    assert.equal(manifest.revision, 'main');
    assert.equal(manifest.commit, hub.repos.get(REPO)!.sha);
    assert.equal(manifest.dtype, 'fp32');
    assert.equal(manifest.weights, 'onnx');
    assert.deepEqual(manifest.files, result.files);
    assert.ok(!Number.isNaN(Date.parse(manifest.pulledAt)));
    const manifestTime = fs.statSync(path.join(out, MANIFEST_FILE)).mtimeMs;
    for (const file of result.files) assert.ok(fs.statSync(path.join(out, file.path)).mtimeMs <= manifestTime);

    const last = events.at(-1)!;
    assert.equal(last.phase, 'done');
    assert.equal(last.bytesDone, last.bytesTotal);
    assert.equal(last.filesDone, FP32_FILES.length);
    assert.equal(result.downloadedBytes, last.bytesTotal);
    // Weights came through the CDN redirect, at the resolved commit.
    assert.equal(hub.requestsTo('/cdn/').length, 2);
    const commit = hub.repos.get(REPO)!.sha;
    assert.ok(hub.requestsTo(`/${REPO}/resolve/`).every((r) => r.pathname.includes(`/resolve/${commit}/`)));
  });

  test('a second pull checks the files in place and downloads nothing', async (t) => {
    const { hub, pull } = await setup(t);
    await pull();
    hub.clearRequests();
    const again = await pull();
    assert.equal(again.downloadedBytes, 0);
    assert.equal(again.reusedFiles.length, FP32_FILES.length);
    assert.equal(hub.requestsTo(`/${REPO}/resolve/`).length, 0);
  });

  test('q8 and q4 take their ONNX export with its numbered external data files', async (t) => {
    const { out, pull } = await setup(t);
    const q4 = await pull({ dtype: 'q4' });
    const onnx = q4.files.map((f) => f.path).filter((p) => p.startsWith('onnx/'));
    assert.deepEqual(onnx, ['onnx/model_q4.onnx', 'onnx/model_q4.onnx_data', 'onnx/model_q4.onnx_data_1']);
    assert.equal(readManifest(out).dtype, 'q4');
    const q8 = await pull({ dtype: 'q8' });
    assert.deepEqual(
      q8.files.map((f) => f.path).filter((p) => p.startsWith('onnx/')),
      ['onnx/model_quantized.onnx'],
    );
  });

  test('without ONNX for the dtype the safetensors weights are pulled, for converting to fp32 or q8', async (t) => {
    const files = tinyRepoFiles();
    delete files['onnx/model_quantized.onnx'];
    const { out, pull } = await setup(t, { files });
    const result = await pull({ dtype: 'q8' });
    assert.equal(result.weights, 'safetensors');
    assert.ok(result.files.some((f) => f.path === 'model.safetensors'));
    assert.ok(!result.files.some((f) => f.path.startsWith('onnx/')));
    assert.ok(fs.existsSync(path.join(out, 'model.safetensors')));
  });

  test('q4 without a q4 export fails before downloading, saying to pull q8', async (t) => {
    const files = tinyRepoFiles();
    delete files['onnx/model_q4.onnx'];
    const { out, pull } = await setup(t, { files });
    await assert.rejects(
      pull({ dtype: 'q4' }),
      (e: Error) =>
        e.message.includes('has no q4 ONNX export (onnx/model_q4.onnx)') && e.message.includes('--dtype q8'),
    );
    assert.ok(!fs.existsSync(path.join(out, 'model.safetensors')), 'nothing was downloaded');
  });

  test('sharded safetensors: the index and every shard it lists', async (t) => {
    const weightMap = { 'h.0.w': 'model-00001-of-00002.safetensors', 'h.1.w': 'model-00002-of-00002.safetensors' };
    const files: Record<string, string | Buffer> = {
      'config.json': '{}',
      'tokenizer.json': '{}',
      'model.safetensors.index.json': JSON.stringify({ metadata: {}, weight_map: weightMap }),
      'model-00001-of-00002.safetensors': randomBytes(5000),
      'model-00002-of-00002.safetensors': randomBytes(6000),
      'unrelated.safetensors': randomBytes(100),
    };
    const { out, pull } = await setup(t, { files });
    const result = await pull();
    assert.deepEqual(result.files.map((f) => f.path).sort(), [
      'config.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
      'tokenizer.json',
    ]);
    assert.equal(result.weights, 'safetensors');
    assert.deepEqual(
      fs.readFileSync(path.join(out, 'model-00002-of-00002.safetensors')),
      files['model-00002-of-00002.safetensors'],
    );
  });

  test('a repo without config.json or without weights fails saying so, with no manifest', async (t) => {
    const files = tinyRepoFiles();
    for (const p of Object.keys(files)) if (/\.(onnx|onnx_data.*|safetensors)$/.test(p)) delete files[p];
    const { out, pull } = await setup(t, { files });
    await rejectsWith(pull(), 'NoWeights', new RegExp(REPO), /onnx\/model\.onnx/, /model\.safetensors/);
    assert.ok(!fs.existsSync(path.join(out, MANIFEST_FILE)));
  });

  test('a dropped connection is resumed with a Range request, not started over', async (t) => {
    const { hub, out, files, pull } = await setup(t);
    const file = 'onnx/model.onnx_data';
    hub.dropAfter(REPO, file, 25_000);
    await rejectsWith(pull({ retries: 0 }), 'NetworkError', new RegExp(hub.url.replace(/\./g, '\\.')));
    assert.ok(!fs.existsSync(path.join(out, MANIFEST_FILE)), 'a failed pull leaves no manifest');
    const part = path.join(out, '.incomplete', `${file}.part`);
    const kept = fs.statSync(part).size;
    assert.ok(kept > 0 && kept <= 25_000, `part of ${kept} bytes`);

    hub.clearRequests();
    const result = await pull();
    const ranged = hub.requests.filter((r) => r.pathname.endsWith(file));
    assert.equal(ranged.length, 1);
    assert.equal(ranged[0].range, `bytes=${kept}-`);
    assert.equal(ranged[0].status, 206);
    assert.deepEqual(result.resumedFiles, [file]);
    assert.deepEqual(fs.readFileSync(path.join(out, file)), files[file]);
    assert.equal(readManifest(out).files.find((f) => f.path === file)!.sha256, sha256(files[file] as Buffer));
    assert.ok(result.downloadedBytes < result.files.reduce((sum, f) => sum + f.size, 0));
  });

  test('within one pull a dropped connection is retried from where it stopped, through the redirect', async (t) => {
    const { hub, out, files, pull } = await setup(t, {}, { redirectLfs: true });
    hub.dropAfter(REPO, 'onnx/model.onnx', 12_000, 2);
    const result = await pull({ retries: 3 });
    const cdn = hub.requestsTo('/cdn/').filter((r) => r.range);
    assert.ok(cdn.length >= 1 && cdn.length <= 2, `${cdn.length} ranged requests`);
    for (const r of cdn) assert.match(r.range!, /^bytes=([1-9]\d*)-$/);
    assert.deepEqual(fs.readFileSync(path.join(out, 'onnx/model.onnx')), files['onnx/model.onnx']);
    assert.deepEqual(result.resumedFiles, ['onnx/model.onnx']);
  });

  test('a part the server answers with 200 to a Range request is started over', async (t) => {
    const { out, files, pull } = await setup(t);
    const file = 'onnx/model.onnx';
    fs.mkdirSync(path.join(out, '.incomplete', 'onnx'), { recursive: true });
    fs.writeFileSync(path.join(out, '.incomplete', `${file}.part`), Buffer.from('stale bytes of another version'));
    const result = await pull();
    assert.deepEqual(fs.readFileSync(path.join(out, file)), files[file]);
    assert.ok(result.files.some((f) => f.path === file));
  });

  test('corrupt bytes are rejected naming the file, the part is deleted and no manifest is written', async (t) => {
    const { hub, out, pull } = await setup(t);
    hub.corrupt(REPO, 'onnx/model.onnx');
    await rejectsWith(pull(), 'ChecksumMismatch', /onnx\/model\.onnx/, /sha256/);
    assert.ok(!fs.existsSync(path.join(out, MANIFEST_FILE)));
    assert.ok(!fs.existsSync(path.join(out, '.incomplete', 'onnx', 'model.onnx.part')));
    assert.ok(!fs.existsSync(path.join(out, 'onnx', 'model.onnx')));
  });

  test('a corrupt small (non-LFS) file is caught by its git blob id', async (t) => {
    const { hub, pull } = await setup(t);
    hub.corrupt(REPO, 'config.json');
    await rejectsWith(pull(), 'ChecksumMismatch', /config\.json/, /git blob id/);
  });

  test('a pull that fails removes the manifest of an earlier complete pull', async (t) => {
    const { hub, out, pull } = await setup(t);
    await pull();
    assert.ok(fs.existsSync(path.join(out, MANIFEST_FILE)));
    hub.corrupt(REPO, 'onnx/model_q4.onnx');
    await rejectsWith(pull({ dtype: 'q4' }), 'ChecksumMismatch');
    assert.ok(!fs.existsSync(path.join(out, MANIFEST_FILE)));
  });

  test('a private repo: 401 without a token and with a wrong one, each saying so; the right token works', async (t) => {
    const { hub, out, pull } = await setup(t, { access: 'private', token: TOKEN });
    await rejectsWith(
      pull(),
      'AccessDenied',
      new RegExp(REPO),
      /no token was sent/,
      /HF_TOKEN/,
      /Set Hugging Face Token/,
    );
    await rejectsWith(pull({ token: 'hf_wrong' }), 'AccessDenied', /the token sent was refused/, /401/);
    assert.ok(!fs.existsSync(path.join(out, MANIFEST_FILE)));
    const result = await pull({ token: TOKEN });
    assert.equal(result.files.length, FP32_FILES.length);
    assert.ok(hub.requests.filter((r) => r.status === 200).every((r) => r.authorization === `Bearer ${TOKEN}`));
  });

  test('a gated repo: the listing is open, the files answer 401/403 until the token is right', async (t) => {
    const { out, pull } = await setup(t, { access: 'gated', token: TOKEN });
    await rejectsWith(pull(), 'AccessDenied', /no token was sent \(HTTP 401\)/, /HF_TOKEN/);
    await rejectsWith(
      pull({ token: 'hf_not_granted' }),
      'AccessDenied',
      /token sent was refused \(HTTP 403\)/,
      /gated/,
    );
    assert.ok(!fs.existsSync(path.join(out, MANIFEST_FILE)));
    await pull({ token: TOKEN });
    assert.ok(fs.existsSync(path.join(out, MANIFEST_FILE)));
  });

  test('a token without the hf_ prefix is still sent', async (t) => {
    const { hub, pull } = await setup(t, { access: 'private', token: 'api_org_abc' });
    await pull({ token: 'api_org_abc' });
    assert.ok(hub.requests.every((r) => r.authorization === 'Bearer api_org_abc'));
  });

  test('404s: an unknown repo, an unknown revision and a missing file are each named', async (t) => {
    const { hub, out, pull } = await setup(t);
    await rejectsWith(
      pull({ repo: 'acme/nope' }),
      'RepoNotFound',
      /acme\/nope/,
      new RegExp(hub.url.replace(/\./g, '\\.')),
    );
    await rejectsWith(pull({ revision: 'v9.9' }), 'RevisionNotFound', /v9\.9/, new RegExp(REPO));
    hub.hideFile(REPO, 'tokenizer.json');
    await rejectsWith(pull(), 'FileNotFound', new RegExp(REPO), /tokenizer\.json/, /404/);
    assert.ok(!fs.existsSync(path.join(out, MANIFEST_FILE)));
  });

  test('a tag or a commit sha is a revision too, and the folder records it', async (t) => {
    const { hub, out, pull } = await setup(t, { refs: ['main', 'v1.0'] });
    await pull({ revision: 'v1.0' });
    assert.equal(readManifest(out).revision, 'v1.0');
    const sha = hub.repos.get(REPO)!.sha;
    await pull({ revision: sha });
    assert.equal(readManifest(out).commit, sha);
  });

  test('the tree listing is followed across pages', async (t) => {
    const { hub, pull } = await setup(t, {}, { pageSize: 4 });
    const result = await pull();
    assert.equal(result.files.length, FP32_FILES.length);
    assert.ok(hub.requests.filter((r) => r.pathname.includes('/tree/')).length >= 4);
  });

  test('offline mode makes no request: it succeeds on a completed folder and fails on a missing one', async (t) => {
    const { hub, out, pull } = await setup(t);
    await pull();
    hub.clearRequests();
    const offline = await pull({ env: { HF_HUB_OFFLINE: '1' } });
    assert.equal(offline.offline, true);
    assert.equal(offline.commit, hub.repos.get(REPO)!.sha);
    assert.equal(offline.files.length, FP32_FILES.length);
    await pull({ env: { HF_HUB_OFFLINE: 'true' }, revision: 'main', dtype: 'fp32' });
    await pull({ offline: true, revision: offline.commit.slice(0, 10) });

    const missing = path.join(path.dirname(out), 'never-pulled');
    await rejectsWith(
      pull({ env: { HF_HUB_OFFLINE: 'yes' }, out: missing }),
      'OfflineNotCached',
      /never-pulled/,
      /acme/,
    );
    await rejectsWith(pull({ offline: true, revision: 'v2' }), 'OfflineNotCached', /"v2"/);
    await rejectsWith(pull({ offline: true, dtype: 'q4' }), 'OfflineNotCached', /q4/);
    fs.rmSync(path.join(out, 'tokenizer.json'));
    await rejectsWith(pull({ offline: true }), 'OfflineNotCached', /tokenizer\.json/);
    assert.equal(hub.requests.length, 0);
  });

  test('an interrupted folder (parts, no manifest) does not count offline', async (t) => {
    const { hub, out, pull } = await setup(t);
    hub.dropAfter(REPO, 'onnx/model.onnx', 1000);
    await rejectsWith(pull({ retries: 0 }), 'NetworkError');
    hub.clearRequests();
    await rejectsWith(pull({ offline: true }), 'OfflineNotCached', /no complete pull/);
    assert.equal(hub.requests.length, 0);
    assert.ok(fs.existsSync(out));
  });

  test('HF_ENDPOINT and HF_TOKEN (or HUGGING_FACE_HUB_TOKEN) from the environment are used', async (t) => {
    const { hub, out, pull } = await setup(t, { access: 'private', token: TOKEN });
    await pull({ endpoint: undefined, token: undefined, env: { HF_ENDPOINT: `${hub.url}/`, HF_TOKEN: TOKEN } });
    assert.ok(hub.requests.length > 0 && hub.requests.every((r) => r.authorization === `Bearer ${TOKEN}`));
    hub.clearRequests();
    fs.rmSync(out, { recursive: true });
    await pull({ endpoint: undefined, token: undefined, env: { HF_ENDPOINT: hub.url, HUGGING_FACE_HUB_TOKEN: TOKEN } });
    assert.ok(hub.requests.every((r) => r.authorization === `Bearer ${TOKEN}`));
  });

  test('process.env is read when no env is given', async (t) => {
    const { hub, pull } = await setup(t, { access: 'private', token: TOKEN });
    const saved = { HF_ENDPOINT: process.env.HF_ENDPOINT, HF_TOKEN: process.env.HF_TOKEN };
    process.env.HF_ENDPOINT = hub.url;
    process.env.HF_TOKEN = TOKEN;
    t.after(() => {
      for (const [k, v] of Object.entries(saved)) v === undefined ? delete process.env[k] : (process.env[k] = v);
    });
    const result = await pull({ endpoint: undefined, token: undefined, env: undefined });
    assert.equal(result.files.length, FP32_FILES.length);
  });

  test('cancelling with an AbortSignal stops the pull mid-file and leaves no manifest', async (t) => {
    const { hub, out, pull } = await setup(t);
    hub.stallAfter(REPO, 'onnx/model.onnx_data', 5000);
    const controller = new AbortController();
    const pulling = pull({ signal: controller.signal });
    while (!hub.requests.some((r) => r.pathname.endsWith('model.onnx_data')))
      await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setTimeout(resolve, 20));
    controller.abort();
    await rejectsWith(pulling, 'Cancelled', /cancelled/);
    assert.ok(!fs.existsSync(path.join(out, MANIFEST_FILE)));
    assert.ok(fs.existsSync(path.join(out, '.incomplete', 'onnx', 'model.onnx_data.part')), 'the part stays');
    hub.clearRequests();
    await rejectsWith(pull({ signal: AbortSignal.abort() }), 'Cancelled');
    assert.equal(hub.requests.length, 0);
  });

  test('an unreachable endpoint is a network error naming it and HF_HUB_OFFLINE', async (t) => {
    const { out, pull } = await setup(t);
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const endpoint = `http://127.0.0.1:${port}`;
    await rejectsWith(pull({ endpoint }), 'NetworkError', new RegExp(`127\\.0\\.0\\.1:${port}`), /HF_HUB_OFFLINE=1/);
    assert.ok(!fs.existsSync(path.join(out, MANIFEST_FILE)));
  });

  test('a full disk says how much space is needed and keeps no manifest', {
    skip: !fs.existsSync('/dev/full'),
  }, async (t) => {
    const { out, pull } = await setup(t);
    fs.mkdirSync(path.join(out, '.incomplete', 'onnx'), { recursive: true });
    fs.symlinkSync('/dev/full', path.join(out, '.incomplete', 'onnx', 'model.onnx_data.part'));
    await rejectsWith(pull(), 'DiskFull', /model\.onnx_data/, /more are needed/);
    assert.ok(!fs.existsSync(path.join(out, MANIFEST_FILE)));
  });

  test('a repo defined from files on disk pulls the same bytes', async (t) => {
    const source = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-hubsrc-'));
    t.after(() => fs.rmSync(source, { recursive: true, force: true }));
    for (const [p, data] of Object.entries(tinyRepoFiles())) {
      fs.mkdirSync(path.dirname(path.join(source, p)), { recursive: true });
      fs.writeFileSync(path.join(source, p), data);
    }
    const { out, pull } = await setup(t, { files: filesFromDir(source) });
    const result = await pull();
    for (const file of result.files)
      assert.deepEqual(fs.readFileSync(path.join(out, file.path)), fs.readFileSync(path.join(source, file.path)));
  });

  test('bad arguments are refused before any request', async (t) => {
    const { hub, pull } = await setup(t);
    await rejectsWith(pull({ repo: '../etc' }), 'InvalidArgument', /owner\/name/);
    await rejectsWith(pull({ dtype: 'fp8' as never }), 'InvalidArgument', /fp32, q8, q4/);
    assert.equal(hub.requests.length, 0);
  });
});
