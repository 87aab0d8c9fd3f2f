// Runs one model version's work: a bounded queue of completion requests and raw inference jobs, and a loop
// that batches concurrent completions (continuous batching: waiting requests are prefilled together and join
// the running batch between decode steps; finished, timed-out or cancelled ones leave it).
import type { BatchedDecoder, DecodeBatch } from '../runtime/batchedDecoder';
import {
  Sampler,
  type SamplingOptions,
  type TokenLogProbability,
  argmax,
  logSumExp,
  topLogProbabilities,
} from '../runtime/sampling';
import type { Tokenizer } from '../runtime/tokenizer';
import { CompletionText } from '../runtime/completionText';
import { HttpError, queueFull, unavailable } from './errors';
import type { ServiceMetrics } from './metrics';

export interface BatchRequest {
  /** Prompt ids, at least one, that fit the context together with maxTokens. */
  promptIds: number[];
  /** At least 1. */
  maxTokens: number;
  sampling: SamplingOptions;
  stops: readonly string[];
  /** Keep generating after the end-of-text token (vLLM's ignore_eos). */
  ignoreEos?: boolean;
  /** Aborting (timeout, client gone) removes the request; its promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Streamed text, in order; the calls add up to the final text. With `logprobs`, the tokens so far. */
  onText?: (text: string, tokens: readonly GeneratedToken[]) => void;
  /** Record each generated token's log probability and this many most likely alternatives (0..20). */
  logprobs?: number;
  /** Changes to the logits before a token is chosen (log probabilities are still the model's own). */
  adjust?: LogitAdjustments;
}

/** OpenAI's presence and frequency penalties and logit bias. */
export interface LogitAdjustments {
  /** Subtracted once from the logit of every token generated so far. */
  presencePenalty: number;
  /** Subtracted from a token's logit once per time it was generated. */
  frequencyPenalty: number;
  /** Added to the logits of these ids. */
  logitBias: ReadonlyMap<number, number>;
}

/** A generated token with its log probability and the most likely alternatives at its position. */
export interface GeneratedToken extends TokenLogProbability {
  top: TokenLogProbability[];
}

export interface CompletionOutcome {
  text: string;
  /** OpenAI's finish reasons: end-of-text and stop sequences are both 'stop'. */
  finishReason: 'stop' | 'length';
  promptTokens: number;
  completionTokens: number;
  /** With `logprobs`: the generated tokens, those of a stop sequence included, the end-of-text token not. */
  tokens?: GeneratedToken[];
}

export interface SchedulerOptions {
  /** Most sequences decoded in one run; 1 turns batching off. */
  maxBatchSize: number;
  /** Most requests waiting beyond the ones being decoded. */
  maxQueue: number;
  /** Most prompt tokens prefilled between two decode steps (a longer prompt runs alone). Default 2048. */
  prefillTokens?: number;
  /**
   * Most key/value positions (rows × the longest row) a decode step may hold when admitting more rows: a bound on
   * the batch's cache memory and on how long one step keeps every row waiting. A row costs less in a bigger batch
   * (the weights are read once per step for all rows), so the default, 16384, leaves the batch size as the limit
   * for prompts of a few hundred tokens.
   */
  maxBatchTokens?: number;
  modelName: string;
  metrics?: ServiceMetrics;
  /** More ids that end a completion (generation_config.json's eos_token_id list, e.g. an end-of-turn token). */
  endTokenIds?: readonly number[];
}

interface Sequence {
  request: BatchRequest;
  sampler: Sampler | undefined;
  text: CompletionText;
  /** The last chosen token, fed on the next step. */
  last: number;
  generated: number;
  tokens: GeneratedToken[] | undefined;
  /** With adjustments: how often each id was generated. */
  counts: Map<number, number> | undefined;
  done: boolean;
  resolve(outcome: CompletionOutcome): void;
  reject(error: unknown): void;
  /** The abort listener, removed when the sequence ends (the signal may outlive it). */
  onAbort(): void;
}

