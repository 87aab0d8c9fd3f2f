// Text generation with a loaded language model: one run over the prompt (prefill), then one run per new token
// with the KV cache; greedy or sampled tokens, stop sequences, cancellation, streaming, left truncation of
// prompts that do not fit the context, and reuse of a cache whose tokens begin the new prompt.
import type { KvCache, LanguageModel } from './languageModel';
import { Sampler, type SamplingOptions } from './sampling';
import { createStreamingDecoder } from './tokenizer';

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
  onToken?: (text: string, id: number, probability: number) => void;
  /**
   * A cache from an earlier call (its `cache`) or from LanguageModel.newCache. The longest common prefix of its
   * tokens and the prompt is reused; the cache passed in is not modified.
   */
  cache?: KvCache;
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
  const stops = (options.stop ?? []).filter((s) => s.length > 0);
  const longestStop = stops.reduce((n, s) => Math.max(n, s.length), 0);
  const endIds = new Set([config.eosTokenId]);
  if (tokenizer.eosTokenId !== undefined) endIds.add(tokenizer.eosTokenId);

  // The prompt, cut from the left so that it and maxTokens new tokens fit the context.
  let promptIds = typeof prompt === 'string' ? tokenizer.encode(prompt) : Array.from(prompt);
  if (promptIds.length === 0) promptIds = [config.bosTokenId];
  const keep = Math.max(1, contextLength - maxTokens);
  const truncatedTokens = Math.max(0, promptIds.length - keep);
  if (truncatedTokens > 0) promptIds = promptIds.slice(truncatedTokens);

  const cache = reusableCache(model, options.cache, promptIds);
  const reusedTokens = cache.length;
  const tokenIds = promptIds.slice();
  const generatedIds: number[] = [];
  const tokenProbabilities: number[] = [];
  const decoder = createStreamingDecoder(tokenizer);
  let text = '';
  let streamed = 0; // text[0..streamed) has been passed to onToken
  let promptMs = 0;
  let decodeMs = 0;
  let decodeSteps = 0;

  const result = (finishReason: FinishReason): GenerateResult => ({
    text,
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
  let choice = sampler.choose(logits);
  promptMs = performance.now() - start;

  for (;;) {
    const { id, probability } = choice;
    generatedIds.push(id);
    tokenIds.push(id);
    tokenProbabilities.push(probability);

    let finish: FinishReason | undefined;
    if (endIds.has(id)) {
      finish = 'eos';
    } else {
      const before = text.length;
      text += decoder.push(id);
      const at = stops.length ? findStop(text, stops, Math.max(0, before - longestStop + 1)) : -1;
      if (at >= 0) {
        text = text.slice(0, at);
        finish = 'stop';
      }
    }
    if (!finish && (generatedIds.length >= maxTokens || tokenIds.length >= contextLength)) finish = 'length';
    if (finish && finish !== 'stop') text += decoder.flush();

    if (options.onToken) {
      const end = finish ? text.length : text.length - heldBack(text, stops);
      const fresh = end > streamed ? text.slice(streamed, end) : '';
      streamed = Math.max(streamed, end);
      options.onToken(fresh, id, probability);
    }
    if (finish) return result(finish);
    if (options.signal?.aborted) {
      text += decoder.flush();
      return result('cancelled');
    }

    start = performance.now();
    logits = await model.run([id], cache);
    choice = sampler.choose(logits);
    decodeMs += performance.now() - start;
    decodeSteps++;
  }
}

/** A fresh cache holding the longest usable prefix of `given` for this prompt (at least one prompt token is left to run). */
function reusableCache(model: LanguageModel, given: KvCache | undefined, promptIds: readonly number[]): KvCache {
  if (!given || given.owner !== model || given.length === 0) return model.newCache();
  const limit = Math.min(given.length, promptIds.length - 1);
  let common = 0;
  while (common < limit && given.tokens[common] === promptIds[common]) common++;
  if (common === 0) return model.newCache();
  return common === given.length ? given.clone() : given.prefix(common);
}

/** Earliest index at or after `from` where a stop sequence starts, or −1. */
function findStop(text: string, stops: readonly string[], from: number): number {
  let best = -1;
  for (const stop of stops) {
    const at = text.indexOf(stop, from);
    if (at >= 0 && (best < 0 || at < best)) best = at;
  }
  return best;
}

/** Length of the longest end of `text` that is the beginning of a stop sequence (and might become one). */
function heldBack(text: string, stops: readonly string[]): number {
  let held = 0;
  for (const stop of stops) {
    for (let k = Math.min(stop.length - 1, text.length); k > held; k--) {
      if (text.endsWith(stop.slice(0, k))) {
        held = k;
        break;
      }
    }
  }
  return held;
}
