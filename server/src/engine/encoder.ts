// A small BERT-style transformer encoder for text classification, in Hugging Face BertForSequenceClassification
// names and conventions (post-LayerNorm blocks, eps 1e-12, learned positions, token types, a tanh pooler over the
// first token, Linear weights stored [out, in]). One forward for the training graph and the exported ONNX model.
import { type Graph, type Value, concreteShape } from './graph';
import { linear } from './linear';
import { float, int } from './onnx';
import { gaussian } from './random';

export interface EncoderConfig {
  vocabSize: number;
  hiddenSize: number;
  layers: number;
  heads: number;
  intermediateSize: number;
  /** Longest input in tokens (max_position_embeddings). */
  maxPositions: number;
  labels: number;
  /** Dropout on embeddings, attention output, feed-forward output and the classifier input (training only). */
  hiddenDropout: number;
  /** Dropout on the attention probabilities (training only). */
  attentionDropout: number;
}

/** The size a workspace classifier starts from: small enough to train in a minute on one core. */
export const defaultEncoderConfig: Omit<EncoderConfig, 'vocabSize' | 'labels'> = {
  hiddenSize: 64,
  layers: 2,
  heads: 2,
  intermediateSize: 128,
  maxPositions: 64,
  hiddenDropout: 0.1,
  attentionDropout: 0.1,
};

const TYPE_VOCAB_SIZE = 2;
const LAYER_NORM_EPS = 1e-12;

/** Every weight in Hugging Face names, in a fixed order. */
export function encoderParameterShapes(c: EncoderConfig): [string, number[]][] {
  const d = c.hiddenSize;
  const shapes: [string, number[]][] = [
    ['bert.embeddings.word_embeddings.weight', [c.vocabSize, d]],
    ['bert.embeddings.position_embeddings.weight', [c.maxPositions, d]],
    ['bert.embeddings.token_type_embeddings.weight', [TYPE_VOCAB_SIZE, d]],
    ['bert.embeddings.LayerNorm.weight', [d]],
    ['bert.embeddings.LayerNorm.bias', [d]],
  ];
  for (let i = 0; i < c.layers; i++) {
    const p = `bert.encoder.layer.${i}`;
    for (const part of ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense'])
      shapes.push([`${p}.${part}.weight`, [d, d]], [`${p}.${part}.bias`, [d]]);
    shapes.push([`${p}.attention.output.LayerNorm.weight`, [d]], [`${p}.attention.output.LayerNorm.bias`, [d]]);
    shapes.push(
      [`${p}.intermediate.dense.weight`, [c.intermediateSize, d]],
      [`${p}.intermediate.dense.bias`, [c.intermediateSize]],
    );
    shapes.push([`${p}.output.dense.weight`, [d, c.intermediateSize]], [`${p}.output.dense.bias`, [d]]);
    shapes.push([`${p}.output.LayerNorm.weight`, [d]], [`${p}.output.LayerNorm.bias`, [d]]);
  }
  shapes.push(['bert.pooler.dense.weight', [d, d]], ['bert.pooler.dense.bias', [d]]);
  shapes.push(['classifier.weight', [c.labels, d]], ['classifier.bias', [c.labels]]);
  return shapes;
}

export function encoderParameterCount(c: EncoderConfig): number {
  return encoderParameterShapes(c).reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0);
}

/** BERT's initialisation: normal(0, 0.02) weights and embeddings, zero biases, LayerNorm weight 1. */
export function initialEncoderParameters(c: EncoderConfig, seed: number): Map<string, Float32Array> {
  const normal = gaussian(seed);
  const weights = new Map<string, Float32Array>();
  for (const [name, shape] of encoderParameterShapes(c)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name.includes('LayerNorm.weight')) data.fill(1);
    else if (!name.endsWith('.bias')) for (let i = 0; i < data.length; i++) data[i] = 0.02 * normal();
    weights.set(name, data);
  }
  return weights;
}

export interface EncoderInputs {
  inputIds: Value; // [batch, time] int64
  attentionMask: Value; // [batch, time] int64, 1 = token, 0 = padding
  tokenTypeIds: Value; // [batch, time] int64
}

/** Training-only settings: dropout seeds (each dropout site draws its own mask every run). */
export interface ForwardOptions {
  dropoutSeed?: number;
}

