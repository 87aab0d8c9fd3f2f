// Loads a model folder's tokenizer offline with @huggingface/transformers (ours or any GPT-2-layout folder)
// behind a small Tokenizer interface, and decodes generated ids incrementally for streaming completions
// without breaking UTF-8 characters that span byte-level tokens.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { bpeEncoderFromTokenizerJson, type BpeEncoder } from '../tokenizer/bpeEncoder';
import { tokenizerJson } from '../tokenizer/tokenizerFiles';
import { unicodeToByte } from '../tokenizer/byteLevel';

type Transformers = typeof import('@huggingface/transformers', { with: { 'resolution-mode': 'import' }});
type PreTrainedTokenizer = InstanceType<Transformers['PreTrainedTokenizer']>;

export interface Tokenizer {
  /** Token ids of the text; no BOS/EOS is added (special token strings in the text map to their ids). */
  encode(text: string): number[];
  /** Text of the ids, special tokens included as their content, no clean-up of spaces. */
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
  /** Number of ids, added tokens included (largest id + 1). */
  readonly vocabSize: number;
  /** End-of-text id, if the tokenizer has one. */
  readonly eosTokenId: number | undefined;
  /** Id of a token string (byte-level form for GPT-2-style tokenizers, or a special token's content). */
  tokenId(token: string): number | undefined;
  /**
   * Which encoder encode() uses: the cached BPE encoder of tokenizer/bpeEncoder.ts (same ids, ~15x faster) or
   * transformers.js.
   */
  readonly encoder: 'fast' | 'transformers.js';
  /** True when tokens are GPT-2 byte-level strings, so each non-special token stands for exact bytes. */
  readonly byteLevel: boolean;
  /** Bytes a non-special token stands for, for byte-level tokenizers; undefined otherwise. */
  tokenBytes(id: number): Uint8Array | undefined;
  dispose(): void;
}

let transformersModule: Promise<Transformers> | undefined;

/** Imports transformers.js once (it is an ES module) and forbids it any network access. */
async function transformers(): Promise<Transformers> {
  transformersModule ??= import('@huggingface/transformers').then((module) => {
    module.env.allowRemoteModels = false;
    module.env.allowLocalModels = true;
    return module;
  });
  return transformersModule;
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

async function readJson(file: string): Promise<unknown> {
  return JSON.parse(await fs.readFile(file, 'utf8'));
}

/** The fields of tokenizer.json that this file reads. */
interface TokenizerJson {
  added_tokens?: { content: string; lstrip?: boolean; rstrip?: boolean }[];
  model?: { vocab?: object };
}

/** The fields of tokenizer_config.json (or special_tokens_map.json) that this file reads. */
interface TokenizerConfig {
  tokenizer_class?: unknown;
  bos_token?: unknown;
  eos_token?: unknown;
  unk_token?: unknown;
  pad_token?: unknown;
  additional_special_tokens?: unknown[];
}

/** A token in tokenizer_config.json is a string or an AddedToken object. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

/** tokenizer.json for a folder that only has the original GPT-2 files, vocab.json and merges.txt. */
async function tokenizerJsonFromVocabAndMerges(directory: string, config: TokenizerConfig): Promise<object> {
  const vocab = (await readJson(path.join(directory, 'vocab.json'))) as Record<string, number>;
  const merges = (await fs.readFile(path.join(directory, 'merges.txt'), 'utf8'))
    .split(/\r?\n/)
    .filter((line, index) => line.length > 0 && !(index === 0 && line.startsWith('#version')));
  const specials = new Set<string>();
  for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token'] as const) {
    const content = tokenContent(config[key]);
    if (content !== undefined && Object.hasOwn(vocab, content)) specials.add(content);
  }
  for (const token of config.additional_special_tokens ?? []) {
    const content = tokenContent(token);
    if (content !== undefined && Object.hasOwn(vocab, content)) specials.add(content);
  }
  if (Object.hasOwn(vocab, '<|endoftext|>')) specials.add('<|endoftext|>');
  const tokens: string[] = [];
  for (const [token, id] of Object.entries(vocab)) tokens[id] = token;
  return tokenizerJson({
    vocab: tokens,
    merges: merges.map((line) => line.split(' ') as [string, string]),
    specialTokens: [...specials].map((content) => ({ id: vocab[content], content })),
  });
}

