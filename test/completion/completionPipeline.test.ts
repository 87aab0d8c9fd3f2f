// Tests for the completion pipeline on real (tiny) models: a suggestion end to end, the cache and the typed-ahead
// remainder without running the model, KV-cache reuse across requests (and without it), cancellation that stops
// decoding mid-way, debounce of automatic triggers, and the confidence threshold.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CompletionCancelled,
  type CompletionModel,
  CompletionPipeline,
  type EditorCompletionRequest,
} from '../../server/src/completion/completionPipeline';
import { KvCacheStore } from '../../server/src/completion/kvCacheStore';
import { defaultSettings } from '../../server/src/protocol';
import { type LanguageModel, loadLanguageModel } from '../../server/src/runtime/languageModel';
import { makeModelFolder } from '../helpers/makeModelFolder';
import { makeParrotModel } from '../server/testModels';

const settings = { ...defaultSettings.completion, debounceMs: 0, confidenceThreshold: 0 };

describe('completion pipeline', () => {
  let root: string;
  let parrot: LanguageModel;
  let longParrot: LanguageModel;
  let random: LanguageModel;
  const model = (languageModel: LanguageModel, key = 'parrot#1'): CompletionModel => ({
    key,
    languageModel,
    fillInTheMiddle: false,
  });
  const request = (
    text: string,
    offset = text.length,
    overrides: Partial<EditorCompletionRequest> = {},
  ): EditorCompletionRequest => ({
    uri: 'file:///a.ts',
    text,
    offset,
    languageId: 'typescript',
    invoked: true,
    settings,
    signal: new AbortController().signal,
    ...overrides,
  });

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-pipeline-'));
    await makeParrotModel(path.join(root, 'parrot'));
    await makeParrotModel(path.join(root, 'long'), {
      config: { contextLength: 1024, layers: 4, heads: 4, embedding: 128 },
    });
    const folder = await makeModelFolder({ parentDir: root });
    [parrot, longParrot, random] = await Promise.all([
      loadLanguageModel(path.join(root, 'parrot'), { intraOpThreads: 1 }),
      loadLanguageModel(path.join(root, 'long'), { intraOpThreads: 1 }),
      loadLanguageModel(folder.dir, { intraOpThreads: 1 }),
    ]);
  });
  after(async () => {
    await Promise.all([parrot?.dispose(), longParrot?.dispose(), random?.dispose()]);
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('suggests text from the model, limited by maxTokens', async () => {
    const pipeline = new CompletionPipeline();
    const outcome = await pipeline.complete(
      model(parrot),
      request('let name = ', undefined, { settings: { ...settings, maxTokens: 10 } }),
    );
    assert.equal(outcome.source, 'model');
    assert.equal(outcome.text, 'x'.repeat(10));
    assert.equal(outcome.generatedTokens, 10);
    assert.ok(outcome.meanProbability! > 0.99);
  });

  test('serves the same position and the typed-ahead remainder from the cache', async () => {
    const pipeline = new CompletionPipeline();
    const text = 'let name = ';
    const first = await pipeline.complete(model(parrot), request(text));
    const again = await pipeline.complete(model(parrot), request(text));
    assert.equal(again.source, 'cache');
    assert.equal(again.text, first.text);
    const typed = await pipeline.complete(model(parrot), request(`${text}xxx`));
    assert.equal(typed.source, 'cache');
    assert.equal(typed.text, first.text.slice(3));
    assert.equal(typed.generatedTokens, 0);
  });

  test('reuses the KV cache of the previous request in the same document', async () => {
    const prefix = Array.from({ length: 6 }, (_, i) => `const value${i} = compute(${i});\n`).join('');
    for (const reuse of [true, false]) {
      const pipeline = new CompletionPipeline({ reuseKvCache: reuse });
      const first = await pipeline.complete(model(parrot), request(prefix));
      assert.equal(first.reusedTokens, 0);
      const second = await pipeline.complete(model(parrot), request(`${prefix}let other = `));
      if (reuse) {
        assert.ok(
          second.reusedTokens >= first.promptTokens - 2,
          `${second.reusedTokens} of ${first.promptTokens} reused`,
        );
        assert.ok(pipeline.kvCaches.get('file:///a.ts', 'parrot#1')?.cache);
      } else {
        assert.equal(second.reusedTokens, 0);
        assert.equal(pipeline.kvCaches.get('file:///a.ts', 'parrot#1')?.cache, undefined, 'only the anchor is kept');
      }
      // A cache of another model is never used.
      const otherModel = await pipeline.complete(model(parrot, 'other#2'), request(`${prefix}let third = `));
      assert.equal(otherModel.reusedTokens, 0);
    }
  });

  test('typing on in a fill-in-the-middle prompt runs only the typed tokens, not the suffix again', async () => {
    const pipeline = new CompletionPipeline();
    const fim: CompletionModel = { key: 'fim#1', languageModel: longParrot, fillInTheMiddle: true };
    const before = Array.from({ length: 6 }, (_, i) => `const value${i} = compute(${i});\n`).join('');
    const after = '\nreturn value0;\n'.repeat(4);
    const at = (typed: string) => request(`${before}let x = ${typed}${after}`, before.length + 8 + typed.length);
    const first = await pipeline.complete(fim, at(''));
    const second = await pipeline.complete(fim, at('com'));
    assert.ok(second.reusedTokens >= first.promptTokens, `${second.reusedTokens} of ${first.promptTokens} reused`);
    assert.ok(second.promptTokens - second.reusedTokens <= 3, `${second.promptTokens - second.reusedTokens} run`);
  });

  test('alternatives come only with an explicit invocation, not while the user types', async () => {
    // The shipped model is unsure here, with a second first token of 5% or more.
    const shipped = await loadLanguageModel(path.resolve(__dirname, '..', '..', 'models', 'default'), {
      intraOpThreads: 1,
    });
    try {
      const unsure = { ...settings, maxSuggestions: 3 };
      const text = 'const value = ';
      const complete = (invoked: boolean) =>
        new CompletionPipeline().complete(
          model(shipped, 'default#1'),
          request(text, text.length, { settings: unsure, invoked }),
        );
      const invoked = await complete(true);
      assert.ok((invoked.meanProbability ?? 1) < 0.6, 'the model is unsure');
      assert.ok((invoked.alternatives?.length ?? 0) > 0, 'an explicit invocation gets alternatives');
      const typing = await complete(false);
      assert.equal(typing.text, invoked.text);
      assert.equal(typing.alternatives, undefined);
    } finally {
      await shipped.dispose();
    }
  });

  test('cancellation stops decoding mid-way', async () => {
    const pipeline = new CompletionPipeline();
    const controller = new AbortController();
    // Cancel while the model runs for the fifth token; decoding must end with that token, without another run.
    // Prompt lookup is off so that each run yields exactly one token.
    const runs = countRuns(longParrot, (count) => count === 5 && controller.abort());
    try {
      await assert.rejects(
        pipeline.complete(
          model(longParrot),
          request('x = ', undefined, {
            signal: controller.signal,
            settings: { ...settings, maxTokens: 500, promptLookup: false },
          }),
        ),
        (e: unknown) => {
          assert.ok(e instanceof CompletionCancelled);
          assert.equal(e.generatedTokens, 5, `stopped after ${e.generatedTokens} tokens`);
          assert.equal(e.maxTokens, 500);
          return true;
        },
      );
      assert.equal(runs.count, 5, 'no model run after the cancellation');
    } finally {
      runs.restore();
    }
  });

  test('automatic triggers wait for the debounce; a newer request supersedes an older one', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] }); // the debounce runs on a clock the test moves
    const pipeline = new CompletionPipeline();
    const runs = countRuns(parrot);
    try {
      const automatic = { invoked: false, settings: { ...settings, debounceMs: 80 } };
      const older = pipeline.complete(model(parrot), request('a = ', undefined, automatic));
      const newer = pipeline.complete(model(parrot), request('a = b', undefined, automatic));
      let settled = false;
      newer.then(
        () => (settled = true),
        () => (settled = true),
      );
      assert.equal((await older).source, 'superseded');
      t.mock.timers.tick(79);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(settled, false, 'the newer request is still waiting 79 ms after it came');
      assert.equal(runs.count, 0, 'the model has not run during the debounce');
      t.mock.timers.tick(1);
      assert.equal((await newer).source, 'model');
      assert.ok(runs.count > 0);
      // An explicit invocation does not wait: it sets no timer, and it is answered while the clock stands still.
      const invoked = pipeline.complete(
        model(parrot),
        request('c = ', undefined, { settings: { ...settings, debounceMs: 5000 } }),
      );
      assert.equal(pipeline.debouncer.pendingCount, 0);
      assert.equal((await invoked).source, 'model');
    } finally {
      runs.restore();
    }
  });

  test('a suggestion below the confidence threshold is not shown', async () => {
    const pipeline = new CompletionPipeline();
    // A prompt after which the random model does not repeat itself (the repetition rule would drop that first).
    const unsure = await pipeline.complete(
      model(random, 'random#1'),
      request('const b = ', undefined, { settings: { ...settings, confidenceThreshold: 0.5 } }),
    );
    assert.equal(unsure.text, '');
    assert.equal(unsure.rejected, 'low confidence');
    assert.ok(unsure.meanProbability! < 0.5);
    const sure = await pipeline.complete(
      model(parrot),
      request('let a = ', undefined, { settings: { ...settings, confidenceThreshold: 0.5 } }),
    );
    assert.ok(sure.text.length > 0);
  });

  test('KvCacheStore keeps a bounded number of documents and drops other models on request', () => {
    const store = new KvCacheStore(2);
    const cache = parrot.newCache();
    store.set('a', { modelKey: 'm1', cache, anchor: 0 });
    store.set('b', { modelKey: 'm2', cache, anchor: 0 });
    assert.equal(store.get('a', 'm2'), undefined);
    assert.equal(store.get('a', 'm1')?.anchor, 0);
    store.set('c', { modelKey: 'm1', cache, anchor: 0 }); // 'a' was used last: 'b' goes
    assert.equal(store.size, 2);
    assert.equal(store.get('b', 'm2'), undefined);
    store.set('b', { modelKey: 'm2', cache, anchor: 0 });
    store.keepOnly('m2');
    assert.equal(store.size, 1);
    assert.ok(store.get('b', 'm2'));
  });
});

/** Counts `model.run` calls (calling `onRun` with the count as each starts) until `restore()`. */
function countRuns(model: LanguageModel, onRun?: (count: number) => void): { count: number; restore(): void } {
  const original = model.run;
  const counter = {
    count: 0,
    restore: () => {
      model.run = original;
    },
  };
  model.run = (...args) => {
    counter.count++;
    onRun?.(counter.count);
    return original.apply(model, args);
  };
  return counter;
}
