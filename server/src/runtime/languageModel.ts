// Loads a GPT-2-layout ONNX model folder (ours or any Hugging Face / transformers.js export) with its tokenizer
// and runs it a step at a time with a key/value cache: the input and output names are discovered from the
// session, so merged decoders, quantized files and models without position_ids load too.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tensor as OrtTensor } from 'onnxruntime-node';
import { type FolderConfig, readFolderConfig } from '../modelFolder/config';
import { type Feeds, type Session, type Tensor, createSession, int64Tensor } from './onnxSession';
import { type Tokenizer, loadTokenizer } from './tokenizer';

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
   * new position as a view of the output (no copy), or of every new position with `allPositions`.
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

/**
 * Keys and values of the tokens a model has seen, one tensor per past input of the model. A run replaces the
 * tensors (onnxruntime returns new ones), so a shallow `clone` is a cheap independent copy.
 */
export class KvCache {
  /** @internal Created by LanguageModel.newCache. */
  constructor(
    /** @internal The model this cache belongs to. */
    readonly owner: object,
    /** The token ids whose keys and values are held, in order. */
    readonly tokens: number[],
    /** @internal The past_key_values tensors, in the order of the model's past inputs. */
    public past: Tensor[],
  ) {}

  get length(): number {
    return this.tokens.length;
  }

  clone(): KvCache {
    return new KvCache(this.owner, this.tokens.slice(), this.past.slice());
  }

  /** A cache holding only the first `length` tokens of this one (copies the kept keys and values). */
  prefix(length: number): KvCache {
    if (!(Number.isInteger(length) && length >= 0 && length <= this.length)) {
      throw new Error(`cache prefix ${length} is outside 0..${this.length}`);
    }
    if (length === this.length) return this.clone();
    const past = this.past.map((t) => slicePositions(t, length));
    return new KvCache(this.owner, this.tokens.slice(0, length), past);
  }
}

/** How a loaded graph names its inputs and outputs (found by discoverIo). */
export interface Io {
  hasAttentionMask: boolean;
  hasPositionIds: boolean;
  hasUseCacheBranch: boolean;
  /** Past input names, and the present output that feeds each one on the next step. */
  pastInputs: string[];
  presentOutputs: string[];
  kvType: 'float32' | 'float16';
  kvHeads: number;
  headDim: number;
}

export async function loadLanguageModel(modelDir: string, options: LoadOptions = {}): Promise<LanguageModel> {
  if (!fs.existsSync(modelDir) || !fs.statSync(modelDir).isDirectory()) {
    throw new Error(`${modelDir}: model folder not found`);
  }
  const config = readFolderConfig(modelDir);
  const onnxFile = ONNX_CANDIDATES.find((f) => fs.existsSync(path.join(modelDir, f)));
  if (!onnxFile) throw new Error(`${modelDir}: ${ONNX_CANDIDATES[0]} is missing`);

  const [session, tokenizer] = await Promise.all([
    createSession(path.join(modelDir, onnxFile), { intraOpThreads: options.intraOpThreads ?? 0 }).catch(
      (e: unknown) => {
        throw new Error(`${modelDir}: ${onnxFile} could not be loaded: ${e instanceof Error ? e.message : String(e)}`);
      },
    ),
    loadTokenizer(modelDir),
  ]);
  let io: Io;
  try {
    io = discoverIo(session, config, `${modelDir}: ${onnxFile}`);
  } catch (e) {
    await session.release();
    throw e;
  }
  return new OnnxLanguageModel(modelDir, onnxFile, config, tokenizer, session, io);
}

export function discoverIo(session: Session, config: FolderConfig, where: string): Io {
  const inputs = new Set(session.inputNames);
  const outputs = new Set(session.outputNames);
  if (!inputs.has('input_ids')) throw new Error(`${where}: not a causal language model (no input_ids input)`);
  if (!outputs.has('logits')) throw new Error(`${where}: not a causal language model (no logits output)`);

  const pastPattern = /^past_key_values\.(\d+)\.(key|value)$/;
  const layers = new Map<number, { key?: string; value?: string }>();
  for (const name of inputs) {
    const m = pastPattern.exec(name);
    if (m) {
      const layer = layers.get(Number(m[1])) ?? {};
      layer[m[2] as 'key' | 'value'] = name;
      layers.set(Number(m[1]), layer);
    } else if (!['input_ids', 'attention_mask', 'position_ids', 'use_cache_branch'].includes(name)) {
      throw new Error(`${where}: unsupported input ${name}`);
    }
  }
  if (layers.size === 0) throw new Error(`${where}: not a GPT-2-layout model (no past_key_values inputs)`);

  const presentName = (i: number, kind: string) =>
    [`present.${i}.${kind}`, `present_key_values.${i}.${kind}`].find((n) => outputs.has(n));
  const pastInputs: string[] = [];
  const presentOutputs: string[] = [];
  for (let i = 0; i < layers.size; i++) {
    const layer = layers.get(i);
    for (const kind of ['key', 'value'] as const) {
      const past = layer?.[kind];
      if (!past) throw new Error(`${where}: input past_key_values.${i}.${kind} is missing`);
      const present = presentName(i, kind);
      if (!present) throw new Error(`${where}: output present.${i}.${kind} is missing`);
      pastInputs.push(past);
      presentOutputs.push(present);
    }
  }
  if (layers.size !== config.layers) {
    throw new Error(`${where}: has ${layers.size} layers of past_key_values but config.json says ${config.layers}`);
  }

  // [batch, heads, past, headDim]; symbolic dimensions fall back to config.json.
  const meta = session.inputMetadata.find((m) => m.name === pastInputs[0]);
  const shape = meta?.isTensor ? meta.shape : [];
  const type = meta?.isTensor ? meta.type : 'float32';
  if (type !== 'float32' && type !== 'float16')
    throw new Error(`${where}: past_key_values of type ${type} are not supported`);
  const logitsMeta = session.outputMetadata.find((m) => m.name === 'logits');
  if (logitsMeta?.isTensor && logitsMeta.type !== 'float32' && logitsMeta.type !== 'float16') {
    throw new Error(`${where}: logits of type ${logitsMeta.type} are not supported`);
  }
  const kvHeads = typeof shape[1] === 'number' ? shape[1] : config.heads;
  const headDim = typeof shape[3] === 'number' ? shape[3] : config.embedding / config.heads;
  return {
    hasAttentionMask: inputs.has('attention_mask'),
    hasPositionIds: inputs.has('position_ids'),
    hasUseCacheBranch: inputs.has('use_cache_branch'),
    pastInputs,
    presentOutputs,
    kvType: type,
    kvHeads,
    headDim,
  };
}

