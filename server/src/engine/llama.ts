// The Llama family, defined once: Llama, Qwen2/Qwen2.5, Mistral and SmolLM (RMSNorm, rotary position embeddings,
// grouped-query attention, SwiGLU MLP; Qwen2's q/k/v biases; tied or untied head) and StarCoder2 (LayerNorm, biases
// everywhere, a plain gelu MLP, sliding-window attention) written as ONNX ops with the Graph builder, in Hugging
// Face's parameter names, shapes ([out, in] linear weights) and conventions.
import { type ActivationName, activate } from './activations';
import { attend, attendAfterPast } from './causalAttention';
import type { Graph, Value } from './graph';
import { linear } from './linear';
import { int } from './onnx';
import type { LayerCacheValues } from './model';

export interface RopeScaling {
  /** 'linear' divides positions by factor; 'llama3' rescales the frequencies as Llama 3.1 does. */
  type: 'linear' | 'llama3';
  factor: number;
  lowFrequencyFactor?: number;
  highFrequencyFactor?: number;
  originalContextLength?: number;
}

export interface LlamaConfig {
  vocabSize: number;
  contextLength: number; // max_position_embeddings
  layers: number; // num_hidden_layers
  heads: number; // num_attention_heads
  kvHeads: number; // num_key_value_heads
  headDim: number; // head_dim, or hidden_size / num_attention_heads
  embedding: number; // hidden_size
  intermediate: number; // intermediate_size
  normEpsilon: number; // rms_norm_eps (StarCoder2: norm_epsilon)
  /** RMSNorm with a weight (default) or, for StarCoder2, LayerNorm with a weight and a bias. */
  norm?: 'rms' | 'layer';
  /** SwiGLU's gate_proj/up_proj/down_proj (default) or, for StarCoder2, c_fc → activation → c_proj. */
  mlp?: 'gated' | 'plain';
  /** hidden_act (default silu). */
  activation?: ActivationName;
  ropeTheta: number; // rope_theta
  ropeScaling?: RopeScaling;
  /** Biases on q_proj, k_proj and v_proj (Qwen2's `attention_bias`). */
  qkvBias: boolean;
  /** A bias on o_proj (Llama's attention_bias, StarCoder2's use_bias). */
  outputBias?: boolean;
  /** Biases on the MLP's linear layers (Llama's mlp_bias, StarCoder2's use_bias). */
  mlpBias?: boolean;
  /** sliding_window: a query does not see keys this many positions or more before it (Mistral, StarCoder2). */
  slidingWindow?: number;
  /** lm_head shares the token embedding (tie_word_embeddings). */
  tiedHead: boolean;
}

/** Parameter names and shapes in Hugging Face LlamaForCausalLM / Qwen2ForCausalLM / Starcoder2ForCausalLM naming. */
export function llamaParameterShapes(c: LlamaConfig): [string, number[]][] {
  const d = c.embedding;
  const q = c.heads * c.headDim;
  const kv = c.kvHeads * c.headDim;
  const shapes: [string, number[]][] = [['model.embed_tokens.weight', [c.vocabSize, d]]];
  const linearLayer = (name: string, out: number, inputs: number, bias: boolean | undefined) => {
    shapes.push([`${name}.weight`, [out, inputs]]);
    if (bias) shapes.push([`${name}.bias`, [out]]);
  };
  const norm = (name: string) => {
    shapes.push([`${name}.weight`, [d]]);
    if (c.norm === 'layer') shapes.push([`${name}.bias`, [d]]);
  };
  for (let i = 0; i < c.layers; i++) {
    const layer = `model.layers.${i}`;
    norm(`${layer}.input_layernorm`);
    linearLayer(`${layer}.self_attn.q_proj`, q, d, c.qkvBias);
    linearLayer(`${layer}.self_attn.k_proj`, kv, d, c.qkvBias);
    linearLayer(`${layer}.self_attn.v_proj`, kv, d, c.qkvBias);
    linearLayer(`${layer}.self_attn.o_proj`, d, q, c.outputBias);
    norm(`${layer}.post_attention_layernorm`);
    if (c.mlp === 'plain') {
      linearLayer(`${layer}.mlp.c_fc`, c.intermediate, d, c.mlpBias);
      linearLayer(`${layer}.mlp.c_proj`, d, c.intermediate, c.mlpBias);
    } else {
      linearLayer(`${layer}.mlp.gate_proj`, c.intermediate, d, c.mlpBias);
      linearLayer(`${layer}.mlp.up_proj`, c.intermediate, d, c.mlpBias);
      linearLayer(`${layer}.mlp.down_proj`, d, c.intermediate, c.mlpBias);
    }
  }
  norm('model.norm');
  if (!c.tiedHead) shapes.push(['lm_head.weight', [c.vocabSize, d]]);
  return shapes;
}

