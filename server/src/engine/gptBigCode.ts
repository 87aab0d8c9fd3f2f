// The GPT-BigCode model (StarCoder, SantaCoder, tiny_starcoder), defined once: GPT-2's block (pre-LayerNorm, learned
// positions, gelu MLP, biases everywhere, tied head) with multi-query attention, one key/value head shared by every
// query head, in Hugging Face's GPTBigCodeForCausalLM parameter names, nn.Linear [out, in] weights and conventions.
import { type ActivationName, activate } from './activations';
import type { Graph, Value } from './graph';
import { linear } from './linear';
import type { LayerCacheValues } from './model';

export interface GptBigCodeConfig {
  vocabSize: number;
  contextLength: number; // n_positions
  layers: number; // n_layer
  heads: number; // n_head
  embedding: number; // n_embd
  inner: number; // n_inner, or 4 · n_embd
  /** multi_query: one key/value head for all heads (c_attn is [n_embd + 2·headDim, n_embd]); else one per head. */
  multiQuery: boolean;
  normEpsilon: number; // layer_norm_epsilon
  activation: ActivationName; // activation_function
  /** scale_attn_weights: scores are divided by √headDim. */
  scaleAttention: boolean;
  /** lm_head shares transformer.wte (tie_word_embeddings, the default). */
  tiedHead: boolean;
}

export const headDimOf = (c: GptBigCodeConfig) => c.embedding / c.heads;

/** Parameter names and shapes in Hugging Face GPTBigCodeForCausalLM naming (nn.Linear weights are [out, in]). */
export function gptBigCodeParameterShapes(c: GptBigCodeConfig): [string, number[]][] {
  const d = c.embedding;
  const keyValueWidth = 2 * (c.multiQuery ? headDimOf(c) : d);
  const shapes: [string, number[]][] = [
    ['transformer.wte.weight', [c.vocabSize, d]],
    ['transformer.wpe.weight', [c.contextLength, d]],
  ];
  for (let i = 0; i < c.layers; i++) {
    const h = `transformer.h.${i}`;
    shapes.push(
      [`${h}.ln_1.weight`, [d]],
      [`${h}.ln_1.bias`, [d]],
      [`${h}.attn.c_attn.weight`, [d + keyValueWidth, d]],
      [`${h}.attn.c_attn.bias`, [d + keyValueWidth]],
      [`${h}.attn.c_proj.weight`, [d, d]],
      [`${h}.attn.c_proj.bias`, [d]],
      [`${h}.ln_2.weight`, [d]],
      [`${h}.ln_2.bias`, [d]],
      [`${h}.mlp.c_fc.weight`, [c.inner, d]],
      [`${h}.mlp.c_fc.bias`, [c.inner]],
      [`${h}.mlp.c_proj.weight`, [d, c.inner]],
      [`${h}.mlp.c_proj.bias`, [d]],
    );
  }
  shapes.push(['transformer.ln_f.weight', [d]], ['transformer.ln_f.bias', [d]]);
  if (!c.tiedHead) shapes.push(['lm_head.weight', [c.vocabSize, d]]);
  return shapes;
}

/**
 * Logits [batch, time, vocab] for token ids and position ids [batch, time]; `attentionBias` broadcasts to
 * [batch, 1, time, keys]. With multi-query attention a layer's cache is one fused tensor [batch, past, 2·headDim]
 * (keys then values along the last axis, as Hugging Face and transformers.js keep it): `pastKey` and `pastValue`
 * are that same value, and so are `presentKey` and `presentValue`. Otherwise keys and values are cached apart,
 * [batch, heads, past, headDim] each.
 */
export function gptBigCodeForward(
  g: Graph,
  c: GptBigCodeConfig,
  w: Record<string, Value>,
  tokens: Value,
  positions: Value,
  attentionBias: Value,
  caches?: LayerCacheValues[],
): Value {
  let x = g.add(g.gather(w['transformer.wte.weight'], tokens), g.gather(w['transformer.wpe.weight'], positions));
  for (let i = 0; i < c.layers; i++) {
    const p = (name: string) => w[`transformer.h.${i}.${name}`];
    const normed = g.layerNorm(x, p('ln_1.weight'), p('ln_1.bias'), c.normEpsilon);
    x = g.add(x, attention(g, c, normed, p, attentionBias, caches?.[i]));
    x = g.add(x, mlp(g, c, g.layerNorm(x, p('ln_2.weight'), p('ln_2.bias'), c.normEpsilon), p));
  }
  x = g.layerNorm(x, w['transformer.ln_f.weight'], w['transformer.ln_f.bias'], c.normEpsilon);
  return linear(g, 'outIn', x, w[c.tiedHead ? 'transformer.wte.weight' : 'lm_head.weight']);
}

function attention(
  g: Graph,
  c: GptBigCodeConfig,
  x: Value,
  p: (name: string) => Value,
  bias: Value,
  cache?: LayerCacheValues,
): Value {
  const headDim = headDimOf(c);
  const fused = linear(g, 'outIn', x, p('attn.c_attn.weight'), p('attn.c_attn.bias'));
  let q: Value; // [batch, heads, time, headDim]
  let keys: Value; // [batch, 1 or heads, keys, headDim]
  let values: Value;
  if (c.multiQuery) {
    // c_attn's output is the queries of every head, then the one head's keys and values: [d | headDim | headDim].
    const [queries, newKeyValue] = splitLast(g, fused, [c.embedding, 2 * headDim]);
    q = g.transpose(g.reshape(queries, [0, 0, c.heads, headDim]), [0, 2, 1, 3]);
    let keyValue = newKeyValue; // [batch, time, 2·headDim]
    if (cache) keyValue = cache.presentKey = cache.presentValue = g.concat([cache.pastKey, newKeyValue], 1);
    [keys, values] = g.split(g.unsqueeze(keyValue, [1]), 2);
  } else {
    // Per head [q | k | v] (not GPT-2's [all q | all k | all v]).
    const perHead = g.transpose(g.reshape(fused, [0, 0, c.heads, 3 * headDim]), [0, 2, 1, 3]);
    [q, keys, values] = g.split(perHead, 3);
    if (cache) {
      keys = cache.presentKey = g.concat([cache.pastKey, keys], 2);
      values = cache.presentValue = g.concat([cache.pastValue, values], 2);
    }
  }
  const scaled = c.scaleAttention ? g.mul(q, g.scalar(1 / Math.sqrt(headDim))) : q;
  const scores = g.add(g.matmul(scaled, g.transpose(keys, [0, 1, 3, 2])), bias);
  const y = g.matmul(g.softmax(scores), values); // [batch, heads, time, headDim]
  const merged = g.reshape(g.transpose(y, [0, 2, 1, 3]), [0, 0, c.embedding]);
  return linear(g, 'outIn', merged, p('attn.c_proj.weight'), p('attn.c_proj.bias'));
}

function mlp(g: Graph, c: GptBigCodeConfig, x: Value, p: (name: string) => Value): Value {
  const hidden = activate(g, linear(g, 'outIn', x, p('mlp.c_fc.weight'), p('mlp.c_fc.bias')), c.activation);
  return linear(g, 'outIn', hidden, p('mlp.c_proj.weight'), p('mlp.c_proj.bias'));
}

/** Splits the last axis into parts of the given sizes. */
function splitLast(g: Graph, x: Value, sizes: number[]): Value[] {
  const outputs = sizes.map((size) => [[...x.shape.slice(0, -1), size], x.type] as [Value['shape'], Value['type']]);
  return g.node('Split', [x, g.int64s(sizes)], outputs, { axis: { kind: 'int', value: -1 } });
}
