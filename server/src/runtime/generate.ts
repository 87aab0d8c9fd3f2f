// Text generation with a loaded language model: one run over the prompt (prefill), then one run per new token
// with the KV cache (greedy decoding also checks tokens guessed from the context in that run, promptLookup.ts);
// greedy or sampled tokens, stop sequences, cancellation, streaming, left truncation of prompts that do not fit
// the context, and reuse of a cache whose tokens begin the new prompt.
import type { KvCache, LanguageModel } from './languageModel';
import { Sampler, type SamplingOptions, tokenProbability } from './sampling';
import { CompletionText } from './completionText';
import { fitPrompt } from './promptWindow';
import { MAX_DRAFT_TOKENS, lookupDraft } from './promptLookup';

export interface GenerateOptions extends SamplingOptions {
  /** Most tokens to generate (default 64). */
  maxTokens?: number;
  /** Generation ends when the decoded text contains one of these; the returned text stops before it. */
  stop?: readonly string[];
  /** Checked between tokens: when aborted, returns what was produced so far with finishReason 'cancelled'. */
  signal?: AbortSignal;
  /**
   * Called once per generated token with the text it makes final. Text that may be the start of a stop
   * sequence, or an incomplete UTF-8 character, is held back until it is known not to be; the call for the
   * last token carries everything that is left. So the streamed texts add up to `text`, except after
   * cancellation, where a held-back tail appears only in the result.
   */
  onToken?: (text: string, id: number) => void;
  /**
   * A cache from an earlier call (its `cache`) or from LanguageModel.newCache. The longest common prefix of its
   * tokens and the prompt is reused; the cache passed in is not modified.
   */
  cache?: KvCache;
  /**
   * Release `cache` as soon as its reusable part is taken, before the first run, so that the new cache may write
   * over the positions after that part in place instead of copying it; the caller must not use `cache` again.
   */
  releaseCache?: boolean;
  /**
   * Greedy decoding only: most tokens guessed from the context (promptLookup.ts) and checked in the run of the next
   * token (default MAX_DRAFT_TOKENS; 0: none). The tokens generated are the model's greedy choices either way, up
   * to rounding: a run of several tokens may round differently from single-token runs (by ~1e-6 in float32, but by
   * up to ~0.05 in int8 MatMulNBits models), which can flip a near tie.
   */
  draftTokens?: number;
}

export type FinishReason = 'stop' | 'length' | 'eos' | 'cancelled';

export interface GenerateResult {
  /** Decoded text of the generated tokens, cut before a stop sequence; the end-of-text token adds nothing. */
  text: string;
  /** The prompt as run (after left truncation) followed by the generated ids. */
  tokenIds: number[];
  /** Every generated id, including the end-of-text token and the tokens that spell a stop sequence. */
  generatedIds: number[];
  finishReason: FinishReason;
  /** The model's probability (softmax at temperature 1, before filtering) of each generated id. */
  tokenProbabilities: number[];
  /** Number of prompt tokens dropped from the left to fit the context. */
  truncatedTokens: number;
  /** Number of prompt tokens whose keys and values came from the cache passed in. */
  reusedTokens: number;
  timings: {
    /** Time to run the prompt (the uncached part) and choose the first token. */
    promptMs: number;
    /** Mean time per token generated after the first (runs and choices), 0 when there was none. */
    perTokenMs: number;
  };
  /** Tokens guessed from the context and checked, and how many of them the model chose (and so took no run). */
  drafts: { proposed: number; accepted: number };
  /** The keys and values of every token that was run: tokenIds without the last generated one. */
  cache: KvCache;
}

export const DEFAULT_MAX_TOKENS = 64;

