// Integration tests of the model commands through the spawned server: listing, model cards, deploy hot-swapped
// while a completion is in flight (it finishes on the old model, the next one uses the new model), deploy
// failures that keep the previous model serving, delete rules, and an untrusted workspace.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCodes, LSPErrorCodes } from 'vscode-languageserver-protocol';
import {
  DeleteModel,
  DeployModel,
  GetModelCard,
  ListModels,
  StartService,
  StopService,
} from '../../server/src/protocol';
import { ServerHarness, modelDirectories } from './serverHarness';
import { makeParrotModel } from './testModels';

const codeOf = async (promise: Promise<unknown>): Promise<{ code?: number; message?: string }> => {
  try {
    await promise;
    return {};
  } catch (e) {
    return e as { code?: number; message?: string };
  }
};

describe('model commands', { timeout: 180_000 }, () => {
  let dirs: ReturnType<typeof modelDirectories>;
  let server: ServerHarness;

  before(async () => {
    dirs = modelDirectories();
    const slow = { contextLength: 1024, layers: 4, heads: 4, embedding: 128 };
    await makeParrotModel(path.join(dirs.bundled, 'default'), { character: 'x', config: slow });
    await makeParrotModel(path.join(dirs.models, 'yankee'), { character: 'y', config: slow });
    await makeParrotModel(path.join(dirs.models, 'spare'), { character: 's' });
    await makeParrotModel(path.join(dirs.models, 'broken'));
    fs.writeFileSync(path.join(dirs.models, 'broken', 'onnx', 'model.onnx'), Buffer.from([1, 2, 3]));
    server = await ServerHarness.start({
      modelsDirectory: dirs.models,
      bundledModelsDirectory: dirs.bundled,
      settings: () => ({ completion: { confidenceThreshold: 0, maxTokens: 400, maxLines: 50 } }),
    });
    await server.waitForStatus((s) => s.health === 'ready');
  });
  after(async () => {
    await server?.stop();
    dirs?.remove();
  });
  const deploy = (name: string) => server.connection.sendRequest(DeployModel.type, { name, role: 'completion' });

  test('lists models with their status and roles, and reads a model card', async () => {
    const list = await server.connection.sendRequest(ListModels.type, {});
    assert.deepEqual(list.active, { completion: 'default', explanation: 'default' });
    const byName = Object.fromEntries(list.models.map((m) => [m.name, m]));
    assert.deepEqual(Object.keys(byName).sort(), ['broken', 'default', 'spare', 'yankee']);
    assert.equal(byName.default.bundled, true);
    assert.equal(byName.default.status, 'active');
    assert.equal(byName.yankee.status, 'idle');
    assert.ok(byName.yankee.parameters! > 0);
    const card = await server.connection.sendRequest(GetModelCard.type, { name: 'yankee' });
    assert.equal(card.kind, 'causal-lm');
    assert.equal(
      (await codeOf(server.connection.sendRequest(GetModelCard.type, { name: 'nope' }))).code,
      ErrorCodes.InvalidParams,
    );
  });

  test('deploy during a completion: the request finishes on the old model, later ones use the new model', async () => {
    const uri = 'file:///work/swap.ts';
    server.open(uri, 'const swapped = ');
    const since = server.configurationRequests.length;
    const inFlight = server.complete(uri, 0, 16);
    let answered = false;
    void inFlight.then(() => (answered = true));
    await server.settingsAnswered(uri, since); // the request holds the default model and is decoding
    assert.equal(answered, false);
    const deployed = await deploy('yankee');
    assert.deepEqual(deployed.active, { completion: 'yankee', explanation: 'yankee' });
    const old = await inFlight;
    assert.match(old.items[0].insertText as string, /^x+$/);
    server.change(uri, 'const swapped = 1;\nconst again = ');
    const fresh = await server.complete(uri, 1, 14);
    assert.match(fresh.items[0].insertText as string, /^y+$/);
    await server.waitForStatus(
      (s) => s.active.completion === 'yankee' && /"yankee" now serves completion/.test(s.message ?? ''),
    );
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dirs.models, 'active.json'), 'utf8')), {
      completion: 'yankee',
    });
  });

  test('a failed deploy is a clear error and the previous model keeps serving', async () => {
    await deploy('yankee');
    const broken = await codeOf(
      server.connection.sendRequest(DeployModel.type, { name: 'broken', role: 'completion' }),
    );
    assert.equal(broken.code, LSPErrorCodes.RequestFailed);
    assert.match(broken.message ?? '', /model "broken" could not be loaded: .*"yankee" keeps serving completion/);
    await server.waitForStatus((s) => /Could not deploy "broken"/.test(s.message ?? '') && s.health === 'ready');
    const unknown = await codeOf(
      server.connection.sendRequest(DeployModel.type, { name: 'ghost', role: 'completion' }),
    );
    assert.equal(unknown.code, ErrorCodes.InvalidParams);
    assert.match(unknown.message ?? '', /unknown model "ghost"; known models: broken, default, spare, yankee/);
    assert.equal(
      (await codeOf(server.connection.sendRequest(DeployModel.type, { name: 'spare', role: 'painter' as never }))).code,
      ErrorCodes.InvalidParams,
    );
    const uri = 'file:///work/still.ts';
    server.open(uri, 'let still = ');
    assert.match((await server.complete(uri, 0, 12)).items[0].insertText as string, /^y+$/);
  });

  test('delete refuses bundled and active models and removes others', async () => {
    await deploy('yankee');
    assert.match(
      (await codeOf(server.connection.sendRequest(DeleteModel.type, { name: 'default' }))).message ?? '',
      /bundled model/,
    );
    assert.match(
      (await codeOf(server.connection.sendRequest(DeleteModel.type, { name: 'yankee' }))).message ?? '',
      /active for completion/,
    );
    await server.connection.sendRequest(DeleteModel.type, { name: 'spare' });
    assert.equal(fs.existsSync(path.join(dirs.models, 'spare')), false);
    const list = await server.connection.sendRequest(ListModels.type, {});
    assert.ok(!list.models.some((m) => m.name === 'spare'));
  });

  test('serves a model over HTTP on request and stops the service', async () => {
    const started = await server.connection.sendRequest(StartService.type, { models: ['yankee'], port: 0 });
    assert.match(started.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.deepEqual(started.models, ['yankee']);
    assert.equal((await fetch(`${started.url}/v2/health/ready`)).status, 200);
    await server.connection.sendRequest(StopService.type, {});
    await assert.rejects(fetch(`${started.url}/v2/health/ready`));
    assert.equal(
      (await codeOf(server.connection.sendRequest(StartService.type, { models: [] }))).code,
      ErrorCodes.InvalidParams,
    );
    assert.equal(
      (await codeOf(server.connection.sendRequest(StartService.type, { models: ['ghost'] }))).code,
      ErrorCodes.InvalidParams,
    );
  });

  test('an untrusted workspace serves bundled models only and cannot deploy or delete', async () => {
    await deploy('yankee'); // active.json names yankee
    const untrusted = await ServerHarness.start({
      modelsDirectory: dirs.models,
      bundledModelsDirectory: dirs.bundled,
      trusted: false,
    });
    try {
      await untrusted.waitForStatus((s) => s.health === 'ready');
      const list = await untrusted.connection.sendRequest(ListModels.type, {});
      assert.deepEqual(
        list.models.map((m) => m.name),
        ['default'],
      );
      assert.deepEqual(
        list.active,
        { completion: 'default', explanation: 'default' },
        'active.json of the models directory is ignored',
      );
      assert.equal(
        (await codeOf(untrusted.connection.sendRequest(DeployModel.type, { name: 'yankee', role: 'completion' }))).code,
        ErrorCodes.InvalidParams,
      );
      assert.match(
        (await codeOf(untrusted.connection.sendRequest(DeleteModel.type, { name: 'yankee' }))).message ?? '',
        /untrusted/,
      );
    } finally {
      await untrusted.stop();
    }
  });
});
