// The GPT-2 blocks of a training graph run on chunks of a few sequences (model.ts, for cache locality): a batch
// that is cut into chunks must give the loss and gradients of its halves computed whole, which checks that the
// chunks are split, processed and joined in order and that their weight gradients are summed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type GptConfig, chunkFloats, initialParameters } from '../../server/src/engine/model';
import { buildGradients, names, packParameters, parameterLayout } from '../../server/src/engine/trainingGraph';
import { f32, i64, maxAbs, maxAbsDiff, open, run } from '../helpers/engineHarness';

// time·max(4·embedding, heads·time) floats per sequence, as model.ts counts them: several sequences per chunk.
const config: GptConfig = { vocabSize: 64, contextLength: 64, layers: 2, heads: 4, embedding: 32 };
const time = 64;
const perSequence = time * Math.max(4 * config.embedding, config.heads * time);
const perChunk = Math.floor(chunkFloats / perSequence);

test('a chunked batch gives the mean loss and mean gradients of its chunks computed whole', async () => {
  assert.ok(perChunk >= 2, `the case needs chunks of several sequences, got ${perChunk}`);
  const batch = 2 * perChunk;
  const flat = packParameters(config, initialParameters(config, 7));
  const tokens = Array.from({ length: batch * time }, (_, i) => (i * 37 + (i >> 5)) % config.vocabSize);
  const targets = tokens.map((t, i) => (t * 11 + i) % config.vocabSize);
  const gradients = async (rows: number, from: number) => {
    const session = await open(buildGradients(config, { batch: rows, time }));
    const slice = (a: number[]) => a.slice(from * time, (from + rows) * time);
    const out = await run(session, {
      [names.inputIds]: i64(slice(tokens), [rows, time]),
      [names.targets]: i64(slice(targets), [rows, time]),
      [names.parameters]: f32(flat, [flat.length]),
    });
    await session.release();
    return out;
  };
  const whole = await gradients(batch, 0);
  const first = await gradients(perChunk, 0);
  const second = await gradients(perChunk, perChunk);

  const meanLoss = (first[names.loss][0] + second[names.loss][0]) / 2;
  assert.ok(Math.abs(whole[names.loss][0] - meanLoss) <= 1e-5, `loss ${whole[names.loss][0]} vs ${meanLoss}`);
  for (const { name } of parameterLayout(config).slots) {
    const key = names.gradient(name);
    const mean = whole[key].map((_, i) => (first[key][i] + second[key][i]) / 2);
    const { diff, index } = maxAbsDiff(whole[key], mean);
    assert.ok(diff <= 1e-5 * Math.max(1e-3, maxAbs(mean)), `${name}[${index}]: ${whole[key][index]} vs ${mean[index]}`);
  }
});
