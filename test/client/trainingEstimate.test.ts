// Tests the arithmetic of a training's estimate (client/src/trainingEstimate.ts) — steps and seconds per epoch with
// the validation passes, epochs in a budget, the sentences shown — and the gain rows of a fine-tuned model over its
// base (client/src/trainingGain.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EstimateTraining, TrainingComparison } from '../../server/src/protocol';
import {
  describeEpochs,
  describeEstimate,
  EVAL_EVERY,
  epochEstimate,
  epochsIn,
  shortEstimate,
  VALIDATION_BATCHES,
} from '../../client/src/trainingEstimate';
import { describeGain, gainRows } from '../../client/src/trainingGain';

const measured: EstimateTraining.Result = {
  trainFiles: 12,
  trainBytes: 400_000,
  trainTokens: 100_000,
  tokenizer: 'base',
  parameters: 135e6,
  trainedParameters: 1.8e6,
  batchSize: 16,
  contextLength: 512,
  secondsPerStep: 2,
  source: 'measured',
  probeSteps: 3,
  probeBatch: 4,
};

test('an epoch is the training tokens in steps of batch × window, with the validation passes on top', () => {
  const e = epochEstimate(measured);
  assert.equal(e.tokensPerStep, 8192);
  assert.equal(e.stepsPerEpoch, 13); // ceil(100000 / 8192)
  const validation = 1 + VALIDATION_BATCHES / (3 * EVAL_EVERY);
  assert.ok(Math.abs(e.secondsPerEpoch - 13 * 2 * validation) < 1e-9);
  // A workspace smaller than one step still takes a step.
  assert.equal(epochEstimate({ ...measured, trainTokens: 10 }).stepsPerEpoch, 1);
  // Twice the budget buys twice the epochs.
  assert.ok(Math.abs(epochsIn(10, measured) - 2 * epochsIn(5, measured)) < 1e-9);
  assert.ok(Math.abs(epochsIn(1, measured) - 60 / e.secondsPerEpoch) < 1e-9);
});

test('epochs in words', () => {
  assert.equal(describeEpochs(0.354), '≈ 35% of an epoch');
  assert.equal(describeEpochs(0.001), '≈ 1% of an epoch');
  assert.equal(describeEpochs(2.44), '≈ 2.4 epochs');
  assert.equal(describeEpochs(123.4), '≈ 123 epochs');
  assert.equal(describeEpochs(Number.POSITIVE_INFINITY), '');
});

test('the estimate says whether it was measured or estimated from the size', () => {
  assert.equal(
    describeEstimate(measured),
    '≈ 27s per epoch: 13 steps of 16×512 tokens over 100,000 tokens in 12 training files; ' +
      'measured: the median of 3 probe steps of this configuration with 4 of 16 sequences, scaled',
  );
  assert.match(shortEstimate(measured), /^≈ 27s per epoch \(measured\)$/);
  assert.match(
    describeEstimate({ ...measured, probeSteps: 1, probeBatch: 16 }),
    /; measured: a probe step of this configuration$/,
  );
  const estimated = {
    ...measured,
    source: 'estimated' as const,
    probeBatch: undefined,
    tokenizer: 'approximate' as const,
  };
  assert.match(describeEstimate(estimated), /100,000 tokens \(approximately\)/);
  assert.match(describeEstimate(estimated), /estimated from 135M parameters \(a probe step would take too long\)$/);
  assert.match(shortEstimate(estimated), /\(estimated from its size\)$/);
});

test('the gain over the base: losses lower and rates higher are better', () => {
  const comparison: TrainingComparison = {
    base: { name: 'smol', valLoss: 2.5, bitsPerByte: 1.2, exactMatch: 0.1, editSimilarity: 0.5 },
    trained: { name: 'mine', valLoss: 2.0, bitsPerByte: 0.96, exactMatch: 0.25, editSimilarity: 0.45 },
    files: 3,
    filesDescription: 'the 3 files mine held out from training',
    samples: 30,
  };
  assert.deepEqual(
    gainRows(comparison).map((r) => [r.metric, r.base, r.trained, r.change, r.better]),
    [
      ['held-out loss', '2.500', '2.000', '-0.500 (-20%)', true],
      ['bits per byte', '1.200', '0.960', '-0.240 (-20%)', true],
      ['next-line exact match', '10.0%', '25.0%', '+15.0 points', true],
      ['next-line edit similarity', '50.0%', '45.0%', '-5.0 points', false],
    ],
  );
  assert.equal(describeGain(comparison), 'bits per byte 1.200 → 0.960 against the base smol (3 held-out files)');
  const noBits = { ...comparison, base: { ...comparison.base, bitsPerByte: undefined } };
  assert.equal(gainRows(noBits).length, 3);
  assert.match(describeGain(noBits), /^held-out loss 2.500 → 2.000/);
});
