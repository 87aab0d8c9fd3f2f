// The inline completion pipeline, from a cursor position to a suggestion: cache (and typed-ahead) lookup,
// debounce of automatic triggers, prompt with workspace context and KV-cache reuse, greedy decoding that the stop
// rules and LSP cancellation can end mid-way, post-processing filters, the confidence threshold, and, when the
// model is unsure, alternatives that start with its next most likely first tokens.
import { type RenderedContext, renderContext } from '../context/renderContext';
import type { ContextSnippet } from '../context/workspaceContext';
import { type Settings, defaultSettings } from '../protocol';
import { generate } from '../runtime/generate';
import type { KvCache, LanguageModel } from '../runtime/languageModel';
import { logSumExp } from '../runtime/sampling';
import { CompletionCache } from './completionCache';
import { type CompletionContext, completionContext } from './completionContext';
import { isConfident, keptTokenProbabilities, meanProbability } from './confidence';
import { Debouncer } from './debouncer';
import { KvCacheStore } from './kvCacheStore';
import { postprocess } from './postprocess';
import { buildPrompt, continuePrompt } from './prompt';
import { type Stop, type StopRuleContext, StreamedStop, findStop, stopRuleContext } from './stopRules';

export interface CompletionModel {
  /** Unique per loaded model (a reloaded folder gets a new key), for caches. */
  readonly key: string;
  readonly languageModel: LanguageModel;
  /** Use a fill-in-the-middle prompt (the tokenizer has the tokens and the model was trained with them). */
  readonly fillInTheMiddle: boolean;
}

/** The completion settings; those about context, alternatives, repetition and lookup take their defaults when absent. */
export type CompletionSettings = Omit<Settings['completion'], OptionalSetting> &
  Partial<Pick<Settings['completion'], OptionalSetting>>;
type OptionalSetting =
  | 'dropRepetition'
  | 'promptLookup'
  | 'workspaceContext'
  | 'contextTokens'
  | 'suffixTokens'
  | 'maxSuggestions'
  | 'indexMegabytes';

export interface EditorCompletionRequest {
  uri: string;
  text: string;
  /** Cursor offset in `text`. */
  offset: number;
  languageId: string;
  /** An explicit invocation (LSP triggerKind Invoked): answered at once, without debounce. */
  invoked: boolean;
  settings: CompletionSettings;
  signal: AbortSignal;
  /** Workspace context for this position (the same array while it stays valid) and the file's display path. */
  workspaceContext?: { snippets: readonly ContextSnippet[]; path: string };
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
  /** More suggestions, when the model was unsure of the first (different texts, each non-empty). */
  alternatives?: string[];
  /** Prompt tokens of workspace context, and how many snippets fit. */
  contextTokens?: number;
  contextSnippets?: number;
}

