// LoRA as PEFT defines it, for the families whose linear layers it adapts (the Llama family's nn.Linear, GPT-2's
// Conv1D): y = base(x) + (alpha/r)·B·A·x on the target layers, PEFT's names and shapes (lora_A [r, in] Kaiming-uniform,
// lora_B [out, r] zero, whatever the base weight's layout), the adapter attached to the forward pass through the
// layers' weights, and the merge W' = W + (alpha/r)·B·A for export (its transpose for GPT-2's [in, out] weights).
import { type Architecture, parameterShapesOf } from './architecture';
import type { Graph, Value } from './graph';
import type { AdaptedWeight, WeightLayout } from './linear';
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

/** The architectures LoRA adapts. */
export type LoraArchitecture = Extract<Architecture, { family: 'gpt2' | 'llama' }>;

/**
 * What LoRA knows of a family: the linear layers it may adapt, by the last part of their name (PEFT matches
 * target_modules as name suffixes), those adapted by default, and how the family stores their weights.
 */
export interface LoraFamily {
  modules: readonly string[];
  defaultTargets: readonly string[];
  /** 'inOut' is PEFT's fan_in_fan_out: the merge adds (B·A)ᵀ (the forward pass is the same either way). */
  layout: WeightLayout;
}

export const loraFamilies: Record<LoraArchitecture['family'], LoraFamily> = {
  llama: { modules: [...attentionModules, ...mlpModules], defaultTargets: attentionModules, layout: 'outIn' },
  // PEFT's default for gpt2 is c_attn; c_proj names both attn.c_proj and mlp.c_proj, as PEFT's suffix match does.
  gpt2: { modules: ['c_attn', 'c_proj', 'c_fc'], defaultTargets: ['c_attn'], layout: 'inOut' },
};

export function isLoraArchitecture(a: Architecture): a is LoraArchitecture {
  return a.family in loraFamilies;
}

export function loraFamilyOf(a: Architecture): LoraFamily {
  if (!isLoraArchitecture(a)) throw new Error(`LoRA is not available for ${a.family} models`);
  return loraFamilies[a.family];
}

/** PEFT's defaults for what no option sets (alpha defaults to 2·rank; the targets are the family's, in loraFamilies). */
export const defaultLora = { rank: 8, dropout: 0 };

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
export function loraModules(a: Architecture, s: LoraSettings): LoraModule[] {
  const { modules, layout } = loraFamilyOf(a);
  const unknown = s.targetModules.filter((t) => !modules.includes(t));
  if (unknown.length)
    throw new Error(
      `LoRA target modules ${unknown.join(', ')} are not linear layers of ${a.family} models (${modules.join(', ')})`,
    );
  return parameterShapesOf(a)
    .filter(([name]) => s.targetModules.some((t) => name.endsWith(`.${t}.weight`)))
    .map(([name, [rows, columns]]) => ({
      module: name.slice(0, -'.weight'.length),
      inFeatures: layout === 'outIn' ? columns : rows,
      outFeatures: layout === 'outIn' ? rows : columns,
    }));
}

/** The adapter's parameters in PEFT's names: lora_A [r, in] then lora_B [out, r] for each adapted layer. */
export function loraParameterShapes(a: Architecture, s: LoraSettings): [string, number[]][] {
  return loraModules(a, s).flatMap(({ module, inFeatures, outFeatures }): [string, number[]][] => [
    [loraNames.a(module), [s.rank, inFeatures]],
    [loraNames.b(module), [outFeatures, s.rank]],
  ]);
}

/**
 * PEFT's initialization: lora_A by kaiming_uniform_(a=√5), i.e. uniform in ±1/√in, and lora_B zero, so that the
 * adapted model starts equal to the base.
 */
export function initialLoraParameters(a: Architecture, s: LoraSettings, seed: number): Map<string, Float32Array> {
  const random = uniform(seed);
  const out = new Map<string, Float32Array>();
  for (const { module, inFeatures, outFeatures } of loraModules(a, s)) {
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
 * (alpha/r)·(dropout(x)·Aᵀ)·Bᵀ, two rank-r matmuls (B·A is never formed), whichever way the base weight is stored.
 * `dropoutSeed` (an int64 scalar input) is needed when s.dropout > 0: the keep-mask is a hash of the seed, the layer
 * (and how many times the graph already ran it: GPT-2 runs its blocks once per chunk of the batch) and the
 * element's index, so a run resumed with the same seeds draws the same masks.
 */
export function attachLora(
  g: Graph,
  architecture: Architecture,
  s: LoraSettings,
  base: Record<string, Value>,
  adapter: Record<string, Value>,
  dropoutSeed?: Value,
): Record<string, Value> {
  if (s.dropout > 0 && !dropoutSeed) throw new Error('LoRA dropout needs a seed input');
  const weights = { ...base };
  const modules = loraModules(architecture, s);
  modules.forEach(({ module }, layerIndex) => {
    const a = adapter[loraNames.a(module)];
    const b = adapter[loraNames.b(module)];
    let runs = 0;
    const adapt = (x: Value, y: Value) => {
      const stream = layerIndex + modules.length * runs++;
      const dropped = s.dropout > 0 ? seededDropout(g, x, s.dropout, dropoutSeed!, stream) : x;
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

/**
 * W' = W + (alpha/r)·B·A for every adapted layer, or W + (alpha/r)·(B·A)ᵀ for a weight stored [in, out] (GPT-2):
 * the weights to export; other weights are shared, not copied.
 */
export function mergeLora(
  architecture: Architecture,
  s: LoraSettings,
  base: Map<string, Float32Array>,
  adapter: Map<string, Float32Array>,
): Map<string, Float32Array> {
  const merged = new Map(base);
  const scale = loraScale(s);
  const { layout } = loraFamilyOf(architecture);
  for (const { module, inFeatures, outFeatures } of loraModules(architecture, s)) {
    const w = base.get(`${module}.weight`);
    const a = adapter.get(loraNames.a(module));
    const b = adapter.get(loraNames.b(module));
    if (!w || !a || !b) throw new Error(`merging LoRA: ${module} lacks its weight or adapter`);
    const out = Float32Array.from(w);
    // Where element [o, i] of B·A goes in the weight: row o of an [out, in] weight, column o of an [in, out] one.
    const [outStride, inStride] = layout === 'outIn' ? [inFeatures, 1] : [1, outFeatures];
    for (let o = 0; o < outFeatures; o++) {
      for (let k = 0; k < s.rank; k++) {
        const coefficient = scale * b[o * s.rank + k];
        if (coefficient === 0) continue;
        const aRow = a.subarray(k * inFeatures, (k + 1) * inFeatures);
        for (let i = 0; i < inFeatures; i++) out[o * outStride + i * inStride] += coefficient * aRow[i];
      }
    }
    merged.set(`${module}.weight`, out);
  }
  return merged;
}
