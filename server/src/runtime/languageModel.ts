// Loads a GPT-2-layout ONNX model folder (ours or any Hugging Face / transformers.js export) with its tokenizer
// and runs it a step at a time with a key/value cache. The session and the cached keys and values live in the
// inference worker, so runs do not block this thread; tokenization stays here.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type FolderConfig, readFolderConfig } from '../modelFolder/config';
import { type InferenceWorker, inferenceWorker, newHandle, releaseWhenCollected } from './inferenceClient';
import type { LoadedModel } from './inferenceProtocol';
import type { Io } from './modelIo';
import { type Tokenizer, loadTokenizer } from './tokenizer';

export { type Io, discoverIo, halfToFloat } from './modelIo';

export interface LoadOptions {
  /** Threads for one op (0 or absent: onnxruntime chooses). */
  intraOpThreads?: number;
}

export interface RunOptions {
  /** Return the logits of every new position ([n × vocab]) instead of only the last ([vocab]). */
  allPositions?: boolean;
}

export interface LanguageModel {
  readonly modelDir: string;
  /** The ONNX file that was loaded, relative to modelDir (e.g. "onnx/model.onnx"). */
  readonly onnxFile: string;
  readonly config: FolderConfig;
  readonly tokenizer: Tokenizer;
  /** An empty cache: the first run with it starts at position 0. */
  newCache(): KvCache;
  /**
   * Runs `tokenIds` after the tokens already in `cache` and appends them to it. Returns the logits of the last
   * new position ([vocab]), or of every new position with `allPositions`.
   */
  run(tokenIds: ArrayLike<number>, cache: KvCache, options?: RunOptions): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/** Candidate ONNX files, in order of preference. */
export const ONNX_CANDIDATES = [
  'onnx/model.onnx',
  'onnx/decoder_model_merged.onnx',
  'onnx/model_quantized.onnx',
  'onnx/decoder_model_merged_quantized.onnx',
];

/** What a model does for the caches it owns (clones and prefixes in the worker, releases). */
interface CacheOwner {
  deriveCache(cache: KvCache, length: number): KvCache;
  releaseCache(cache: KvCache): void;
}

/**
 * Keys and values of the tokens a model has seen. They are held by the inference worker; `clone` and `prefix`
 * are cheap (they share what they can) and take effect in order with the runs. The worker's memory is freed by
 * `release` or when the cache is garbage-collected.
 */
export class KvCache {
  /** @internal Created by LanguageModel.newCache. */
  constructor(
    /** @internal The model this cache belongs to. */
    readonly owner: object,
    /** The token ids whose keys and values are held, in order. */
    readonly tokens: number[],
    /** @internal The worker-side handle. */
    readonly handle: unknown = undefined,
  ) {}

  get length(): number {
    return this.tokens.length;
  }

  clone(): KvCache {
    return this.prefix(this.length);
  }

  /** A cache holding only the first `length` tokens of this one. */
  prefix(length: number): KvCache {
    if (!(Number.isInteger(length) && length >= 0 && length <= this.length)) {
      throw new Error(`cache prefix ${length} is outside 0..${this.length}`);
    }
    const owner = this.owner as Partial<CacheOwner>;
    if (owner.deriveCache) return owner.deriveCache(this, length);
    return new KvCache(this.owner, this.tokens.slice(0, length), this.handle);
  }

