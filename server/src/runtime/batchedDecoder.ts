// Batched KV-cache decoding for the HTTP service: sequences of different lengths share one ONNX run, left-padded
// and masked with attention_mask/position_ids; sequences join (after a batched prefill) and leave between steps.
// Also runs the graph on caller-given tensors (Open Inference Protocol) and describes its declared inputs/outputs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tensor as OrtTensor } from 'onnxruntime-node';
import { type FolderConfig, readFolderConfig } from '../modelFolder/config';
import { type Io, ONNX_CANDIDATES, discoverIo, halfToFloat } from './languageModel';
import { type Feeds, type Session, type Tensor, createSession } from './onnxSession';

/** Tensor element types by their Open Inference Protocol / Triton name. */
export type TensorDatatype = 'FP32' | 'FP16' | 'FP64' | 'INT64' | 'INT32' | 'INT8' | 'UINT8' | 'BOOL';

/** A graph input or output as the ONNX file declares it: -1 for a dynamic dimension, its symbol in `symbols`. */
export interface TensorSpec {
  name: string;
  datatype: TensorDatatype;
  shape: number[];
  /** The symbolic name of each dynamic dimension (e.g. "batch_size"), undefined for fixed or unnamed ones. */
  symbols: (string | undefined)[];
}

export type TensorData =
  | Float32Array
  | Float64Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int8Array
  | Uint8Array;

/** A tensor in host memory, named, with its OIP datatype. */
export interface HostTensor {
  name: string;
  datatype: TensorDatatype;
  shape: number[];
  data: TensorData;
}

export interface BatchedDecoderOptions {
  /** Threads for one op (0: onnxruntime chooses). */
  intraOpThreads?: number;
}

const ortToDatatype: Record<string, TensorDatatype> = {
  float32: 'FP32',
  float16: 'FP16',
  float64: 'FP64',
  int64: 'INT64',
  int32: 'INT32',
  int8: 'INT8',
  uint8: 'UINT8',
  bool: 'BOOL',
};
const datatypeToOrt: Record<TensorDatatype, string> = {
  FP32: 'float32',
  FP16: 'float16',
  FP64: 'float64',
  INT64: 'int64',
  INT32: 'int32',
  INT8: 'int8',
  UINT8: 'uint8',
  BOOL: 'bool',
};

/**
 * The keys and values of a batch of sequences: each row is left-padded by `pads[row]` masked positions, so that
 * every row's newest token sits in the last column. Rows are in the order the caller keeps its sequences in.
 */
export class DecodeBatch {
  /** @internal Created by BatchedDecoder. */
  constructor(
    /** @internal */ readonly owner: object,
    /** Padding positions at the start of each row. */
    readonly pads: number[],
    /** Positions held per row, padding included. */
    readonly length: number,
    /** @internal past_key_values tensors [rows, heads, length, headDim], in the model's past-input order. */
    readonly past: Tensor[],
  ) {}

  get rows(): number {
    return this.pads.length;
  }

  /** Real (unpadded) tokens held by a row. */
  tokensIn(row: number): number {
    return this.length - this.pads[row];
  }
}

export class BatchedDecoder {
  /** The graph's inputs and outputs as declared (in session order). */
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  /** True when rows of different lengths can share a run (the graph takes attention_mask and position_ids). */
  readonly canBatch: boolean;
  private readonly fetches: string[];
  private disposed = false;
  private running = 0;

  static async load(modelDir: string, options: BatchedDecoderOptions = {}): Promise<BatchedDecoder> {
    if (!fs.existsSync(modelDir) || !fs.statSync(modelDir).isDirectory())
      throw new Error(`${modelDir}: model folder not found`);
    const config = readFolderConfig(modelDir);
    const onnxFile = ONNX_CANDIDATES.find((f) => fs.existsSync(path.join(modelDir, f)));
    if (!onnxFile) throw new Error(`${modelDir}: ${ONNX_CANDIDATES[0]} is missing`);
    const session = await createSession(path.join(modelDir, onnxFile), {
      intraOpThreads: options.intraOpThreads ?? 0,
    }).catch((e: unknown) => {
      throw new Error(`${modelDir}: ${onnxFile} could not be loaded: ${e instanceof Error ? e.message : String(e)}`);
    });
    try {
      return new BatchedDecoder(
        modelDir,
        onnxFile,
        config,
        session,
        discoverIo(session, config, `${modelDir}: ${onnxFile}`),
      );
    } catch (e) {
      await session.release();
      throw e;
    }
  }

  private constructor(
    readonly modelDir: string,
    /** The ONNX file that was loaded, relative to modelDir. */
    readonly onnxFile: string,
    readonly config: FolderConfig,
    private readonly session: Session,
    private readonly io: Io,
  ) {
    this.inputs = session.inputMetadata.map(describe);
    this.outputs = session.outputMetadata.map(describe);
    this.canBatch = io.hasAttentionMask && io.hasPositionIds;
    this.fetches = ['logits', ...io.presentOutputs];
  }

