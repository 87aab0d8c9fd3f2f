// Batched KV-cache decoding for the HTTP service: sequences of different lengths share one ONNX run, left-padded
// and masked with attention_mask/position_ids; sequences join (after a batched prefill) and leave between steps.
// Also runs the graph on caller-given tensors (Open Inference Protocol) and describes its declared inputs/outputs.
// The session and the batches' keys and values live in the inference worker (batchedCore.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type FolderConfig, readFolderConfig } from '../modelFolder/config';
import { type InferenceWorker, inferenceWorker, newHandle, releaseWhenCollected } from './inferenceClient';
import type { IoSpec, LoadedModel } from './inferenceProtocol';
import { ONNX_CANDIDATES } from './languageModel';
import { type Io, LOGITS_TO_KEEP, NEW_KEY_VALUES } from './modelIo';
import type { RawTensor } from './batchedCore';

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
  /**
   * Most positions of recent prompts kept for prompts that start the same way (see `remember`); 0 keeps none.
   * Default: as many as fit in 128 MB of keys and values, at least 4096 (defaultPromptCachePositions).
   */
  promptCachePositions?: number;
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
 * The keys and values of a batch of sequences, rows in the order the caller keeps its sequences in. The tensors
 * are in the inference worker, freed by `release` or when the batch is garbage-collected. A step, select or concat
 * consumes the batches it is given (the worker reuses their buffers): use the batch it returns.
 */
export class DecodeBatch {
  /** @internal Created by BatchedDecoder. */
  constructor(
    /** @internal */ readonly owner: BatchedDecoder,
    /** Tokens held by each row. */
    readonly lengths: readonly number[],
    /** @internal The worker-side handle. */
    readonly handle: number,
  ) {}

  /** @internal Set when a step, select or concat has taken the batch. */
  spent = false;

  get rows(): number {
    return this.lengths.length;
  }

  /** Tokens held by a row. */
  tokensIn(row: number): number {
    return this.lengths[row];
  }

  /** The most tokens a row holds. */
  get longest(): number {
    return Math.max(...this.lengths);
  }

  /** Frees the keys and values now (the batch must not be used afterwards). */
  release(): void {
    this.owner.releaseBatch(this);
  }
}

export class BatchedDecoder {
  /** The graph's inputs and outputs as declared (in session order). */
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  /** True when rows of different lengths can share a run (the graph takes attention_mask and position_ids). */
  readonly canBatch: boolean;
  private disposed = false;

  static async load(modelDir: string, options: BatchedDecoderOptions = {}): Promise<BatchedDecoder> {
    if (!fs.existsSync(modelDir) || !fs.statSync(modelDir).isDirectory())
      throw new Error(`${modelDir}: model folder not found`);
    const config = readFolderConfig(modelDir);
    const onnxFile = ONNX_CANDIDATES.find((f) => fs.existsSync(path.join(modelDir, f)));
    if (!onnxFile) throw new Error(`${modelDir}: ${ONNX_CANDIDATES[0]} is missing`);
    const worker = inferenceWorker();
    const handle = newHandle();
    const loaded = await worker.call<LoadedModel>({
      op: 'load',
      model: handle,
      kind: 'batched',
      onnxPath: path.join(modelDir, onnxFile),
      where: `${modelDir}: ${onnxFile}`,
      config,
      intraOpThreads: options.intraOpThreads ?? 0,
      promptCachePositions: options.promptCachePositions,
    });
    try {
      return new BatchedDecoder(modelDir, onnxFile, config, worker, handle, loaded);
    } catch (e) {
      await worker.call({ op: 'dispose', model: handle });
      throw e;
    }
  }

  private constructor(
    readonly modelDir: string,
    /** The ONNX file that was loaded, relative to modelDir. */
    readonly onnxFile: string,
    readonly config: FolderConfig,
    private readonly worker: InferenceWorker,
    private readonly handle: number,
    loaded: LoadedModel,
  ) {
    // num_logits_to_keep and the new_key_values outputs are for the runtime's own decoding; callers of runTensors
    // see the graph as the Hugging Face layout declares it (and get every position's logits).
    this.inputs = loaded.inputs.filter((input) => input.name !== LOGITS_TO_KEEP).map(describe);
    this.outputs = loaded.outputs.filter((output) => !output.name.startsWith(`${NEW_KEY_VALUES}.`)).map(describe);
    this.io = loaded.io;
    this.canBatch = this.io.hasAttentionMask && this.io.hasPositionIds;
  }

