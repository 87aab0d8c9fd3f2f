// Batched KV-cache decoding inside the inference worker: the keys and values of a batch of sequences, prefill and
// decode steps over them, rows leaving (select) and joining (concat), and runs on caller-given tensors. Each row's
// keys and values sit from column 0 of buffers with room to grow, fed whole with the unused columns masked, and
// are written in place: a step copies only the new position, a row leaving or joining only that row. Prompts of
// rows that left stay in a prompt cache (promptCache.ts), so that a prompt starting the same way runs only its rest.
// The main thread's BatchedDecoder (batchedDecoder.ts) keeps the rows' lengths and sends it the operations.
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
import { PromptCache, defaultPromptCachePositions } from './promptCache';
import { kvTensor } from './sequenceCore';

const BATCH_ROOM = 32;

/**
 * A batch's keys and values: row r holds `lengths[r]` positions from column 0 of buffers [rowRoom, blocks, width,
 * rowSize], one per past input, whose first rows are in use. The step, select or concat that takes a batch
 * consumes it (its buffers move to the result).
 */
export interface BatchState {
  lengths: number[];
  width: number;
  rowRoom: number;
  data: KvData[];
  spent: boolean;
}

/** A tensor in host memory, named, with its onnxruntime element type. */
export interface RawTensor {
  name: string;
  type: string;
  dims: number[];
  data: ArrayBufferView;
}

export class BatchedCore {
  /** The outputs holding the new positions' keys and values: new_key_values, else the present tensors. */
  private readonly newRows: string[];
  private readonly fetches: string[];
  /**
   * Graphs without attention_mask and position_ids cannot mask unused columns: their one row is fed exactly the
   * positions it holds, and the present tensors become the next step's cache.
   */
  private readonly exact: boolean;
  /** The session runTensors uses when openFull is given, opened on first use. */
  private full: Promise<Session> | undefined;
  private readonly prompts: PromptCache;

  constructor(
    readonly session: Session,
    readonly io: Io,
    readonly config: FolderConfig,
    /** Opens the graph as the file declares it, for runTensors, when `session` lacks some of its outputs. */
    private readonly openFull?: () => Promise<Session>,
    /** Most positions the prompt cache holds (0: none; undefined: defaultPromptCachePositions). */
    promptCachePositions?: number,
  ) {
    this.exact = !(io.hasAttentionMask && io.hasPositionIds);
    this.newRows = io.newOutputs && !this.exact ? io.newOutputs : io.presentOutputs;
    this.fetches = ['logits', ...this.newRows];
    this.prompts = new PromptCache(this.exact ? 0 : (promptCachePositions ?? defaultPromptCachePositions(io)));
  }

  async release(): Promise<void> {
    await this.session.release();
    if (this.full) await (await this.full).release();
  }

  async runTensors(inputs: readonly RawTensor[], outputNames: readonly string[]): Promise<RawTensor[]> {
    const feeds: Feeds = {};
    for (const input of inputs)
      feeds[input.name] = new OrtTensor(input.type as 'float32', input.data as Float32Array, input.dims);
    // Not declared to callers (BatchedDecoder.inputs): every position's logits, as in graphs without it.
    if (this.io.hasLogitsToKeep && !feeds[LOGITS_TO_KEEP])
      feeds[LOGITS_TO_KEEP] = new OrtTensor('int64', new BigInt64Array([0n]), []);
    const session = this.openFull ? await (this.full ??= this.openFull()) : this.session;
    const results = await session.run(feeds, outputNames as string[]);
    return outputNames.map((name) => {
      const t = results[name];
      return { name, type: t.type, dims: t.dims.map(Number), data: t.data as ArrayBufferView };
    });
  }

