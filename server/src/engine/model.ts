// The GPT model, defined once: GPT-2's architecture (pre-LayerNorm blocks, tanh GELU MLP, learned positions,
// biases in every linear layer, LM head tied to the token embedding) as ONNX ops with the Graph builder. Training
// graphs (blocks run on chunks of a few sequences) and KV-cache inference graphs are both built from `forward`.
import { attendAfterPast } from './causalAttention';
import type { Graph, Value } from './graph';
import { linear } from './linear';
import { type DataType, type Dim, int } from './onnx';
import { gaussian } from './random';

export interface GptConfig {
  vocabSize: number;
  contextLength: number; // n_positions
  layers: number; // n_layer
  heads: number; // n_head
  embedding: number; // n_embd
}

export const presets = {
  tiny: { contextLength: 256, layers: 4, heads: 4, embedding: 128, vocabSize: 2048 }, // ≈ 1.1M parameters
  default: { contextLength: 256, layers: 4, heads: 4, embedding: 160, vocabSize: 4096 }, // ≈ 1.9M, the shipped model
  small: { contextLength: 512, layers: 6, heads: 8, embedding: 256, vocabSize: 8192 }, // ≈ 6.9M
} satisfies Record<string, GptConfig>;
export type PresetName = keyof typeof presets;

/** Parameter names and shapes in Hugging Face GPT-2 naming and order (Conv1D weights are [in, out]). */
export function parameterShapes(c: GptConfig): [string, number[]][] {
  const d = c.embedding;
  const shapes: [string, number[]][] = [
    ['transformer.wte.weight', [c.vocabSize, d]],
    ['transformer.wpe.weight', [c.contextLength, d]],
  ];
  for (let i = 0; i < c.layers; i++) {
    const h = `transformer.h.${i}`;
    shapes.push(
      [`${h}.ln_1.weight`, [d]],
      [`${h}.ln_1.bias`, [d]],
      [`${h}.attn.c_attn.weight`, [d, 3 * d]],
      [`${h}.attn.c_attn.bias`, [3 * d]],
      [`${h}.attn.c_proj.weight`, [d, d]],
      [`${h}.attn.c_proj.bias`, [d]],
      [`${h}.ln_2.weight`, [d]],
      [`${h}.ln_2.bias`, [d]],
      [`${h}.mlp.c_fc.weight`, [d, 4 * d]],
      [`${h}.mlp.c_fc.bias`, [4 * d]],
      [`${h}.mlp.c_proj.weight`, [4 * d, d]],
      [`${h}.mlp.c_proj.bias`, [d]],
    );
  }
  shapes.push(['transformer.ln_f.weight', [d]], ['transformer.ln_f.bias', [d]]);
  return shapes;
}

export function parameterCount(c: GptConfig): number {
  return parameterShapes(c).reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0);
}

/** Weight decay applies to matrices and embeddings, not to biases or LayerNorm parameters. */
export const isDecayed = (shape: number[]) => shape.length >= 2;

/** GPT-2 initialization: N(0, 0.02), residual projections scaled by 1/√(2·layers), zero biases, unit LayerNorm. */
export function initialParameters(c: GptConfig, seed: number): Map<string, Float32Array> {
  const random = gaussian(seed);
  const params = new Map<string, Float32Array>();
  for (const [name, shape] of parameterShapes(c)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name.includes('.ln_')) {
      if (name.endsWith('.weight')) data.fill(1);
    } else if (shape.length >= 2) {
      const std = name.endsWith('c_proj.weight') ? 0.02 / Math.sqrt(2 * c.layers) : 0.02;
      for (let i = 0; i < data.length; i++) data[i] = random() * std;
    }
    params.set(name, data);
  }
  return params;
}

/** One layer's cache in the inference graph: the graph values of past keys and values [batch, heads, past, headDim]
 * and the present ones it outputs (the runtime's KvCache holds their tensors). */
export interface LayerCacheValues {
  pastKey: Value;
  pastValue: Value;
  presentKey?: Value;
  presentValue?: Value;
}

/**
 * Logits [batch, time, vocab] for token ids and position ids [batch, time]. `attentionBias` is added to the
 * attention scores (0 where a query may look, a large negative number where it may not) and broadcasts to
 * [batch, heads, time, keys].
 */
