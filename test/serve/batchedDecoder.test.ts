// Tests for batched decoding: left-padded batches give the same greedy tokens and logits as decoding each
// prompt alone with the runtime's generate(), also when sequences join a running batch and others leave it;
// and the scheduler's queue limits, cancellation and stop sequences.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchedDecoder } from '../../server/src/runtime/batchedDecoder';
import { generate } from '../../server/src/runtime/generate';
import { type LanguageModel, loadLanguageModel } from '../../server/src/runtime/languageModel';
import { argmax } from '../../server/src/runtime/sampling';
import { type Tokenizer, loadTokenizer } from '../../server/src/runtime/tokenizer';
import { BatchScheduler } from '../../server/src/serve/batchScheduler';
import { fitPrompt } from '../../server/src/runtime/promptWindow';
import { HttpError } from '../../server/src/serve/errors';
import { type ModelFolder, makeModelFolder } from '../helpers/makeModelFolder';
import { maxDifference } from '../helpers/compare';

const PROMPTS = [
  'export function countOfTotal(count: number, total: number): number {\n',
  'for (let i = 0;',
  '  // Returns the value after offset steps — café',
  'x',
  'export function itemsOfName(items: Map<string, number>, name: number): Map<string, number> {\n' +
    '  for (let i = 0; i < name; i++) {\n',
];

