// Keeps, per document, the last completion's prompt, where it started and its KV cache, so the next request in that
// document starts its prompt at the same place (or continues it) and runs only the tokens the model has not seen.
import type { KvCache } from '../runtime/languageModel';
import type { Prompt } from './prompt';
import { LruMap } from '../util/lruMap';

export interface DocumentKvCache {
  /** The model the cache belongs to (a cache of a swapped-out model is never reused). */
  modelKey: string;
  /** Absent when KV-cache reuse is off (the anchor is still kept, so prompts are the same either way). */
  cache?: KvCache;
  /** Character offset where that prompt started. */
  anchor: number;
  /** That prompt, which typing on may continue. */
  prompt?: Prompt;
}

export class KvCacheStore {
  private readonly documents: LruMap<string, DocumentKvCache>;

  constructor(capacity = 8) {
    this.documents = new LruMap(capacity);
  }

  get(uri: string, modelKey: string): DocumentKvCache | undefined {
    const entry = this.documents.get(uri);
    return entry?.modelKey === modelKey ? entry : undefined;
  }

  set(uri: string, entry: DocumentKvCache): void {
    this.documents.set(uri, entry);
  }

  delete(uri: string): void {
    this.documents.delete(uri);
  }

  /** Drops the caches of every model except `modelKey` (after a hot-swap). */
  keepOnly(modelKey: string): void {
    for (const [uri, entry] of this.documents.newestFirst())
      if (entry.modelKey !== modelKey) this.documents.delete(uri);
  }

  get size(): number {
    return this.documents.size;
  }
}
