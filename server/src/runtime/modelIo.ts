// How a causal language model's ONNX graph names and shapes its inputs and outputs: input_ids, the optional
// attention_mask/position_ids/use_cache_branch, and one cache tensor per layer and kind, either separate keys and
// values ([batch, kvHeads, past, headDim]) or GPT-BigCode's fused key_value ([batch, past, 2·headDim]).
import type { FolderConfig } from '../modelFolder/config';

/** The parts of an onnxruntime session that discoverIo reads. */
export interface SessionShape {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly IoMetadata[];
  readonly outputMetadata: readonly IoMetadata[];
}

type IoMetadata =
  | { name: string; isTensor: true; type: string; shape: readonly (number | string)[] }
  | { name: string; isTensor: false };

/** How a loaded graph names its inputs and outputs (found by discoverIo). */
export interface Io {
  hasAttentionMask: boolean;
  hasPositionIds: boolean;
  hasUseCacheBranch: boolean;
  /** The graph takes num_logits_to_keep (logits of only that many last positions; 0: all). */
  hasLogitsToKeep: boolean;
  /**
   * Past input names, and the present output that feeds each one on the next step (none when the graph was
   * loaded without them, for decoding from its new-position outputs: decodingGraph.ts).
   */
  pastInputs: string[];
  presentOutputs: string[];
  /**
   * Outputs holding only the keys and values of the new positions, one per past input, when the graph has them
   * (graphs built by the engine): the runtime then keeps the cache in its own buffers.
   */
  newOutputs?: string[];
  kvType: 'float32' | 'float16';
  kvHeads: number;
  headDim: number;
  /**
   * Cache tensors are [batch, blocks, positions, rowSize] (rank 4) or [batch, positions, rowSize] (rank 3, one
   * block): separate keys and values have kvHeads blocks of headDim, GPT-BigCode's multi-query key_value one
   * block of 2·headDim.
   */
  pastRank: 3 | 4;
  blocks: number;
  rowSize: number;
}

export const NEW_KEY_VALUES = 'new_key_values';

const pastPattern = /^past_key_values\.(\d+)\.(key|value|key_value)$/;
export const LOGITS_TO_KEEP = 'num_logits_to_keep';
const otherInputs = ['input_ids', 'attention_mask', 'position_ids', 'use_cache_branch', LOGITS_TO_KEEP];

