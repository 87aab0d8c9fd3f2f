// LoRA for the Llama family as PEFT defines it: y = x·Wᵀ + (alpha/r)·B·A·x on the target linear layers, with
// PEFT's parameter names and shapes (lora_A [r, in] Kaiming-uniform, lora_B [out, r] zero), the adapter attached
// to the forward pass through the layers' weights, and the merge W' = W + (alpha/r)·B·A for export.
import type { Graph, Value } from './graph';
import { type AdaptedWeight, type LlamaConfig, llamaParameterShapes } from './llama';
import { uniform } from './random';

export interface LoraSettings {
  rank: number; // r
  alpha: number; // lora_alpha: the adapter's output is scaled by alpha / r
  /** lora_dropout on the adapter's input; 0 (PEFT's default) or a rate with a per-step seed input. */
  dropout: number;
  /** target_modules: the linear layers adapted, by the last part of their name. */
  targetModules: string[];
}

export const attentionModules = ['q_proj', 'k_proj', 'v_proj', 'o_proj'];
export const mlpModules = ['gate_proj', 'up_proj', 'down_proj'];

export const defaultLora: LoraSettings = { rank: 8, alpha: 16, dropout: 0, targetModules: attentionModules };

export const loraScale = (s: LoraSettings) => s.alpha / s.rank;

export interface LoraModule {
  /** The adapted layer's name, e.g. model.layers.0.self_attn.q_proj (its weight is `${module}.weight`). */
  module: string;
  inFeatures: number;
  outFeatures: number;
}

export const loraNames = {
  a: (module: string) => `base_model.model.${module}.lora_A.weight`,
  b: (module: string) => `base_model.model.${module}.lora_B.weight`,
};

/** The adapted layers, in the model's parameter order. */
export function loraModules(c: LlamaConfig, s: LoraSettings): LoraModule[] {
  const unknown = s.targetModules.filter((t) => ![...attentionModules, ...mlpModules].includes(t));
  if (unknown.length) throw new Error(`LoRA target modules ${unknown.join(', ')} are not linear layers of the model`);
  return llamaParameterShapes(c)
    .filter(([name]) => s.targetModules.some((t) => name.endsWith(`.${t}.weight`)))
    .map(([name, [outFeatures, inFeatures]]) => ({
      module: name.slice(0, -'.weight'.length),
      inFeatures,
      outFeatures,
    }));
}

/** The adapter's parameters in PEFT's names: lora_A [r, in] then lora_B [out, r] for each adapted layer. */
export function loraParameterShapes(c: LlamaConfig, s: LoraSettings): [string, number[]][] {
  return loraModules(c, s).flatMap(({ module, inFeatures, outFeatures }): [string, number[]][] => [
    [loraNames.a(module), [s.rank, inFeatures]],
    [loraNames.b(module), [outFeatures, s.rank]],
  ]);
}

/**
 * PEFT's initialization: lora_A by kaiming_uniform_(a=√5), i.e. uniform in ±1/√in, and lora_B zero, so that the
 * adapted model starts equal to the base.
 */
export function initialLoraParameters(c: LlamaConfig, s: LoraSettings, seed: number): Map<string, Float32Array> {
  const random = uniform(seed);
  const out = new Map<string, Float32Array>();
  for (const { module, inFeatures, outFeatures } of loraModules(c, s)) {
    const bound = 1 / Math.sqrt(inFeatures);
    out.set(
      loraNames.a(module),
      Float32Array.from({ length: s.rank * inFeatures }, () => (2 * random() - 1) * bound),
    );
    out.set(loraNames.b(module), new Float32Array(outFeatures * s.rank));
  }
  return out;
}

/**
 * The base weights with the adapter attached to each target layer's weight: the layer then adds
 * (alpha/r)·(dropout(x)·Aᵀ)·Bᵀ, two rank-r matmuls (B·A is never formed). `dropoutSeed` (an int64 scalar input)
 * is needed when s.dropout > 0: the keep-mask is a hash of the seed, the layer and the element's index, so a
 * run resumed with the same seeds draws the same masks.
 */
