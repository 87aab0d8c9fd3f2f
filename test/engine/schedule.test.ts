// The learning-rate schedule (warmup and cosine endpoints) and an end-to-end check of the whole training step:
// on a tiny GPT and one fixed batch, twenty steps of the step graph (forward, backward, clipping, AdamW, fed
// back into itself) must overfit, and the evaluation graph must agree with the loss the step reports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type GptConfig, initialParameters } from '../../server/src/engine/model';
import { type Schedule, defaultAdamW, learningRateAt, stepScalarValues } from '../../server/src/engine/optimizer';
import {
  buildEvaluation,
  buildTrainingStep,
  names,
  packParameters,
  unpackParameters,
} from '../../server/src/engine/trainingGraph';
import type { Feeds } from '../../server/src/runtime/onnxSession';
import { f32, i64, open, run, uniform } from '../helpers/engineHarness';

const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

test('learning rate warms up linearly to the peak', () => {
  const s: Schedule = { learningRate: 1e-3, warmupSteps: 10, totalSteps: 110, minLearningRateRatio: 0.1 };
  close(learningRateAt(s, 0), 1e-4, 'first step');
  close(learningRateAt(s, 4), 5e-4, 'mid warmup');
  close(learningRateAt(s, 9), 1e-3, 'last warmup step');
  for (let t = 1; t < 10; t++) assert.ok(learningRateAt(s, t) > learningRateAt(s, t - 1), `warmup rises at ${t}`);
});

test('learning rate decays by a cosine to the floor and stays there', () => {
  const s: Schedule = { learningRate: 1e-3, warmupSteps: 10, totalSteps: 110, minLearningRateRatio: 0.1 };
  close(learningRateAt(s, 10), 1e-3, 'peak after warmup');
  close(learningRateAt(s, 60), (1e-3 + 1e-4) / 2, 'half way');
  close(learningRateAt(s, 35), 1e-4 + 0.5 * 9e-4 * (1 + Math.cos(Math.PI / 4)), 'quarter way');
  close(learningRateAt(s, 110), 1e-4, 'end');
  close(learningRateAt(s, 1000), 1e-4, 'past the end');
  for (let t = 11; t <= 110; t++)
    assert.ok(learningRateAt(s, t) <= learningRateAt(s, t - 1), `decay never rises at ${t}`);
});

test('learning rate without warmup, and with totalSteps not beyond warmup', () => {
  const none: Schedule = { learningRate: 2e-3, warmupSteps: 0, totalSteps: 100, minLearningRateRatio: 0 };
  close(learningRateAt(none, 0), 2e-3, 'starts at the peak');
  close(learningRateAt(none, 100), 0, 'decays to zero');
  const short: Schedule = { learningRate: 2e-3, warmupSteps: 5, totalSteps: 5, minLearningRateRatio: 0.5 };
  close(learningRateAt(short, 4), 2e-3, 'warmup still reaches the peak');
  close(learningRateAt(short, 6), 1e-3, 'then the floor');
  for (let t = 0; t < 20; t++) assert.ok(Number.isFinite(learningRateAt(short, t)));
});

test('bias corrections for Adam step numbers', () => {
  const s = stepScalarValues(defaultAdamW, 1, 0.5);
  close(s.learningRate, 0.5, 'learning rate');
  close(s.momentScale, 1 / (1 - defaultAdamW.beta1), 'moment scale at t=1');
  close(s.varianceScale, 1 / Math.sqrt(1 - defaultAdamW.beta2), 'variance scale at t=1');
  const late = stepScalarValues(defaultAdamW, 10_000, 0.5);
  close(late.momentScale, 1, 'moment scale converges to 1');
  close(late.varianceScale, 1, 'variance scale converges to 1');
});

const config: GptConfig = { vocabSize: 17, contextLength: 8, layers: 2, heads: 2, embedding: 16 };
const shape = { batch: 2, time: 8 };