/**
 * Logits [batch, time, vocab] for token ids and position ids [batch, time]. `attentionBias` is added to the
 * attention scores and broadcasts to [batch, 1, time, keys]; `caches` (inference) hold past keys and values
 * [batch, kvHeads, past, headDim], keys stored after the rotation as Hugging Face caches them.
 */
export function llamaForward(
  g: Graph,
  c: LlamaConfig,
  w: Record<string, Value>,
  tokens: Value,
  positions: Value,
  attentionBias: Value,
  caches?: LayerCacheValues[],
): Value {
  // With a cache (inference) onnxruntime's RotaryEmbedding does the rotation in one kernel; training graphs keep
  // standard ops, which autodiff differentiates.
  const rotary = caches ? rotaryCaches(g, c, positions) : rotaryTables(g, c, positions);
  const windowed = c.slidingWindow === undefined ? attentionBias : slidingWindowBias(g, attentionBias, c.slidingWindow);
  // After a cache the query heads of a group are the rows of one query matrix (see attention): the bias per row.
  const group = c.heads / c.kvHeads;
  const bias = caches && group > 1 ? g.concat(Array(group).fill(windowed), 2) : windowed;
  let x = g.gather(w['model.embed_tokens.weight'], tokens);
  for (let i = 0; i < c.layers; i++) {
    const layer = `model.layers.${i}`;
    const p = (name: string) => w[`${layer}.${name}`];
    const attended = attention(g, c, norm(g, c, x, w, `${layer}.input_layernorm`), p, rotary, {
      bias,
      cache: caches?.[i],
    });
    x = g.add(x, attended);
    x = g.add(x, mlp(g, c, norm(g, c, x, w, `${layer}.post_attention_layernorm`), p));
  }
  x = norm(g, c, x, w, 'model.norm');
  return linear(g, 'outIn', x, w[c.tiedHead ? 'model.embed_tokens.weight' : 'lm_head.weight']);
}

/** The family's normalization over the last axis: RMSNorm (a weight) or LayerNorm (a weight and a bias). */
function norm(g: Graph, c: LlamaConfig, x: Value, w: Record<string, Value>, name: string): Value {
  if (c.norm === 'layer') return g.layerNorm(x, w[`${name}.weight`], w[`${name}.bias`], c.normEpsilon);
  return rmsNorm(g, x, w[`${name}.weight`], c.normEpsilon);
}

/** x / √(mean(x²) + ε) · weight over the last axis (the pattern onnxruntime fuses into one kernel). */
function rmsNorm(g: Graph, x: Value, weight: Value, epsilon: number): Value {
  const meanSquare = g.node(
    'ReduceMean',
    [g.pow(x, g.scalar(2)), g.int64s([-1])],
    [[[...x.shape.slice(0, -1), 1], x.type]],
  )[0];
  return g.mul(g.div(x, g.sqrt(g.add(meanSquare, g.scalar(epsilon)))), weight);
}

/**
 * The attention bias with the sliding window added: a query no longer sees keys `window` or more tokens before it
 * (Hugging Face's sliding-window mask). Distances count the keys the bias lets the query see between the key and
 * the query, so they are the tokens' distances even when the cache holds unwritten slots or left padding.
 */
