// One loaded language model inside the inference worker, run a step at a time with a key/value cache. Graphs that
// output the new positions' keys and values (the engine's) keep each cache in buffers with some room to grow, fed
// back whole with the unwritten positions masked, so that onnxruntime does not hand back (copy) the whole cache
// every step; other graphs feed back the present tensors onnxruntime returns.
import { Tensor as OrtTensor } from 'onnxruntime-node';
import type { FolderConfig } from '../modelFolder/config';
import {
  type CacheSpot,
  type Io,
  type KvData,
  LOGITS_TO_KEEP,
  copyCachePositions,
  halfToFloat,
  newKvData,
  pastDims,
} from './modelIo';
import type { Feeds, Session, Tensor } from './onnxSession';

/**
 * Keys and values with room to grow, one array per past input, [blocks, capacity, rowSize] each. Positions below
 * `filled` are written once and never changed while other caches share the buffers, so caches of any length up
 * to `filled` can share them; a cache holding exactly `filled` positions may append in place, and so may a shorter
 * one that is the buffers' only holder (the positions after its own are then nobody's).
 */
class CacheBuffers {
  filled = 0;
  /** Caches whose positions live in these buffers. */
  holders = 1;
  constructor(
    readonly capacity: number,
    readonly data: KvData[],
  ) {}
}

/** The worker's side of a KvCache: how many positions it holds and where their keys and values are. */
export interface CacheState {
  length: number;
  /** Set for graphs with new-position outputs. */
  buffers?: CacheBuffers;
  /** Otherwise the present tensors of the last run, [1, …, length, rowSize]. */
  tensors?: Tensor[];
}

/**
 * Room left after the positions held when buffers are (re)allocated: every masked position costs attention work
 * each step, so the room is small (an eighth, at least GROWTH_STEP), and the buffers grow by copying when full.
 */
const GROWTH_STEP = 64;
function capacityFor(positions: number): number {
  const room = Math.max(GROWTH_STEP, positions >> 3);
  return Math.ceil((positions + room) / GROWTH_STEP) * GROWTH_STEP;
}

export class SequenceModel {
  private readonly positions: BigInt64Array;
  private readonly ones: BigInt64Array;
  private readonly buffered: boolean;
  private readonly fetches: string[];

  constructor(
    readonly session: Session,
    readonly io: Io,
    readonly config: FolderConfig,
  ) {
    this.positions = new BigInt64Array(config.contextLength);
    for (let i = 0; i < config.contextLength; i++) this.positions[i] = BigInt(i);
    this.ones = new BigInt64Array(config.contextLength).fill(1n);
    this.buffered = io.newOutputs !== undefined && io.hasAttentionMask && io.hasPositionIds;
    this.fetches = ['logits', ...(this.buffered ? io.newOutputs! : io.presentOutputs)];
  }

  release(): Promise<void> {
    return this.session.release();
  }

  newCache(): CacheState {
    if (this.buffered) return { length: 0 };
    const empty = kvTensor(newKvData(this.io, 0), pastDims(this.io, 1, 0));
    return { length: 0, tensors: this.io.pastInputs.map(() => empty) };
  }

  /** A cache holding the first `length` positions of `state` (shares its buffers; copies present tensors). */
  derive(state: CacheState, length: number): CacheState {
    if (length > state.length) throw new Error(`cache prefix ${length} is outside 0..${state.length}`);
    if (state.buffers) state.buffers.holders++;
    if (state.buffers || !state.tensors) return { length, buffers: state.buffers };
    if (length === state.length) return { length, tensors: state.tensors.slice() };
    return { length, tensors: state.tensors.map((t) => this.slicePositions(t, state.length, length)) };
  }

  /** A released cache no longer holds its buffers. */
  forget(state: CacheState): void {
    this.hold(state, undefined);
  }

