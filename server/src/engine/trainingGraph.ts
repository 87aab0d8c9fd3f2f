// Builds the graphs a training run needs: the training step (forward, loss, gradients, clipping and the AdamW
// update in one graph), the evaluation graph (loss only) and a gradients-only graph for checks. All parameters
// travel as ONE flat vector `parameters` (with `adam_m`, `adam_v`), sliced into named weights inside the graph:
// the optimizer then runs a dozen ops on one vector instead of a dozen per weight, and nothing is copied per step.
import { backward } from './autodiff';
import { Graph, type Value } from './graph';
import { type GptConfig, causalBias, forward, isDecayed, parameterShapes } from './model';
import type { ModelDescription } from './onnx';
import { type AdamWSettings, appendAdamW } from './optimizer';

export interface BatchShape {
  batch: number;
  time: number;
}

export const names = {
  inputIds: 'input_ids',
  targets: 'targets',
  loss: 'loss',
  gradNorm: 'grad_norm',
  learningRate: 'learning_rate',
  momentScale: 'moment_scale',
  varianceScale: 'variance_scale',
  parameters: 'parameters',
  moments: 'adam_m',
  variances: 'adam_v',
  next: (input: string) => `next/${input}`,
  gradient: (parameter: string) => `grad/${parameter}`,
};

/** Where each named weight lives in the flat parameter vector. */
export interface ParameterSlot {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

export function parameterLayout(c: GptConfig): { slots: ParameterSlot[]; total: number } {
  let offset = 0;
  const slots = parameterShapes(c).map(([name, shape]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const slot = { name, shape, offset, size };
    offset += size;
    return slot;
  });
  return { slots, total: offset };
}

export function packParameters(c: GptConfig, weights: Map<string, Float32Array>): Float32Array {
  const { slots, total } = parameterLayout(c);
  const flat = new Float32Array(total);
  for (const s of slots) {
    const w = weights.get(s.name);
    if (!w || w.length !== s.size) throw new Error(`weight ${s.name}: expected ${s.size} values, got ${w?.length}`);
    flat.set(w, s.offset);
  }
  return flat;
}

/** Named views into a flat vector (no copy). */
export function unpackParameters(c: GptConfig, flat: Float32Array): Map<string, Float32Array> {
  return new Map(parameterLayout(c).slots.map((s) => [s.name, flat.subarray(s.offset, s.offset + s.size)]));
}

function lossGraph(c: GptConfig, shape: BatchShape, name: string) {
  const g = new Graph(name);
  const { batch, time } = shape;
  const { slots, total } = parameterLayout(c);
  const tokens = g.input(names.inputIds, [batch, time], 'int64');
  const targets = g.input(names.targets, [batch, time], 'int64');
  const flat = g.input(names.parameters, [total]);
  const weights: Record<string, Value> = {};
  for (const s of slots) weights[s.name] = g.reshape(g.slice1d(flat, s.offset, s.offset + s.size), s.shape);
  const positions = g.constant(
    BigInt64Array.from({ length: time }, (_, i) => BigInt(i)),
    [1, time],
  );
  const bias = g.constant(causalBias(time), [time, time]);
  const logits = forward(g, c, weights, tokens, positions, bias);
  const { loss } = g.crossEntropy(g.reshape(logits, [batch * time, c.vocabSize]), g.reshape(targets, [batch * time]));
  return { g, slots, total, flat, weights, loss };
}

/** The graph of one optimizer step. */
export function buildTrainingStep(c: GptConfig, shape: BatchShape, adamw: AdamWSettings): ModelDescription {
  const { g, slots, total, flat, weights, loss } = lossGraph(c, shape, 'modelwright_train_step');
  const grads = backward(
    g,
    loss,
    slots.map((s) => weights[s.name]),
  );
  const flatGradient = g.concat(
    slots.map((s) => g.reshape(grads.get(weights[s.name].name)!, [-1])),
    0,
  );
  const decayMask = new Float32Array(total);
  for (const s of slots) if (isDecayed(s.shape)) decayMask.fill(1, s.offset, s.offset + s.size);
  const scalars = {
    learningRate: g.input(names.learningRate, []),
    momentScale: g.input(names.momentScale, []),
    varianceScale: g.input(names.varianceScale, []),
  };
  const moment = g.input(names.moments, [total]);
  const variance = g.input(names.variances, [total]);
  const step = appendAdamW(
    g,
    { value: flat, gradient: flatGradient, moment, variance, decayMask: g.constant(decayMask) },
    adamw,
    scalars,
  );
  g.output(loss, names.loss);
  g.output(step.gradNorm, names.gradNorm);
  g.output(step.nextValue, names.next(names.parameters));
  g.output(step.nextMoment, names.next(names.moments));
  g.output(step.nextVariance, names.next(names.variances));
  return g.toModel();
}

/** Forward and loss only, for validation. */
export function buildEvaluation(c: GptConfig, shape: BatchShape): ModelDescription {
  const { g, loss } = lossGraph(c, shape, 'modelwright_evaluate');
  g.output(loss, names.loss);
  return g.toModel();
}

/** Loss and every weight's raw gradient (`grad/NAME`, no optimizer), for checking the engine against a reference. */
export function buildGradients(c: GptConfig, shape: BatchShape): ModelDescription {
  const { g, slots, weights, loss } = lossGraph(c, shape, 'modelwright_gradients');
  const grads = backward(
    g,
    loss,
    slots.map((s) => weights[s.name]),
  );
  g.output(loss, names.loss);
  for (const s of slots) g.output(grads.get(weights[s.name].name)!, names.gradient(s.name));
  return g.toModel();
}
