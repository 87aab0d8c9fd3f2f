// Builds the graphs a training run needs: the training step (forward, loss, gradients, clipping and the AdamW
// update in one graph), the evaluation graph (loss only) and a gradients-only graph for checks. The trained
// parameters travel as ONE flat vector `parameters` (with `adam_m`, `adam_v`), sliced into named weights inside the
// graph: the optimizer then runs a dozen ops on one vector instead of a dozen per weight, and nothing is copied per
// step. Full fine-tuning trains every weight of any family; LoRA (Llama family) trains only the adapter, and the
// frozen base weights are separate graph inputs under their Hugging Face names, with no gradient and no state.
import { type Architecture, forwardOf, parameterShapesOf } from './architecture';
import { backward } from './autodiff';
import { Graph, type Value } from './graph';
import { type LoraSettings, attachLora, loraParameterShapes } from './lora';
import { type GptConfig, causalBias, isDecayed } from './model';
import { type ModelDescription, int } from './onnx';
import { type AdamWSettings, appendAdamW } from './optimizer';

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
  if (!lora) return parameterShapesOf(architecture);
  if (architecture.family !== 'llama') throw new Error(`LoRA is not available for ${architecture.family} models`);
  return loraParameterShapes(architecture.config, lora);
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
  /** int64 scalar, fed per step when LoRA dropout is on (resuming with the same seeds redraws the same masks). */
  dropoutSeed: 'dropout_seed',
  logits: 'logits',
};

/** Where each named weight lives in the flat parameter vector. */
export interface ParameterSlot {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

export function parameterLayout(t: Trainable): { slots: ParameterSlot[]; total: number } {
  let offset = 0;
  const slots = trainedParameterShapes(t).map(([name, shape]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const slot = { name, shape, offset, size };
    offset += size;
    return slot;
  });
  return { slots, total: offset };
}

export function packParameters(t: Trainable, weights: Map<string, Float32Array>): Float32Array {
  const { slots, total } = parameterLayout(t);
  const flat = new Float32Array(total);
  for (const s of slots) {
    const w = weights.get(s.name);
    if (!w || w.length !== s.size) throw new Error(`weight ${s.name}: expected ${s.size} values, got ${w?.length}`);
    flat.set(w, s.offset);
  }
  return flat;
}

/** Named views into a flat vector (no copy). */
export function unpackParameters(t: Trainable, flat: Float32Array): Map<string, Float32Array> {
  return new Map(parameterLayout(t).slots.map((s) => [s.name, flat.subarray(s.offset, s.offset + s.size)]));
}

function lossGraph(t: Trainable, shape: BatchShape, name: string) {
  const { architecture, lora } = trainingSpec(t);
  const g = new Graph(name);
  const { batch, time } = shape;
  const { slots, total } = parameterLayout(t);
  const tokens = g.input(names.inputIds, [batch, time], 'int64');
  const targets = g.input(names.targets, [batch, time], 'int64');
  const flat = g.input(names.parameters, [total]);
  const trained: Record<string, Value> = {};
  for (const s of slots) trained[s.name] = g.reshape(g.slice1d(flat, s.offset, s.offset + s.size), s.shape);
  let weights = trained;
  if (lora && architecture.family === 'llama') {
    const frozen: Record<string, Value> = {};
    for (const [n, dims] of frozenInputShapes(t)) frozen[n] = g.input(n, dims);
    const seed = lora.dropout > 0 ? g.input(names.dropoutSeed, [], 'int64') : undefined;
    weights = attachLora(g, architecture.config, lora, frozen, trained, seed);
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
  return { g, slots, total, flat, weights: trained, logits, loss, seed };
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
  const { g, slots, total, flat, weights, loss, seed } = built;
  const grads = backward(
    g,
    loss,
    slots.map((s) => weights[s.name]),
    seed(),
  );
  // One multiply by 1/N on the flat gradient turns the seed's scale into the mean loss's.
  const flatGradient = g.mul(
    g.concat(
      slots.map((s) => g.reshape(grads.get(weights[s.name].name)!, [-1])),
      0,
    ),
    g.scalar(1 / (shape.batch * shape.time)),
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
