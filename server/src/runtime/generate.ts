// Text generation with a loaded language model: one run over the prompt (prefill), then one run per new token
// with the KV cache; greedy or sampled tokens, stop sequences, cancellation, streaming, left truncation of
// prompts that do not fit the context, and reuse of a cache whose tokens begin the new prompt.
import type { KvCache, LanguageModel } from './languageModel';
import { Sampler, type SamplingOptions, tokenProbability } from './sampling';
import { CompletionText } from './completionText';
import { fitPrompt } from './promptWindow';

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
    /** Mean time of one decode step (one-token run and choice), 0 when there was none. */
    perTokenMs: number;
  };
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

  const cache = reusableCache(model, options.cache, promptIds);
  if (options.releaseCache) options.cache?.release();
  const reusedTokens = cache.length;
  const tokenIds = promptIds.slice();
  const generatedIds: number[] = [];
  const tokenProbabilities: number[] = [];
  const completion = new CompletionText(tokenizer, options.stop ?? [], Math.max(1, maxTokens), endIds);
  let promptMs = 0;
  let decodeMs = 0;
  let decodeSteps = 0;

  const result = (finishReason: FinishReason): GenerateResult => ({
    text: completion.text,
    tokenIds,
    generatedIds,
    finishReason,
    tokenProbabilities,
    truncatedTokens,
    reusedTokens,
    timings: { promptMs, perTokenMs: decodeSteps ? decodeMs / decodeSteps : 0 },
    cache,
  });

  if (maxTokens === 0) return result('length');
  if (options.signal?.aborted) return result('cancelled');

  let start = performance.now();
  let logits = await model.run(promptIds.slice(cache.length), cache);
  let id = sampler.pick(logits);
  promptMs = performance.now() - start;

  for (;;) {
    generatedIds.push(id);
    tokenIds.push(id);
    const fresh = completion.push(id, tokenIds.length < contextLength);
    options.onToken?.(fresh, id);
    const cancelled = !completion.finish && options.signal?.aborted === true;
    // The next step runs in the worker while this token's probability (a pass over the vocabulary, 2 ms at 152k
    // tokens) is worked out here.
    start = performance.now();
    const next = completion.finish || cancelled ? undefined : model.run([id], cache);
    tokenProbabilities.push(tokenProbability(logits, id));
    if (!next) {
      if (completion.finish) return result(completion.finish);
      completion.end();
      return result('cancelled');
    }
    logits = await next;
    id = sampler.pick(logits);
    decodeMs += performance.now() - start;
    decodeSteps++;
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
