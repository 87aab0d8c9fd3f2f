// The main thread's side of the inference worker: starts it (the bundle's inferenceWorker.js next to this file,
// or the TypeScript source when running from source), sends requests and matches replies, hands out handles for
// worker-side objects, and turns a crashed worker into a clear error; the next model load starts a new worker.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { InferenceReply, InferenceRequest } from './inferenceProtocol';

interface Pending {
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
}

export class InferenceWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private stoppedWith: Error | undefined;

  constructor() {
    this.worker = startWorker();
    // An idle worker does not keep the process alive; one with requests in flight does.
    this.worker.unref();
    this.worker.on('message', (reply: InferenceReply) => this.settle(reply));
    this.worker.on('error', (e) => this.stop(new Error(`the inference worker failed: ${e.message}`)));
    this.worker.on('exit', (code) => this.stop(new Error(`the inference worker stopped (exit code ${code})`)));
  }

  /** Why the worker stopped, or undefined while it runs. */
  get stopped(): Error | undefined {
    return this.stoppedWith;
  }

  call<T>(request: InferenceRequest): Promise<T> {
    if (this.stoppedWith) return Promise.reject(this.stoppedWith);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve: resolve as (r: unknown) => void, reject });
      this.worker.postMessage({ id, request });
    });
  }

  /** Sends a request whose reply is not awaited (its failure shows in the next call on the same handle). */
  post(request: InferenceRequest): void {
    if (!this.stoppedWith) this.worker.postMessage({ id: 0, request });
  }

  /**
   * Ends the worker once the requests sent so far are done (never mid-run: onnxruntime's native work must not
   * be cut off); later requests are refused.
   */
  async shutdown(): Promise<void> {
    if (this.stoppedWith) return;
    const exited = new Promise((resolve) => this.worker.once('exit', resolve));
    this.worker.postMessage({ id: 0, request: { op: 'stop' } });
    this.stop(new Error('the inference worker was stopped'));
    this.worker.ref();
    await exited;
  }

  private settle(reply: InferenceReply): void {
    const pending = this.pending.get(reply.id);
    if (!pending) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker.unref();
    if ('error' in reply) pending.reject(new Error(reply.error));
    else pending.resolve(reply.result);
  }

  private stop(reason: Error): void {
    if (this.stoppedWith) return;
    this.stoppedWith = reason;
    for (const pending of this.pending.values()) pending.reject(reason);
    this.pending.clear();
    this.worker.unref();
  }
}

function startWorker(): Worker {
  const bundled = path.join(__dirname, 'inferenceWorker.js');
  if (fs.existsSync(bundled)) return new Worker(bundled);
  const source = path.join(__dirname, 'inferenceWorker.ts');
  if (fs.existsSync(source))
    return new Worker(`require('tsx/cjs'); require(${JSON.stringify(source)});`, { eval: true });
  throw new Error(`the inference worker is missing: neither ${bundled} nor ${source} exists`);
}

let current: InferenceWorker | undefined;

/** The running worker; starts one when there is none or the last one stopped. */
export function inferenceWorker(): InferenceWorker {
  if (!current || current.stopped) current = new InferenceWorker();
  return current;
}

/**
 * Stops the worker after the requests already sent (its models and caches are gone, runs in flight are refused;
 * the next load starts a new worker).
 */
export async function stopInferenceWorker(): Promise<void> {
  const worker = current;
  current = undefined;
  await worker?.shutdown();
}

let lastHandle = 0;

/** A new handle for a worker-side object (unique in this process). */
export function newHandle(): number {
  return ++lastHandle;
}

/** Releases the worker-side object of a handle once the main-thread object holding it is garbage. */
export const releaseWhenCollected = new FinalizationRegistry<{ worker: InferenceWorker; handle: number }>(
  ({ worker, handle }) => worker.post({ op: 'release', handle }),
);