function batch() {
  const r = uniform(42);
  const ids = Array.from({ length: shape.batch * (shape.time + 1) }, () => Math.floor(r() * config.vocabSize));
  const rows = [0, 1].map((b) => ids.slice(b * (shape.time + 1), (b + 1) * (shape.time + 1)));
  return {
    [names.inputIds]: i64(
      rows.flatMap((row) => row.slice(0, -1)),
      [shape.batch, shape.time],
    ),
    [names.targets]: i64(
      rows.flatMap((row) => row.slice(1)),
      [shape.batch, shape.time],
    ),
  };
}

const stateInputs = [names.parameters, names.moments, names.variances];

function initialState(): Feeds {
  const flat = packParameters(config, initialParameters(config, 7));
  return {
    [names.parameters]: f32(flat, [flat.length]),
    [names.moments]: f32(new Float32Array(flat.length), [flat.length]),
    [names.variances]: f32(new Float32Array(flat.length), [flat.length]),
  };
}

function scalars(step: number, learningRate: number): Feeds {
  const s = stepScalarValues(defaultAdamW, step, learningRate);
  return {
    [names.learningRate]: f32([s.learningRate], []),
    [names.momentScale]: f32([s.momentScale], []),
    [names.varianceScale]: f32([s.varianceScale], []),
  };
}

test('training steps overfit a fixed batch, and evaluation agrees with the step loss', async () => {
  const [train, evaluate] = await Promise.all([
    open(buildTrainingStep(config, shape, defaultAdamW)),
    open(buildEvaluation(config, shape)),
  ]);
  const data = batch();
  const schedule: Schedule = { learningRate: 3e-2, warmupSteps: 3, totalSteps: 20, minLearningRateRatio: 0.1 };
  let state = initialState();
  const losses: number[] = [];
  for (let t = 0; t < 20; t++) {
    const out = await run(train, { ...state, ...data, ...scalars(t + 1, learningRateAt(schedule, t)) });
    losses.push(out[names.loss][0]);
    assert.ok(Number.isFinite(out[names.gradNorm][0]) && out[names.gradNorm][0] > 0, `grad norm at step ${t}`);
    const next: Feeds = {};
    for (const input of stateInputs) next[input] = f32(out[names.next(input)], [out[names.next(input)].length]);
    if (t === 9) {
      // The loss the evaluation graph gives for the updated parameters is the loss the next step reports.
      const evaluated = (await run(evaluate, { [names.parameters]: next[names.parameters], ...data }))[names.loss][0];
      const stepTen = await run(train, { ...next, ...data, ...scalars(t + 2, learningRateAt(schedule, t + 1)) });
      assert.ok(
        Math.abs(evaluated - stepTen[names.loss][0]) <= 1e-5,
        `evaluation ${evaluated} vs step ${stepTen[names.loss][0]}`,
      );
    }
    state = next;
  }
  await Promise.all([train.release(), evaluate.release()]);

  assert.ok(Math.abs(losses[0] - Math.log(config.vocabSize)) < 0.1, `initial loss ${losses[0]} should be near ln V`);
  assert.ok(
    losses[19] < 0.3 * losses[0],
    `loss should fall below 30% of its start: ${losses.map((l) => l.toFixed(3)).join(' ')}`,
  );
  for (let t = 1; t < 20; t++)
    assert.ok(losses[t] < losses[t - 1] + 0.05, `loss jumped at step ${t}: ${losses.join(' ')}`);
});

test('a step with learning rate 0 leaves the parameters unchanged but updates the moments', async () => {
  const train = await open(buildTrainingStep(config, shape, defaultAdamW));
  const state = initialState();
  const out = await run(train, { ...state, ...batch(), ...scalars(1, 0) });
  await train.release();
  assert.deepEqual(out[names.next(names.parameters)], state[names.parameters].data, 'parameters moved');
  const moment = unpackParameters(config, out[names.next(names.moments)]).get('transformer.wte.weight')!;
  assert.ok(
    moment.some((v) => v !== 0),
    'moments should take the gradient',
  );
});
