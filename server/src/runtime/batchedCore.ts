// Batched KV-cache decoding inside the inference worker: the keys and values of a batch of left-padded sequences,
// prefill and decode steps over them, rows leaving (select) and joining (concat), and runs on caller-given tensors.
// The main thread's BatchedDecoder (batchedDecoder.ts) keeps the rows' padding and sends it the operations.
import { Tensor as OrtTensor } from 'onnxruntime-node';
import type { FolderConfig } from '../modelFolder/config';
import { type Io, LOGITS_TO_KEEP, halfToFloat, pastDims } from './modelIo';
import type { Feeds, Session, Tensor } from './onnxSession';
import { kvTensor } from './sequenceCore';

/** A batch's past_key_values tensors [rows, …, length, rowSize] in the model's past-input order. */
export interface BatchState {
  pads: number[];
  length: number;
  past: Tensor[];
}

/** A tensor in host memory, named, with its onnxruntime element type. */
export interface RawTensor {
  name: string;
  type: string;
  dims: number[];
  data: ArrayBufferView;
}

export class BatchedCore {
  private readonly fetches: string[];

  constructor(
    readonly session: Session,
    readonly io: Io,
    readonly config: FolderConfig,
  ) {
    this.fetches = ['logits', ...io.presentOutputs];
  }

  async runTensors(inputs: readonly RawTensor[], outputNames: readonly string[]): Promise<RawTensor[]> {
    const feeds: Feeds = {};
    for (const input of inputs)
      feeds[input.name] = new OrtTensor(input.type as 'float32', input.data as Float32Array, input.dims);
    // Not declared to callers (BatchedDecoder.inputs): every position's logits, as in graphs without it.
    if (this.io.hasLogitsToKeep && !feeds[LOGITS_TO_KEEP])
      feeds[LOGITS_TO_KEEP] = new OrtTensor('int64', new BigInt64Array([0n]), []);
    const results = await this.session.run(feeds, outputNames as string[]);
    return outputNames.map((name) => {
      const t = results[name];
      return { name, type: t.type, dims: t.dims.map(Number), data: t.data as ArrayBufferView };
    });
  }

  /** Runs prompts from an empty cache, left-padded to the longest; returns the batch and each last position's logits. */
  async prefill(prompts: readonly (readonly number[])[]): Promise<{ batch: BatchState; logits: Float32Array[] }> {
    const rows = prompts.length;
    const width = Math.max(...prompts.map((p) => p.length));
    const ids = new BigInt64Array(rows * width);
    const mask = new BigInt64Array(rows * width);
    const positions = new BigInt64Array(rows * width);
    const pads: number[] = [];
    prompts.forEach((prompt, row) => {
      const pad = width - prompt.length;
      pads.push(pad);
      for (let i = 0; i < prompt.length; i++) {
        const at = row * width + pad + i;
        ids[at] = BigInt(prompt[i]);
        mask[at] = 1n;
        positions[at] = BigInt(i);
      }
    });
    const empty = kvTensor(this.newData(0), pastDims(this.io, rows, 0));
    const results = await this.runStep(
      ids,
      mask,
      positions,
      [rows, width],
      this.io.pastInputs.map(() => empty),
      false,
    );
    const batch = { pads, length: width, past: this.io.presentOutputs.map((name) => results[name]) };
    return { batch, logits: lastLogits(results.logits, rows) };
  }

  /** One new token per row after what `batch` holds. */
  async step(batch: BatchState, tokens: readonly number[]): Promise<{ batch: BatchState; logits: Float32Array[] }> {
    const rows = batch.pads.length;
    const total = batch.length + 1;
    const ids = BigInt64Array.from(tokens, BigInt);
    const mask = new BigInt64Array(rows * total);
    const positions = new BigInt64Array(rows);
    for (let row = 0; row < rows; row++) {
      positions[row] = BigInt(batch.length - batch.pads[row]);
      mask.fill(1n, row * total + batch.pads[row], (row + 1) * total);
    }
    const results = await this.runStep(ids, mask, positions, [rows, 1], batch.past, true);
    const next = { pads: batch.pads.slice(), length: total, past: this.io.presentOutputs.map((name) => results[name]) };
    return { batch: next, logits: lastLogits(results.logits, rows) };
  }

  /** The given rows, in that order, without the padding columns they all share (copies). */
  select(batch: BatchState, rows: readonly number[]): BatchState {
    const trim = Math.min(...rows.map((row) => batch.pads[row]));
    const length = batch.length - trim;
    const { blocks, rowSize } = this.io;
    const past = batch.past.map((tensor) => {
      const source = tensor.data as Float32Array | Uint16Array;
      const target = this.newData(rows.length * blocks * length * rowSize);
      rows.forEach((row, to) => {
        for (let b = 0; b < blocks; b++) {
          const from = ((row * blocks + b) * batch.length + trim) * rowSize;
          target.set(source.subarray(from, from + length * rowSize), (to * blocks + b) * length * rowSize);
        }
      });
      return kvTensor(target, pastDims(this.io, rows.length, length));
    });
    return { pads: rows.map((row) => batch.pads[row] - trim), length, past };
  }

  /** The rows of all the batches, in order, each padded on the left to the longest (copies). */
  concat(batches: readonly BatchState[]): BatchState {
    if (batches.length === 1) return batches[0];
    const length = Math.max(...batches.map((b) => b.length));
    const { blocks, rowSize } = this.io;
    const rows = batches.reduce((n, b) => n + b.pads.length, 0);
    const past = batches[0].past.map((_, i) => {
      const target = this.newData(rows * blocks * length * rowSize);
      let to = 0;
      for (const part of batches) {
        const source = part.past[i].data as Float32Array | Uint16Array;
        const shift = length - part.length;
        for (let row = 0; row < part.pads.length; row++, to++) {
          for (let b = 0; b < blocks; b++) {
            const from = (row * blocks + b) * part.length * rowSize;
            target.set(
              source.subarray(from, from + part.length * rowSize),
              ((to * blocks + b) * length + shift) * rowSize,
            );
          }
        }
      }
      return kvTensor(target, pastDims(this.io, rows, length));
    });
    const pads = batches.flatMap((b) => b.pads.map((p) => p + length - b.length));
    return { pads, length, past };
  }

  private async runStep(
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

  private newData(size: number): Float32Array | Uint16Array {
    return this.io.kvType === 'float16' ? new Uint16Array(size) : new Float32Array(size);
  }
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
