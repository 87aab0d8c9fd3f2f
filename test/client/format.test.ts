// Tests the client's formatting of sizes, counts, durations, training progress lines, metrics and model
// descriptions (client/src/format.ts), as the status bar, the tree and the notifications show them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ModelSummary, TrainingFigures } from '../../server/src/protocol';
import {
  describeModel,
  describeTraining,
  explanationDocument,
  formatBytes,
  formatCount,
  formatDuration,
  formatTimestamp,
  metricRows,
  trainingFraction,
} from '../../client/src/format';

const figures = (over: Partial<TrainingFigures> = {}): TrainingFigures => ({
  name: 'm',
  phase: 'training',
  message: '',
  step: 120,
  totalSteps: 600,
  elapsedSeconds: 30,
  ...over,
});

test('sizes and counts read like a person would write them', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(4_600_000), '4.6 MB');
  assert.equal(formatBytes(123_000_000), '123 MB');
  assert.equal(formatBytes(-1), '?');
  assert.equal(formatCount(1_100_000), '1.1M');
  assert.equal(formatCount(950_000), '950K');
  assert.equal(formatCount(2_000_000), '2M');
  assert.equal(formatCount(1234.4), '1.2K');
  assert.equal(formatCount(42), '42');
});

test('durations in seconds, minutes and hours', () => {
  assert.equal(formatDuration(45.4), '45s');
  assert.equal(formatDuration(185), '3m 05s');
  assert.equal(formatDuration(3720), '1h 02m');
  assert.equal(formatDuration(NaN), '?');
});

test('a training line names step, losses, speed and time left', () => {
  assert.equal(
    describeTraining(figures({ loss: 3.21449, valLoss: 3.5, tokensPerSecond: 1234, etaSeconds: 130 })),
    'step 120/600 · loss 3.214 · val 3.500 · 1.2K tok/s · 2m 10s left',
  );
  assert.equal(describeTraining(figures({ phase: 'preparing', message: 'reading 42 files' })), 'reading 42 files');
  assert.equal(describeTraining(figures({ phase: 'saving', message: '' })), 'saving');
});

test('training fraction is bounded and complete when done', () => {
  assert.equal(trainingFraction(figures()), 0.2);
  assert.equal(trainingFraction(figures({ totalSteps: 0 })), 0);
  assert.equal(trainingFraction(figures({ step: 700 })), 1);
  assert.equal(trainingFraction(figures({ phase: 'done', step: 10 })), 1);
});

test('metric rows and model descriptions', () => {
  const rows = metricRows({
    valLoss: 2.3456,
    perplexity: 10.44,
    exactMatch: 0.125,
    editSimilarity: 0.5,
    latencyMs: { p50: 12.4, p95: 30.6 },
    samples: 40,
    at: 'not a date',
  });
  assert.deepEqual(rows.slice(0, 6), [
    ['validation loss', '2.346'],
    ['perplexity', '10.4'],
    ['exact match', '12.5%'],
    ['edit similarity', '50.0%'],
    ['latency p50 / p95', '12 / 31 ms'],
    ['samples', '40'],
  ]);
  assert.deepEqual(rows[6], ['evaluated', 'not a date']);
  assert.match(formatTimestamp('2026-11-28T14:05:00'), /^2026-11-28 14:05$/);

  const model: ModelSummary = {
    name: 'default',
    path: '/x',
    kind: 'causal-lm',
    bundled: true,
    preset: 'default',
    parameters: 1_900_000,
    sizeBytes: 7_600_000,
    status: 'active',
    roles: ['completion', 'explanation'],
  };
  assert.equal(describeModel(model), '1.9M params · 7.6 MB · default · bundled · active: completion, explanation');
  assert.equal(
    describeModel({ ...model, bundled: false, preset: undefined, parameters: undefined, status: 'idle', roles: [] }),
    '7.6 MB',
  );
});

test('the explanation document waits, streams, then names the model', () => {
  assert.equal(explanationDocument('a.ts, line 3', ''), '_Explaining a.ts, line 3…_\n');
  assert.equal(explanationDocument('a.ts, line 3', '**a.ts**\n\npart'), '**a.ts**\n\npart');
  assert.equal(
    explanationDocument('a.ts, line 3', 'part', { text: 'whole text', model: 'default' }),
    'whole text\n\n---\n\n_Explained by default._\n',
  );
  assert.match(explanationDocument('a.ts, line 3', 'streamed only', { text: '', model: 'm' }), /^streamed only/);
});