function slidingWindowBias(g: Graph, bias: Value, window: number): Value {
  const visible = g.cast(g.node('Greater', [bias, g.scalar(-1)], [[bias.shape, 'bool']])[0], 'float32');
  const rank = bias.shape.length;
  const lastAxis = g.constant(BigInt64Array.of(BigInt(rank - 1)), []);
  const seenSoFar = g.node('CumSum', [visible, lastAxis], [[bias.shape, 'float32']])[0];
  const distance = g.sub(g.reduceSum(visible, [rank - 1]), seenSoFar); // visible keys after this one, up to the query
  const inside = g.cast(g.node('Less', [distance, g.scalar(window)], [[bias.shape, 'bool']])[0], 'float32');
  return g.add(bias, g.mul(g.sub(inside, g.scalar(1)), g.scalar(1e9)));
}

/**
 * What rotates the queries and keys: cos and sin of position · frequency per position of the batch ('tables',
 * [batch, 1, time, headDim]), or the positions and tables of cos and sin for every position of the context
 * ('caches', [contextLength, headDim/2]) for onnxruntime's RotaryEmbedding. Shared by every layer.
 */
type Rotary = { kind: 'tables'; cos: Value; sin: Value } | { kind: 'caches'; positions: Value; cos: Value; sin: Value };

function rotaryTables(g: Graph, c: LlamaConfig, positions: Value): Rotary {
  const frequencies = g.constant(ropeFrequencies(c), [c.headDim / 2]);
  const angles = g.mul(g.unsqueeze(g.cast(positions, 'float32'), [2]), frequencies); // [batch, time, headDim/2]
  const doubled = g.unsqueeze(g.concat([angles, angles], -1), [1]);
  const cos = g.node('Cos', [doubled], [[doubled.shape, 'float32']])[0];
  const sin = g.node('Sin', [doubled], [[doubled.shape, 'float32']])[0];
  return { kind: 'tables', cos, sin };
}

function rotaryCaches(g: Graph, c: LlamaConfig, positions: Value): Rotary {
  const frequencies = ropeFrequencies(c);
  const half = frequencies.length;
  const cos = new Float32Array(c.contextLength * half);
  const sin = new Float32Array(c.contextLength * half);
  for (let position = 0; position < c.contextLength; position++) {
    for (let i = 0; i < half; i++) {
      // The angle in float32, as the tables' Mul computes it.
      const angle = Math.fround(position * frequencies[i]);
      cos[position * half + i] = Math.cos(angle);
      sin[position * half + i] = Math.sin(angle);
    }
  }
  const dims = [c.contextLength, half];
  return {
    kind: 'caches',
    positions,
    cos: g.initializer('rotary.cos_cache', { type: 'float32', dims, data: cos }),
    sin: g.initializer('rotary.sin_cache', { type: 'float32', dims, data: sin }),
  };
}

/** The inverse frequencies θ^(−2i/headDim), rescaled as the config's rope_scaling says. */
export function ropeFrequencies(c: LlamaConfig): Float32Array {
  const half = c.headDim / 2;
  const frequencies = Float32Array.from({ length: half }, (_, i) => 1 / c.ropeTheta ** ((2 * i) / c.headDim));
  const scaling = c.ropeScaling;
  if (!scaling) return frequencies;
  if (scaling.type === 'linear') return frequencies.map((f) => f / scaling.factor);
  // Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, the band between interpolated.
  const low = scaling.lowFrequencyFactor ?? 1;
  const high = scaling.highFrequencyFactor ?? 4;
  const original = scaling.originalContextLength ?? 8192;
  const lowWavelength = original / low;
  const highWavelength = original / high;
  return frequencies.map((f) => {
    const wavelength = (2 * Math.PI) / f;
    if (wavelength < highWavelength) return f;
    if (wavelength > lowWavelength) return f / scaling.factor;
    const smooth = (original / wavelength - low) / (high - low);
    return (1 - smooth) * (f / scaling.factor) + smooth * f;
  });
}