  /** Frees the keys and values now (the cache must not be used afterwards). */
  release(): void {
    (this.owner as Partial<CacheOwner>).releaseCache?.(this);
  }
}

export async function loadLanguageModel(modelDir: string, options: LoadOptions = {}): Promise<LanguageModel> {
  if (!fs.existsSync(modelDir) || !fs.statSync(modelDir).isDirectory()) {
    throw new Error(`${modelDir}: model folder not found`);
  }
  const config = readFolderConfig(modelDir);
  const onnxFile = ONNX_CANDIDATES.find((f) => fs.existsSync(path.join(modelDir, f)));
  if (!onnxFile) throw new Error(`${modelDir}: ${ONNX_CANDIDATES[0]} is missing`);

  const worker = inferenceWorker();
  const handle = newHandle();
  const [loaded, tokenizer] = await Promise.all([
    worker.call<LoadedModel>({
      op: 'load',
      model: handle,
      kind: 'sequence',
      onnxPath: path.join(modelDir, onnxFile),
      where: `${modelDir}: ${onnxFile}`,
      config,
      intraOpThreads: options.intraOpThreads ?? 0,
    }),
    loadTokenizer(modelDir).catch((e: unknown) => e as Error),
  ]);
  if (tokenizer instanceof Error) {
    await worker.call({ op: 'dispose', model: handle }).catch(() => {});
    throw tokenizer;
  }
  return new OnnxLanguageModel(modelDir, onnxFile, config, tokenizer, worker, handle, loaded.io);
}

class OnnxLanguageModel implements LanguageModel, CacheOwner {
  private disposed = false;

  constructor(
    readonly modelDir: string,
    readonly onnxFile: string,
    readonly config: FolderConfig,
    readonly tokenizer: Tokenizer,
    private readonly worker: InferenceWorker,
    private readonly handle: number,
    readonly io: Io,
  ) {}

  newCache(): KvCache {
    this.checkUsable();
    const cache = this.tracked(new KvCache(this, [], newHandle()));
    this.worker.post({ op: 'newCache', model: this.handle, cache: cache.handle as number });
    return cache;
  }

  deriveCache(cache: KvCache, length: number): KvCache {
    this.checkUsable();
    const derived = this.tracked(new KvCache(this, cache.tokens.slice(0, length), newHandle()));
    const from = cache.handle as number;
    this.worker.post({ op: 'derive', model: this.handle, from, to: derived.handle as number, length });
    return derived;
  }

  releaseCache(cache: KvCache): void {
    if (releaseWhenCollected.unregister(cache)) this.worker.post({ op: 'release', handle: cache.handle as number });
  }

  async run(tokenIds: ArrayLike<number>, cache: KvCache, options: RunOptions = {}): Promise<Float32Array> {
    this.checkUsable();
    if (cache.owner !== this) throw new Error('this cache belongs to another model');
    const n = tokenIds.length;
    if (n === 0) throw new Error('run needs at least one token');
    const total = cache.length + n;
    if (total > this.config.contextLength) {
      throw new Error(`${total} tokens exceed the model's context of ${this.config.contextLength}`);
    }
    const ids = Array.from(tokenIds);
    for (const id of ids) {
      if (!(Number.isInteger(id) && id >= 0 && id < this.config.vocabSize))
        throw new Error(`token id ${id} is outside the vocabulary`);
    }
    // The tokens count as held from now on, so that a clone made while the run is in flight (which the worker
    // makes after the run) holds them too.
    const held = cache.length;
    cache.tokens.push(...ids);
    try {
      return await this.worker.call<Float32Array>({
        op: 'run',
        model: this.handle,
        cache: cache.handle as number,
        ids,
        allPositions: options.allPositions ?? false,
      });
    } catch (e) {
      cache.tokens.length = held;
      throw this.explain(e);
    }
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    if (!this.worker.stopped) await this.worker.call({ op: 'dispose', model: this.handle });
  }

  /** Frees `cache`'s worker-side state when it is garbage-collected. */
  private tracked(cache: KvCache): KvCache {
    releaseWhenCollected.register(cache, { worker: this.worker, handle: cache.handle as number }, cache);
    return cache;
  }

  private checkUsable(): void {
    if (this.disposed) throw new Error(`${this.modelDir}: the model has been disposed`);
    const stopped = this.worker.stopped;
    if (stopped) throw new Error(`${this.modelDir}: ${stopped.message}; load the model again`);
  }

  private explain(e: unknown): Error {
    const stopped = this.worker.stopped;
    if (stopped) return new Error(`${this.modelDir}: ${stopped.message}; load the model again`);
    return e instanceof Error ? e : new Error(String(e));
  }
}