  /**
   * Runs prompts, left-padded to the longest, each after the longest prefix of it the prompt cache holds; returns
   * the batch, each last position's logits, and how many tokens of each prompt came from the cache.
   */
  async prefill(
    prompts: readonly (readonly number[])[],
  ): Promise<{ batch: BatchState; logits: Float32Array[]; reused: number[] }> {
    const rows = prompts.length;
    const { blocks, rowSize } = this.io;
    const hits = prompts.map((prompt) => this.prompts.longestPrefix(prompt));
    const reused = hits.map((hit) => hit?.length ?? 0);
    const past = Math.max(...reused);
    const suffixes = prompts.map((prompt, row) => prompt.slice(reused[row]));
    const width = Math.max(...suffixes.map((suffix) => suffix.length));
    const total = past + width;
    const ids = new BigInt64Array(rows * width);
    const mask = new BigInt64Array(rows * total);
    const positions = new BigInt64Array(rows * width);
    suffixes.forEach((suffix, row) => {
      const pad = width - suffix.length;
      mask.fill(1n, row * total, row * total + reused[row]);
      mask.fill(1n, row * total + past + pad, (row + 1) * total);
      for (let i = 0; i < suffix.length; i++) {
        ids[row * width + pad + i] = BigInt(suffix[i]);
        positions[row * width + pad + i] = BigInt(reused[row] + i);
      }
    });
    const cached = this.io.pastInputs.map(() => newKvData(this.io, rows * blocks * past * rowSize));
    hits.forEach((hit, row) => {
      if (hit)
        cached.forEach((data, i) =>
          copyCachePositions(
            this.io,
            hit.prompt.data[i],
            spot(0, hit.prompt.ids.length),
            data,
            spot(row, past),
            hit.length,
          ),
        );
    });
    const pastTensors = cached.map((data) => kvTensor(data, pastDims(this.io, rows, past)));
    const results = await this.run(ids, mask, positions, [rows, width], pastTensors, past > 0);
    const lengths = prompts.map((p) => p.length);
    const batch = this.allocate(lengths, rows, this.roomFor(Math.max(...lengths)));
    this.newRows.forEach((name, i) => {
      const t = results[name];
      const held = t.dims[this.io.pastRank - 2]; // the new positions (new_key_values), or past + new (present)
      const source = t.data as KvData;
      suffixes.forEach((suffix, row) => {
        if (reused[row] > 0)
          copyCachePositions(this.io, cached[i], spot(row, past), batch.data[i], spot(row, batch.width), reused[row]);
        copyCachePositions(
          this.io,
          source,
          spot(row, held, held - suffix.length),
          batch.data[i],
          spot(row, batch.width, reused[row]),
          suffix.length,
        );
      });
    });
    return { batch, logits: lastLogits(results.logits, rows), reused };
  }

  /**
   * Keeps the first ids.length positions of the given rows in the prompt cache (the batch stays usable; the main
   * thread's BatchedDecoder.remember checked the rows).
   */
  remember(batch: BatchState, rows: readonly { row: number; ids: readonly number[] }[]): void {
    if (this.prompts.limit === 0) return;
    checkLive(batch);
    const { blocks, rowSize } = this.io;
    for (const { row, ids } of rows) {
      const n = ids.length;
      const data = batch.data.map((source) => {
        const target = newKvData(this.io, blocks * n * rowSize);
        copyCachePositions(this.io, source, spot(row, batch.width), target, spot(0, n), n);
        return target;
      });
      this.prompts.add({ ids: [...ids], data });
    }
  }

  /** One new token per row after what `batch` holds (consumes it). */
  async step(batch: BatchState, tokens: readonly number[]): Promise<{ batch: BatchState; logits: Float32Array[] }> {
    this.take(batch);
    const rows = batch.lengths.length;
    const longest = Math.max(...batch.lengths);
    if (this.exact) return this.exactStep(batch, tokens);
    const state = longest < batch.width ? batch : this.reshaped(batch, batch.rowRoom, this.roomFor(longest + 1));
    const width = state.width;
    const mask = new BigInt64Array(rows * (width + 1));
    const positions = new BigInt64Array(rows);
    state.lengths.forEach((length, row) => {
      positions[row] = BigInt(length);
      mask.fill(1n, row * (width + 1), row * (width + 1) + length);
      mask[row * (width + 1) + width] = 1n;
    });
    const dims = pastDims(this.io, rows, width);
    const used = rows * this.io.blocks * width * this.io.rowSize;
    const past = state.data.map((data) => kvTensor(data.subarray(0, used), dims));
    const ids = BigInt64Array.from(tokens, BigInt);
    const results = await this.run(ids, mask, positions, [rows, 1], past, true);
    this.newRows.forEach((name, i) => {
      const t = results[name];
      const held = t.dims[this.io.pastRank - 2]; // 1 for new_key_values, width + 1 for a present tensor
      const source = t.data as KvData;
      state.lengths.forEach((length, row) =>
        copyCachePositions(this.io, source, spot(row, held, held - 1), state.data[i], spot(row, width, length), 1),
      );
    });
    const next = { ...state, lengths: state.lengths.map((n) => n + 1), spent: false };
    state.spent = true;
    return { batch: next, logits: lastLogits(results.logits, rows) };
  }

  /** The given rows, in that order (consumes the batch; rows that keep their place are not copied). */
  select(batch: BatchState, rows: readonly number[]): BatchState {
    this.take(batch);
    const lengths = rows.map((row) => batch.lengths[row]);
    const width = this.roomFor(Math.max(...lengths));
    // In place unless a row would be overwritten before it is read, or the buffers are far wider than needed.
    const inPlace =
      width > (batch.width * 3) / 4 &&
      rows.every((from, to) => from === to || (from > to && !rows.slice(to + 1).includes(to)));
    if (inPlace) {
      rows.forEach((from, to) => {
        if (from !== to)
          batch.data.forEach((data) =>
            copyCachePositions(this.io, data, spot(from, batch.width), data, spot(to, batch.width), lengths[to]),
          );
      });
      return { ...batch, lengths, spent: false };
    }
    const selected = this.allocate(lengths, rows.length, width);
    batch.data.forEach((data, i) =>
      rows.forEach((from, to) =>
        copyCachePositions(this.io, data, spot(from, batch.width), selected.data[i], spot(to, width), lengths[to]),
      ),
    );
    return selected;
  }