interface InferJob {
  run(): Promise<unknown>;
  done: boolean;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export class BatchScheduler {
  private waiting: Sequence[] = [];
  private jobs: InferJob[] = [];
  private active: Sequence[] = [];
  private batch: DecodeBatch | undefined;
  /** Sequences taken from the queue whose prefill is running. */
  private admitting: Sequence[] = [];
  private looping = false;
  private accepting = true;
  private idleWaiters: (() => void)[] = [];
  private readonly endIds: Set<number>;
  private readonly maxBatchSize: number;

  constructor(
    private readonly decoder: BatchedDecoder,
    private readonly tokenizer: Tokenizer,
    private readonly options: SchedulerOptions,
  ) {
    this.maxBatchSize = decoder.canBatch ? Math.max(1, options.maxBatchSize) : 1;
    this.endIds = new Set([decoder.config.eosTokenId]);
    if (tokenizer.eosTokenId !== undefined) this.endIds.add(tokenizer.eosTokenId);
    for (const id of options.endTokenIds ?? []) this.endIds.add(id);
  }

  /** Requests waiting to run. */
  get queueDepth(): number {
    return this.waiting.length + this.jobs.length;
  }

  /** Sequences being decoded. */
  get activeCount(): number {
    let running = 0;
    for (const sequence of [...this.admitting, ...this.active]) if (!sequence.done) running++;
    return running;
  }

  /**
   * Nothing queued or running, and the loop has stopped: a run it started for requests cancelled since (a prefill,
   * a step) has finished, so the session may be released.
   */
  get isIdle(): boolean {
    return !this.looping && this.waiting.length === 0 && this.jobs.length === 0 && this.activeCount === 0;
  }

  /** Whether `count` more requests fit (decode slots plus queue places). */
  hasRoom(count: number): boolean {
    return this.activeCount + this.queueDepth + count <= this.maxBatchSize + this.options.maxQueue;
  }

  /** Queues completions, all or none (429 when they do not all fit, 503 when no longer accepting). */
  complete(requests: readonly BatchRequest[]): Promise<CompletionOutcome>[] {
    for (const request of requests) {
      if (!(request.promptIds.length > 0 && request.maxTokens >= 1))
        throw new Error('a completion needs a prompt token and maxTokens ≥ 1');
    }
    this.admitCheck(requests.length);
    const promises = requests.map((request) => {
      return new Promise<CompletionOutcome>((resolve, reject) => {
        const greedy = (request.sampling.temperature ?? 0) === 0;
        const sequence: Sequence = {
          request,
          sampler: greedy ? undefined : new Sampler(request.sampling),
          text: new CompletionText(
            this.tokenizer,
            request.stops,
            request.maxTokens,
            request.ignoreEos ? new Set() : this.endIds,
          ),
          last: -1,
          generated: 0,
          tokens: request.logprobs === undefined ? undefined : [],
          counts: request.adjust ? new Map() : undefined,
          done: false,
          resolve,
          reject,
          onAbort: () => this.abort(sequence),
        };
        this.waiting.push(sequence);
        request.signal?.addEventListener('abort', sequence.onAbort, { once: true });
        if (request.signal?.aborted) this.abort(sequence);
      });
    });
    this.wake();
    return promises;
  }

  /** Queues a raw run of the graph (Open Inference Protocol), run between decode steps. */
  infer<T>(run: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    this.admitCheck(1);
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        if (job.done) return;
        job.done = true;
        this.jobs = this.jobs.filter((j) => j !== job);
        reject(signal!.reason);
        this.notifyIdle();
      };
      const job: InferJob = {
        run,
        done: false,
        resolve: (value) => (signal?.removeEventListener('abort', onAbort), resolve(value as T)),
        reject: (error) => (signal?.removeEventListener('abort', onAbort), reject(error)),
      };
      this.jobs.push(job);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.wake();
    });
  }

  /** New requests get 503 from now on; queued and running ones finish. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Resolves once nothing is queued or running. */
  idle(): Promise<void> {
    if (this.isIdle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Fails everything queued or running with `error` (used when a shutdown runs out of time). */
  cancelAll(error: unknown): void {
    for (const sequence of [...this.waiting, ...this.active]) this.finish(sequence, error);
    for (const job of this.jobs) if (!job.done) (job.done = true), job.reject(error);
    this.waiting = [];
    this.jobs = [];
    this.notifyIdle();
  }

  private admitCheck(count: number): void {
    if (!this.accepting) throw unavailable(`model ${this.options.modelName} is shutting down or being replaced`);
    if (!this.hasRoom(count)) {
      this.options.metrics?.rejected.inc({ model: this.options.modelName, reason: 'queue_full' });
      throw queueFull(
        `the queue of model ${this.options.modelName} is full (${this.options.maxQueue} waiting); retry later`,
      );
    }
  }

  private abort(sequence: Sequence): void {
    if (sequence.done) return;
    const reason = sequence.request.signal?.reason ?? new HttpError(499, 'cancelled');
    this.waiting = this.waiting.filter((s) => s !== sequence);
    this.finish(sequence, reason); // a running one leaves the batch at the next step
    this.notifyIdle();
  }

  /** Ends a sequence: with an outcome when `error` is undefined. */
  private finish(sequence: Sequence, error?: unknown): void {
    if (sequence.done) return;
    sequence.done = true;
    sequence.request.signal?.removeEventListener('abort', sequence.onAbort);
    if (error !== undefined) {
      sequence.reject(error);
      return;
    }
    const reason = sequence.text.finish === 'length' ? 'length' : 'stop';
    sequence.resolve({
      text: sequence.text.text,
      finishReason: reason,
      promptTokens: sequence.request.promptIds.length,
      completionTokens: sequence.generated,
      ...(sequence.tokens ? { tokens: sequence.tokens } : {}),
    });
  }

  private wake(): void {
    if (this.looping) return;
    this.looping = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        this.compact();
        // One raw inference run per decode step: neither kind of work can starve the other.
        const job = this.jobs.shift();
        if (job) await this.runJob(job);
        if (this.waiting.length > 0 && this.active.length < this.maxBatchSize) await this.admit();
        this.compact();
        if (this.batch) await this.step();
        else if (this.waiting.length === 0 && this.jobs.length === 0) break;
      }
    } finally {
      this.looping = false;
      this.notifyIdle();
    }
  }

  private async runJob(job: InferJob): Promise<void> {
    if (job.done) return;
    try {
      const value = await job.run();
      if (!job.done) (job.done = true), job.resolve(value);
    } catch (e) {
      if (!job.done) (job.done = true), job.reject(e);
    }
  }

  /**
   * Prefills waiting requests, in arrival order, as many as the batch has room for and the prefill token budget
   * allows (at least one), and adds them to the batch; the rest wait for the next step, so that a burst of arrivals
   * does not stall the running sequences for long. Prompts run in groups of similar length (little padding).
   */
  private async admit(): Promise<void> {
    const room = this.maxBatchSize - this.active.length;
    const budget = this.options.prefillTokens ?? 2048;
    const positions = this.options.maxBatchTokens ?? 16384;
    let take = 0;
    let tokens = 0;
    let length = this.batch?.longest ?? 0;
    while (take < Math.min(room, this.waiting.length)) {
      const prompt = this.waiting[take].request.promptIds.length;
      tokens += prompt;
      length = Math.max(length, prompt);
      const rows = this.active.length + take + 1;
      if (rows > 1 && (tokens > budget || rows * length > positions)) break;
      take++;
    }
    const newcomers = this.waiting.splice(0, take);
    if (newcomers.length === 0) return;
    this.admitting = newcomers;
    const groups: Sequence[][] = [];
    for (const sequence of [...newcomers].sort((a, b) => b.request.promptIds.length - a.request.promptIds.length)) {
      const group = groups.at(-1);
      const width = group?.[0].request.promptIds.length ?? 0;
      const length = sequence.request.promptIds.length;
      // Join the current group when this prompt wastes at most a quarter of its row on padding.
      if (group && (group.length + 1) * width <= budget && length >= 0.75 * width) group.push(sequence);
      else groups.push([sequence]);
    }
    const parts: DecodeBatch[] = [];
    const admitted: Sequence[] = [];
    try {
      for (const group of groups) {
        let prefilled: { batch: DecodeBatch; logits: Float32Array[]; reused: number[] };
        try {
          prefilled = await this.decoder.prefill(group.map((s) => s.request.promptIds));
        } catch (e) {
          for (const sequence of group) this.finish(sequence, e);
          continue;
        }
        const promptTokens = group.reduce((n, s) => n + s.request.promptIds.length, 0);
        const cached = prefilled.reused.reduce((n, r) => n + r, 0);
        this.options.metrics?.promptTokens.inc({ model: this.options.modelName }, promptTokens - cached);
        if (cached > 0) this.options.metrics?.cachedPromptTokens.inc({ model: this.options.modelName }, cached);
        group.forEach((sequence, row) => this.choose(sequence, prefilled.logits[row]));
        this.options.metrics?.tokensGenerated(this.options.modelName, group.length);
        parts.push(prefilled.batch);
        admitted.push(...group);
      }
    } finally {
      this.admitting = [];
    }
    if (parts.length === 0) return;
    this.batch = this.batch ? this.decoder.concat(this.batch, ...parts) : this.decoder.concat(...parts);
    this.active.push(...admitted);
  }

  /** One decode step for every row of the batch. */
  private async step(): Promise<void> {
    const batch = this.batch!;
    let result: { batch: DecodeBatch; logits: Float32Array[] };
    try {
      result = await this.decoder.step(
        batch,
        this.active.map((s) => s.last),
      );
    } catch (e) {
      for (const sequence of this.active) this.finish(sequence, e);
      this.active = [];
      this.batch = undefined;
      return;
    }
    this.batch = result.batch;
    this.options.metrics?.batchSize.observe(this.active.length, { model: this.options.modelName });
    let produced = 0;
    this.active.forEach((sequence, row) => {
      if (sequence.done) return; // cancelled while the step ran
      this.choose(sequence, result.logits[row]);
      produced++;
    });
    this.options.metrics?.tokensGenerated(this.options.modelName, produced);
  }

  /** Picks a sequence's next token from its logits, streams its text, and ends it when it is complete. */
  private choose(sequence: Sequence, logits: Float32Array): void {
    if (sequence.done) return;
    const scores = sequence.request.adjust ? this.adjusted(sequence, logits) : logits;
    const id = sequence.sampler ? sequence.sampler.pick(scores) : argmax(scores);
    if (sequence.counts) sequence.counts.set(id, (sequence.counts.get(id) ?? 0) + 1);
    sequence.last = id;
    sequence.generated++;
    if (sequence.tokens) {
      const lse = logSumExp(logits);
      sequence.tokens.push({
        id,
        logprob: logits[id] - lse,
        top: topLogProbabilities(logits, sequence.request.logprobs ?? 0, lse),
      });
    }
    const held = sequence.request.promptIds.length + sequence.generated;
    const fresh = sequence.text.push(id, held < this.decoder.config.contextLength);
    if (sequence.text.finish === 'eos') sequence.tokens?.pop(); // the end-of-text token adds no text
    if (fresh && sequence.request.onText) {
      try {
        sequence.request.onText(fresh, sequence.tokens ?? []);
      } catch {
        // A broken stream ends through the request's abort signal.
      }
    }
    if (sequence.text.finish) this.finish(sequence);
  }

  /** A copy of the logits with the request's bias and penalties applied. */
  private adjusted(sequence: Sequence, logits: Float32Array): Float32Array {
    const { presencePenalty, frequencyPenalty, logitBias } = sequence.request.adjust!;
    const scores = Float32Array.from(logits);
    for (const [id, bias] of logitBias) if (id < scores.length) scores[id] += bias;
    for (const [id, count] of sequence.counts!) scores[id] -= presencePenalty + frequencyPenalty * count;
    return scores;
  }

  /**
   * Drops finished rows from the batch, keeping their prompts in the prompt cache: the last rows move into the
   * places they leave (only they are copied).
   */
  private compact(): void {
    if (!this.active.some((s) => s.done)) return;
    const finished = this.active.flatMap((s, row) => (s.done ? [{ row, ids: s.request.promptIds }] : []));
    if (this.batch) this.decoder.remember(this.batch, finished);
    const keep: number[] = [];
    let last = this.active.length - 1;
    for (let row = 0; row <= last; row++) {
      if (!this.active[row].done) keep.push(row);
      else {
        while (last > row && this.active[last].done) last--;
        if (last > row) keep.push(last--);
      }
    }
    this.batch = keep.length && this.batch ? this.decoder.select(this.batch, keep) : undefined;
    this.active = keep.map((row) => this.active[row]);
  }

  private notifyIdle(): void {
    if (!this.isIdle) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