export function forward(
  g: Graph,
  c: GptConfig,
  w: Record<string, Value>,
  tokens: Value,
  positions: Value,
  attentionBias: Value,
  caches?: LayerCacheValues[],
): Value {
  let x = g.add(g.gather(w['transformer.wte.weight'], tokens), g.gather(w['transformer.wpe.weight'], positions));
  const chunks = caches ? [x] : batchChunks(g, c, x);
  const blocks = chunks.map((chunk) => {
    let h = chunk;
    for (let i = 0; i < c.layers; i++) {
      const p = (name: string) => w[`transformer.h.${i}.${name}`];
      h = g.add(h, attention(g, c, g.layerNorm(h, p('ln_1.weight'), p('ln_1.bias')), p, attentionBias, caches?.[i]));
      h = g.add(h, mlp(g, g.layerNorm(h, p('ln_2.weight'), p('ln_2.bias')), p));
    }
    return h;
  });
  x = blocks.length > 1 ? g.concat(blocks, 0) : blocks[0];
  x = g.layerNorm(x, w['transformer.ln_f.weight'], w['transformer.ln_f.bias']);
  return g.matmul(x, g.transpose(w['transformer.wte.weight'], [1, 0]));
}

/**
 * The blocks of a training or evaluation graph (a concrete batch, no cache) run on chunks of a few sequences
 * rather than on the whole batch: the same math, row for row, but the elementwise chains (GELU and LayerNorm
 * backward, softmax and its backward) then work on tensors that stay in the cores' L2 caches. A chunk's widest
 * activation (the MLP's hidden layer or the attention scores) holds at most this many floats (2 MB), and a chunk
 * is at least one sequence. Measured on the bench's model with 2 MB L2 caches: smaller chunks speed up one thread
 * but slow down two (more, smaller ops to share out); this size was faster with both.
 */
export const chunkFloats = 1 << 19;

/** The batch of x as chunks along axis 0 (x itself when the batch is symbolic or fits in one chunk). */
function batchChunks(g: Graph, c: GptConfig, x: Value): Value[] {
  const [batch, time] = x.shape;
  if (typeof batch !== 'number' || typeof time !== 'number') return [x];
  const widest = time * Math.max(4 * c.embedding, c.heads * time);
  let size = Math.max(1, Math.floor(chunkFloats / widest));
  while (batch % size !== 0) size--;
  if (size >= batch) return [x];
  const count = batch / size;
  const chunk: [Dim[], DataType] = [[size, ...x.shape.slice(1)], x.type];
  return g.node('Split', [x], Array(count).fill(chunk), { axis: int(0), num_outputs: int(count) });
}

function attention(
  g: Graph,
  c: GptConfig,
  x: Value,
  p: (name: string) => Value,
  attentionBias: Value,
  cache?: LayerCacheValues,
): Value {
  const headDim = c.embedding / c.heads;
  const qkv = linear(g, 'inOut', x, p('attn.c_attn.weight'), p('attn.c_attn.bias'));
  const [q, k, v] = g.split(qkv, 3).map((t) => g.transpose(g.reshape(t, [0, 0, c.heads, headDim]), [0, 2, 1, 3]));
  const scaledQ = g.mul(q, g.scalar(1 / Math.sqrt(headDim)));
  let y: Value; // [batch, heads, time, headDim]
  if (cache) {
    cache.presentKey = g.concat([cache.pastKey, k], 2);
    cache.presentValue = g.concat([cache.pastValue, v], 2);
    y = attendAfterPast(g, scaledQ, k, v, cache.pastKey, cache.pastValue, attentionBias);
  } else {
    y = g.matmul(g.softmax(g.add(g.matmul(scaledQ, g.transpose(k, [0, 1, 3, 2])), attentionBias)), v);
  }
  const merged = g.reshape(g.transpose(y, [0, 2, 1, 3]), [0, 0, c.embedding]);
  return linear(g, 'inOut', merged, p('attn.c_proj.weight'), p('attn.c_proj.bias'));
}

function mlp(g: Graph, x: Value, p: (name: string) => Value): Value {
  const hidden = g.gelu(linear(g, 'inOut', x, p('mlp.c_fc.weight'), p('mlp.c_fc.bias')));
  return linear(g, 'inOut', hidden, p('mlp.c_proj.weight'), p('mlp.c_proj.bias'));
}

/** Additive causal mask [time, time]: 0 on and below the diagonal, −1e9 above. */
export function causalBias(time: number): Float32Array {
  const bias = new Float32Array(time * time);
  for (let i = 0; i < time; i++) for (let j = i + 1; j < time; j++) bias[i * time + j] = -1e9;
  return bias;
}
