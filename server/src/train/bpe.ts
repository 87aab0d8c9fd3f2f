// Byte-level BPE tokenizer (GPT-2 style): trains merges on a corpus, writes the Hugging Face tokenizer files
// that transformers.js and Python load unchanged, and offers a fast cached encoder that gives exactly the
// ids transformers.js gives, for tokenizing whole training corpora.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** Ids of the special tokens, which take the first ids of every tokenizer trained here. */
export const specialTokens = { endOfText: 0, fimPrefix: 1, fimMiddle: 2, fimSuffix: 3, pad: 4 } as const;

/** The text of each special token. */
export const specialTokenContents = {
  endOfText: '<|endoftext|>',
  fimPrefix: '<|fim_prefix|>',
  fimMiddle: '<|fim_middle|>',
  fimSuffix: '<|fim_suffix|>',
  pad: '<|pad|>',
} as const;

export interface SpecialToken {
  id: number;
  content: string;
}

const specialTokenList: SpecialToken[] = (Object.keys(specialTokens) as (keyof typeof specialTokens)[])
  .map((name) => ({ id: specialTokens[name], content: specialTokenContents[name] }))
  .sort((a, b) => a.id - b.id);

/** GPT-2's pre-tokenization: contractions, letters, numbers, other symbols, whitespace runs. */
export const preTokenPattern = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * GPT-2's byte → printable character table: printable Latin-1 bytes map to themselves, the others to
 * U+0100 onwards, so every byte sequence is a string without spaces or control characters.
 */