function defaultConfig(tokenizerJson: TokenizerJson): Record<string, unknown> {
  const hasEndOfText =
    (tokenizerJson.added_tokens ?? []).some((token) => token.content === '<|endoftext|>') ||
    (tokenizerJson.model?.vocab && Object.hasOwn(tokenizerJson.model.vocab, '<|endoftext|>'));
  const endOfText = hasEndOfText ? '<|endoftext|>' : null;
  return {
    tokenizer_class: 'GPT2Tokenizer',
    bos_token: endOfText,
    eos_token: endOfText,
    unk_token: endOfText,
    add_bos_token: false,
    add_prefix_space: false,
    clean_up_tokenization_spaces: false,
  };
}

/** Loads the transformers.js tokenizer of a folder, whichever of the usual file layouts it has. */
async function loadPreTrainedTokenizer(directory: string): Promise<PreTrainedTokenizer> {
  const module = await transformers();
  const hasTokenizerJson = await exists(path.join(directory, 'tokenizer.json'));
  const hasConfig = await exists(path.join(directory, 'tokenizer_config.json'));
  if (hasTokenizerJson && hasConfig) {
    // An absolute path is not a hub model id, so transformers.js reads `<path>/<file>` from disk; with remote
    // models disallowed and local_files_only it never goes to the network.
    return module.AutoTokenizer.from_pretrained(directory, { local_files_only: true });
  }
  // transformers.js needs both files; build what is missing from the GPT-2 layouts it does not read itself.
  const config = hasConfig
    ? ((await readJson(path.join(directory, 'tokenizer_config.json'))) as TokenizerConfig)
    : undefined;
  let tokenizerJson: TokenizerJson;
  if (hasTokenizerJson) {
    tokenizerJson = (await readJson(path.join(directory, 'tokenizer.json'))) as TokenizerJson;
  } else if ((await exists(path.join(directory, 'vocab.json'))) && (await exists(path.join(directory, 'merges.txt')))) {
    const specialTokensMap = path.join(directory, 'special_tokens_map.json');
    const specialsSource =
      config ?? ((await exists(specialTokensMap)) ? ((await readJson(specialTokensMap)) as TokenizerConfig) : {});
    tokenizerJson = await tokenizerJsonFromVocabAndMerges(directory, specialsSource);
  } else {
    throw new Error(`no tokenizer in ${directory}: expected tokenizer.json, or vocab.json and merges.txt`);
  }
  const tokenizerConfig = config ?? defaultConfig(tokenizerJson);
  const className = String(tokenizerConfig.tokenizer_class ?? 'PreTrainedTokenizer').replace(/Fast$/, '');
  const classes = module as unknown as Record<string, new (json: object, config: object) => PreTrainedTokenizer>;
  const TokenizerClass = classes[className] ?? module.PreTrainedTokenizer;
  return new TokenizerClass(tokenizerJson, tokenizerConfig);
}

/** The bytes of a GPT-2 byte-level token string, or undefined if it has a character outside the byte table. */
function byteLevelBytes(token: string): Uint8Array | undefined {
  const bytes = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const byte = unicodeToByte.get(token[i]);
    if (byte === undefined) return undefined;
    bytes[i] = byte;
  }
  return bytes;
}

export interface LoadTokenizerOptions {
  /**
   * Encode with the cached BPE encoder of tokenizer/bpeEncoder.ts when the tokenizer is plain GPT-2-style
   * byte-level BPE (it gives transformers.js's ids, tested, at ~15 MB/s instead of ~1 MB/s). Default true.
   */
  fastEncode?: boolean;
}

/** The fast encoder for this tokenizer.json, or undefined when it is not a kind the fast encoder covers. */
function fastEncoderFor(tokenizerJson: TokenizerJson | undefined): BpeEncoder | undefined {
  // Added tokens that strip neighbouring spaces are handled by transformers.js only.
  if ((tokenizerJson?.added_tokens ?? []).some((token) => token.lstrip || token.rstrip)) {
    return undefined;
  }
  try {
    return bpeEncoderFromTokenizerJson(tokenizerJson);
  } catch {
    return undefined;
  }
}

/**
 * Loads the tokenizer of a model folder (absolute or relative path) offline. Works for folders written by
 * train/bpeTrainer.ts and other GPT-2-layout folders: tokenizer.json + tokenizer_config.json, tokenizer.json alone,
 * or vocab.json + merges.txt.
 */
