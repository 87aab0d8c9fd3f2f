// The inline completion pipeline, from a cursor position to a suggestion: cache (and typed-ahead) lookup,
// debounce of automatic triggers, prompt with KV-cache reuse, greedy decoding that the stop rules and LSP
// cancellation can end mid-way, post-processing filters, and the confidence threshold.
import type { Settings } from '../protocol';
import { generate } from '../runtime/generate';
import type { LanguageModel } from '../runtime/languageModel';
import { CompletionCache } from './completionCache';
import { type CompletionContext, completionContext } from './completionContext';
import { isConfident, keptTokenProbabilities, meanProbability } from './confidence';
import { Debouncer } from './debouncer';
import { KvCacheStore } from './kvCacheStore';
import { postprocess } from './postprocess';
import { buildPrompt } from './prompt';
import { type Stop, findStop } from './stopRules';

export interface CompletionModel {
  /** Unique per loaded model (a reloaded folder gets a new key), for caches. */
  readonly key: string;
  readonly languageModel: LanguageModel;
  /** Use a fill-in-the-middle prompt (the tokenizer has the tokens and the model was trained with them). */
  readonly fillInTheMiddle: boolean;
}

export interface EditorCompletionRequest {
  uri: string;
  text: string;
  /** Cursor offset in `text`. */
  offset: number;
  languageId: string;
  /** An explicit invocation (LSP triggerKind Invoked): answered at once, without debounce. */
  invoked: boolean;
  settings: Settings['completion'];
  signal: AbortSignal;
}

export interface CompletionOutcome {
  text: string;
  source: 'model' | 'cache' | 'superseded';
  promptTokens: number;
  reusedTokens: number;
  generatedTokens: number;
  meanProbability?: number;
  /** Time to run the prompt (its uncached part) and the mean time of one decode step, when the model ran. */
  timings?: { promptMs: number; perTokenMs: number };
  stop?: Stop['rule'] | 'eos' | 'length';
  /** Why a generated suggestion was not shown. */
  rejected?: 'low confidence' | 'empty';
}

/** Thrown when the request's signal aborts during decoding; says how far decoding got. */
export class CompletionCancelled extends Error {
  constructor(
    readonly generatedTokens: number,
    readonly maxTokens: number,
  ) {
    super(`completion cancelled after ${generatedTokens} of at most ${maxTokens} tokens`);
  }
}

export interface PipelineOptions {
  /** Reuse the previous request's KV cache in the same document (default true). */
  reuseKvCache?: boolean;
}

export class CompletionPipeline {
  readonly cache = new CompletionCache();
  readonly kvCaches = new KvCacheStore();
  readonly debouncer = new Debouncer();
  private readonly reuseKvCache: boolean;

  constructor(options: PipelineOptions = {}) {
    this.reuseKvCache = options.reuseKvCache ?? true;
  }

  /** Forgets what is kept for a closed document. */
  forget(uri: string): void {
    this.kvCaches.delete(uri);
    this.debouncer.supersede(uri);
  }

  async complete(model: CompletionModel, request: EditorCompletionRequest): Promise<CompletionOutcome> {
    const context = completionContext(request.text, request.offset, request.languageId);
    const cacheKey = { uri: request.uri, modelKey: model.key };
    const position = { prefix: context.prefix, lineSuffix: context.lineSuffix };
    const none = { promptTokens: 0, reusedTokens: 0, generatedTokens: 0 };

    const cached = this.cache.lookup(cacheKey, position);
    if (cached !== undefined) return { text: cached, source: 'cache', ...none };

    if (request.invoked) this.debouncer.supersede(request.uri);
    else if (!(await this.debouncer.wait(request.uri, request.settings.debounceMs, request.signal))) {
      if (request.signal.aborted) throw new CompletionCancelled(0, 0);
      return { text: '', source: 'superseded', ...none };
    }

    const outcome = await this.generateSuggestion(model, request, context);
    this.cache.store(cacheKey, position, outcome.text);
    return outcome;
  }

  private async generateSuggestion(
    model: CompletionModel,
    request: EditorCompletionRequest,
    context: CompletionContext,
  ): Promise<CompletionOutcome> {
    const languageModel = model.languageModel;
    const { contextLength, eosTokenId } = languageModel.config;
    const maxTokens = Math.max(1, Math.min(request.settings.maxTokens, Math.floor(contextLength / 2)));
    const previous = this.kvCaches.get(request.uri, model.key);
    const prompt = buildPrompt(languageModel.tokenizer, context.prefix, context.suffix, {
      budget: contextLength - maxTokens,
      anchor: previous?.anchor,
      documentStartId: eosTokenId,
      fillInTheMiddle: model.fillInTheMiddle,
    });

    const rules = {
      linePrefix: context.linePrefix,
      nextLine: context.nextLine,
      maxLines: request.settings.maxLines,
      singleLine: context.singleLine,
      lineComment: context.lineComment,
    };
    const stopper = new AbortController();
    let text = '';
    let stop: Stop | undefined;
    const tokenEnds: number[] = [];
    const result = await generate(languageModel, prompt.ids, {
      maxTokens,
      temperature: 0,
      signal: AbortSignal.any([request.signal, stopper.signal]),
      cache: previous?.cache,
      onToken: (piece) => {
        text += piece;
        tokenEnds.push(text.length);
        if (!stop && piece.includes('\n')) {
          stop = findStop(text, rules);
          if (stop) stopper.abort();
        }
      },
    });
    this.kvCaches.set(request.uri, {
      modelKey: model.key,
      cache: this.reuseKvCache ? result.cache : undefined,
      anchor: prompt.anchor,
    });
    if (request.signal.aborted) throw new CompletionCancelled(result.generatedIds.length, maxTokens);

    text = result.text;
    stop ??= findStop(text, rules, true);
    let kept = stop ? text.slice(0, stop.at) : text;
    if (!stop && result.finishReason === 'length' && !context.singleLine && kept.includes('\n')) {
      kept = kept.slice(0, kept.lastIndexOf('\n')); // the last line was cut by the token limit
    }
    const suggestion = postprocess(kept, {
      lineSuffix: context.lineSuffix,
      suffix: context.suffix,
      openBeforeCursor: context.openBeforeCursor,
      lineComment: context.lineComment,
    });
    const probabilities = keptTokenProbabilities(tokenEnds, result.tokenProbabilities, Math.max(1, suggestion.length));
    const mean = meanProbability(probabilities);
    const outcome: CompletionOutcome = {
      text: suggestion,
      source: 'model',
      promptTokens: prompt.ids.length,
      reusedTokens: result.reusedTokens,
      generatedTokens: result.generatedIds.length,
      meanProbability: mean,
      timings: result.timings,
      stop: stop?.rule ?? (result.finishReason === 'eos' ? 'eos' : 'length'),
    };
    if (suggestion === '') return { ...outcome, rejected: 'empty' };
    if (!isConfident(mean, request.settings.confidenceThreshold))
      return { ...outcome, text: '', rejected: 'low confidence' };
    return outcome;
  }
}