export async function generate(
  model: LanguageModel,
  prompt: string | readonly number[],
  options: GenerateOptions = {},
): Promise<GenerateResult> {
  const maxTokens = options.maxTokens ?? DEFAULT_MAX_TOKENS;
  if (!(Number.isInteger(maxTokens) && maxTokens >= 0))
    throw new Error(`maxTokens must be a non-negative integer, got ${maxTokens}`);
  const sampler = new Sampler(options);
  const { config, tokenizer } = model;
  const contextLength = config.contextLength;
  const endIds = new Set([config.eosTokenId]);
  if (tokenizer.eosTokenId !== undefined) endIds.add(tokenizer.eosTokenId);

  const given = typeof prompt === 'string' ? tokenizer.encode(prompt) : Array.from(prompt);
  const promptIds = fitPrompt(given, maxTokens, contextLength, config.bosTokenId);
  const truncatedTokens = Math.max(0, given.length - promptIds.length);

  let cache = reusableCache(model, options.cache, promptIds);
  if (options.releaseCache) options.cache?.release();
  const reusedTokens = cache.length;
  const tokenIds = promptIds.slice();
  const generatedIds: number[] = [];
  const tokenProbabilities: number[] = [];
  const completion = new CompletionText(tokenizer, options.stop ?? [], Math.max(1, maxTokens), endIds);
  let promptMs = 0;
  let decodeMs = 0;
  let decodeSteps = 0;
  const drafts = { proposed: 0, accepted: 0 };
  const maxDraft = sampler.isGreedy ? (options.draftTokens ?? MAX_DRAFT_TOKENS) : 0;
  let draftLength = maxDraft;

  const result = (finishReason: FinishReason): GenerateResult => ({
    text: completion.text,
    tokenIds,
    generatedIds,
    finishReason,
    tokenProbabilities,
    truncatedTokens,
    reusedTokens,
    timings: { promptMs, perTokenMs: decodeSteps ? decodeMs / decodeSteps : 0 },
    drafts,
    cache,
  });
  /** Drops the positions after the first `length` from the cache (ones run for guesses the model did not make). */
  const keep = (length: number) => {
    if (cache.length <= length) return;
    const kept = cache.prefix(length);
    cache.release();
    cache = kept;
  };
  /** Takes a generated token (its probability is the caller's to add); a reason when generation ends with it. */
  const accept = (token: number): FinishReason | undefined => {
    generatedIds.push(token);
    tokenIds.push(token);
    const fresh = completion.push(token, tokenIds.length < contextLength);
    options.onToken?.(fresh, token);
    if (completion.finish) return completion.finish;
    if (options.signal?.aborted) {
      completion.end();
      return 'cancelled';
    }
    return undefined;
  };

  if (maxTokens === 0) return result('length');
  if (options.signal?.aborted) return result('cancelled');

  let start = performance.now();
  let logits = await model.run(promptIds.slice(cache.length), cache);
  let id = sampler.pick(logits);
  promptMs = performance.now() - start;

  for (;;) {
    const finished = accept(id);
    if (finished) {
      tokenProbabilities.push(tokenProbability(logits, id));
      return result(finished);
    }
    // The cache holds every token but `id`: run it, with the tokens guessed to follow it. The run goes on in the
    // worker while this token's probability (a pass over the vocabulary, 2 ms at 152k tokens) is worked out here.
    start = performance.now();
    const room = Math.min(maxTokens - generatedIds.length - 1, contextLength - tokenIds.length - 1);
    const draft = lookupDraft(tokenIds, Math.min(draftLength, room));
    const running = model.run([id, ...draft], cache, { allPositions: draft.length > 0 });
    tokenProbabilities.push(tokenProbability(logits, id));
    const rows = await running;
    const vocab = rows.length / (draft.length + 1);
    drafts.proposed += draft.length;
    let agreed = 0;
    for (;;) {
      logits = rows.subarray(agreed * vocab, (agreed + 1) * vocab);
      id = sampler.pick(logits);
      if (agreed === draft.length || id !== draft[agreed]) break;
      agreed++;
      drafts.accepted++;
      tokenProbabilities.push(tokenProbability(logits, id));
      const ended = accept(id);
      if (ended) {
        keep(tokenIds.length - 1);
        return result(ended);
      }
    }
    keep(tokenIds.length);
    // Guess as far as the model went along last time, and one further.
    if (draft.length > 0) draftLength = Math.min(maxDraft, agreed + 1);
    decodeMs += performance.now() - start;
    decodeSteps += agreed + 1;
  }
}

/**
 * A fresh cache holding the longest usable prefix of `given` for this prompt (at least one prompt token is
 * left to run).
 */
function reusableCache(model: LanguageModel, given: KvCache | undefined, promptIds: readonly number[]): KvCache {
  if (!given || given.owner !== model || given.length === 0) return model.newCache();
  const limit = Math.min(given.length, promptIds.length - 1);
  let common = 0;
  while (common < limit && given.tokens[common] === promptIds[common]) common++;
  if (common === 0) return model.newCache();
  return common === given.length ? given.clone() : given.prefix(common);
}
