// Builds the two graphs a training run needs: the training step (forward, loss, gradients, clipping and the
// AdamW update in one graph) and the evaluation graph (forward and loss only). Parameters are graph inputs
// named `param/NAME`; the step's outputs `next/param/NAME`, `next/adam_m/NAME`, `next/adam_v/NAME` feed the next step.
import { backward } from './autodiff';
import { Graph, Value } from './graph';
import { GptConfig, causalBias, forward, isDecayed, parameterShapes } from './model';
import { ModelDescription } from './onnx';
import { AdamWSettings, appendAdamW } from './optimizer';

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
  param: (n: string) => `param/${n}`,
  moment: (n: string) => `adam_m/${n}`,
  variance: (n: string) => `adam_v/${n}`,
  next: (input: string) => `next/${input}`,
};

function lossGraph(c: GptConfig, shape: BatchShape, name: string) {
  const g = new Graph(name);
  const { batch, time } = shape;
  const tokens = g.input(names.inputIds, [batch, time], 'int64');
  const targets = g.input(names.targets, [batch, time], 'int64');
  const weights: Record<string, Value> = {};
  const params = parameterShapes(c).map(([n, s]) => {
    const value = g.input(names.param(n), s);
    weights[n] = value;
    return { name: n, shape: s, value };
  });
  const positions = g.constant(BigInt64Array.from({ length: time }, (_, i) => BigInt(i)), [1, time]);
  const bias = g.constant(causalBias(time), [time, time]);
  const logits = forward(g, c, weights, tokens, positions, bias);
  const vocab = c.vocabSize;
  const { loss } = g.crossEntropy(g.reshape(logits, [batch * time, vocab]), g.reshape(targets, [batch * time]));
  return { g, params, loss };
}

/** The graph of one optimizer step. */
export function buildTrainingStep(c: GptConfig, shape: BatchShape, adamw: AdamWSettings): ModelDescription {
  const { g, params, loss } = lossGraph(c, shape, 'modelwright_train_step');
  const grads = backward(g, loss, params.map((p) => p.value));
  const scalars = {
    learningRate: g.input(names.learningRate, []),
    momentScale: g.input(names.momentScale, []),
    varianceScale: g.input(names.varianceScale, []),
  };
  const optimizerParams = params.map((p) => ({
    name: p.name,
    value: p.value,
    gradient: grads.get(p.value.name)!,
    decayed: isDecayed(p.shape),
  }));
  const { gradNorm, updates } = appendAdamW(g, optimizerParams, adamw, scalars);
  g.output(loss, names.loss);
  g.output(gradNorm, names.gradNorm);
  for (const u of updates) {
    g.output(u.nextValue, names.next(names.param(u.name)));
    g.output(u.nextMoment, names.next(names.moment(u.name)));
    g.output(u.nextVariance, names.next(names.variance(u.name)));
  }
  return g.toModel();
}

/** Forward and loss only, for validation. */
export function buildEvaluation(c: GptConfig, shape: BatchShape): ModelDescription {
  const { g, loss } = lossGraph(c, shape, 'modelwright_evaluate');
  g.output(loss, names.loss);
  return g.toModel();
}

/** Loss and every parameter's raw gradient (no optimizer), for checking the engine against a reference. */
export function buildGradients(c: GptConfig, shape: BatchShape): ModelDescription {
  const { g, params, loss } = lossGraph(c, shape, 'modelwright_gradients');
  const grads = backward(g, loss, params.map((p) => p.value));
  g.output(loss, names.loss);
  for (const p of params) g.output(grads.get(p.value.name)!, `grad/${p.name}`);
  return g.toModel();
}