class OnnxLanguageModel implements LanguageModel {
  /** 0, 1, 2, … and 1, 1, 1, … for position_ids and attention_mask: never written after creation, so runs that
   * overlap can share them (feeds are views into them). */
  private readonly positions: BigInt64Array;
  private readonly ones: BigInt64Array;
  private readonly emptyPast: Tensor[];
  private readonly fetches: string[];
  private disposed = false;

  constructor(
    readonly modelDir: string,
    readonly onnxFile: string,
    readonly config: FolderConfig,
    readonly tokenizer: Tokenizer,
    private readonly session: Session,
    private readonly io: Io,
  ) {
    this.positions = new BigInt64Array(config.contextLength);
    for (let i = 0; i < config.contextLength; i++) this.positions[i] = BigInt(i);
    this.ones = new BigInt64Array(config.contextLength).fill(1n);
    const emptyDims = [1, io.kvHeads, 0, io.headDim];
    const empty =
      io.kvType === 'float16'
        ? new OrtTensor('float16', new Uint16Array(0), emptyDims)
        : new OrtTensor('float32', new Float32Array(0), emptyDims);
    this.emptyPast = io.pastInputs.map(() => empty);
    this.fetches = ['logits', ...io.presentOutputs];
  }

  newCache(): KvCache {
    return new KvCache(this, [], this.emptyPast.slice());
  }

  async run(tokenIds: ArrayLike<number>, cache: KvCache, options: RunOptions = {}): Promise<Float32Array> {
    if (this.disposed) throw new Error(`${this.modelDir}: the model has been disposed`);
    if (cache.owner !== this) throw new Error('this cache belongs to another model');
    const n = tokenIds.length;
    if (n === 0) throw new Error('run needs at least one token');
    const past = cache.length;
    const total = past + n;
    if (total > this.config.contextLength) {
      throw new Error(`${total} tokens exceed the model's context of ${this.config.contextLength}`);
    }
    const ids = new BigInt64Array(n);
    for (let i = 0; i < n; i++) {
      const id = tokenIds[i];
      if (!(Number.isInteger(id) && id >= 0 && id < this.config.vocabSize))
        throw new Error(`token id ${id} is outside the vocabulary`);
      ids[i] = BigInt(id);
    }

    const feeds: Feeds = { input_ids: int64Tensor(ids, [1, n]) };
    if (this.io.hasAttentionMask) feeds.attention_mask = int64Tensor(this.ones.subarray(0, total), [1, total]);
    if (this.io.hasPositionIds) feeds.position_ids = int64Tensor(this.positions.subarray(past, total), [1, n]);
    if (this.io.hasUseCacheBranch)
      feeds.use_cache_branch = new OrtTensor('bool', new Uint8Array([past > 0 ? 1 : 0]), [1]);
    const pastInputs = this.io.pastInputs;
    for (let i = 0; i < pastInputs.length; i++) feeds[pastInputs[i]] = cache.past[i];

    const results = await this.session.run(feeds, this.fetches);

    const presentOutputs = this.io.presentOutputs;
    for (let i = 0; i < presentOutputs.length; i++) cache.past[i] = results[presentOutputs[i]];
    for (let i = 0; i < n; i++) cache.tokens.push(tokenIds[i]);

    const logits = results.logits;
    const vocab = logits.dims[logits.dims.length - 1];
    const first = options.allPositions ? 0 : (n - 1) * vocab;
    const end = n * vocab;
    if (logits.type === 'float16') return halfToFloat(logits.data as Uint16Array, first, end);
    return (logits.data as Float32Array).subarray(first, end);
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.session.release();
  }
}

/** The first `length` positions of a [1, heads, past, headDim] tensor. */
function slicePositions(t: Tensor, length: number): Tensor {
  const [batch, heads, past, headDim] = t.dims;
  const source = t.data as Float32Array | Uint16Array;
  const target =
    source instanceof Float32Array
      ? new Float32Array(batch * heads * length * headDim)
      : new Uint16Array(batch * heads * length * headDim);
  const block = length * headDim;
  for (let h = 0; h < batch * heads; h++)
    target.set(source.subarray(h * past * headDim, h * past * headDim + block), h * block);
  const dims = [batch, heads, length, headDim];
  return target instanceof Float32Array
    ? new OrtTensor('float32', target, dims)
    : new OrtTensor('float16', target, dims);
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