export function discoverIo(session: SessionShape, config: FolderConfig, where: string): Io {
  const inputs = new Set(session.inputNames);
  const outputs = new Set(session.outputNames);
  if (!inputs.has('input_ids')) throw new Error(`${where}: not a causal language model (no input_ids input)`);
  if (!outputs.has('logits')) throw new Error(`${where}: not a causal language model (no logits output)`);

  const layers = new Map<number, Set<string>>();
  for (const name of inputs) {
    const m = pastPattern.exec(name);
    if (m) {
      const kinds = layers.get(Number(m[1])) ?? new Set<string>();
      kinds.add(m[2]);
      layers.set(Number(m[1]), kinds);
    } else if (!otherInputs.includes(name)) {
      throw new Error(`${where}: unsupported input ${name}`);
    }
  }
  if (layers.size === 0) throw new Error(`${where}: not a GPT-2-layout model (no past_key_values inputs)`);
  const fused = layers.get(0)?.has('key_value') ?? false;
  const kinds = fused ? ['key_value'] : ['key', 'value'];

  const presentName = (i: number, kind: string) =>
    [`present.${i}.${kind}`, `present_key_values.${i}.${kind}`].find((n) => outputs.has(n));
  const pastInputs: string[] = [];
  const presentOutputs: string[] = [];
  const newOutputs: string[] = [];
  for (let i = 0; i < layers.size; i++) {
    for (const kind of kinds) {
      if (!layers.get(i)?.has(kind)) throw new Error(`${where}: input past_key_values.${i}.${kind} is missing`);
      const present = presentName(i, kind);
      const fresh = `${NEW_KEY_VALUES}.${i}.${kind}`;
      if (!present && !outputs.has(fresh)) throw new Error(`${where}: output present.${i}.${kind} is missing`);
      pastInputs.push(`past_key_values.${i}.${kind}`);
      if (present) presentOutputs.push(present);
      newOutputs.push(fresh);
    }
  }
  if (presentOutputs.length > 0 && presentOutputs.length !== pastInputs.length)
    throw new Error(`${where}: some present outputs are missing`);
  if (layers.size !== config.layers) {
    throw new Error(`${where}: has ${layers.size} layers of past_key_values but config.json says ${config.layers}`);
  }

  // Symbolic dimensions fall back to config.json.
  const meta = session.inputMetadata.find((m) => m.name === pastInputs[0]);
  const shape = meta?.isTensor ? meta.shape : [];
  const type = meta?.isTensor ? meta.type : 'float32';
  if (type !== 'float32' && type !== 'float16')
    throw new Error(`${where}: past_key_values of type ${type} are not supported`);
  const logitsMeta = session.outputMetadata.find((m) => m.name === 'logits');
  if (logitsMeta?.isTensor && logitsMeta.type !== 'float32' && logitsMeta.type !== 'float16') {
    throw new Error(`${where}: logits of type ${logitsMeta.type} are not supported`);
  }
  const pastRank = shape.length === 3 ? 3 : 4;
  const configHeadDim = config.headDim || config.embedding / config.heads;
  const last = shape[pastRank - 1];
  const rowSize = typeof last === 'number' && last > 0 ? last : fused ? 2 * configHeadDim : configHeadDim;
  const blocks = pastRank === 3 ? 1 : typeof shape[1] === 'number' && shape[1] > 0 ? shape[1] : config.kvHeads;
  return {
    hasAttentionMask: inputs.has('attention_mask'),
    hasPositionIds: inputs.has('position_ids'),
    hasUseCacheBranch: inputs.has('use_cache_branch'),
    hasLogitsToKeep: inputs.has(LOGITS_TO_KEEP),
    pastInputs,
    presentOutputs,
    newOutputs: newOutputs.every((n) => outputs.has(n)) ? newOutputs : undefined,
    kvType: type,
    kvHeads: blocks,
    headDim: fused ? rowSize / 2 : rowSize,
    pastRank,
    blocks,
    rowSize,
  };
}

/** The dims of a cache tensor of `rows` sequences and `positions` positions. */
export function pastDims(io: Io, rows: number, positions: number): number[] {
  return io.pastRank === 3 ? [rows, positions, io.rowSize] : [rows, io.blocks, positions, io.rowSize];
}

/** IEEE half-precision values [first, end) as float32. */
export function halfToFloat(data: Uint16Array, first: number, end: number): Float32Array {
  const out = new Float32Array(end - first);
  for (let i = first; i < end; i++) {
    const h = data[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    out[i - first] =
      exponent === 0
        ? sign * 2 ** -14 * (fraction / 1024)
        : exponent === 31
          ? fraction
            ? NaN
            : sign * Infinity
          : sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
  }
  return out;
}

/** Keys or values in host memory: float32, or IEEE half precision as raw 16-bit words. */
export type KvData = Float32Array | Uint16Array;

/** A zeroed array of `size` cache elements of the graph's cache type. */
export function newKvData(io: Pick<Io, 'kvType'>, size: number): KvData {
  return io.kvType === 'float16' ? new Uint16Array(size) : new Float32Array(size);
}

/** Where positions sit in a cache array [rows, blocks, width, rowSize]: the row, the array's width, the first column. */
export interface CacheSpot {
  row: number;
  width: number;
  column: number;
}

/** Copies `count` positions of one row of a cache array to a row of another (or the same) one, block by block. */
export function copyCachePositions(
  io: Pick<Io, 'blocks' | 'rowSize'>,
  source: KvData,
  from: CacheSpot,
  target: KvData,
  to: CacheSpot,
  count: number,
): void {
  const { blocks, rowSize } = io;
  for (let b = 0; b < blocks; b++) {
    const start = ((from.row * blocks + b) * from.width + from.column) * rowSize;
    const at = ((to.row * blocks + b) * to.width + to.column) * rowSize;
    if (source === target) target.copyWithin(at, start, start + count * rowSize);
    else target.set(source.subarray(start, start + count * rowSize), at);
  }
}
