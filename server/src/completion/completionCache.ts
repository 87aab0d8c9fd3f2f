// An LRU cache of suggestions that also serves a user who keeps typing what was suggested: when the text typed
// since a cached suggestion is the beginning of that suggestion, the rest of it is returned without running
// the model. An empty suggestion is cached too (for the same position only), so a repeated request is free.
import { LruMap } from '../util/lruMap';

export interface CacheKey {
  uri: string;
  modelKey: string;
}

export interface CachePosition {
  /** The document text before the cursor. */
  prefix: string;
  /** The rest of the cursor line after the cursor. */
  lineSuffix: string;
}

interface Entry {
  uri: string;
  modelKey: string;
  prefixLength: number;
  /** The last characters before the cursor when the suggestion was made. */
  before: string;
  lineSuffix: string;
  text: string;
}

/** Characters before the cursor that must match for a cached suggestion to apply. */
const MATCHED_CONTEXT = 400;

export class CompletionCache {
  private readonly entries: LruMap<string, Entry>;

  constructor(capacity = 128) {
    this.entries = new LruMap(capacity);
  }

  store(key: CacheKey, position: CachePosition, text: string): void {
    const entry: Entry = {
      uri: key.uri,
      modelKey: key.modelKey,
      prefixLength: position.prefix.length,
      before: position.prefix.slice(-MATCHED_CONTEXT),
      lineSuffix: position.lineSuffix,
      text,
    };
    this.entries.set(`${key.uri}\u0000${key.modelKey}\u0000${entry.prefixLength}\u0000${entry.before}`, entry);
  }

  /** The suggestion for this position (possibly '' for "none"), or undefined when nothing cached applies. */
  lookup(key: CacheKey, position: CachePosition): string | undefined {
    const { prefix, lineSuffix } = position;
    for (const [id, entry] of this.entries.newestFirst()) {
      if (entry.uri !== key.uri || entry.modelKey !== key.modelKey || entry.lineSuffix !== lineSuffix) continue;
      const typed = prefix.length - entry.prefixLength;
      if (typed < 0 || (typed > 0 && typed >= entry.text.length)) continue;
      if (prefix.slice(entry.prefixLength - entry.before.length, entry.prefixLength) !== entry.before) continue;
      if (typed > 0 && prefix.slice(entry.prefixLength) !== entry.text.slice(0, typed)) continue;
      this.entries.get(id); // mark as recently used
      return entry.text.slice(typed);
    }
    return undefined;
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
