// Debounce of automatic completion triggers, per document: a request waits `ms` and goes ahead only if no newer
// request for the same document arrived meanwhile and it was not cancelled. Explicit invocations skip the wait
// but still supersede a pending automatic request.

export class Debouncer {
  private readonly pending = new Map<string, (goAhead: boolean) => void>();

  /** Resolves true after `ms` unless superseded by a newer call for `key` or aborted (then false, at once). */
  wait(key: string, ms: number, signal?: AbortSignal): Promise<boolean> {
    this.supersede(key);
    if (signal?.aborted) return Promise.resolve(false);
    if (ms <= 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (goAhead: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (this.pending.get(key) === finish) this.pending.delete(key);
        resolve(goAhead);
      };
      const onAbort = () => finish(false);
      const timer = setTimeout(() => finish(true), ms);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(key, finish);
    });
  }

  /** Lets a pending wait for `key` resolve false now. */
  supersede(key: string): void {
    this.pending.get(key)?.(false);
  }

  get pendingCount(): number {
    return this.pending.size;
  }
}
