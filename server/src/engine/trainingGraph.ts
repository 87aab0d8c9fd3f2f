// Builds the graphs a training run needs: the training step (forward, loss, gradients, clipping and the AdamW
// update in one graph), the evaluation graph (loss only) and a gradients-only graph for checks. The trained
// parameters travel as ONE flat vector `parameters` (with `adam_m`, `adam_v`), sliced into named weights inside the
// graph: the optimizer then runs a dozen ops on one vector instead of a dozen per weight, and nothing is copied per
// step. Full fine-tuning trains every weight of any family; LoRA (Llama family, GPT-2) trains only the adapter, and
// the frozen base weights are separate graph inputs under their Hugging Face names, with no gradient and no state.
import { type Architecture, forwardOf, parameterShapesOf } from './architecture';
import { backward } from './autodiff';
import { Graph, type Value } from './graph';
import { type LoraSettings, attachLora, loraParameterShapes } from './lora';
import { type GptConfig, causalBias, isDecayed } from './model';
import { type ModelDescription, int } from './onnx';
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

/** What a training graph trains: an architecture, fully, or through a LoRA adapter. */
export interface TrainingSpec {
  architecture: Architecture;
  lora?: LoraSettings;
}

/** A GPT-2 config alone means full training of that GPT-2. */
export type Trainable = GptConfig | TrainingSpec;

export function trainingSpec(t: Trainable): TrainingSpec {
  return 'architecture' in t ? t : { architecture: { family: 'gpt2', config: t } };
}

/** The trained parameters in flat-vector order: the model's own, or the LoRA adapter's in PEFT's names. */
export function trainedParameterShapes(t: Trainable): [string, number[]][] {
  const { architecture, lora } = trainingSpec(t);
  return lora ? loraParameterShapes(architecture, lora) : parameterShapesOf(architecture);
}

/** The frozen weights a LoRA graph takes as inputs (by Hugging Face name); none for full training. */
export function frozenInputShapes(t: Trainable): [string, number[]][] {
  const { architecture, lora } = trainingSpec(t);
  return lora ? parameterShapesOf(architecture) : [];
}

export interface BatchShape {
  batch: number;
  time: number;
}

export const names = {
  ...stepNames,
  inputIds: 'input_ids',
  targets: 'targets',
  gradient: (parameter: string) => `grad/${parameter}`,
  /** int64 scalar, fed per step when LoRA dropout is on (resuming with the same seeds redraws the same masks). */
  dropoutSeed: 'dropout_seed',
  logits: 'logits',
};

export type { ParameterSlot } from './flatParameters';

export function parameterLayout(t: Trainable): FlatLayout {
  return flatLayout(trainedParameterShapes(t));
}

export function packParameters(t: Trainable, weights: Map<string, Float32Array>): Float32Array {
  return packFlat(parameterLayout(t), weights);
}

/** Named views into a flat vector (no copy). */
export function unpackParameters(t: Trainable, flat: Float32Array): Map<string, Float32Array> {
  return unpackFlat(parameterLayout(t), flat);
}

function lossGraph(t: Trainable, shape: BatchShape, name: string) {
  const { architecture, lora } = trainingSpec(t);
  const g = new Graph(name);
  const { batch, time } = shape;
  const layout = parameterLayout(t);
  const { slots } = layout;
  const tokens = g.input(names.inputIds, [batch, time], 'int64');
  const targets = g.input(names.targets, [batch, time], 'int64');
  const flat = g.input(names.parameters, [layout.total]);
  const trained = splitWeights(g, flat, layout);
  let weights = trained;
  if (lora) {
    const frozen: Record<string, Value> = {};
    for (const [n, dims] of frozenInputShapes(t)) frozen[n] = g.input(n, dims);
    const seed = lora.dropout > 0 ? g.input(names.dropoutSeed, [], 'int64') : undefined;
    weights = attachLora(g, architecture, lora, frozen, trained, seed);
  }
  const positions = g.constant(
    BigInt64Array.from({ length: time }, (_, i) => BigInt(i)),
    [1, time],
  );
  // GPT-2 adds the mask to [batch, heads, time, time] scores; the Llama family wants it as [batch, 1, time, time].
  const bias = g.constant(causalBias(time), architecture.family === 'gpt2' ? [time, time] : [1, 1, time, time]);
  const logits = forwardOf(g, architecture, weights, tokens, positions, bias);
  const vocabSize = architecture.config.vocabSize;
  const rowsOfLogits = g.reshape(logits, [batch * time, vocabSize]);
  const labels = g.reshape(targets, [batch * time, 1]);
  const { loss, logProb } = crossEntropy(g, rowsOfLogits, labels);
  // Built only by the graphs that differentiate (the evaluation graph has no use for it).
  const seed = () => ({ value: rowsOfLogits, gradient: logitsGradient(g, logProb, labels) });
  return { g, layout, slots, flat, weights: trained, logits, loss, seed };
}

