// Tests for inference in the worker thread: the event loop stays free during a run (timers fire, a cancellation
// lands mid-generation), caches cloned and cut while runs are in flight stay consistent, a prefix writes over
// released positions only when no other cache holds them, released caches and a stopped worker give clear errors,
// and a new load starts a new worker. Models are small and random.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generate } from '../../server/src/runtime/generate';
import { inferenceWorker, stopInferenceWorker } from '../../server/src/runtime/inferenceClient';
import { type LanguageModel, loadLanguageModel } from '../../server/src/runtime/languageModel';
import { type ModelFolder, makeModelFolder } from '../helpers/makeModelFolder';
import { maxDifference } from '../helpers/compare';

/** Counts event-loop turns (setImmediate callbacks) until `work` settles. */
async function turnsDuring<T>(work: Promise<T>): Promise<{ turns: number; value: T }> {
  let turns = 0;
  let done = false;
  const spin = () => {
    if (done) return;
    turns++;
    setImmediate(spin);
  };
  setImmediate(spin);
  const value = await work;
  done = true;
  return { turns, value };
}

describe('inference worker', () => {
  let folder: ModelFolder;
  let model: LanguageModel;
  let ids: number[];

  before(async () => {
    folder = await makeModelFolder({
      seed: 3,
      weightScale: 4,
      config: { contextLength: 512, layers: 4, heads: 4, embedding: 128 },
    });
    model = await loadLanguageModel(folder.dir, { intraOpThreads: 1 });
    ids = Array.from({ length: 500 }, (_, i) => (i * 37 + 11) % folder.config.vocabSize);
  });
  after(async () => {
    await model?.dispose();
    folder?.remove();
  });

  test('the event loop turns while a long prefill runs', async () => {
    const { turns, value } = await turnsDuring(model.run(ids, model.newCache()));
    assert.equal(value.length, folder.config.vocabSize);
    assert.ok(turns >= 3, `only ${turns} event-loop turns during the prefill`);
  });

  test('an abort from a timer lands mid-generation', async () => {
    const controller = new AbortController();
    // No callback of ours aborts: only a macrotask, which a blocked event loop would not run until the end.
    setImmediate(() => controller.abort());
    const result = await generate(model, ids.slice(0, 400), { maxTokens: 100, signal: controller.signal });
    assert.equal(result.finishReason, 'cancelled');
    assert.ok(result.generatedIds.length < 100, `${result.generatedIds.length} tokens before the abort landed`);
  });

  test('clones and prefixes made while runs are in flight match cold runs', async () => {
    const prompt = ids.slice(0, 40);
    const cache = model.newCache();
    const running = model.run(prompt, cache);
    const copy = cache.clone(); // made after the run is sent: holds the prompt too
    await running;
    assert.equal(copy.length, 40);
    const short = cache.prefix(20); // shares the buffers with `cache`, which keeps growing
    const [a, b] = await Promise.all([model.run([5], cache), model.run([9], copy)]);
    const c = await model.run([7, 8], short);
    const cold = async (tokens: number[]) => model.run(tokens, model.newCache());
    assert.ok(maxDifference(a, await cold([...prompt, 5])) < 1e-4);
    assert.ok(maxDifference(b, await cold([...prompt, 9])) < 1e-4);
    assert.ok(maxDifference(c, await cold([...prompt.slice(0, 20), 7, 8])) < 1e-4);
    // Runs past the first buffer's capacity, on both sharers, stay exact.
    for (let step = 0; step < 30; step++) {
      const token = (step * 13) % folder.config.vocabSize;
      await model.run([token], short);
      await model.run([token], cache);
    }
    for (const sharer of [cache, short]) {
      const expected = await cold([...sharer.tokens, 1]);
      assert.ok(maxDifference(await model.run([1], sharer), expected) < 1e-4);
    }
  });

  test('a prefix left alone in released buffers writes over them, one that shares them does not', async () => {
    // Long enough that the prefixes fill most of the buffers (shorter ones run from a copy of their own).
    const prompt = ids.slice(0, 120);
    const cold = async (tokens: number[]) => model.run(tokens, model.newCache());
    const long = model.newCache();
    await model.run([...prompt, 5, 6, 7], long);
    const first = long.prefix(120);
    const second = long.prefix(121); // still holds position 120, which `first` would write over in place
    long.release();
    const firstLogits = await model.run([9], first);
    assert.ok(maxDifference(firstLogits, await cold([...prompt, 9])) < 1e-4);
    assert.ok(maxDifference(await model.run([8], second), await cold([...prompt, 5, 8])) < 1e-4);
    second.release();
    // A prefix alone in its buffers may write on over the positions after it.
    const reused = model.newCache();
    await model.run([...prompt, 1, 2, 3, 4], reused);
    const cut = reused.prefix(121);
    reused.release();
    assert.ok(maxDifference(await model.run([7, 8], cut), await cold([...prompt, 1, 7, 8])) < 1e-4);
    assert.ok(maxDifference(await model.run([6], first), await cold([...prompt, 9, 6])) < 1e-4);
  });

  test('a released cache is refused with a clear message', async () => {
    const cache = model.newCache();
    await model.run([1, 2, 3], cache);
    cache.release();
    await assert.rejects(model.run([4], cache), /the cache has been released/);
  });

  test('a worker that fails refuses the run in flight with its error; a new load starts a new worker', async () => {
    const other = await loadLanguageModel(folder.dir, { intraOpThreads: 1 });
    inferenceWorker().post({ op: 'crash', message: 'simulated failure' });
    await assert.rejects(
      other.run([1, 2, 3], other.newCache()),
      /inference worker failed: simulated failure; load the model again/,
    );
    assert.throws(() => model.newCache(), /inference worker failed: simulated failure; load the model again/);
    await other.dispose();
    model = await loadLanguageModel(folder.dir, { intraOpThreads: 1 });
    assert.equal((await model.run([1, 2], model.newCache())).length, folder.config.vocabSize);
  });

  test('a stopped worker fails the run in flight and later runs clearly; a new load starts a new worker', async () => {
    const other = await loadLanguageModel(folder.dir, { intraOpThreads: 1 });
    const running = other.run(ids, other.newCache());
    const refused = assert.rejects(running, /inference worker was stopped; load the model again/);
    await stopInferenceWorker();
    await refused;
    assert.throws(() => other.newCache(), /load the model again/);
    await other.dispose();
    model = await loadLanguageModel(folder.dir, { intraOpThreads: 1 });
    assert.equal((await model.run([1, 2], model.newCache())).length, folder.config.vocabSize);
  });
});