  /** Runs `ids` after the cache's positions, appends them to it, and returns a copy of the logits asked for. */
  async run(state: CacheState, ids: readonly number[], allPositions: boolean): Promise<Float32Array> {
    const n = ids.length;
    const past = state.length;
    const total = past + n;
    const feeds: Feeds = { input_ids: new OrtTensor('int64', BigInt64Array.from(ids, BigInt), [1, n]) };
    if (this.io.hasPositionIds) feeds.position_ids = new OrtTensor('int64', this.positions.slice(past, total), [1, n]);
    if (this.io.hasUseCacheBranch)
      feeds.use_cache_branch = new OrtTensor('bool', new Uint8Array([past > 0 ? 1 : 0]), [1]);
    if (this.io.hasLogitsToKeep)
      feeds[LOGITS_TO_KEEP] = new OrtTensor('int64', new BigInt64Array([allPositions ? 0n : 1n]), []);
    const pastInputs = this.io.pastInputs;
    if (this.buffered) {
      // A short prefix of longer buffers would be fed every column of them, attended to though masked (a prompt
      // after 2 reused positions of 217 ran 30% slower than with none); the append would copy them anyway.
      if (state.buffers && state.buffers.filled !== past && past * 2 < state.buffers.capacity)
        this.hold(state, this.copyOf(state.buffers, past, past));
      const capacity = state.buffers?.capacity ?? 0;
      const mask = new BigInt64Array(capacity + n);
      mask.fill(1n, 0, past).fill(1n, capacity);
      feeds.attention_mask = new OrtTensor('int64', mask, [1, capacity + n]);
      const dims = pastDims(this.io, 1, capacity);
      const data = state.buffers?.data ?? pastInputs.map(() => newKvData(this.io, 0));
      pastInputs.forEach((name, i) => (feeds[name] = kvTensor(data[i], dims)));
    } else {
      if (this.io.hasAttentionMask)
        feeds.attention_mask = new OrtTensor('int64', this.ones.slice(0, total), [1, total]);
      pastInputs.forEach((name, i) => (feeds[name] = state.tensors![i]));
    }

    const results = await this.session.run(feeds, this.fetches);

    if (this.buffered)
      this.append(
        state,
        this.io.newOutputs!.map((name) => results[name].data as KvData),
        n,
      );
    else state.tensors = this.io.presentOutputs.map((name) => results[name]);
    state.length = total;

    const logits = results.logits;
    const vocab = logits.dims[logits.dims.length - 1];
    const returned = logits.dims[logits.dims.length - 2]; // n, or 1 with num_logits_to_keep
    const first = allPositions ? 0 : (returned - 1) * vocab;
    const end = returned * vocab;
    if (logits.type === 'float16') return halfToFloat(logits.data as Uint16Array, first, end);
    return (logits.data as Float32Array).slice(first, end);
  }

  /** Writes the new positions' rows ([blocks, n, rowSize] per past input) after the cache's, growing if needed. */
  private append(state: CacheState, rows: KvData[], n: number): void {
    const past = state.length;
    let target = state.buffers;
    const ownsTheRest = target !== undefined && (target.filled === past || target.holders === 1);
    if (!target || !ownsTheRest || target.capacity < past + n)
      target = this.copyOf(state.buffers, past, capacityFor(past + n));
    rows.forEach((data, i) =>
      copyCachePositions(this.io, data, start(n), target.data[i], { row: 0, width: target.capacity, column: past }, n),
    );
    target.filled = past + n;
    this.hold(state, target);
  }

  /** Points `state` at new buffers (which count it as their holder already) or at none. */
  private hold(state: CacheState, buffers: CacheBuffers | undefined): void {
    if (state.buffers === buffers) return;
    if (state.buffers) state.buffers.holders--;
    state.buffers = buffers;
  }

  /** New buffers with room for `capacity` positions, holding the first `positions` of `source` (none without one). */
  private copyOf(source: CacheBuffers | undefined, positions: number, capacity: number): CacheBuffers {
    const { blocks, rowSize } = this.io;
    const copy = new CacheBuffers(
      capacity,
      this.io.pastInputs.map(() => newKvData(this.io, blocks * capacity * rowSize)),
    );
    if (source && positions > 0)
      copy.data.forEach((data, i) =>
        copyCachePositions(this.io, source.data[i], start(source.capacity), data, start(capacity), positions),
      );
    copy.filled = source ? positions : 0;
    return copy;
  }

  /** The first `length` positions of a present tensor holding `held`. */
  private slicePositions(t: Tensor, held: number, length: number): Tensor {
    const { blocks, rowSize } = this.io;
    const target = newKvData(this.io, blocks * length * rowSize);
    copyCachePositions(this.io, t.data as KvData, start(held), target, start(length), length);
    return kvTensor(target, pastDims(this.io, 1, length));
  }
}

/** The first column of the one row of a cache array of this width. */
function start(width: number): CacheSpot {
  return { row: 0, width, column: 0 };
}

export function kvTensor(data: KvData, dims: readonly number[]): Tensor {
  return data instanceof Uint16Array ? new OrtTensor('float16', data, dims) : new OrtTensor('float32', data, dims);
}