/** The mean cross-entropy of logits [N, V] against labels [N, 1], from log-probabilities over the last axis. */
function crossEntropy(g: Graph, logits: Value, labels: Value): { loss: Value; logProb: Value } {
  const [rowCount, vocabSize] = logits.shape as number[];
  const logProb = g.node('LogSoftmax', [logits], [[[rowCount, vocabSize], 'float32']], { axis: int(-1) })[0];
  const picked = g.node('GatherElements', [logProb, labels], [[[rowCount, 1], 'float32']], { axis: int(1) })[0];
  const meanPicked = g.node('ReduceMean', [picked], [[[], 'float32']], { keepdims: int(0) })[0];
  return { loss: g.neg(meanPicked), logProb };
}

/**
 * N times the mean loss's gradient with respect to the logits, softmax − onehot: the backward pass starts there
 * (and is scaled by 1/N at the end, on the gradients), so at [N, V] there are only the forward's log-probabilities
 * (over the last axis, onnxruntime's fast path), one Exp and one scatter-add of −1 at the labels; nothing of that
 * size is multiplied elementwise.
 */
function logitsGradient(g: Graph, logProb: Value, labels: Value): Value {
  const [rowCount, vocabSize] = logProb.shape as number[];
  const minusOne = g.constant(new Float32Array(rowCount).fill(-1), [rowCount, 1]);
  return g.node('ScatterElements', [g.exp(logProb), labels, minusOne], [[[rowCount, vocabSize], 'float32']], {
    axis: int(1),
    reduction: { kind: 'string', value: 'add' },
  })[0];
}

/** Per-position gradients from `seed` (N times the mean loss's), scaled back to the mean loss's. */
function gradientsOf(g: Graph, built: ReturnType<typeof lossGraph>, shape: BatchShape): Map<string, Value> {
  const { slots, weights, loss, seed } = built;
  const grads = backward(
    g,
    loss,
    slots.map((s) => weights[s.name]),
    seed(),
  );
  const scale = g.scalar(1 / (shape.batch * shape.time));
  return new Map(slots.map((s) => [s.name, g.mul(grads.get(weights[s.name].name)!, scale)]));
}

/** The graph of one optimizer step. */
export function buildTrainingStep(t: Trainable, shape: BatchShape, adamw: AdamWSettings): ModelDescription {
  const built = lossGraph(t, shape, 'modelwright_train_step');
  const { g, layout, slots, flat, weights, loss, seed } = built;
  const grads = backward(
    g,
    loss,
    slots.map((s) => weights[s.name]),
    seed(),
  );
  const gradient = g.concat(
    slots.map((s) => g.reshape(grads.get(weights[s.name].name)!, [-1])),
    0,
  );
  // The seed's scale times 1/N is the mean loss's; the optimizer folds the 1/N into its scalars.
  const gradientScale = 1 / (shape.batch * shape.time);
  appendFlatAdamW(g, layout, { flat, gradient, gradientScale, loss }, (s) => isDecayed(s.shape), adamw);
  return g.toModel();
}

/** Forward and loss only, for validation (and the logits too, if asked, for checks); LoRA dropout is off. */
export function buildEvaluation(t: Trainable, shape: BatchShape, options: { logits?: boolean } = {}): ModelDescription {
  const spec = trainingSpec(t);
  const evaluated = spec.lora ? { ...spec, lora: { ...spec.lora, dropout: 0 } } : spec;
  const { g, loss, logits } = lossGraph(evaluated, shape, 'modelwright_evaluate');
  g.output(loss, names.loss);
  if (options.logits) g.output(logits, names.logits);
  return g.toModel();
}

/** Loss and every weight's raw gradient (`grad/NAME`, no optimizer), for checking the engine against a reference. */
export function buildGradients(t: Trainable, shape: BatchShape): ModelDescription {
  const built = lossGraph(t, shape, 'modelwright_gradients');
  const grads = gradientsOf(built.g, built, shape);
  built.g.output(built.loss, names.loss);
  for (const s of built.slots) built.g.output(grads.get(s.name)!, names.gradient(s.name));
  return built.g.toModel();
}
