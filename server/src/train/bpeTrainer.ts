// Trains a byte-level BPE tokenizer (GPT-2 style) on a corpus: counts pre-tokens, then merges the most
// frequent adjacent pair until the vocabulary is full. Deterministic for a given corpus.
import { type BpeModel, maxVocabSize, pairKey } from '../tokenizer/bpeEncoder';
import { byteToUnicode, preTokenPattern } from '../tokenizer/byteLevel';
import { specialTokenList, splitAroundSpecialTokens } from '../tokenizer/specialTokens';

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

export interface TrainedBpe extends BpeModel {
  statistics: {
    characters: number;
    preTokens: number;
    distinctPreTokens: number;
    countingSeconds: number;
    mergingSeconds: number;
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
  const splitSpecial = splitAroundSpecialTokens(specialTokenList);
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