/** The logits [batch, labels] of BertForSequenceClassification. */
export function encoderForward(
  g: Graph,
  c: EncoderConfig,
  w: Record<string, Value>,
  inputs: EncoderInputs,
  options: ForwardOptions = {},
): Value {
  let site = 0;
  const dropout = (x: Value, p: number): Value => {
    if (options.dropoutSeed === undefined || p <= 0) return x;
    const shape = concreteShape(x);
    const seed = options.dropoutSeed * 1000 + site++;
    const [uniform] = g.node('RandomUniform', [], [[shape, 'float32']], {
      shape: { kind: 'ints', value: shape },
      seed: float(seed),
      dtype: int(1),
    });
    const [keep] = g.node('Less', [g.scalar(p), uniform], [[shape, 'bool']]);
    return g.mul(x, g.mul(g.cast(keep, 'float32'), g.scalar(1 / (1 - p))));
  };
  const dense = (x: Value, name: string) => linear(g, 'outIn', x, w[`${name}.weight`], w[`${name}.bias`]);
  const layerNorm = (x: Value, name: string) => g.layerNorm(x, w[`${name}.weight`], w[`${name}.bias`], LAYER_NORM_EPS);

  const words = g.gather(w['bert.embeddings.word_embeddings.weight'], inputs.inputIds);
  const types = g.gather(w['bert.embeddings.token_type_embeddings.weight'], inputs.tokenTypeIds);
  const positions = g.gather(w['bert.embeddings.position_embeddings.weight'], positionIds(g, c, inputs.inputIds));
  let x = dropout(layerNorm(g.add(g.add(words, types), positions), 'bert.embeddings.LayerNorm'), c.hiddenDropout);

  // Padding gets a large negative score before the softmax: [batch, 1, 1, time].
  const mask = g.unsqueeze(g.cast(inputs.attentionMask, 'float32'), [1, 2]);
  const maskBias = g.mul(g.sub(g.scalar(1), mask), g.scalar(-10000));
  const headSize = c.hiddenSize / c.heads;
  for (let i = 0; i < c.layers; i++) {
    const p = `bert.encoder.layer.${i}`;
    const heads = (v: Value, perm: number[]) => g.transpose(g.reshape(v, [0, 0, c.heads, headSize]), perm);
    const q = heads(dense(x, `${p}.attention.self.query`), [0, 2, 1, 3]); // [B, H, T, hs]
    const k = heads(dense(x, `${p}.attention.self.key`), [0, 2, 3, 1]); // [B, H, hs, T]
    const v = heads(dense(x, `${p}.attention.self.value`), [0, 2, 1, 3]);
    const scores = g.add(g.mul(g.matmul(q, k), g.scalar(1 / Math.sqrt(headSize))), maskBias);
    const probabilities = dropout(g.softmax(scores, -1), c.attentionDropout);
    const context = g.reshape(g.transpose(g.matmul(probabilities, v), [0, 2, 1, 3]), [0, 0, c.hiddenSize]);
    const attended = dropout(dense(context, `${p}.attention.output.dense`), c.hiddenDropout);
    x = layerNorm(g.add(attended, x), `${p}.attention.output.LayerNorm`);
    const hidden = g.gelu(dense(x, `${p}.intermediate.dense`));
    const out = dropout(dense(hidden, `${p}.output.dense`), c.hiddenDropout);
    x = layerNorm(g.add(out, x), `${p}.output.LayerNorm`);
  }
  // The pooler reads the first token ([CLS]): time-major, then row 0.
  const first = g.gather(g.transpose(x, [1, 0, 2]), g.constant(BigInt64Array.from([0n]), []));
  const pooled = g.tanh(dense(first, 'bert.pooler.dense'));
  return dense(dropout(pooled, c.hiddenDropout), 'classifier');
}

/** 0…time−1: a constant when the length is known (training), else the first `time` of 0…maxPositions−1. */
function positionIds(g: Graph, c: EncoderConfig, inputIds: Value): Value {
  const time = inputIds.shape[1];
  if (typeof time === 'number')
    return g.constant(
      BigInt64Array.from({ length: time }, (_, i) => BigInt(i)),
      [time],
    );
  const all = g.constant(
    BigInt64Array.from({ length: c.maxPositions }, (_, i) => BigInt(i)),
    [c.maxPositions],
  );
  const length = g.node('Shape', [inputIds], [[[1], 'int64']], { start: int(1), end: int(2) })[0];
  return g.node('Slice', [all, g.int64s([0]), length], [[[time], 'int64']])[0];
}

/** config.json in the layout transformers.js and Hugging Face read for BertForSequenceClassification. */
export function encoderConfigJson(c: EncoderConfig, labels: readonly string[], padTokenId: number): object {
  return {
    architectures: ['BertForSequenceClassification'],
    model_type: 'bert',
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    num_hidden_layers: c.layers,
    num_attention_heads: c.heads,
    intermediate_size: c.intermediateSize,
    hidden_act: 'gelu_new', // the tanh form, as the ONNX graph computes it
    hidden_dropout_prob: c.hiddenDropout,
    attention_probs_dropout_prob: c.attentionDropout,
    max_position_embeddings: c.maxPositions,
    type_vocab_size: TYPE_VOCAB_SIZE,
    layer_norm_eps: LAYER_NORM_EPS,
    initializer_range: 0.02,
    pad_token_id: padTokenId,
    position_embedding_type: 'absolute',
    problem_type: 'single_label_classification',
    id2label: Object.fromEntries(labels.map((label, i) => [String(i), label])),
    label2id: Object.fromEntries(labels.map((label, i) => [label, i])),
  };
}

/** Reads an EncoderConfig and the labels back from a classifier's config.json. */
export function encoderConfigFrom(json: Record<string, unknown>): { config: EncoderConfig; labels: string[] } {
  const number = (key: string) => {
    const v = json[key];
    if (typeof v !== 'number') throw new Error(`config.json: ${key} must be a number`);
    return v;
  };
  const id2label = json.id2label as Record<string, string> | undefined;
  if (!id2label || typeof id2label !== 'object') throw new Error('config.json has no id2label');
  const labels = Object.keys(id2label)
    .sort((a, b) => Number(a) - Number(b))
    .map((k) => String(id2label[k]));
  return {
    labels,
    config: {
      vocabSize: number('vocab_size'),
      hiddenSize: number('hidden_size'),
      layers: number('num_hidden_layers'),
      heads: number('num_attention_heads'),
      intermediateSize: number('intermediate_size'),
      maxPositions: number('max_position_embeddings'),
      labels: labels.length,
      hiddenDropout: typeof json.hidden_dropout_prob === 'number' ? json.hidden_dropout_prob : 0.1,
      attentionDropout: typeof json.attention_probs_dropout_prob === 'number' ? json.attention_probs_dropout_prob : 0.1,
    },
  };
}