  /** Runs the graph on the given inputs and returns the requested outputs (all when `outputNames` is empty). */
  async runTensors(inputs: readonly HostTensor[], outputNames: readonly string[] = []): Promise<HostTensor[]> {
    const feeds: Feeds = {};
    for (const input of inputs)
      feeds[input.name] = new OrtTensor(
        datatypeToOrt[input.datatype] as 'float32',
        input.data as Float32Array,
        input.shape,
      );
    const names = outputNames.length ? [...outputNames] : this.outputs.map((o) => o.name);
    const results = await this.run(feeds, names);
    return names.map((name) => {
      const t = results[name];
      const datatype = ortToDatatype[t.type];
      if (!datatype) throw new Error(`output ${name} has unsupported type ${t.type}`);
      return { name, datatype, shape: t.dims.map(Number), data: t.data as TensorData };
    });
  }

  /**
   * Runs several prompts (each at least one token) from an empty cache in one run, left-padded to the longest.
   * Returns the new batch and, per prompt, the logits of its last position.
   */
  async prefill(prompts: readonly (readonly number[])[]): Promise<{ batch: DecodeBatch; logits: Float32Array[] }> {
    const rows = prompts.length;
    if (rows === 0) throw new Error('prefill needs at least one prompt');
    if (rows > 1 && !this.canBatch)
      throw new Error(`${this.modelDir}: the graph has no attention_mask/position_ids, so it cannot batch`);
    const width = Math.max(...prompts.map((p) => p.length));
    if (width === 0) throw new Error('prefill needs at least one token per prompt');
    if (width > this.config.contextLength)
      throw new Error(`${width} tokens exceed the model's context of ${this.config.contextLength}`);
    const ids = new BigInt64Array(rows * width);
    const mask = new BigInt64Array(rows * width);
    const positions = new BigInt64Array(rows * width);
    const pads: number[] = [];
    prompts.forEach((prompt, row) => {
      const pad = width - prompt.length;
      pads.push(pad);
      for (let i = 0; i < prompt.length; i++) {
        const at = row * width + pad + i;
        ids[at] = BigInt(this.checkId(prompt[i]));
        mask[at] = 1n;
        positions[at] = BigInt(i);
      }
    });
    const emptyPast = this.emptyPast(rows);
    const results = await this.runStep(ids, mask, positions, [rows, width], emptyPast, false);
    const batch = new DecodeBatch(
      this,
      pads,
      width,
      this.io.presentOutputs.map((name) => results[name]),
    );
    return { batch, logits: this.lastLogits(results.logits, rows, width) };
  }

  /** Runs one new token per row after what `batch` holds, and returns the new batch and each row's logits. */
  async step(batch: DecodeBatch, tokens: readonly number[]): Promise<{ batch: DecodeBatch; logits: Float32Array[] }> {
    this.checkBatch(batch);
    const rows = batch.rows;
    if (tokens.length !== rows) throw new Error(`step got ${tokens.length} tokens for ${rows} rows`);
    const total = batch.length + 1;
    const ids = new BigInt64Array(rows);
    const mask = new BigInt64Array(rows * total);
    const positions = new BigInt64Array(rows);
    for (let row = 0; row < rows; row++) {
      const held = batch.tokensIn(row);
      if (held + 1 > this.config.contextLength)
        throw new Error(`row ${row}: ${held + 1} tokens exceed the model's context of ${this.config.contextLength}`);
      ids[row] = BigInt(this.checkId(tokens[row]));
      positions[row] = BigInt(held);
      mask.fill(1n, row * total + batch.pads[row], (row + 1) * total);
    }
    const results = await this.runStep(ids, mask, positions, [rows, 1], batch.past, true);
    const next = new DecodeBatch(
      this,
      batch.pads.slice(),
      total,
      this.io.presentOutputs.map((name) => results[name]),
    );
    return { batch: next, logits: this.lastLogits(results.logits, rows, 1) };
  }

  /**
   * A batch of the given rows of `batch`, in that order, without the padding columns they all share (copies
   * the keys and values).
   */
  select(batch: DecodeBatch, rows: readonly number[]): DecodeBatch {
    this.checkBatch(batch);
    if (rows.length === 0) throw new Error('select needs at least one row');
    for (const row of rows)
      if (!(Number.isInteger(row) && row >= 0 && row < batch.rows)) throw new Error(`row ${row} is not in the batch`);
    const trim = Math.min(...rows.map((row) => batch.pads[row]));
    const length = batch.length - trim;
    const heads = this.io.kvHeads;
    const headDim = this.io.headDim;
    const past = batch.past.map((tensor) => {
      const source = tensor.data as Float32Array | Uint16Array;
      const target = newLike(source, rows.length * heads * length * headDim);
      rows.forEach((row, to) => {
        for (let h = 0; h < heads; h++) {
          const from = ((row * heads + h) * batch.length + trim) * headDim;
          target.set(source.subarray(from, from + length * headDim), (to * heads + h) * length * headDim);
        }
      });
      return kvTensor(target, [rows.length, heads, length, headDim]);
    });
    return new DecodeBatch(
      this,
      rows.map((row) => batch.pads[row] - trim),
      length,
      past,
    );
  }

