// The models a service serves, by name, each a loaded version (graph session, tokenizer, scheduler). Reloading
// a name loads the new version first, then sends new requests to it while the old version finishes what it
// has queued or running and is disposed after; nothing in flight is dropped.
import { BatchedDecoder } from '../runtime/batchedDecoder';
import { type ChatTemplate, endOfTurnTokenIds, loadChatTemplate } from '../runtime/chatModel';
import { checkTokenizerMatches } from '../runtime/modelChecks';
import { type Tokenizer, loadTokenizer } from '../runtime/tokenizer';
import { BatchScheduler } from './batchScheduler';
import type { ServiceMetrics } from './metrics';
import { checkModelName } from './modelNames';

export interface ModelSetOptions {
  maxBatchSize: number;
  maxQueue: number;
  prefillTokens?: number;
  maxBatchTokens?: number;
  promptCachePositions?: number;
  intraOpThreads?: number;
  metrics?: ServiceMetrics;
  log?: (message: string) => void;
}

export class ServedModel {
  private constructor(
    readonly name: string,
    /** The deployment version it serves when one was given, else 1 for the first load and +1 per reload. */
    readonly version: number,
    readonly dir: string,
    readonly decoder: BatchedDecoder,
    readonly tokenizer: Tokenizer,
    readonly scheduler: BatchScheduler,
    readonly loadedAt: Date,
    /** The folder's chat template, or why chat is not available. */
    readonly chat: ChatTemplate | { unavailable: string },
  ) {}

  /** Loads the graph and tokenizer of `dir`; refuses (and releases both) when the tokenizer is not the model's. */
  static async load(name: string, version: number, dir: string, options: ModelSetOptions): Promise<ServedModel> {
    const decoder = await BatchedDecoder.load(dir, {
      intraOpThreads: options.intraOpThreads ?? 1,
      promptCachePositions: options.promptCachePositions,
    });
    let tokenizer: Tokenizer | undefined;
    let chat: ChatTemplate | { unavailable: string };
    try {
      tokenizer = await loadTokenizer(dir);
      checkTokenizerMatches(decoder.modelDir, tokenizer.vocabSize, decoder.config);
      chat = await loadChatTemplate(dir).then(
        (template) =>
          template ?? {
            unavailable: `model ${name} has no chat template (tokenizer_config.json chat_template or chat_template.jinja); use /v1/completions`,
          },
        (e: unknown) => ({
          unavailable: `model ${name}'s chat template could not be loaded: ${e instanceof Error ? e.message : String(e)}`,
        }),
      );
    } catch (e) {
      tokenizer?.dispose();
      await decoder.dispose();
      throw e;
    }
    const scheduler = new BatchScheduler(decoder, tokenizer, {
      maxBatchSize: options.maxBatchSize,
      maxQueue: options.maxQueue,
      prefillTokens: options.prefillTokens,
      maxBatchTokens: options.maxBatchTokens,
      modelName: name,
      metrics: options.metrics,
      endTokenIds: endOfTurnTokenIds(dir),
    });
    return new ServedModel(name, version, dir, decoder, tokenizer, scheduler, new Date(), chat);
  }

  /** Stops taking requests, waits for the queued and running ones, then releases the session. */
  async retire(): Promise<void> {
    this.scheduler.stopAccepting();
    await this.scheduler.idle();
    await this.decoder.dispose();
    this.tokenizer.dispose();
  }
}

export class ModelSet {
  private readonly current = new Map<string, ServedModel>();
  /** Old versions finishing their requests, with the promise of their release. */
  private readonly retiring = new Map<ServedModel, Promise<void>>();
  private readonly reloading = new Map<string, Promise<ServedModel>>();

  constructor(private readonly options: ModelSetOptions) {}

  /** Loads a model under a new name, as `version` (default 1). */
  async add(name: string, dir: string, version = 1): Promise<ServedModel> {
    checkModelName(name);
    if (this.current.has(name)) throw new Error(`model ${name} is already served`);
    const model = await ServedModel.load(name, version, dir, this.options);
    if (this.current.has(name)) {
      await model.retire();
      throw new Error(`model ${name} is already served`);
    }
    this.current.set(name, model);
    return model;
  }

  /**
   * Loads `dir` as `version` of `name` (default: the next, or 1 when the name is new) and switches to it. Reloads
   * of one name run one after another.
   */
  async reload(name: string, dir: string, version?: number): Promise<ServedModel> {
    checkModelName(name);
    const previousReload = this.reloading.get(name);
    const next = (async () => {
      if (previousReload) await previousReload.catch(() => undefined);
      const old = this.current.get(name);
      const model = await ServedModel.load(name, version ?? (old?.version ?? 0) + 1, dir, this.options);
      this.current.set(name, model);
      if (old) {
        this.options.log?.(
          `${name}: version ${model.version} from ${dir} serves new requests; version ${old.version} finishes ` +
            `${old.scheduler.queueDepth + old.scheduler.activeCount} in flight`,
        );
        this.retiring.set(
          old,
          old.retire().finally(() => this.retiring.delete(old)),
        );
      }
      return model;
    })();
    this.reloading.set(name, next);
    try {
      return await next;
    } finally {
      if (this.reloading.get(name) === next) this.reloading.delete(name);
    }
  }

  get(name: string): ServedModel | undefined {
    return this.current.get(name);
  }

  list(): ServedModel[] {
    return [...this.current.values()];
  }

  /** Old versions still finishing their requests. */
  get retiringCount(): number {
    return this.retiring.size;
  }

  /** Queue depth and running sequences per name, old versions included. */
  load(): { name: string; queueDepth: number; active: number }[] {
    const byName = new Map<string, { name: string; queueDepth: number; active: number }>();
    for (const model of [...this.current.values(), ...this.retiring.keys()]) {
      const entry = byName.get(model.name) ?? { name: model.name, queueDepth: 0, active: 0 };
      entry.queueDepth += model.scheduler.queueDepth;
      entry.active += model.scheduler.activeCount;
      byName.set(model.name, entry);
    }
    return [...byName.values()];
  }

  stopAccepting(): void {
    for (const model of [...this.current.values(), ...this.retiring.keys()]) model.scheduler.stopAccepting();
  }

  cancelAll(error: unknown): void {
    for (const model of [...this.current.values(), ...this.retiring.keys()]) model.scheduler.cancelAll(error);
  }

  /** Waits for every version to finish its work, then releases them all. */
  async closeAll(): Promise<void> {
    await Promise.allSettled([...this.reloading.values()]);
    const current = [...this.current.values()];
    this.current.clear();
    await Promise.all([...current.map((model) => model.retire()), ...this.retiring.values()]);
  }
}