/** Below this mean probability the model counts as unsure, and alternatives are offered. */
export const UNSURE_BELOW = 0.6;
/** Workspace context takes at most this share of the prompt's tokens. */
export const CONTEXT_SHARE = 0.4;

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
  /** Rendered context per snippet list (kept while the list is), per model and budget. */
  private readonly rendered = new WeakMap<readonly ContextSnippet[], Map<string, RenderedContext>>();
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
    const budget = contextLength - maxTokens;
    const rendered = this.renderedContext(model, request, context, budget);
    const tokenizer = languageModel.tokenizer;
    const continued =
      previous?.prompt &&
      continuePrompt(tokenizer, previous.prompt, context.prefix, context.suffix, {
        budget,
        context: rendered?.ids ?? [],
      });
    const prompt =
      continued ||
      buildPrompt(tokenizer, context.prefix, context.suffix, {
        budget,
        anchor: previous?.anchor,
        documentStartId: eosTokenId,
        fillInTheMiddle: model.fillInTheMiddle,
        context: rendered && { ids: rendered.ids, beforeFimPrefix: rendered.style === 'fileSeparator' },
        suffixBudget: request.settings.suffixTokens ?? defaultSettings.completion.suffixTokens,
      });

    const rules = stopRuleContext(context, request.settings);
    const draftTokens = request.settings.promptLookup === false ? 0 : undefined;
    const decode = (ids: readonly number[], cache: KvCache | undefined, tokens: number, releaseCache = false) =>
      decodeSuggestion(languageModel, ids, cache, tokens, rules, request.signal, releaseCache, draftTokens);
    // This request takes the document's cache: its keys and values go once their reusable part is taken (tens of
    // megabytes for a pretrained model's long prompt, which garbage collection would free only much later), and
    // the new cache writes on in the same buffers. A request that comes meanwhile finds none.
    const reusable = previous?.cache;
    if (previous && reusable) this.kvCaches.set(request.uri, { ...previous, cache: undefined });
    const { result, text: generated, stop, tokenEnds } = await decode(prompt.ids, reusable, maxTokens, true);
    this.kvCaches.set(request.uri, {
      modelKey: model.key,
      cache: this.reuseKvCache ? result.cache : undefined,
      anchor: prompt.anchor,
      prompt,
    });
    if (request.signal.aborted) throw new CompletionCancelled(result.generatedIds.length, maxTokens);

    const finish = (text: string, finishedStop: Stop | undefined, finishReason: string) => {
      let kept = finishedStop ? text.slice(0, finishedStop.at) : text;
      if (!finishedStop && finishReason === 'length' && !context.singleLine && kept.includes('\n')) {
        kept = kept.slice(0, kept.lastIndexOf('\n')); // the last line was cut by the token limit
      }
      return postprocess(kept, {
        lineSuffix: context.lineSuffix,
        suffix: context.suffix,
        openBeforeCursor: context.openBeforeCursor,
        lineComment: context.lineComment,
      });
    };
    const suggestion = finish(generated, stop, result.finishReason);
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
      contextTokens: prompt.contextTokens,
      contextSnippets: prompt.contextTokens > 0 ? rendered?.snippets : 0,
    };
    if (suggestion === '') return { ...outcome, rejected: 'empty' };
    if (!isConfident(mean, request.settings.confidenceThreshold))
      return { ...outcome, text: '', rejected: 'low confidence' };
    // Alternatives only when asked for explicitly (VS Code's Invoke, to cycle through them): while the user types,
    // one suggestion is enough, and decoding more would hold back the first one.
    const wanted = request.invoked
      ? (request.settings.maxSuggestions ?? defaultSettings.completion.maxSuggestions) - 1
      : 0;
    if (wanted > 0 && mean < UNSURE_BELOW && prompt.ids.length > 1) {
      const firstIds = await nextLikeliestFirstTokens(languageModel, prompt.ids, result.cache, wanted + 1);
      const alternatives: string[] = [];
      for (const id of firstIds) {
        if (alternatives.length >= wanted || request.signal.aborted) break;
        if (id === result.generatedIds[0] || id === eosTokenId) continue;
        const first = languageModel.tokenizer.decode([id]);
        const other = await decode([...prompt.ids, id], result.cache, maxTokens - 1);
        const text = finish(first + other.text, findStop(first + other.text, rules, true), other.result.finishReason);
        if (text && text !== suggestion && !alternatives.includes(text)) alternatives.push(text);
      }
      if (request.signal.aborted) throw new CompletionCancelled(result.generatedIds.length, maxTokens);
      if (alternatives.length > 0) outcome.alternatives = alternatives;
    }
    return outcome;
  }

  /** The workspace context rendered for this model and budget, once per snippet list. */
  private renderedContext(
    model: CompletionModel,
    request: EditorCompletionRequest,
    context: CompletionContext,
    budget: number,
  ): RenderedContext | undefined {
    const given = request.workspaceContext;
    const contextBudget = Math.min(
      request.settings.contextTokens ?? defaultSettings.completion.contextTokens,
      Math.floor(budget * CONTEXT_SHARE),
    );
    if (!given || given.snippets.length === 0 || contextBudget <= 0) return undefined;
    let perModel = this.rendered.get(given.snippets);
    if (!perModel) {
      perModel = new Map();
      this.rendered.set(given.snippets, perModel);
    }
    const key = `${model.key}\u0000${contextBudget}\u0000${context.lineComment}\u0000${given.path}`;
    let rendered = perModel.get(key);
    if (!rendered) {
      rendered = renderContext(given.snippets, model.languageModel.tokenizer, contextBudget, {
        lineComment: context.lineComment,
        currentPath: given.path,
      });
      perModel.set(key, rendered);
    }
    return rendered;
  }
}

/** Greedy decoding of one suggestion that the stop rules (judged as it streams) and the signal can end. */
async function decodeSuggestion(
  model: LanguageModel,
  ids: readonly number[],
  cache: KvCache | undefined,
  maxTokens: number,
  rules: StopRuleContext,
  signal: AbortSignal,
  releaseCache: boolean,
  draftTokens: number | undefined,
) {
  const stopper = new AbortController();
  const streamed = new StreamedStop(rules, () => stopper.abort());
  const tokenEnds: number[] = [];
  const result = await generate(model, ids, {
    maxTokens: Math.max(1, maxTokens),
    temperature: 0,
    signal: AbortSignal.any([signal, stopper.signal]),
    cache,
    releaseCache,
    draftTokens,
    onToken: (piece) => {
      streamed.add(piece);
      tokenEnds.push(streamed.text.length);
    },
  });
  const text = result.text;
  const stop = streamed.stop ?? findStop(text, rules, true);
  return { result, text, stop, tokenEnds };
}

/** The first tokens the model finds likeliest after the prompt, most likely first (one extra one-token run). */
async function nextLikeliestFirstTokens(
  model: LanguageModel,
  promptIds: readonly number[],
  cache: KvCache,
  count: number,
): Promise<number[]> {
  const before = cache.prefix(Math.min(cache.length, promptIds.length - 1));
  try {
    const logits = await model.run(promptIds.slice(before.length), before);
    const total = logSumExp(logits);
    const best: number[] = [];
    for (let id = 0; id < logits.length; id++) {
      if (best.length < count || logits[id] > logits[best[best.length - 1]]) {
        best.push(id);
        best.sort((a, b) => logits[b] - logits[a]);
        if (best.length > count) best.pop();
      }
    }
    // Alternatives the model gives almost no chance are not worth showing.
    return best.filter((id) => Math.exp(logits[id] - total) >= 0.05);
  } finally {
    before.release();
  }
}