export async function loadTokenizer(modelDir: string, options: LoadTokenizerOptions = {}): Promise<Tokenizer> {
  const directory = path.resolve(modelDir);
  let tokenizer: PreTrainedTokenizer | undefined = await loadPreTrainedTokenizer(directory);
  const inner = tokenizer._tokenizer;
  const vocabulary = tokenizer.get_vocab();
  let vocabSize = 0;
  for (const id of vocabulary.values()) vocabSize = Math.max(vocabSize, id + 1);
  const added = inner.get_added_tokens_decoder();
  const eosTokenId: number | undefined = tokenizer.eos_token_id ?? vocabulary.get('<|endoftext|>');
  const byteLevel = tokenizer._tokenizerJSON?.decoder?.type === 'ByteLevel';
  const bytesCache = new Map<number, Uint8Array | undefined>();
  const fast = options.fastEncode === false ? undefined : fastEncoderFor(tokenizer._tokenizerJSON);

  const live = (): PreTrainedTokenizer => {
    if (!tokenizer) throw new Error('tokenizer was disposed');
    return tokenizer;
  };

  return {
    vocabSize,
    eosTokenId,
    byteLevel,
    encoder: fast ? 'fast' : 'transformers.js',
    encode: (text) => {
      const transformersTokenizer = live();
      return fast ? fast.encode(text) : transformersTokenizer.encode(text, { add_special_tokens: false });
    },
    decode: (ids, decodeOptions = {}) =>
      ids.length === 0
        ? ''
        : live().decode([...ids], {
            skip_special_tokens: decodeOptions.skipSpecialTokens ?? false,
            clean_up_tokenization_spaces: false, // code: never drop spaces before punctuation
          }),
    tokenId: (token) => vocabulary.get(token),
    tokenBytes(id) {
      if (!byteLevel || added.has(id)) return undefined;
      if (bytesCache.has(id)) return bytesCache.get(id);
      const token = inner.id_to_token(id);
      const bytes = token === undefined ? undefined : byteLevelBytes(token);
      bytesCache.set(id, bytes);
      return bytes;
    },
    dispose() {
      tokenizer = undefined;
      bytesCache.clear();
    },
  };
}

export interface StreamingDecoder {
  /** Adds one generated id and returns the text it completes (possibly ""). */
  push(id: number): string;
  /** Returns whatever is still held back (an incomplete character decodes as U+FFFD) and resets. */
  flush(): string;
}

/**
 * Decodes ids one at a time. Concatenating every push() and the final flush() gives exactly
 * tokenizer.decode(allIds). Byte-level tokenizers feed token bytes through a streaming UTF-8 decoder; other
 * tokenizers re-decode a short window and hold text back while it ends in an incomplete character.
 */
export function createStreamingDecoder(tokenizer: Tokenizer): StreamingDecoder {
  return tokenizer.byteLevel ? byteLevelStreamingDecoder(tokenizer) : windowStreamingDecoder(tokenizer);
}

function byteLevelStreamingDecoder(tokenizer: Tokenizer): StreamingDecoder {
  // Same settings as the ByteLevel decoder of transformers.js, so a byte sequence decodes identically.
  let utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  const endRun = (): string => {
    const rest = utf8.decode();
    utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }); // a new run may start with a BOM again
    return rest;
  };
  return {
    push(id) {
      const bytes = tokenizer.tokenBytes(id);
      if (bytes) return utf8.decode(bytes, { stream: true });
      // Special (added) tokens are decoded on their own, ending the current byte run as a full decode does.
      return endRun() + tokenizer.decode([id]);
    },
    flush: endRun,
  };
}

function windowStreamingDecoder(tokenizer: Tokenizer): StreamingDecoder {
  // ids[0..readOffset) are emitted; ids[0..prefixOffset) are dropped context. Decoding from prefixOffset keeps
  // one earlier token of context, which tokenizers that strip a leading space (SentencePiece) need.
  let ids: number[] = [];
  let readOffset = 0;
  const decodeRange = (start: number, end: number): string =>
    end > start ? tokenizer.decode(ids.slice(start, end)) : '';
  const fresh = (): string => {
    const emitted = decodeRange(0, readOffset);
    const full = decodeRange(0, ids.length);
    return full.startsWith(emitted) ? full.slice(emitted.length) : full;
  };
  return {
    push(id) {
      ids.push(id);
      const text = fresh();
      if (text.length === 0 || text.endsWith('\uFFFD')) return ''; // maybe an incomplete character: wait
      ids = ids.slice(readOffset); // the previous emitted tokens become the context
      readOffset = ids.length;
      return text;
    },
    flush() {
      const text = fresh();
      ids = [];
      readOffset = 0;
      return text;
    },
  };
}
