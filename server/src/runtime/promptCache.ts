// The keys and values of recent prompts, kept in the inference worker for later prompts that start the same way
// (an editor sends the file up to the cursor again with a few more characters): a prefill then runs only the part
// after the longest cached prefix. Bounded by positions held; the least recently used prompts go first.

import type { Io, KvData } from './modelIo';

export interface CachedPrompt {
  ids: readonly number[];
  /** One array per past input, [blocks, ids.length, rowSize]. */
  data: KvData[];
}

/** Prefixes shorter than this are run again rather than looked up (too little work saved for the copy). */
export const MIN_REUSED_TOKENS = 8;

/** The default cache's memory: as many positions as fit in this many bytes of keys and values, ... */
export const DEFAULT_PROMPT_CACHE_BYTES = 128 * 2 ** 20;
/** ... and never fewer than this many (a few long prompts of a large model). */
export const MIN_DEFAULT_PROMPT_CACHE_POSITIONS = 4096;

/**
 * The default cache size in positions for a model's cache geometry: 26214 for the default model (5 KB a
 * position), 5461 for Qwen2.5-0.5B (24 KB), 4096 for larger ones.
 */
export function defaultPromptCachePositions(io: Pick<Io, 'pastInputs' | 'blocks' | 'rowSize' | 'kvType'>): number {
  const bytes = io.pastInputs.length * io.blocks * io.rowSize * (io.kvType === 'float16' ? 2 : 4);
  return Math.max(MIN_DEFAULT_PROMPT_CACHE_POSITIONS, Math.floor(DEFAULT_PROMPT_CACHE_BYTES / bytes));
}

export class PromptCache {
  private entries: CachedPrompt[] = [];
  private held = 0;

  constructor(
    /** Most positions held over all prompts; 0 keeps none. */
    readonly limit: number,
  ) {}

  get positions(): number {
    return this.held;
  }

  /** Keeps a prompt (replacing one it extends, or that extends it), evicting the least recently used beyond the limit. */
  add(prompt: CachedPrompt): void {
    const n = prompt.ids.length;
    if (n < MIN_REUSED_TOKENS || n > this.limit) return;
    const covering = this.entries.findIndex((e) => e.ids.length >= n && commonPrefix(e.ids, prompt.ids) === n);
    if (covering >= 0) return void this.touch(covering);
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const entry = this.entries[i];
      if (commonPrefix(entry.ids, prompt.ids) === entry.ids.length) this.remove(i);
    }
    this.entries.push(prompt);
    this.held += n;
    while (this.held > this.limit) this.remove(0);
  }

  /**
   * The cached prompt sharing the longest prefix with `ids` and that prefix's length, at most `ids.length - 1` (the
   * last token runs again for its logits); undefined below MIN_REUSED_TOKENS.
   */
  longestPrefix(ids: readonly number[]): { prompt: CachedPrompt; length: number } | undefined {
    let best = -1;
    let length = 0;
    this.entries.forEach((entry, i) => {
      const shared = Math.min(commonPrefix(entry.ids, ids), ids.length - 1);
      if (shared > length) (best = i), (length = shared);
    });
    if (best < 0 || length < MIN_REUSED_TOKENS) return undefined;
    return { prompt: this.touch(best), length };
  }

  /** Moves an entry to the most recently used end. */
  private touch(index: number): CachedPrompt {
    const [entry] = this.entries.splice(index, 1);
    this.entries.push(entry);
    return entry;
  }

  private remove(index: number): void {
    this.held -= this.entries[index].ids.length;
    this.entries.splice(index, 1);
  }
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