export const byteToUnicode: readonly string[] = (() => {
  const table: string[] = new Array(256);
  let next = 256;
  for (let byte = 0; byte < 256; byte++) {
    const printable =
      (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
    table[byte] = String.fromCharCode(printable ? byte : next++);
  }
  return table;
})();

/** The inverse of byteToUnicode: byte-level character → byte. */
export const unicodeToByte: ReadonlyMap<string, number> = new Map(byteToUnicode.map((char, byte) => [char, byte]));

/** Byte-level string of a text: its UTF-8 bytes, each as its GPT-2 character. */
export function toByteLevel(text: string): string {
  let result = '';
  for (const byte of Buffer.from(text, 'utf8')) result += byteToUnicode[byte];
  return result;
}

export interface BpeProgress {
  phase: 'counting' | 'merging';
  /** Counting: texts and UTF-16 characters seen so far. */
  texts?: number;
  characters?: number;
  /** Merging: current vocabulary size and the target. */
  vocabSize?: number;
  targetVocabSize?: number;
}

export interface TrainBpeOptions {
  /** Final vocabulary size including the 5 special tokens and the 256 byte tokens. */
  vocabSize: number;
  /** Pairs seen fewer times than this are never merged (training may stop short of vocabSize). Default 2. */
  minFrequency?: number;
  /** Called now and then; throwing from it aborts training. */
  onProgress?: (progress: BpeProgress) => void;
}

export interface TrainedBpe {
  /** Token strings (byte-level) by id: special tokens, the 256 bytes, then one per merge. */
  vocab: string[];
  /** Merges in rank order, as pairs of byte-level token strings. */
  merges: [string, string][];
  specialTokens: SpecialToken[];
  statistics: {
    characters: number;
    preTokens: number;
    distinctPreTokens: number;
    countingSeconds: number;
    mergingSeconds: number;
  };
}

/** Largest vocabulary the pair keys (a · 2^20 + b) can address. */
const maxVocabSize = 1 << 20;
const pairKey = (a: number, b: number): number => a * maxVocabSize + b;

/** Splits text around special token strings (longest match first, like transformers.js); specials included. */
function makeSpecialSplitter(
  tokens: readonly SpecialToken[],
): (text: string) => { text: string; special?: SpecialToken }[] {
  const byContent = new Map(tokens.map((token) => [token.content, token]));
  const escaped = [...byContent.keys()]
    .sort((a, b) => b.length - a.length)
    .map((content) => content.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const pattern = new RegExp(escaped.join('|'), 'g');
  const first = [...byContent.keys()].map((content) => content[0]);
  return (text) => {
    if (!first.some((char) => text.includes(char))) return [{ text }];
    const parts: { text: string; special?: SpecialToken }[] = [];
    let start = 0;
    pattern.lastIndex = 0;
    for (let match = pattern.exec(text); match; match = pattern.exec(text)) {
      if (match.index > start) parts.push({ text: text.slice(start, match.index) });
      parts.push({ text: match[0], special: byContent.get(match[0]) });
      start = match.index + match[0].length;
    }
    if (start < text.length) parts.push({ text: text.slice(start) });
    return parts;
  };
}

/** Binary max-heap of (count, pair key); ties go to the smaller key, so training is deterministic. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  private above(i: number, j: number): boolean {
    return this.counts[i] > this.counts[j] || (this.counts[i] === this.counts[j] && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.above(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  peekCount(): number {
    return this.counts[0];
  }

  pop(): { count: number; key: number } {
    const top = { count: this.counts[0], key: this.keys[0] };
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.keys.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let best = i;
        if (left < this.keys.length && this.above(left, best)) best = left;
        if (right < this.keys.length && this.above(right, best)) best = right;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

/**
 * Trains a byte-level BPE tokenizer. Pre-tokens are counted once into a word → count map; merging then keeps
 * pair counts incrementally (only words containing the merged pair are revisited) with a lazy max-heap.
 */
export function trainBpe(texts: Iterable<string>, options: TrainBpeOptions): TrainedBpe {
  const { vocabSize, minFrequency = 2, onProgress } = options;
  const baseSize = specialTokenList.length + 256;
  if (!Number.isInteger(vocabSize) || vocabSize < baseSize || vocabSize > maxVocabSize) {
    throw new RangeError(`vocabSize must be an integer in [${baseSize}, ${maxVocabSize}], got ${vocabSize}`);
  }

  // 1. Count pre-tokens.
  const countingStart = performance.now();
  const wordCounts = new Map<string, number>();
  const splitSpecial = makeSpecialSplitter(specialTokenList);
  let characters = 0;
  let preTokens = 0;
  let textCount = 0;
  for (const text of texts) {
    for (const part of splitSpecial(text)) {
      if (part.special) continue;
      const matches = part.text.match(preTokenPattern);
      if (!matches) continue;
      preTokens += matches.length;
      for (const word of matches) wordCounts.set(word, (wordCounts.get(word) ?? 0) + 1);
    }
    characters += text.length;
    textCount++;
    if (onProgress && textCount % 256 === 0) onProgress({ phase: 'counting', texts: textCount, characters });
  }
  onProgress?.({ phase: 'counting', texts: textCount, characters });
  const countingSeconds = (performance.now() - countingStart) / 1000;

  // 2. Words as byte-symbol ids in one flat buffer.
  const mergingStart = performance.now();
  const vocab: string[] = specialTokenList.map((token) => token.content);
  const byteIdOffset = vocab.length;
  for (let byte = 0; byte < 256; byte++) vocab.push(byteToUnicode[byte]);
  const idOfToken = new Map<string, number>(vocab.map((token, id) => [token, id]));

  const wordTotal = wordCounts.size;
  const encodedWords: Buffer[] = [];
  let symbolTotal = 0;
  for (const word of wordCounts.keys()) {
    const bytes = Buffer.from(word, 'utf8');
    encodedWords.push(bytes);
    symbolTotal += bytes.length;
  }
  const symbols = new Int32Array(symbolTotal);
  const wordStart = new Int32Array(wordTotal);
  const wordLength = new Int32Array(wordTotal);
  const wordCount = new Float64Array(wordTotal);
  {
    let offset = 0;
    let w = 0;
    for (const count of wordCounts.values()) {
      const bytes = encodedWords[w];
      wordStart[w] = offset;
      wordLength[w] = bytes.length;
      wordCount[w] = count;
      for (let i = 0; i < bytes.length; i++) symbols[offset + i] = byteIdOffset + bytes[i];
      offset += bytes.length;
      w++;
    }
  }
  encodedWords.length = 0;
  wordCounts.clear();

  // 3. Initial pair counts and where each pair occurs.
  const pairCounts = new Map<number, number>();
  const pairWords = new Map<number, number[]>();
  for (let w = 0; w < wordTotal; w++) {
    const start = wordStart[w];
    const end = start + wordLength[w] - 1;
    for (let i = start; i < end; i++) {
      const key = pairKey(symbols[i], symbols[i + 1]);
      const previous = pairCounts.get(key);
      pairCounts.set(key, (previous ?? 0) + wordCount[w]);
      const list = pairWords.get(key);
      if (!list) pairWords.set(key, [w]);
      else if (list[list.length - 1] !== w) list.push(w);
    }
  }
  const heap = new PairHeap();
  for (const [key, count] of pairCounts) heap.push(count, key);

  // 4. Merge the most frequent pair until the vocabulary is full.
  const merges: [string, string][] = [];
  const mergedPairs = new Set<number>();
  const visitedAtStep = new Int32Array(wordTotal);
  let steps = 0;
  const touched = new Set<number>();
  const adjust = (key: number, delta: number): void => {
    pairCounts.set(key, (pairCounts.get(key) ?? 0) + delta);
  };
  const progressEvery = Math.max(1, Math.floor((vocabSize - baseSize) / 100));
  while (vocab.length < vocabSize && heap.size > 0) {
    if (heap.peekCount() < minFrequency) break;
    const { count, key } = heap.pop();
    const current = pairCounts.get(key) ?? 0;
    if (current !== count) {
      // Stale entry. A smaller current count needs re-queuing; a larger one was pushed when it grew.
      if (current > 0 && current < count) heap.push(current, key);
      continue;
    }
    const left = Math.floor(key / maxVocabSize);
    const right = key - left * maxVocabSize;
    const merged = vocab[left] + vocab[right];
    let mergedId = idOfToken.get(merged);
    if (mergedId === undefined) {
      mergedId = vocab.length;
      vocab.push(merged);
      idOfToken.set(merged, mergedId);
    }
    // A pair can only come back after it was merged when a merge re-made an existing token string; it is
    // then applied again but not listed twice.
    if (!mergedPairs.has(key)) merges.push([vocab[left], vocab[right]]);
    mergedPairs.add(key);
    const step = ++steps;
    touched.clear();

    for (const w of pairWords.get(key) ?? []) {
      if (visitedAtStep[w] === step) continue;
      visitedAtStep[w] = step;
      const start = wordStart[w];
      let length = wordLength[w];
      const end = start + length;
      let found = false;
      for (let i = start; i < end - 1; i++) {
        if (symbols[i] === left && symbols[i + 1] === right) {
          found = true;
          break;
        }
      }
      if (!found) continue;
      const n = wordCount[w];
      for (let i = start; i < end - 1; i++) adjust(pairKey(symbols[i], symbols[i + 1]), -n);
      // Merge left to right, non-overlapping, in place.
      let write = start;
      for (let read = start; read < end; read++) {
        if (read < end - 1 && symbols[read] === left && symbols[read + 1] === right) {
          symbols[write++] = mergedId;
          read++;
        } else {
          symbols[write++] = symbols[read];
        }
      }
      length = write - start;
      wordLength[w] = length;
      for (let i = start; i < start + length - 1; i++) {
        const a = symbols[i];
        const b = symbols[i + 1];
        const pair = pairKey(a, b);
        adjust(pair, n);
        if (a === mergedId || b === mergedId) {
          touched.add(pair);
          const list = pairWords.get(pair);
          if (!list) pairWords.set(pair, [w]);
          else if (list[list.length - 1] !== w) list.push(w);
        }
      }
    }
    pairCounts.delete(key);
    pairWords.delete(key);
    for (const pair of touched) {
      const pairCount = pairCounts.get(pair) ?? 0;
      if (pairCount > 0) heap.push(pairCount, pair);
    }
    if (onProgress && steps % progressEvery === 0) {
      onProgress({ phase: 'merging', vocabSize: vocab.length, targetVocabSize: vocabSize });
    }
  }
  onProgress?.({ phase: 'merging', vocabSize: vocab.length, targetVocabSize: vocabSize });

  return {
    vocab,
    merges,
    specialTokens: specialTokenList.map((token) => ({ ...token })),
    statistics: {
      characters,
      preTokens,
      distinctPreTokens: wordTotal,
      countingSeconds,
      mergingSeconds: (performance.now() - mergingStart) / 1000,
    },
  };
}

export interface WriteTokenizerOptions {
  /** Longest sequence the model accepts (its n_positions). */
  modelMaxLength: number;
}

/** The Hugging Face tokenizer.json for a trained tokenizer. */
export function tokenizerJson(trained: Pick<TrainedBpe, 'vocab' | 'merges' | 'specialTokens'>): object {
  const byteLevel = { add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: trained.specialTokens.map((token) => ({
      id: token.id,
      content: token.content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', ...byteLevel },
    post_processor: { type: 'ByteLevel', ...byteLevel, trim_offsets: false },
    decoder: { type: 'ByteLevel', ...byteLevel },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      // Object.fromEntries defines own properties, so no token can clash with Object.prototype members.
      vocab: Object.fromEntries(trained.vocab.map((token, id) => [token, id])),
      // "a b" strings: byte-level tokens never contain a space, and every tokenizers version reads this form.
      merges: trained.merges.map(([a, b]) => `${a} ${b}`),
    },
  };
}

/**
 * Writes the tokenizer into a model folder: tokenizer.json and tokenizer_config.json (what transformers.js
 * reads), plus vocab.json, merges.txt and special_tokens_map.json for Python's slow GPT2Tokenizer.
 */
export async function writeTokenizerFiles(
  dir: string,
  trained: Pick<TrainedBpe, 'vocab' | 'merges' | 'specialTokens'>,
  options: WriteTokenizerOptions,
): Promise<void> {
  const special = new Map(trained.specialTokens.map((token) => [token.id, token.content]));
  const endOfText = special.get(specialTokens.endOfText) ?? specialTokenContents.endOfText;
  const pad = special.get(specialTokens.pad) ?? specialTokenContents.pad;
  const additional = trained.specialTokens
    .map((token) => token.content)
    .filter((content) => content !== endOfText && content !== pad);
  const tokenizerConfig = {
    tokenizer_class: 'GPT2Tokenizer',
    bos_token: endOfText,
    eos_token: endOfText,
    unk_token: endOfText,
    pad_token: pad,
    additional_special_tokens: additional,
    add_bos_token: false,
    add_eos_token: false,
    add_prefix_space: false,
    model_max_length: options.modelMaxLength,
    clean_up_tokenization_spaces: false,
    errors: 'replace',
    added_tokens_decoder: Object.fromEntries(
      trained.specialTokens.map((token) => [
        String(token.id),
        { content: token.content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true },
      ]),
    ),
  };
  const specialTokensMap = {
    bos_token: endOfText,
    eos_token: endOfText,
    unk_token: endOfText,
    pad_token: pad,
    additional_special_tokens: additional,
  };
  await fs.mkdir(dir, { recursive: true });
  const write = (name: string, content: string): Promise<void> => fs.writeFile(path.join(dir, name), content, 'utf8');
  await Promise.all([
    write('tokenizer.json', JSON.stringify(tokenizerJson(trained), null, 1) + '\n'),
    write('tokenizer_config.json', JSON.stringify(tokenizerConfig, null, 2) + '\n'),
    write('special_tokens_map.json', JSON.stringify(specialTokensMap, null, 2) + '\n'),
    write('vocab.json', JSON.stringify(Object.fromEntries(trained.vocab.map((token, id) => [token, id]))) + '\n'),
    write('merges.txt', ['#version: 0.2', ...trained.merges.map(([a, b]) => `${a} ${b}`)].join('\n') + '\n'),
  ]);
}

export interface BpeEncoder {
  /** Token ids of a text; special token strings in the text become their ids; nothing is added. */
  encode(text: string): number[];
  readonly vocabSize: number;
}

/** Pre-tokens longer than this are encoded but not cached. */
const maxCachedPreTokenLength = 256;
/** The cache is cleared when it holds this many pre-tokens. */
const maxCacheEntries = 200_000;

/**
 * A fast encoder giving the same ids as transformers.js's BPE: per pre-token, repeatedly merge the adjacent
 * pair of lowest rank (leftmost on ties); results are cached per pre-token.
 */
export function createBpeEncoder(model: Pick<TrainedBpe, 'vocab' | 'merges' | 'specialTokens'>): BpeEncoder {
  const idOfToken = new Map<string, number>(model.vocab.map((token, id) => [token, id]));
  for (const token of model.specialTokens) idOfToken.set(token.content, token.id);
  const vocabSize = Math.max(model.vocab.length, ...model.specialTokens.map((token) => token.id + 1));
  if (vocabSize > maxVocabSize) throw new RangeError(`vocabulary of ${vocabSize} tokens is too large`);
  const byteIds = new Int32Array(256);
  for (let byte = 0; byte < 256; byte++) {
    const id = idOfToken.get(byteToUnicode[byte]);
    if (id === undefined) throw new Error(`byte-level vocabulary lacks the token for byte ${byte}`);
    byteIds[byte] = id;
  }
  const rankOfPair = new Map<number, number>();
  const mergedIdOfRank = new Int32Array(model.merges.length);
  model.merges.forEach(([a, b], rank) => {
    const left = idOfToken.get(a);
    const right = idOfToken.get(b);
    const merged = idOfToken.get(a + b);
    if (left === undefined || right === undefined || merged === undefined) {
      throw new Error(`merge ${rank} ("${a}" "${b}") uses or makes a token missing from the vocabulary`);
    }
    rankOfPair.set(pairKey(left, right), rank); // a pair listed twice keeps its last rank, as in transformers.js
    mergedIdOfRank[rank] = merged;
  });

  const splitSpecial = makeSpecialSplitter(model.specialTokens);
  let cache = new Map<string, number[]>();

  const encodePreToken = (preToken: string): number[] => {
    const cached = cache.get(preToken);
    if (cached) return cached;
    const bytes = Buffer.from(preToken, 'utf8');
    const ids = new Array<number>(bytes.length);
    for (let i = 0; i < bytes.length; i++) ids[i] = byteIds[bytes[i]];
    let length = ids.length;
    while (length > 1) {
      let bestRank = Infinity;
      let bestIndex = -1;
      for (let i = 0; i < length - 1; i++) {
        const rank = rankOfPair.get(pairKey(ids[i], ids[i + 1]));
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          bestIndex = i;
        }
      }
      if (bestIndex < 0) break;
      ids[bestIndex] = mergedIdOfRank[bestRank];
      ids.copyWithin(bestIndex + 1, bestIndex + 2, length);
      length--;
    }
    ids.length = length;
    if (preToken.length < maxCachedPreTokenLength) {
      if (cache.size >= maxCacheEntries) cache = new Map();
      cache.set(preToken, ids);
    }
    return ids;
  };

  return {
    vocabSize,
    encode(text: string): number[] {
      const out: number[] = [];
      for (const part of splitSpecial(text)) {
        if (part.special) {
          out.push(part.special.id);
          continue;
        }
        const matches = part.text.match(preTokenPattern);
        if (!matches) continue;
        for (const preToken of matches) {
          const ids = encodePreToken(preToken);
          for (let i = 0; i < ids.length; i++) out.push(ids[i]);
        }
      }
      return out;
    },
  };
}

/**
 * A fast encoder for a Hugging Face tokenizer.json of the GPT-2 kind (no normalizer, ByteLevel pre-tokenizer
 * with the GPT-2 regex and no prefix space, plain BPE model). Throws for any other kind of tokenizer.
 */
export function bpeEncoderFromTokenizerJson(json: unknown): BpeEncoder {
  const tokenizer = json as {
    normalizer?: unknown;
    pre_tokenizer?: { type?: string; add_prefix_space?: boolean; use_regex?: boolean };
    added_tokens?: { id: number; content: string; special?: boolean }[];
    model?: {
      type?: string;
      vocab?: Record<string, number>;
      merges?: (string | [string, string])[];
      continuing_subword_prefix?: string | null;
      end_of_word_suffix?: string | null;
      byte_fallback?: boolean;
      ignore_merges?: boolean;
    };
  };
  const model = tokenizer.model;
  const pre = tokenizer.pre_tokenizer;
  const supported =
    tokenizer.normalizer == null &&
    pre?.type === 'ByteLevel' &&
    !pre.add_prefix_space &&
    pre.use_regex !== false &&
    model?.type === 'BPE' &&
    model.vocab &&
    model.merges &&
    !model.continuing_subword_prefix &&
    !model.end_of_word_suffix &&
    !model.byte_fallback &&
    !model.ignore_merges;
  if (!supported || !model?.vocab || !model.merges) {
    throw new Error('tokenizer.json is not a plain GPT-2-style byte-level BPE tokenizer');
  }
  const vocab: string[] = [];
  for (const [token, id] of Object.entries(model.vocab)) vocab[id] = token;
  const merges = model.merges.map((merge): [string, string] => {
    if (Array.isArray(merge)) return [merge[0], merge[1]];
    const space = merge.indexOf(' ');
    return [merge.slice(0, space), merge.slice(space + 1)];
  });
  const added = (tokenizer.added_tokens ?? []).map((token) => ({ id: token.id, content: token.content }));
  return createBpeEncoder({ vocab: Array.from(vocab, (token) => token ?? ''), merges, specialTokens: added });
}
