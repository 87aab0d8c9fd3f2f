// The Llama family, defined once: Llama, Qwen2/Qwen2.5, Mistral and SmolLM (RMSNorm, rotary position embeddings,
// grouped-query attention, SwiGLU MLP; Qwen2's q/k/v biases; tied or untied head) written as ONNX ops with the
// Graph builder, in Hugging Face's parameter names, shapes ([out, in] linear weights) and conventions.
import type { Graph, Value } from './graph';
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
  normEpsilon: number; // rms_norm_eps
  ropeTheta: number; // rope_theta
  ropeScaling?: RopeScaling;
  /** Biases on q_proj, k_proj and v_proj (Qwen2's `attention_bias`). */
  qkvBias: boolean;
  /** lm_head shares the token embedding (tie_word_embeddings). */
  tiedHead: boolean;
}

/** Parameter names and shapes in Hugging Face LlamaForCausalLM / Qwen2ForCausalLM naming and order. */
export function llamaParameterShapes(c: LlamaConfig): [string, number[]][] {
  const d = c.embedding;
  const q = c.heads * c.headDim;
  const kv = c.kvHeads * c.headDim;
  const shapes: [string, number[]][] = [['model.embed_tokens.weight', [c.vocabSize, d]]];
  for (let i = 0; i < c.layers; i++) {
    const layer = `model.layers.${i}`;
    shapes.push([`${layer}.input_layernorm.weight`, [d]]);
    shapes.push([`${layer}.self_attn.q_proj.weight`, [q, d]]);
    if (c.qkvBias) shapes.push([`${layer}.self_attn.q_proj.bias`, [q]]);
    shapes.push([`${layer}.self_attn.k_proj.weight`, [kv, d]]);
    if (c.qkvBias) shapes.push([`${layer}.self_attn.k_proj.bias`, [kv]]);
    shapes.push([`${layer}.self_attn.v_proj.weight`, [kv, d]]);
    if (c.qkvBias) shapes.push([`${layer}.self_attn.v_proj.bias`, [kv]]);
    shapes.push(
      [`${layer}.self_attn.o_proj.weight`, [d, q]],
      [`${layer}.post_attention_layernorm.weight`, [d]],
      [`${layer}.mlp.gate_proj.weight`, [c.intermediate, d]],
      [`${layer}.mlp.up_proj.weight`, [c.intermediate, d]],
      [`${layer}.mlp.down_proj.weight`, [d, c.intermediate]],
    );
  }
  shapes.push(['model.norm.weight', [d]]);
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
  const rotary = rotaryTables(g, c, positions);
  let x = g.gather(w['model.embed_tokens.weight'], tokens);
  for (let i = 0; i < c.layers; i++) {
    const p = (name: string) => w[`model.layers.${i}.${name}`];
    const attended = attention(g, c, rmsNorm(g, x, p('input_layernorm.weight'), c.normEpsilon), p, rotary, {
      bias: attentionBias,
      cache: caches?.[i],
    });
    x = g.add(x, attended);
    x = g.add(x, mlp(g, rmsNorm(g, x, p('post_attention_layernorm.weight'), c.normEpsilon), p));
  }
  x = rmsNorm(g, x, w['model.norm.weight'], c.normEpsilon);
  return linear(g, x, w[c.tiedHead ? 'model.embed_tokens.weight' : 'lm_head.weight']);
}

/** x · Wᵀ (+ b) for a Hugging Face nn.Linear weight W of shape [out, in]. */
function linear(g: Graph, x: Value, weight: Value, bias?: Value): Value {
  const y = g.matmul(x, g.transpose(weight, [1, 0]));
  return bias ? g.add(y, bias) : y;
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

interface Rotary {
  cos: Value;
  sin: Value;
}

/** cos and sin of position · frequency, [batch, 1, time, headDim], shared by every layer. */
function rotaryTables(g: Graph, c: LlamaConfig, positions: Value): Rotary {
  const frequencies = g.constant(ropeFrequencies(c), [c.headDim / 2]);
  const angles = g.mul(g.unsqueeze(g.cast(positions, 'float32'), [2]), frequencies); // [batch, time, headDim/2]
  const doubled = g.unsqueeze(g.concat([angles, angles], -1), [1]);
  const cos = g.node('Cos', [doubled], [[doubled.shape, 'float32']])[0];
  const sin = g.node('Sin', [doubled], [[doubled.shape, 'float32']])[0];
  return { cos, sin };
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
function rotate(g: Graph, x: Value, { cos, sin }: Rotary): Value {
  const [first, second] = g.split(x, 2);
  const rotated = g.concat([g.neg(second), first], -1);
  return g.add(g.mul(x, cos), g.mul(rotated, sin));
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
    linear(g, x, p(`self_attn.${name}.weight`), c.qkvBias ? p(`self_attn.${name}.bias`) : undefined);
  const q = rotate(g, heads(projection('q_proj'), c.heads), rotary); // [batch, heads, time, headDim]
  let keys = rotate(g, heads(projection('k_proj'), c.kvHeads), rotary); // [batch, kvHeads, time, headDim]
  let values = heads(projection('v_proj'), c.kvHeads);
  if (cache) {
    keys = cache.presentKey = g.concat([cache.pastKey, keys], 2);
    values = cache.presentValue = g.concat([cache.pastValue, values], 2);
  }
  // Grouped-query attention: query head h reads key/value head ⌊h / group⌋, as Hugging Face's repeat_kv does.
  const group = c.heads / c.kvHeads;
  const grouped = g.reshape(q, [0, c.kvHeads, group, -1, c.headDim]); // [batch, kvHeads, group, time, headDim]
  const k = g.unsqueeze(keys, [2]);
  const v = g.unsqueeze(values, [2]);
  const scaled = g.mul(grouped, g.scalar(1 / Math.sqrt(c.headDim)));
  const scores = g.add(g.matmul(scaled, g.transpose(k, [0, 1, 2, 4, 3])), g.unsqueeze(bias, [1]));
  const y = g.reshape(g.matmul(g.softmax(scores), v), [0, c.heads, -1, c.headDim]); // [batch, heads, time, headDim]
  const merged = g.reshape(g.transpose(y, [0, 2, 1, 3]), [0, 0, c.heads * c.headDim]);
  return linear(g, merged, p('self_attn.o_proj.weight'));
}

/** SwiGLU: down(silu(gate(x)) · up(x)). */
function mlp(g: Graph, x: Value, p: (name: string) => Value): Value {
  const gate = linear(g, x, p('mlp.gate_proj.weight'));
  const silu = g.mul(gate, g.node('Sigmoid', [gate], [[gate.shape, gate.type]])[0]);
  return linear(g, g.mul(silu, linear(g, x, p('mlp.up_proj.weight'))), p('mlp.down_proj.weight'));
}
