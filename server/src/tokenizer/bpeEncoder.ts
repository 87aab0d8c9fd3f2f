// A fast cached byte-level BPE encoder that gives exactly the ids transformers.js gives, for tokenizing whole
// training corpora, built from a trained model or from a tokenizer.json.
import { byteToUnicode, preTokenPattern } from './byteLevel';
import { type SpecialToken, splitAroundSpecialTokens } from './specialTokens';

/** A byte-level BPE tokenizer: its vocabulary, merges and special tokens. */
export interface BpeModel {
  /** Token strings (byte-level) by id: special tokens, the 256 bytes, then one per merge. */
  vocab: string[];
  /** Merges in rank order, as pairs of byte-level token strings. */
  merges: [string, string][];
  specialTokens: SpecialToken[];
}

/** Largest vocabulary the pair keys (a · 2^20 + b) can address. */
export const maxVocabSize = 1 << 20;
export const pairKey = (a: number, b: number): number => a * maxVocabSize + b;

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
export function createBpeEncoder(model: BpeModel): BpeEncoder {
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

  const splitSpecial = splitAroundSpecialTokens(model.specialTokens);
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