describe('batched decoding', () => {
  let folder: ModelFolder;
  let model: LanguageModel;
  let decoder: BatchedDecoder;
  let tokenizer: Tokenizer;
  let expected: string[];

  before(async () => {
    folder = await makeModelFolder({ seed: 11, weightScale: 10 });
    model = await loadLanguageModel(folder.dir, { intraOpThreads: 1 });
    decoder = await BatchedDecoder.load(folder.dir, { intraOpThreads: 1 });
    tokenizer = await loadTokenizer(folder.dir);
    expected = [];
    for (const prompt of PROMPTS) expected.push((await generate(model, prompt, { maxTokens: 12 })).text);
  });
  after(async () => {
    await model?.dispose();
    await decoder?.dispose();
    tokenizer?.dispose();
    folder?.remove();
  });

  const fit = (prompt: string, maxTokens: number) =>
    fitPrompt(tokenizer.encode(prompt), maxTokens, folder.config.contextLength, folder.eosTokenId);

  test('declares the graph inputs and outputs with -1 for dynamic dimensions', () => {
    const ids = decoder.inputs.find((i) => i.name === 'input_ids')!;
    assert.deepEqual(ids, {
      name: 'input_ids',
      datatype: 'INT64',
      shape: [-1, -1],
      symbols: ['batch_size', 'sequence_length'],
    });
    const past = decoder.inputs.find((i) => i.name === 'past_key_values.0.key')!;
    assert.deepEqual(past.shape, [-1, folder.config.heads, -1, folder.config.embedding / folder.config.heads]);
    assert.equal(past.datatype, 'FP32');
    assert.ok(decoder.outputs.some((o) => o.name === 'logits' && o.datatype === 'FP32'));
    assert.ok(decoder.canBatch);
  });

  test('a left-padded prefill and decode steps match each prompt run alone', async () => {
    const prompts = PROMPTS.map((p) => tokenizer.encode(p));
    let { batch, logits } = await decoder.prefill(prompts);
    for (let step = 0; step < 6; step++) {
      for (let row = 0; row < prompts.length; row++) {
        const alone = model.newCache();
        const reference = await model.run(prompts[row], alone);
        assert.ok(maxDifference(reference, logits[row]) < 1e-3, `row ${row} step ${step}`);
      }
      const next = logits.map((l) => argmax(l));
      prompts.forEach((p, row) => p.push(next[row]));
      ({ batch, logits } = await decoder.step(batch, next));
    }
  });

  test('rows can leave (select) and join (concat) a batch without changing their logits', async () => {
    const a = [tokenizer.encode(PROMPTS[0]), tokenizer.encode(PROMPTS[1]), tokenizer.encode(PROMPTS[2])];
    const first = await decoder.prefill(a);
    const kept = decoder.select(first.batch, [2, 1]);
    assert.deepEqual(kept.lengths, [a[2].length, a[1].length]);
    assert.throws(() => decoder.select(first.batch, [0]), /consumed/);
    const b = [tokenizer.encode(PROMPTS[4])];
    const second = await decoder.prefill(b);
    const joined = decoder.concat(kept, second.batch);
    const tokens = [argmax(first.logits[2]), argmax(first.logits[1]), argmax(second.logits[0])];
    const { logits } = await decoder.step(joined, tokens);
    const sequences = [
      [...a[2], tokens[0]],
      [...a[1], tokens[1]],
      [...b[0], tokens[2]],
    ];
    for (let row = 0; row < 3; row++) {
      const reference = await model.run(sequences[row], model.newCache());
      assert.ok(maxDifference(reference, logits[row]) < 1e-3, `row ${row}`);
    }
  });

  test('a prompt that starts like a remembered one runs only its rest, with the same logits and steps', async () => {
    const [cached, plain] = await Promise.all([
      BatchedDecoder.load(folder.dir, { intraOpThreads: 1, promptCachePositions: 100 }),
      BatchedDecoder.load(folder.dir, { intraOpThreads: 1, promptCachePositions: 0 }),
    ]);
    try {
      const long = tokenizer.encode(PROMPTS.join('\n')).slice(0, 40);
      assert.equal(long.length, 40);
      const first = long.slice(0, 30);
      const other = tokenizer.encode(PROMPTS[3]).slice(0, 12);
      const warm = await cached.prefill([first]);
      assert.deepEqual(warm.reused, [0]);
      cached.remember(warm.batch, [{ row: 0, ids: first }]);
      const [ours, theirs] = await Promise.all([
        cached.prefill([long, other, first]),
        plain.prefill([long, other, first]),
      ]);
      assert.deepEqual(ours.reused, [30, 0, 29]); // the whole prompt: its last token runs again for its logits
      assert.deepEqual(theirs.reused, [0, 0, 0]);
      let [a, b] = [ours, theirs];
      for (let step = 0; step < 3; step++) {
        for (let row = 0; row < 3; row++)
          assert.ok(maxDifference(a.logits[row], b.logits[row]) < 1e-4, `step ${step} row ${row}`);
        const tokens = b.logits.map((l) => argmax(l));
        [a, b] = await Promise.all([cached.step(a.batch, tokens), plain.step(b.batch, tokens)]).then(([x, y]) => [
          { ...x, reused: [] },
          { ...y, reused: [] },
        ]);
      }
      assert.throws(() => cached.remember(a.batch, [{ row: 1, ids: long }]), /does not hold 40 positions/);
    } finally {
      await Promise.all([cached.dispose(), plain.dispose()]);
    }
  });

  test('the scheduler keeps finished prompts for the next one that starts the same way', async () => {
    const [cached, plain] = await Promise.all([
      BatchedDecoder.load(folder.dir, { intraOpThreads: 1, promptCachePositions: 100 }),
      BatchedDecoder.load(folder.dir, { intraOpThreads: 1, promptCachePositions: 0 }),
    ]);
    try {
      const reused: number[] = [];
      const original = cached.prefill.bind(cached);
      cached.prefill = async (prompts) => {
        const result = await original(prompts);
        reused.push(...result.reused);
        return result;
      };
      const long = tokenizer.encode(PROMPTS.join('\n')).slice(0, 40);
      const request = (promptIds: number[]) => ({ promptIds, maxTokens: 4, sampling: {}, stops: [] });
      const texts = async (decoder: BatchedDecoder) => {
        const scheduler = new BatchScheduler(decoder, tokenizer, { maxBatchSize: 4, maxQueue: 4, modelName: 't' });
        const first = await scheduler.complete([request(long.slice(0, 30))])[0];
        const second = await scheduler.complete([request(long)])[0];
        return [first.text, second.text];
      };
      assert.deepEqual(await texts(cached), await texts(plain));
      assert.deepEqual(reused, [0, 30]);
    } finally {
      await Promise.all([cached.dispose(), plain.dispose()]);
    }
  });

  test('the scheduler decodes concurrent greedy requests exactly like generate()', async () => {
    const scheduler = new BatchScheduler(decoder, tokenizer, { maxBatchSize: 8, maxQueue: 8, modelName: 't' });
    let decoding: () => void = () => {};
    const started = new Promise<void>((resolve) => (decoding = resolve));
    const request = (prompt: string) => ({
      promptIds: fit(prompt, 12),
      maxTokens: 12,
      sampling: {},
      stops: [],
      onText: () => decoding(),
    });
    const rows: number[] = [];
    const original = decoder.step.bind(decoder);
    decoder.step = (batch, tokens) => (rows.push(tokens.length), original(batch, tokens));
    try {
      // Three start together, the others join once they have streamed their first text.
      const early = scheduler.complete(PROMPTS.slice(0, 3).map(request));
      await started;
      const late = scheduler.complete(PROMPTS.slice(3).map(request));
      const outcomes = await Promise.all([...early, ...late]);
      assert.deepEqual(
        outcomes.map((o) => o.text),
        expected,
      );
      for (const o of outcomes) assert.equal(o.completionTokens, 12);
      assert.equal(Math.max(...rows), PROMPTS.length, `rows per step ${rows}: the late requests joined the batch`);
      await scheduler.idle();
    } finally {
      decoder.step = original;
    }
  });

  test('batching off (max batch 1) gives the same texts', async () => {
    const scheduler = new BatchScheduler(decoder, tokenizer, { maxBatchSize: 1, maxQueue: 8, modelName: 't' });
    const outcomes = await Promise.all(
      scheduler.complete(PROMPTS.map((p) => ({ promptIds: fit(p, 12), maxTokens: 12, sampling: {}, stops: [] }))),
    );
    assert.deepEqual(
      outcomes.map((o) => o.text),
      expected,
    );
  });

  test('admission keeps rows × length within maxBatchTokens (but always runs at least one row)', async () => {
    const prompt = fit(PROMPTS[0], 6);
    const rows: number[] = [];
    const original = decoder.step.bind(decoder);
    decoder.step = (batch, tokens) => (rows.push(tokens.length), original(batch, tokens));
    try {
      const tight = new BatchScheduler(decoder, tokenizer, {
        maxBatchSize: 8,
        maxQueue: 8,
        modelName: 't',
        maxBatchTokens: 2 * prompt.length + 1,
      });
      await Promise.all(
        tight.complete(Array.from({ length: 6 }, () => ({ promptIds: prompt, maxTokens: 6, sampling: {}, stops: [] }))),
      );
      assert.equal(Math.max(...rows), 2);
      rows.length = 0;
      const alone = new BatchScheduler(decoder, tokenizer, {
        maxBatchSize: 8,
        maxQueue: 8,
        modelName: 't',
        maxBatchTokens: 1,
      });
      await Promise.all(
        alone.complete(Array.from({ length: 3 }, () => ({ promptIds: prompt, maxTokens: 4, sampling: {}, stops: [] }))),
      );
      assert.equal(Math.max(...rows), 1);
    } finally {
      decoder.step = original;
    }
  });

  test('stop sequences cut the text and streamed pieces add up to it', async () => {
    const scheduler = new BatchScheduler(decoder, tokenizer, { maxBatchSize: 4, maxQueue: 4, modelName: 't' });
    const full = expected[0];
    const stop = full.slice(4, 7);
    assert.ok(stop.length > 0, 'the greedy continuation is long enough');
    let streamed = '';
    const [outcome] = scheduler.complete([
      {
        promptIds: tokenizer.encode(PROMPTS[0]),
        maxTokens: 12,
        sampling: {},
        stops: [stop],
        onText: (t) => (streamed += t),
      },
    ]);
    const result = await outcome;
    assert.equal(result.text, full.slice(0, full.indexOf(stop)));
    assert.equal(result.finishReason, 'stop');
    assert.equal(streamed, result.text);
  });

  test('seeded sampling is reproducible', async () => {
    const scheduler = new BatchScheduler(decoder, tokenizer, { maxBatchSize: 4, maxQueue: 4, modelName: 't' });
    const request = {
      promptIds: tokenizer.encode(PROMPTS[1]),
      maxTokens: 10,
      sampling: { temperature: 1, topP: 0.9, seed: 5 },
      stops: [],
    };
    const [a, b] = await Promise.all(scheduler.complete([request, request]));
    assert.equal(a.text, b.text);
  });

  test('a full queue refuses with 429, an aborted request rejects with its reason, a retired scheduler 503', async () => {
    const scheduler = new BatchScheduler(decoder, tokenizer, { maxBatchSize: 1, maxQueue: 1, modelName: 't' });
    const request = (signal?: AbortSignal) => ({
      promptIds: tokenizer.encode(PROMPTS[0]),
      maxTokens: 30,
      sampling: {},
      stops: [],
      signal,
      ignoreEos: true,
    });
    const controller = new AbortController();
    const [running] = scheduler.complete([request(controller.signal)]);
    const [queued] = scheduler.complete([request()]);
    assert.throws(
      () => scheduler.complete([request()]),
      (e: unknown) => e instanceof HttpError && e.status === 429,
    );
    controller.abort(new Error('gone'));
    await assert.rejects(running, /gone/);
    assert.equal((await queued).completionTokens, 30);
    await scheduler.idle();
    assert.ok(scheduler.isIdle);
    scheduler.stopAccepting(); // shutting down or replaced by a new version
    assert.throws(
      () => scheduler.complete([request()]),
      (e: unknown) => e instanceof HttpError && e.status === 503,
    );
  });
});
