// The graphs a classifier needs: one training step (forward with dropout, softmax cross-entropy, gradients,
// clipping and AdamW with weight decay in one graph), the evaluation graph (loss and logits, no dropout) and the
// inference graph exported as onnx/model.onnx (input_ids, attention_mask, token_type_ids → logits, HF weight names).
// Trained weights travel as one flat vector, as in trainingGraph.ts.
import { backward } from './autodiff';
import { type EncoderConfig, encoderForward, encoderParameterShapes } from './encoder';
import { Graph, type Value } from './graph';
import type { ModelDescription } from './onnx';
import { type AdamWSettings, appendAdamW } from './optimizer';

export const encoderNames = {
  inputIds: 'input_ids',
  attentionMask: 'attention_mask',
  tokenTypeIds: 'token_type_ids',
  labels: 'labels',
  loss: 'loss',
  logits: 'logits',
  gradNorm: 'grad_norm',
  learningRate: 'learning_rate',
  momentScale: 'moment_scale',
  varianceScale: 'variance_scale',
  parameters: 'parameters',
  moments: 'adam_m',
  variances: 'adam_v',
  next: (input: string) => `next/${input}`,
};

export interface EncoderSlot {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

export function encoderLayout(c: EncoderConfig): { slots: EncoderSlot[]; total: number } {
  let offset = 0;
  const slots = encoderParameterShapes(c).map(([name, shape]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const slot = { name, shape, offset, size };
    offset += size;
    return slot;
  });
  return { slots, total: offset };
}

export function packEncoder(c: EncoderConfig, weights: Map<string, Float32Array>): Float32Array {
  const { slots, total } = encoderLayout(c);
  const flat = new Float32Array(total);
  for (const s of slots) {
    const w = weights.get(s.name);
    if (!w || w.length !== s.size) throw new Error(`weight ${s.name}: expected ${s.size} values, got ${w?.length}`);
    flat.set(w, s.offset);
  }
  return flat;
}

export function unpackEncoder(c: EncoderConfig, flat: Float32Array): Map<string, Float32Array> {
  return new Map(encoderLayout(c).slots.map((s) => [s.name, flat.subarray(s.offset, s.offset + s.size)]));
}

/** Decayed (L2-regularised) weights: matrices and embeddings; biases and LayerNorm are not, as in BERT. */
const isDecayed = (name: string, shape: number[]) => shape.length >= 2 && !name.includes('LayerNorm');

function lossGraph(c: EncoderConfig, batch: number, time: number, name: string, dropoutSeed?: number) {
  const g = new Graph(name);
  const { slots, total } = encoderLayout(c);
  const inputIds = g.input(encoderNames.inputIds, [batch, time], 'int64');
  const attentionMask = g.input(encoderNames.attentionMask, [batch, time], 'int64');
  const labels = g.input(encoderNames.labels, [batch], 'int64');
  const flat = g.input(encoderNames.parameters, [total]);
  const weights: Record<string, Value> = {};
  for (const s of slots) weights[s.name] = g.reshape(g.slice1d(flat, s.offset, s.offset + s.size), s.shape);
  const tokenTypeIds = g.constant(new BigInt64Array(batch * time), [batch, time]);
  const logits = encoderForward(g, c, weights, { inputIds, attentionMask, tokenTypeIds }, { dropoutSeed });
  const { loss } = g.crossEntropy(logits, labels);
  return { g, slots, total, flat, weights, logits, loss };
}

/** One optimizer step on a [batch, time] batch. */
export function buildEncoderTrainingStep(
  c: EncoderConfig,
  batch: number,
  time: number,
  adamw: AdamWSettings,
  seed: number,
): ModelDescription {
  const { g, slots, total, flat, weights, loss } = lossGraph(c, batch, time, 'modelwright_classifier_step', seed);
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
  for (const s of slots) if (isDecayed(s.name, s.shape)) decayMask.fill(1, s.offset, s.offset + s.size);
  const scalars = {
    learningRate: g.input(encoderNames.learningRate, []),
    momentScale: g.input(encoderNames.momentScale, []),
    varianceScale: g.input(encoderNames.varianceScale, []),
  };
  const moment = g.input(encoderNames.moments, [total]);
  const variance = g.input(encoderNames.variances, [total]);
  const step = appendAdamW(
    g,
    { value: flat, gradient: flatGradient, moment, variance, decayMask: g.constant(decayMask) },
    adamw,
    scalars,
  );
  g.output(loss, encoderNames.loss);
  g.output(step.gradNorm, encoderNames.gradNorm);
  g.output(step.nextValue, encoderNames.next(encoderNames.parameters));
  g.output(step.nextMoment, encoderNames.next(encoderNames.moments));
  g.output(step.nextVariance, encoderNames.next(encoderNames.variances));
  return g.toModel();
}

/** Loss and logits without dropout, for validation. */
export function buildEncoderEvaluation(c: EncoderConfig, batch: number, time: number): ModelDescription {
  const { g, loss, logits } = lossGraph(c, batch, time, 'modelwright_classifier_evaluate');
  g.output(loss, encoderNames.loss);
  g.output(logits, encoderNames.logits);
  return g.toModel();
}

/** The exported model: any batch and length, weights as initializers under their Hugging Face names. */
export function buildEncoderInference(c: EncoderConfig, weights: Map<string, Float32Array>): ModelDescription {
  const g = new Graph('modelwright_classifier');
  const inputIds = g.input(encoderNames.inputIds, ['batch_size', 'sequence_length'], 'int64');
  const attentionMask = g.input(encoderNames.attentionMask, ['batch_size', 'sequence_length'], 'int64');
  const tokenTypeIds = g.input(encoderNames.tokenTypeIds, ['batch_size', 'sequence_length'], 'int64');
  const w: Record<string, Value> = {};
  for (const [name, shape] of encoderParameterShapes(c)) {
    const data = weights.get(name);
    if (!data) throw new Error(`missing weight ${name}`);
    w[name] = g.initializer(name, { type: 'float32', dims: shape, data });
  }
  const logits = encoderForward(g, c, w, { inputIds, attentionMask, tokenTypeIds });
  g.output(logits, encoderNames.logits);
  return g.toModel();
}

/** Loss and every weight's raw gradient (`grad/NAME`), without dropout, for checking against a reference. */
export function buildEncoderGradients(c: EncoderConfig, batch: number, time: number): ModelDescription {
  const { g, slots, weights, loss, logits } = lossGraph(c, batch, time, 'modelwright_classifier_gradients');
  const grads = backward(
    g,
    loss,
    slots.map((s) => weights[s.name]),
  );
  g.output(loss, encoderNames.loss);
  g.output(logits, encoderNames.logits);
  for (const s of slots) g.output(grads.get(weights[s.name].name)!, `grad/${s.name}`);
  return g.toModel();
}