export function attachLora(
  g: Graph,
  c: LlamaConfig,
  s: LoraSettings,
  base: Record<string, Value>,
  adapter: Record<string, Value>,
  dropoutSeed?: Value,
): Record<string, Value> {
  if (s.dropout > 0 && !dropoutSeed) throw new Error('LoRA dropout needs a seed input');
  const weights = { ...base };
  loraModules(c, s).forEach(({ module }, layerIndex) => {
    const a = adapter[loraNames.a(module)];
    const b = adapter[loraNames.b(module)];
    const adapt = (x: Value, y: Value) => {
      const dropped = s.dropout > 0 ? seededDropout(g, x, s.dropout, dropoutSeed!, layerIndex) : x;
      const low = g.mul(g.matmul(dropped, g.transpose(a, [1, 0])), g.scalar(loraScale(s)));
      return g.add(y, g.matmul(low, g.transpose(b, [1, 0])));
    };
    const weight: AdaptedWeight = { ...base[`${module}.weight`], adapt };
    weights[`${module}.weight`] = weight;
  });
  return weights;
}

/**
 * Inverted dropout with a reproducible mask: each element's keep decision is an integer hash of (seed, stream,
 * index), scaled by 1/(1 − rate) where kept. Integer ops only, so it is the same on every machine.
 */
export function seededDropout(g: Graph, x: Value, rate: number, seed: Value, stream: number): Value {
  const count = x.shape.reduce<number>((n, d) => n * (d as number), 1);
  const long = (v: bigint) => g.constant(BigInt64Array.of(v), []);
  const op = (name: string, p: Value, q: Value) => g.node(name, [p, q], [[[count], 'int64']])[0];
  const index = g.node('Range', [long(0n), long(BigInt(count)), long(1n)], [[[count], 'int64']])[0];
  // A multiply–xorshift mix over 64-bit integers (wrapping products); Div by 2^k stands in for a right shift.
  let h = op('Add', op('Mul', index, long(0x9e3779b1n)), op('Mul', seed, long(0x85ebca77n)));
  h = op('Add', h, long(BigInt(stream) * 0x27d4eb2fn));
  h = op('BitwiseXor', h, op('Div', h, long(1n << 29n)));
  h = op('Mul', h, long(0x2545f4914f6cdd1dn));
  h = op('BitwiseXor', h, op('Div', h, long(1n << 32n)));
  h = op('Mul', h, long(0x165667b1n));
  h = op('BitwiseXor', h, op('Div', h, long(1n << 31n)));
  const unit = g.node('Mod', [h, long(1n << 24n)], [[[count], 'int64']])[0]; // sign of the divisor: in [0, 2^24)
  const keep = g.node('Less', [g.cast(unit, 'float32'), g.scalar((1 - rate) * 2 ** 24)], [[[count], 'bool']])[0];
  const mask = g.reshape(g.mul(g.cast(keep, 'float32'), g.scalar(1 / (1 - rate))), x.shape as number[]);
  return g.mul(x, mask);
}

/** W' = W + (alpha/r)·B·A for every adapted layer: the weights to export; other weights are shared, not copied. */
export function mergeLora(
  c: LlamaConfig,
  s: LoraSettings,
  base: Map<string, Float32Array>,
  adapter: Map<string, Float32Array>,
): Map<string, Float32Array> {
  const merged = new Map(base);
  const scale = loraScale(s);
  for (const { module, inFeatures, outFeatures } of loraModules(c, s)) {
    const w = base.get(`${module}.weight`);
    const a = adapter.get(loraNames.a(module));
    const b = adapter.get(loraNames.b(module));
    if (!w || !a || !b) throw new Error(`merging LoRA: ${module} lacks its weight or adapter`);
    const out = Float32Array.from(w);
    for (let o = 0; o < outFeatures; o++) {
      const row = out.subarray(o * inFeatures, (o + 1) * inFeatures);
      for (let k = 0; k < s.rank; k++) {
        const coefficient = scale * b[o * s.rank + k];
        if (coefficient === 0) continue;
        const aRow = a.subarray(k * inFeatures, (k + 1) * inFeatures);
        for (let i = 0; i < inFeatures; i++) row[i] += coefficient * aRow[i];
      }
    }
    merged.set(`${module}.weight`, out);
  }
  return merged;
}
