// One model-name rule for the editor and the HTTP service (protocol.ts): a model trained under a 70-character name,
// longer than the service once allowed, is listed by the registry and served over HTTP by name; and both holders
// refuse a folder whose tokenizer belongs to another model, with the same message.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isValidModelName } from '../../server/src/protocol';
import { ModelRegistry } from '../../server/src/registry/modelRegistry';
import { RegistryError } from '../../server/src/registry/registryError';
import { generate } from '../../server/src/runtime/generate';
import { startServer } from '../../server/src/serve/httpServer';
import { checkModelName, nameForFolder } from '../../server/src/serve/modelNames';
import { train } from '../../server/src/train/trainer';
import { makeModelFolder } from '../helpers/makeModelFolder';
import { makeParrotModel, writeSourcesWorkspace } from '../server/testModels';
import { request } from './harness';

const LONG_NAME = 'fine-tuned-on-the-completion-pipeline-with-a-name-longer-than-64-chars';
const PROMPT = 'export function countOfTotal(count: number, total: number): number {\n';

describe('model names and model checks shared by the registry and the HTTP service', { timeout: 120_000 }, () => {
  let root: string;
  let models: string;
  let bundled: string;
  const registries: ModelRegistry[] = [];
  const registry = () => {
    const made = new ModelRegistry({ modelsDirectory: models, bundledModelsDirectory: bundled, trusted: true });
    registries.push(made);
    return made;
  };

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-names-'));
    models = path.join(root, 'models');
    bundled = path.join(root, 'bundled');
    fs.mkdirSync(models);
    fs.mkdirSync(bundled);
    // A tiny model fine-tuned for a few steps into the models folder under the long name, as the editor trains.
    const base = await makeModelFolder({ parentDir: root, seed: 5, weightScale: 10 });
    await train({
      workspace: writeSourcesWorkspace(path.join(root, 'workspace')),
      out: path.join(models, LONG_NAME),
      base: base.dir,
      steps: 10,
      batchSize: 4,
      threads: 1,
      seed: 1,
    });
    // A model whose tokenizer belongs to a bigger model, and a good one to hot-swap from.
    await makeParrotModel(path.join(models, 'mismatched'));
    const bigger = await makeModelFolder({ config: { vocabSize: 900 }, parentDir: root });
    for (const file of ['tokenizer.json', 'tokenizer_config.json'])
      fs.copyFileSync(path.join(bigger.dir, file), path.join(models, 'mismatched', file));
    await makeParrotModel(path.join(models, 'parrot'), { character: 'p' });
  });
  after(async () => {
    await Promise.all(registries.map((r) => r.dispose()));
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('names up to 100 characters are valid everywhere; folder names are cleaned to valid ones', () => {
    assert.equal(LONG_NAME.length, 70);
    assert.ok(isValidModelName(LONG_NAME));
    assert.equal(checkModelName(LONG_NAME), LONG_NAME);
    assert.equal(nameForFolder(path.join(models, LONG_NAME)), LONG_NAME);
    assert.ok(isValidModelName('m'.repeat(100)));
    assert.ok(!isValidModelName('m'.repeat(101)));
    const cleaned = nameForFolder(`/tmp/..${'a b'.repeat(50)}`);
    assert.equal(cleaned.length, 100);
    assert.ok(isValidModelName(cleaned), cleaned);
    assert.throws(() => checkModelName('a..b'), /invalid model name "a\.\.b": use 1–100 letters/);
  });

  test('a model with a 70-character name is listed and served by the registry and over HTTP', async () => {
    const r = registry();
    assert.ok(r.entries().some((e) => e.name === LONG_NAME && !e.bundled));
    assert.equal(r.resolve(LONG_NAME).dir, path.join(models, LONG_NAME));
    assert.deepEqual(await r.deploy(LONG_NAME, 'completion'), { completion: LONG_NAME, explanation: LONG_NAME });
    assert.equal(r.summaries().find((s) => s.name === LONG_NAME)?.status, 'active');
    const lease = (await r.acquireLanguageModel('completion'))!;
    let expected: string;
    try {
      assert.equal(lease.model.name, LONG_NAME);
      expected = (await generate(lease.model.languageModel, PROMPT, { maxTokens: 6 })).text;
    } finally {
      lease.release();
    }

    const server = await startServer({ models: [LONG_NAME], modelsDirectory: models });
    try {
      const list = await request(`${server.url}/v1/models`);
      assert.deepEqual(
        list.body.data.map((m: { id: string }) => m.id),
        [LONG_NAME],
      );
      const completion = await request(`${server.url}/v1/completions`, {
        body: { model: LONG_NAME, prompt: PROMPT, max_tokens: 6, temperature: 0 },
      });
      assert.equal(completion.status, 200, completion.text);
      assert.equal(completion.body.model, LONG_NAME);
      assert.equal(completion.body.choices[0].text, expected);

      const ready = await request(`${server.url}/v2/models/${LONG_NAME}/ready`);
      assert.equal(ready.status, 200, ready.text);
      assert.deepEqual(ready.body, { name: LONG_NAME, ready: true });
      const metadata = await request(`${server.url}/v2/models/${LONG_NAME}`);
      assert.equal(metadata.status, 200, metadata.text);
      assert.equal(metadata.body.name, LONG_NAME);
      assert.deepEqual(await server.reload(LONG_NAME), { name: LONG_NAME, version: 2 });
      const versioned = await request(`${server.url}/v2/models/${LONG_NAME}/versions/2/ready`);
      assert.equal(versioned.status, 200, versioned.text);
    } finally {
      await server.close();
    }
  });

  test('a tokenizer that does not belong to its model is refused over HTTP with the registry message', async () => {
    const dir = path.join(models, 'mismatched');
    let registryMessage = '';
    await assert.rejects(registry().acquire('completion', 'mismatched'), (e: unknown) => {
      assert.ok(e instanceof RegistryError && e.code === 'loadFailed');
      registryMessage = e.message;
      return true;
    });
    const prefix = 'model "mismatched" could not be loaded: ';
    assert.ok(registryMessage.startsWith(prefix), registryMessage);
    const message = registryMessage.slice(prefix.length);
    assert.match(
      message,
      /: the tokenizer has \d+ tokens but the model's vocabulary has \d+; tokenizer\.json does not/,
    );

    const refused = await startServer({ models: [{ name: 'mismatched', dir }] }).then(
      (served) => served.close().then(() => undefined),
      (e: unknown) => e as Error,
    );
    assert.equal(refused?.message, message);

    // A hot swap to the mismatched folder is refused too; the loaded version keeps serving.
    const server = await startServer({ models: ['parrot'], modelsDirectory: models });
    try {
      await assert.rejects(server.reload('parrot', dir), (e: unknown) => {
        assert.equal((e as Error).message, message);
        return true;
      });
      assert.deepEqual(
        server.status().models.map((m) => `${m.name}@${m.version}`),
        ['parrot@1'],
      );
      const completion = await request(`${server.url}/v1/completions`, {
        body: { model: 'parrot', prompt: 'a = ', max_tokens: 3, temperature: 0 },
      });
      assert.equal(completion.status, 200, completion.text);
      assert.equal(completion.body.choices[0].text, 'ppp');
    } finally {
      await server.close();
    }
  });
});
