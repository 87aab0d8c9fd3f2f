// Tests the Training panel's chart data (client/src/chartData.ts): curves reduced to a bounded size that keep
// their ends and every validation point, live appends, and defensive reading of model cards.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TrainingFigures } from '../../server/src/protocol';
import { appendFigures, curveFromCard, evaluationsFromCard, reduceCurve } from '../../client/src/chartData';
import type { LossPoint } from '../../client/src/webviewProtocol';

const curve = (n: number, valEvery = 100): LossPoint[] =>
  Array.from({ length: n }, (_, i) => ({
    step: i + 1,
    loss: 10 - i / n,
    valLoss: (i + 1) % valEvery === 0 ? 9 - i / n : undefined,
  }));

test('short curves pass through unchanged', () => {
  const c = curve(50, 1000);
  assert.deepEqual(
    reduceCurve(c, 400),
    c.map((p) => ({ step: p.step, loss: p.loss })),
  );
});

test('long curves shrink to the bound, keep first and last steps, and every validation point', () => {
  const c = curve(10_000);
  const reduced = reduceCurve(c, 400);
  const training = reduced.filter((p) => p.loss !== undefined);
  assert.ok(training.length <= 400, `${training.length} points`);
  assert.ok(training.length >= 390);
  assert.deepEqual(reduced[0], { step: 1, loss: 10 });
  assert.equal(reduced[reduced.length - 1].step, 10_000);
  assert.equal(reduced.filter((p) => p.valLoss !== undefined).length, 100);
  // Steps ascend, and bucket means stay within the curve's range.
  for (let i = 1; i < reduced.length; i++) assert.ok(reduced[i].step > reduced[i - 1].step);
  for (const p of training) assert.ok((p.loss as number) <= 10 && (p.loss as number) >= 9);
});

test('live figures append, merge on the same step, and restart on a new training', () => {
  const live: LossPoint[] = [];
  const f = (step: number, loss?: number, valLoss?: number): TrainingFigures => ({
    name: 'm',
    phase: 'training',
    message: '',
    step,
    totalSteps: 10,
    loss,
    valLoss,
    elapsedSeconds: step,
  });
  appendFigures(live, f(1, 5));
  appendFigures(live, f(2, 4.5));
  appendFigures(live, f(2, undefined, 4.8));
  appendFigures(live, { ...f(3), phase: 'saving' });
  assert.deepEqual(live, [
    { step: 1, loss: 5, valLoss: undefined },
    { step: 2, loss: 4.5, valLoss: 4.8 },
  ]);
  appendFigures(live, f(1, 6));
  assert.deepEqual(live, [{ step: 1, loss: 6, valLoss: undefined }]);
});

test('model cards are read defensively', () => {
  const card = {
    curve: [{ step: 1, loss: 5 }, { step: 2, loss: 'x' }, null, { step: 3, valLoss: 4 }, { loss: 2 }],
    evaluations: [
      {
        at: '2026-11-28T10:00:00Z',
        valLoss: 3,
        perplexity: 20,
        exactMatch: 0.1,
        editSimilarity: 0.4,
        latencyMs: { p50: 10, p95: 20 },
        samples: 30,
      },
      { valLoss: 'bad' },
    ],
  };
  assert.deepEqual(curveFromCard(card), [
    { step: 1, loss: 5, valLoss: undefined },
    { step: 3, loss: undefined, valLoss: 4 },
  ]);
  const evaluations = evaluationsFromCard('m', card);
  assert.equal(evaluations.length, 1);
  assert.deepEqual(evaluations[0].metrics.latencyMs, { p50: 10, p95: 20 });
  assert.deepEqual(curveFromCard({}), []);
  assert.deepEqual(evaluationsFromCard('m', { evaluations: 'nope' }), []);
});