  /** The rows of all the batches, in order, each padded on the left to the longest (copies). */
  concat(...batches: DecodeBatch[]): DecodeBatch {
    if (batches.length === 0) throw new Error('concat needs at least one batch');
    for (const batch of batches) this.checkBatch(batch);
    if (batches.length === 1) return batches[0];
    if (!this.canBatch)
      throw new Error(`${this.modelDir}: the graph has no attention_mask/position_ids, so it cannot batch`);
    const length = Math.max(...batches.map((b) => b.length));
    const heads = this.io.kvHeads;
    const headDim = this.io.headDim;
    const rows = batches.reduce((n, b) => n + b.rows, 0);
    const past = batches[0].past.map((firstTensor, i) => {
      const target = newLike(firstTensor.data as Float32Array | Uint16Array, rows * heads * length * headDim);
      let to = 0;
      for (const part of batches) {
        const source = part.past[i].data as Float32Array | Uint16Array;
        const shift = length - part.length;
        for (let row = 0; row < part.rows; row++, to++) {
          for (let h = 0; h < heads; h++) {
            const from = (row * heads + h) * part.length * headDim;
            target.set(
              source.subarray(from, from + part.length * headDim),
              ((to * heads + h) * length + shift) * headDim,
            );
          }
        }
      }
      return kvTensor(target, [rows, heads, length, headDim]);
    });
    const pads = batches.flatMap((b) => b.pads.map((p) => p + length - b.length));
    return new DecodeBatch(this, pads, length, past);
  }

  /** Releases the session; waits for runs in progress first. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    while (this.running > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await this.session.release();
  }

  private async run(feeds: Feeds, fetches: readonly string[]): Promise<Record<string, Tensor>> {
    if (this.disposed) throw new Error(`${this.modelDir}: the model has been disposed`);
    this.running++;
    try {
      return await this.session.run(feeds, fetches as string[]);
    } finally {
      this.running--;
    }
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
    this.io.pastInputs.forEach((name, i) => (feeds[name] = past[i]));
    return this.run(feeds, this.fetches);
  }

  /** The logits of the last position of each row, as views of the output (or converted copies for float16). */
  private lastLogits(logits: Tensor, rows: number, width: number): Float32Array[] {
    const vocab = logits.dims[logits.dims.length - 1];
    const out: Float32Array[] = [];
    for (let row = 0; row < rows; row++) {
      const first = (row * width + width - 1) * vocab;
      out.push(
        logits.type === 'float16'
          ? halfToFloat(logits.data as Uint16Array, first, first + vocab)
          : (logits.data as Float32Array).subarray(first, first + vocab),
      );
    }
    return out;
  }

  private emptyPast(rows: number): Tensor[] {
    const dims = [rows, this.io.kvHeads, 0, this.io.headDim];
    const empty =
      this.io.kvType === 'float16' ? kvTensor(new Uint16Array(0), dims) : kvTensor(new Float32Array(0), dims);
    return this.io.pastInputs.map(() => empty);
  }

  private checkId(id: number): number {
    if (!(Number.isInteger(id) && id >= 0 && id < this.config.vocabSize))
      throw new Error(`token id ${id} is outside the vocabulary`);
    return id;
  }

  private checkBatch(batch: DecodeBatch): void {
    if (this.disposed) throw new Error(`${this.modelDir}: the model has been disposed`);
    if (batch.owner !== this) throw new Error('this batch belongs to another model');
  }
}

function describe(meta: Session['inputMetadata'][number]): TensorSpec {
  if (!meta.isTensor) return { name: meta.name, datatype: 'FP32', shape: [], symbols: [] };
  const datatype = ortToDatatype[meta.type];
  if (!datatype) throw new Error(`${meta.name}: tensors of type ${meta.type} are not supported`);
  return {
    name: meta.name,
    datatype,
    shape: meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)),
    symbols: meta.shape.map((d) => (typeof d === 'string' && d.length > 0 ? d : undefined)),
  };
}

function newLike(source: Float32Array | Uint16Array, length: number): Float32Array | Uint16Array {
  return source instanceof Uint16Array ? new Uint16Array(length) : new Float32Array(length);
}

function kvTensor(data: Float32Array | Uint16Array, dims: readonly number[]): Tensor {
  return data instanceof Uint16Array ? new OrtTensor('float16', data, dims) : new OrtTensor('float32', data, dims);
}