  /** The rows of all the batches, in order (consumes them; the first one's rows stay where they are). */
  concat(batches: readonly BatchState[]): BatchState {
    for (const batch of batches) this.take(batch);
    const [first, ...rest] = batches;
    if (rest.length === 0) return { ...first, spent: false };
    const lengths = batches.flatMap((b) => b.lengths);
    const needed = Math.max(...lengths) + 1;
    const width = needed <= first.width ? first.width : this.roomFor(needed);
    const rowRoom = lengths.length <= first.rowRoom ? first.rowRoom : Math.max(lengths.length, 2 * first.rowRoom);
    const joined = rowRoom === first.rowRoom && width === first.width ? first : this.reshaped(first, rowRoom, width);
    let to = first.lengths.length;
    for (const part of rest) {
      part.lengths.forEach((length, row) => {
        part.data.forEach((data, i) =>
          copyCachePositions(this.io, data, spot(row, part.width), joined.data[i], spot(to, width), length),
        );
        to++;
      });
    }
    return { lengths, width, rowRoom, data: joined.data, spent: false };
  }

  /** A single row's step for a graph that cannot mask (`exact`): the present tensors are the new cache. */
  private async exactStep(
    batch: BatchState,
    tokens: readonly number[],
  ): Promise<{ batch: BatchState; logits: Float32Array[] }> {
    const [length] = batch.lengths;
    const past = batch.data.map((data) => kvTensor(data, pastDims(this.io, 1, length)));
    const none = new BigInt64Array(0);
    const results = await this.run(BigInt64Array.from(tokens, BigInt), none, none, [1, 1], past, true);
    const data = this.io.presentOutputs.map((name) => results[name].data as KvData);
    return {
      batch: { lengths: [length + 1], width: length + 1, rowRoom: 1, data, spent: false },
      logits: lastLogits(results.logits, 1),
    };
  }

  /**
   * Columns for rows of up to `positions` positions: room for BATCH_ROOM more (every masked column costs attention
   * work in every row, and growing copies the batch), none for graphs that cannot mask.
   */
  private roomFor(positions: number): number {
    return this.exact ? positions : Math.ceil((positions + BATCH_ROOM) / BATCH_ROOM) * BATCH_ROOM;
  }

  private take(batch: BatchState): void {
    checkLive(batch);
    batch.spent = true;
  }

  /** Empty buffers for rows of these lengths. */
  private allocate(lengths: number[], rowRoom: number, width: number): BatchState {
    const size = rowRoom * this.io.blocks * width * this.io.rowSize;
    return { lengths, width, rowRoom, data: this.io.pastInputs.map(() => newKvData(this.io, size)), spent: false };
  }

  /** The batch's rows in new buffers of the given room. */
  private reshaped(batch: BatchState, rowRoom: number, width: number): BatchState {
    const target = this.allocate(batch.lengths, rowRoom, width);
    batch.data.forEach((data, i) =>
      batch.lengths.forEach((length, row) =>
        copyCachePositions(this.io, data, spot(row, batch.width), target.data[i], spot(row, width), length),
      ),
    );
    return target;
  }

  private async run(
    ids: BigInt64Array,
    mask: BigInt64Array,
    positions: BigInt64Array,
    dims: [number, number],
    past: readonly Tensor[],
    hasPast: boolean,
  ): Promise<Record<string, Tensor>> {
    const feeds: Feeds = { input_ids: new OrtTensor('int64', ids, dims) };
    if (this.io.hasAttentionMask) feeds.attention_mask = new OrtTensor('int64', mask, [dims[0], mask.length / dims[0]]);
    if (this.io.hasPositionIds) feeds.position_ids = new OrtTensor('int64', positions, dims);
    if (this.io.hasUseCacheBranch)
      feeds.use_cache_branch = new OrtTensor('bool', new Uint8Array([hasPast ? 1 : 0]), [1]);
    if (this.io.hasLogitsToKeep) feeds[LOGITS_TO_KEEP] = new OrtTensor('int64', new BigInt64Array([1n]), []);
    this.io.pastInputs.forEach((name, i) => (feeds[name] = past[i]));
    return this.session.run(feeds, this.fetches);
  }
}

function checkLive(batch: BatchState): void {
  if (batch.spent) throw new Error('the batch was consumed by an earlier step, select or concat');
}

/** Where positions sit in a batch's buffers: a row of buffers this wide, from a column (0 by default). */
function spot(row: number, width: number, column = 0): CacheSpot {
  return { row, width, column };
}

/** Copies of the logits of the last position of each row. */
function lastLogits(logits: Tensor, rows: number): Float32Array[] {
  const vocab = logits.dims[logits.dims.length - 1];
  const width = logits.dims[logits.dims.length - 2];
  const out: Float32Array[] = [];
  for (let row = 0; row < rows; row++) {
    const first = (row * width + width - 1) * vocab;
    out.push(
      logits.type === 'float16'
        ? halfToFloat(logits.data as Uint16Array, first, first + vocab)
        : (logits.data as Float32Array).slice(first, first + vocab),
    );
  }
  return out;
}