/** x·cos + rotate_half(x)·sin, with rotate_half(x) = [−x₂, x₁] for the two halves of the last axis. */
function rotate(g: Graph, x: Value, rotary: Rotary): Value {
  if (rotary.kind === 'caches')
    return g.contrib('RotaryEmbedding', [x, rotary.positions, rotary.cos, rotary.sin], [x.shape, x.type], {
      interleaved: int(0),
    });
  const [first, second] = g.split(x, 2);
  const rotated = g.concat([g.neg(second), first], -1);
  return g.add(g.mul(x, rotary.cos), g.mul(rotated, rotary.sin));
}

function attention(
  g: Graph,
  c: LlamaConfig,
  x: Value,
  p: (name: string) => Value,
  rotary: Rotary,
  { bias, cache }: { bias: Value; cache?: LayerCacheValues },
): Value {
  const heads = (t: Value, count: number) => g.transpose(g.reshape(t, [0, 0, count, c.headDim]), [0, 2, 1, 3]);
  const projection = (name: string) =>
    linear(g, 'outIn', x, p(`self_attn.${name}.weight`), c.qkvBias ? p(`self_attn.${name}.bias`) : undefined);
  const q = rotate(g, heads(projection('q_proj'), c.heads), rotary); // [batch, heads, time, headDim]
  const keys = rotate(g, heads(projection('k_proj'), c.kvHeads), rotary); // [batch, kvHeads, time, headDim]
  const values = heads(projection('v_proj'), c.kvHeads);
  // Grouped-query attention: query head h reads key/value head ⌊h / group⌋, as Hugging Face's repeat_kv does.
  const group = c.heads / c.kvHeads;
  const scaled = g.mul(q, g.scalar(1 / Math.sqrt(c.headDim)));
  let attended: Value;
  if (cache) {
    cache.presentKey = g.concat([cache.pastKey, keys], 2);
    cache.presentValue = g.concat([cache.pastValue, values], 2);
    // A group's query heads as the rows of one matrix, so that each cached key and value is read once per step and
    // not once per query head (the past half 3.3× faster at Qwen2.5-0.5B's 7 heads per group and 1088 positions).
    const rows = g.reshape(scaled, [0, c.kvHeads, -1, c.headDim]); // [batch, kvHeads, group·time, headDim]
    attended = attendAfterPast(g, rows, keys, values, cache.pastKey, cache.pastValue, bias);
  } else {
    // Without a cache (training) the bias is causal, so the attention may skip the scores it hides.
    const grouped = g.reshape(scaled, [0, c.kvHeads, group, -1, c.headDim]); // [batch, kvHeads, group, time, headDim]
    const perGroup = (t: Value) => g.unsqueeze(t, [2]);
    attended = attend(g, grouped, perGroup(keys), perGroup(values), g.unsqueeze(bias, [1]), true);
  }
  const y = g.reshape(attended, [0, c.heads, -1, c.headDim]); // [batch, heads, time, headDim]
  const merged = g.reshape(g.transpose(y, [0, 2, 1, 3]), [0, 0, c.heads * c.headDim]);
  const outputBias = c.outputBias ? p('self_attn.o_proj.bias') : undefined;
  return linear(g, 'outIn', merged, p('self_attn.o_proj.weight'), outputBias);
}

/** SwiGLU, down(silu(gate(x)) · up(x)), or StarCoder2's plain c_proj(act(c_fc(x))). */
function mlp(g: Graph, c: LlamaConfig, x: Value, p: (name: string) => Value): Value {
  const layer = (name: string, input: Value) =>
    linear(g, 'outIn', input, p(`mlp.${name}.weight`), c.mlpBias ? p(`mlp.${name}.bias`) : undefined);
  const act = (input: Value) => activate(g, input, c.activation ?? 'silu');
  if (c.mlp === 'plain') return layer('c_proj', act(layer('c_fc', x)));
  return layer('down_proj', g.mul(act(layer('gate_proj', x)), layer('up_proj', x)));
}