  private readonly io: Io;

  /** Runs the graph on the given inputs and returns the requested outputs (all when `outputNames` is empty). */
  async runTensors(inputs: readonly HostTensor[], outputNames: readonly string[] = []): Promise<HostTensor[]> {
    this.checkUsable();
    const raw: RawTensor[] = inputs.map((input) => ({
      name: input.name,
      type: datatypeToOrt[input.datatype],
      dims: input.shape,
      data: input.data,
    }));
    const names = outputNames.length ? [...outputNames] : this.outputs.map((o) => o.name);
    const results = await this.call<RawTensor[]>({
      op: 'runTensors',
      model: this.handle,
      inputs: raw,
      outputNames: names,
    });
    return results.map((t) => {
      const datatype = ortToDatatype[t.type];
      if (!datatype) throw new Error(`output ${t.name} has unsupported type ${t.type}`);
      return { name: t.name, datatype, shape: t.dims, data: t.data as TensorData };
    });
  }

  /**
   * Runs several prompts (each at least one token) in one run, left-padded to the longest, each after the longest
   * prefix of it that the prompt cache holds. Returns the new batch and, per prompt, the logits of its last position
   * and how many of its tokens came from the cache.
   */
  async prefill(
    prompts: readonly (readonly number[])[],
  ): Promise<{ batch: DecodeBatch; logits: Float32Array[]; reused: number[] }> {
    this.checkUsable();
    const rows = prompts.length;
    if (rows === 0) throw new Error('prefill needs at least one prompt');
    if (rows > 1 && !this.canBatch)
      throw new Error(`${this.modelDir}: the graph has no attention_mask/position_ids, so it cannot batch`);
    const width = Math.max(...prompts.map((p) => p.length));
    if (width === 0) throw new Error('prefill needs at least one token per prompt');
    if (width > this.config.contextLength)
      throw new Error(`${width} tokens exceed the model's context of ${this.config.contextLength}`);
    for (const prompt of prompts) for (const id of prompt) this.checkId(id);
    const batch = this.tracked(
      new DecodeBatch(
        this,
        prompts.map((p) => p.length),
        newHandle(),
      ),
    );
    const { logits, reused } = await this.call<{ logits: Float32Array[]; reused: number[] }>({
      op: 'prefill',
      model: this.handle,
      batch: batch.handle,
      prompts: prompts.map((p) => [...p]),
    });
    return { batch, logits, reused };
  }

  /** Runs one new token per row after what `batch` holds (consumes it); returns the new batch and each row's logits. */
  async step(batch: DecodeBatch, tokens: readonly number[]): Promise<{ batch: DecodeBatch; logits: Float32Array[] }> {
    this.checkBatch(batch);
    const rows = batch.rows;
    if (tokens.length !== rows) throw new Error(`step got ${tokens.length} tokens for ${rows} rows`);
    for (let row = 0; row < rows; row++) {
      const held = batch.tokensIn(row);
      if (held + 1 > this.config.contextLength)
        throw new Error(`row ${row}: ${held + 1} tokens exceed the model's context of ${this.config.contextLength}`);
      this.checkId(tokens[row]);
    }
    const next = this.tracked(
      new DecodeBatch(
        this,
        batch.lengths.map((n) => n + 1),
        newHandle(),
      ),
    );
    this.consume(batch);
    const logits = await this.call<Float32Array[]>({
      op: 'step',
      model: this.handle,
      from: batch.handle,
      to: next.handle,
      tokens: [...tokens],
    });
    return { batch: next, logits };
  }

  /** A batch of the given rows of `batch`, in that order (consumes it). */
  select(batch: DecodeBatch, rows: readonly number[]): DecodeBatch {
    this.checkBatch(batch);
    if (rows.length === 0) throw new Error('select needs at least one row');
    for (const row of rows)
      if (!(Number.isInteger(row) && row >= 0 && row < batch.rows)) throw new Error(`row ${row} is not in the batch`);
    const selected = this.tracked(
      new DecodeBatch(
        this,
        rows.map((row) => batch.lengths[row]),
        newHandle(),
      ),
    );
    this.consume(batch);
    this.worker.post({ op: 'select', model: this.handle, from: batch.handle, to: selected.handle, rows: [...rows] });
    return selected;
  }

