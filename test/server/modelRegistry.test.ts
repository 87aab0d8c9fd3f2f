// Tests for the model registry (in process): listing (not unfinished training runs), the active model per role and
// active.json, hot-swap deploys that keep a leased model alive until released, failures that keep the previous
// model serving (corrupt ONNX, a foreign tokenizer, unknown names), no reload loops for broken folders, reloads,
// and what an untrusted workspace may use.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelRegistry } from '../../server/src/registry/modelRegistry';
import { RegistryError } from '../../server/src/registry/registryError';
import { INCOMPLETE_MARKER } from '../../server/src/train/finalExport';
import { makeModelFolder } from '../helpers/makeModelFolder';
import { modelDirectories } from './serverHarness';
import { makeParrotModel } from './testModels';

describe('model registry', { timeout: 180_000 }, () => {
  let dirs: ReturnType<typeof modelDirectories>;
  const registries: ModelRegistry[] = [];
  const registry = (trusted = true) => {
    const made = new ModelRegistry({ modelsDirectory: dirs.models, bundledModelsDirectory: dirs.bundled, trusted });
    registries.push(made);
    return made;
  };
  const firstToken = async (r: ModelRegistry, role: 'completion' | 'explanation' = 'completion') => {
    const lease = await r.acquireLanguageModel(role);
    try {
      const model = lease!.model.languageModel;
      const logits = await model.run(model.tokenizer.encode('a = '), model.newCache());
      let best = 0;
      for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
      return model.tokenizer.decode([best]);
    } finally {
      lease?.release();
    }
  };

  before(async () => {
    dirs = modelDirectories();
    await makeParrotModel(path.join(dirs.bundled, 'default'), { character: 'b' });
    await makeParrotModel(path.join(dirs.models, 'xray'), { character: 'x' });
    await makeParrotModel(path.join(dirs.models, 'yankee'), { character: 'y' });
    fs.mkdirSync(path.join(dirs.models, 'not-a-model'));
    fs.mkdirSync(path.join(dirs.models, '.hidden'));
    // A training run that has not finished: its folder has a config but still carries the marker.
    await makeParrotModel(path.join(dirs.models, 'unfinished'));
    fs.writeFileSync(path.join(dirs.models, 'unfinished', INCOMPLETE_MARKER), '');
    // A corrupt ONNX file and a tokenizer that belongs to a bigger model.
    await makeParrotModel(path.join(dirs.models, 'corrupt'));
    fs.writeFileSync(path.join(dirs.models, 'corrupt', 'onnx', 'model.onnx'), 'not an onnx file');
    await makeParrotModel(path.join(dirs.models, 'mismatched'));
    const bigger = await makeModelFolder({ config: { vocabSize: 900 }, parentDir: dirs.root });
    for (const file of ['tokenizer.json', 'tokenizer_config.json'])
      fs.copyFileSync(path.join(bigger.dir, file), path.join(dirs.models, 'mismatched', file));
  });
  after(async () => {
    await Promise.all(registries.map((r) => r.dispose()));
    dirs.remove();
  });

  test('lists model folders of both directories; the bundled default serves both roles', async () => {
    const r = registry();
    assert.deepEqual(
      r.entries().map((e) => `${e.name}${e.bundled ? ' (bundled)' : ''}`),
      ['corrupt', 'default (bundled)', 'mismatched', 'xray', 'yankee'],
    );
    await r.start();
    assert.deepEqual(r.activeModels(), { completion: 'default', explanation: 'default' });
    assert.equal(r.isServing('completion'), true);
    assert.equal(await firstToken(r), 'b');
    const summary = r.summaries().find((s) => s.name === 'default')!;
    assert.equal(summary.status, 'active');
    assert.deepEqual(summary.roles, ['completion', 'explanation']);
    assert.ok(summary.sizeBytes > 1000);
  });

  test('deploy hot-swaps: a leased model serves until released, then is disposed', async () => {
    const r = registry();
    await r.start();
    const old = await r.acquireLanguageModel('completion');
    const active = await r.deploy('xray', 'completion');
    assert.deepEqual(active, { completion: 'xray', explanation: 'xray' });
    assert.equal(await firstToken(r), 'x');
    // The old lease still works: its model was not disposed under it.
    const oldModel = old!.model.languageModel;
    await oldModel.run([0], oldModel.newCache());
    old!.release();
    await assert.rejects(async () => oldModel.run([0], oldModel.newCache()), /disposed/);
    // Persisted: a new registry starts with it.
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dirs.models, 'active.json'), 'utf8')), {
      completion: 'xray',
    });
    const restarted = registry();
    await restarted.start();
    assert.equal(restarted.activeModels().completion, 'xray');
    assert.match(
      JSON.parse(fs.readFileSync(path.join(dirs.models, 'xray', 'modelwright.json'), 'utf8')).deployedAt.completion,
      /^\d{4}-/,
    );
    await r.deploy('default', 'completion');
  });

  test('a corrupt model, a foreign tokenizer or a bad name fails; the previous model keeps serving', async () => {
    const r = registry();
    await r.start();
    await r.deploy('yankee', 'completion');
    await assert.rejects(r.deploy('corrupt', 'completion'), (e: unknown) => {
      assert.ok(e instanceof RegistryError && e.code === 'loadFailed');
      assert.match(e.message, /could not be loaded/);
      assert.match(e.message, /"yankee" keeps serving completion/);
      return true;
    });
    await assert.rejects(
      r.deploy('mismatched', 'completion'),
      /the tokenizer has \d+ tokens but the model's vocabulary has \d+/,
    );
    await assert.rejects(
      r.deploy('nothing', 'completion'),
      (e: unknown) => e instanceof RegistryError && e.code === 'unknownModel' && /known models: /.test(e.message),
    );
    for (const invalid of ['../etc', 'a..b', 'm'.repeat(101)]) {
      await assert.rejects(
        r.deploy(invalid, 'completion'),
        (e: unknown) => e instanceof RegistryError && e.code === 'invalidName' && /1–100 letters/.test(e.message),
      );
    }
    await assert.rejects(r.deploy('xray', 'reviewer' as never), /unknown role/);
    assert.equal(r.activeModels().completion, 'yankee');
    assert.equal(await firstToken(r), 'y');
    assert.match(r.loadError('corrupt') ?? '', /onnx/);
    await r.deploy('default', 'completion');
  });

  test('a folder that failed to load is not retried until its files change', async () => {
    const logs: string[] = [];
    const r = new ModelRegistry({
      modelsDirectory: dirs.models,
      bundledModelsDirectory: dirs.bundled,
      trusted: true,
      log: (m) => logs.push(m),
    });
    registries.push(r);
    await makeParrotModel(path.join(dirs.models, 'flaky'));
    fs.writeFileSync(path.join(dirs.models, 'flaky', 'onnx', 'model.onnx'), 'broken');
    for (let i = 0; i < 3; i++) await assert.rejects(r.acquire('completion', 'flaky'), /could not be loaded/);
    assert.equal(logs.filter((l) => l.startsWith('could not load model "flaky"')).length, 1);
    await makeParrotModel(path.join(dirs.models, 'flaky'), { character: 'f' });
    const lease = await r.acquire('completion', 'flaky');
    assert.ok(lease);
    lease.release();
    fs.rmSync(path.join(dirs.models, 'flaky'), { recursive: true });
  });

  test('the explanation role can have its own model; reload picks up a retrained folder', async () => {
    const r = registry();
    await r.start();
    await r.deploy('xray', 'explanation');
    assert.deepEqual(r.activeModels(), { completion: 'default', explanation: 'xray' });
    assert.equal(await firstToken(r, 'explanation'), 'x');
    const before = (await r.acquireLanguageModel('explanation'))!;
    before.release();
    await makeParrotModel(path.join(dirs.models, 'xray'), { character: 'z' });
    await r.reload('xray');
    const after = (await r.acquireLanguageModel('explanation'))!;
    after.release();
    assert.notEqual(after.model.key, before.model.key);
    assert.equal(await firstToken(r, 'explanation'), 'z');
    fs.rmSync(path.join(dirs.models, 'active.json'));
  });

  test('an untrusted workspace sees bundled models only and cannot deploy others', async () => {
    const r = registry(false);
    await r.start();
    assert.deepEqual(
      r.entries().map((e) => e.name),
      ['default'],
    );
    await assert.rejects(
      r.deploy('xray', 'completion'),
      (e: unknown) => e instanceof RegistryError && e.code === 'unknownModel',
    );
    assert.equal(r.activeModels().completion, 'default');
  });

  test('without any model the roles are empty', async () => {
    const empty = modelDirectories();
    try {
      const r = new ModelRegistry({
        modelsDirectory: empty.models,
        bundledModelsDirectory: empty.bundled,
        trusted: true,
      });
      await r.start();
      assert.deepEqual(r.activeModels(), {});
      assert.equal(await r.acquire('completion'), undefined);
      await r.dispose();
    } finally {
      empty.remove();
    }
  });
});
