// The graphs a classifier needs: one training step (forward with dropout, softmax cross-entropy, gradients,
// clipping and AdamW with weight decay in one graph), the evaluation graph (loss and logits, no dropout) and the
// inference graph exported as onnx/model.onnx (input_ids, attention_mask, token_type_ids → logits, HF weight names).
// Trained weights travel as one flat vector (engine/flatParameters.ts), as in trainingGraph.ts.
import { backward } from './autodiff';
import { type EncoderConfig, encoderForward, encoderParameterShapes } from './encoder';
import { Graph, type Value } from './graph';
import type { ModelDescription } from './onnx';
import {
  type FlatLayout,
  appendFlatAdamW,
  flatLayout,
  packFlat,
  splitWeights,
  stepNames,
  unpackFlat,
} from './flatParameters';
import type { AdamWSettings } from './optimizer';

export const encoderNames = {
  ...stepNames,
  inputIds: 'input_ids',
  attentionMask: 'attention_mask',
  tokenTypeIds: 'token_type_ids',
  labels: 'labels',
  logits: 'logits',
};

export function encoderLayout(c: EncoderConfig): FlatLayout {
  return flatLayout(encoderParameterShapes(c));
}

export function packEncoder(c: EncoderConfig, weights: Map<string, Float32Array>): Float32Array {
  return packFlat(encoderLayout(c), weights);
}

export function unpackEncoder(c: EncoderConfig, flat: Float32Array): Map<string, Float32Array> {
  return unpackFlat(encoderLayout(c), flat);
}

/** Decayed (L2-regularised) weights: matrices and embeddings; biases and LayerNorm are not, as in BERT. */
const isDecayed = (name: string, shape: number[]) => shape.length >= 2 && !name.includes('LayerNorm');

/**
 * The graph up to the loss: softmax cross-entropy, weighted per class when `classWeights` [labels] is given
 * (the weighted mean Σ w[y]·loss / Σ w[y]).
 */
function lossGraph(
  c: EncoderConfig,
  batch: number,
  time: number,
  name: string,
  options: { dropoutSeed?: number; classWeights?: Float32Array } = {},
) {
  const { dropoutSeed, classWeights } = options;
  if (classWeights && classWeights.length !== c.labels)
    throw new Error(`${classWeights.length} class weights for ${c.labels} labels`);
  const g = new Graph(name);
  const layout = encoderLayout(c);
  const { slots } = layout;
  const inputIds = g.input(encoderNames.inputIds, [batch, time], 'int64');
  const attentionMask = g.input(encoderNames.attentionMask, [batch, time], 'int64');
  const labels = g.input(encoderNames.labels, [batch], 'int64');
  const flat = g.input(encoderNames.parameters, [layout.total]);
  const weights = splitWeights(g, flat, layout);
  const tokenTypeIds = g.constant(new BigInt64Array(batch * time), [batch, time]);
  const logits = encoderForward(g, c, weights, { inputIds, attentionMask, tokenTypeIds }, { dropoutSeed });
  const weightValues = classWeights && g.constant(classWeights, [c.labels]);
  const { loss } = g.crossEntropy(logits, labels, weightValues);
  return { g, layout, slots, flat, weights, logits, loss };
}

/** One optimizer step on a [batch, time] batch. */
export function buildEncoderTrainingStep(
  c: EncoderConfig,
  batch: number,
  time: number,
  adamw: AdamWSettings,
  seed: number,
  classWeights?: Float32Array,
): ModelDescription {
  const { g, layout, slots, flat, weights, loss } = lossGraph(c, batch, time, 'modelwright_classifier_step', {
    dropoutSeed: seed,
    classWeights,
  });
  const grads = backward(
    g,
    loss,
    slots.map((s) => weights[s.name]),
  );
  const gradient = g.concat(
    slots.map((s) => g.reshape(grads.get(weights[s.name].name)!, [-1])),
    0,
  );
  appendFlatAdamW(g, layout, { flat, gradient, loss }, (s) => isDecayed(s.name, s.shape), adamw);
  return g.toModel();
}

/** Loss (weighted as in training) and logits without dropout, for validation. */
export function buildEncoderEvaluation(
  c: EncoderConfig,
  batch: number,
  time: number,
  classWeights?: Float32Array,
): ModelDescription {
  const { g, loss, logits } = lossGraph(c, batch, time, 'modelwright_classifier_evaluate', { classWeights });
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
export function buildEncoderGradients(
  c: EncoderConfig,
  batch: number,
  time: number,
  classWeights?: Float32Array,
): ModelDescription {
  const { g, slots, weights, loss, logits } = lossGraph(c, batch, time, 'modelwright_classifier_gradients', {
    classWeights,
  });
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