  /** The rows of all the batches, in order (consumes them). */
  concat(...batches: DecodeBatch[]): DecodeBatch {
    if (batches.length === 0) throw new Error('concat needs at least one batch');
    for (const batch of batches) this.checkBatch(batch);
    if (batches.length === 1) return batches[0];
    if (!this.canBatch)
      throw new Error(`${this.modelDir}: the graph has no attention_mask/position_ids, so it cannot batch`);
    if (new Set(batches).size !== batches.length) throw new Error('concat got the same batch twice');
    const joined = this.tracked(
      new DecodeBatch(
        this,
        batches.flatMap((b) => b.lengths),
        newHandle(),
      ),
    );
    for (const batch of batches) this.consume(batch);
    this.worker.post({ op: 'concat', model: this.handle, parts: batches.map((b) => b.handle), to: joined.handle });
    return joined;
  }

  /**
   * Keeps the first ids.length positions of the given rows (their prompts, usually) in the prompt cache, for later
   * prompts that start the same way. The batch stays usable.
   */
  remember(batch: DecodeBatch, rows: readonly { row: number; ids: readonly number[] }[]): void {
    this.checkBatch(batch);
    for (const { row, ids } of rows)
      if (!(Number.isInteger(row) && row >= 0 && row < batch.rows && ids.length <= batch.tokensIn(row)))
        throw new Error(`row ${row} does not hold ${ids.length} positions`);
    const sent = rows.map(({ row, ids }) => ({ row, ids: [...ids] }));
    this.worker.post({ op: 'remember', model: this.handle, batch: batch.handle, rows: sent });
  }

  /** @internal Frees a batch's keys and values now. */
  releaseBatch(batch: DecodeBatch): void {
    if (releaseWhenCollected.unregister(batch)) this.worker.post({ op: 'release', handle: batch.handle });
  }

  /** Releases the session; runs already sent finish first. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    if (!this.worker.stopped) await this.worker.call({ op: 'dispose', model: this.handle });
  }

  /** Marks a batch as taken: the worker moved its buffers to the result, so its handle needs no release. */
  private consume(batch: DecodeBatch): void {
    batch.spent = true;
    releaseWhenCollected.unregister(batch);
  }

  private tracked(batch: DecodeBatch): DecodeBatch {
    releaseWhenCollected.register(batch, { worker: this.worker, handle: batch.handle }, batch);
    return batch;
  }

  private async call<T>(request: Parameters<InferenceWorker['call']>[0]): Promise<T> {
    try {
      return await this.worker.call<T>(request);
    } catch (e) {
      const stopped = this.worker.stopped;
      if (stopped) throw new Error(`${this.modelDir}: ${stopped.message}; load the model again`);
      throw e;
    }
  }

  private checkUsable(): void {
    if (this.disposed) throw new Error(`${this.modelDir}: the model has been disposed`);
    const stopped = this.worker.stopped;
    if (stopped) throw new Error(`${this.modelDir}: ${stopped.message}; load the model again`);
  }

  private checkId(id: number): number {
    if (!(Number.isInteger(id) && id >= 0 && id < this.config.vocabSize))
      throw new Error(`token id ${id} is outside the vocabulary`);
    return id;
  }

  private checkBatch(batch: DecodeBatch): void {
    this.checkUsable();
    if (batch.owner !== this) throw new Error('this batch belongs to another model');
    if (batch.spent) throw new Error('this batch was consumed by an earlier step, select or concat');
  }
}

function describe(meta: IoSpec): TensorSpec {
  if (meta.type === undefined) return { name: meta.name, datatype: 'FP32', shape: [], symbols: [] };
  const datatype = ortToDatatype[meta.type];
  if (!datatype) throw new Error(`${meta.name}: tensors of type ${meta.type} are not supported`);
  return {
    name: meta.name,
    datatype,
    shape: meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)),
    symbols: meta.shape.map((d) => (typeof d === 'string' && d.length > 0 ? d : undefined)),
  };
}
