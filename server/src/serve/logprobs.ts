// Log probabilities in OpenAI's two shapes: the legacy completions object (parallel arrays `tokens`,
// `token_logprobs`, `top_logprobs`, `text_offset`, as lm-evaluation-harness reads them) and chat's list of
// {token, logprob, bytes, top_logprobs}. Token strings are the text a token stands for, or "bytes:\xNN" escapes
// for tokens that end inside a UTF-8 character.
import type { TokenLogProbability } from '../runtime/sampling';
import { type StreamingDecoder, type Tokenizer, createStreamingDecoder } from '../runtime/tokenizer';

/** One scored position: the token there, its log probability (null for the first prompt token) and alternatives. */
export interface ScoredToken {
  id: number;
  logprob: number | null;
  top: TokenLogProbability[] | null;
}

export interface LegacyLogprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

export interface ChatLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The token's text, or its bytes spelled "bytes:\xNN…" when they are not whole UTF-8 characters. */
export function tokenString(tokenizer: Tokenizer, id: number): string {
  const bytes = tokenizer.tokenBytes(id);
  if (!bytes) return tokenizer.decode([id]);
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return `bytes:${Array.from(bytes, (b) => `\\x${b.toString(16).padStart(2, '0')}`).join('')}`;
  }
}

function tokenBytes(tokenizer: Tokenizer, id: number): number[] {
  return Array.from(tokenizer.tokenBytes(id) ?? new TextEncoder().encode(tokenizer.decode([id])));
}

/**
 * Builds the legacy shape token by token, so that streamed chunks and whole responses agree: text offsets count
 * the characters decoded before each token, from `startOffset`.
 */
export class LegacyLogprobsBuilder {
  private readonly decoder: StreamingDecoder;
  private offset: number;

  constructor(
    private readonly tokenizer: Tokenizer,
    startOffset = 0,
  ) {
    this.decoder = createStreamingDecoder(tokenizer);
    this.offset = startOffset;
  }

  /** Characters decoded so far, from the start offset on: the offset of the next token. */
  get position(): number {
    return this.offset;
  }

  /** The entries for these tokens; tokens that start at or after `textEnd` (a stop sequence's) are left out. */
  add(tokens: readonly ScoredToken[], textEnd = Infinity): LegacyLogprobs {
    const out: LegacyLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
    for (const token of tokens) {
      if (this.offset >= textEnd) break;
      out.tokens.push(tokenString(this.tokenizer, token.id));
      out.token_logprobs.push(token.logprob);
      out.top_logprobs.push(token.top && this.topObject(token.top));
      out.text_offset.push(this.offset);
      this.offset += this.decoder.push(token.id).length;
    }
    return out;
  }

  private topObject(top: readonly TokenLogProbability[]): Record<string, number> {
    const object: Record<string, number> = {};
    // Two ids may spell the same string; the likelier one (listed first) is kept.
    for (const { id, logprob } of top) {
      const key = tokenString(this.tokenizer, id);
      if (!(key in object)) object[key] = logprob;
    }
    return object;
  }
}

/** Joins legacy pieces (prompt tokens, then generated ones). */
export function concatLegacy(parts: readonly LegacyLogprobs[]): LegacyLogprobs {
  return {
    tokens: parts.flatMap((p) => p.tokens),
    token_logprobs: parts.flatMap((p) => p.token_logprobs),
    top_logprobs: parts.flatMap((p) => p.top_logprobs),
    text_offset: parts.flatMap((p) => p.text_offset),
  };
}

/** Chat's logprobs.content entries for generated tokens. */
export function chatLogprobs(tokenizer: Tokenizer, tokens: readonly ScoredToken[]): ChatLogprob[] {
  return tokens.map((token) => ({
    token: tokenString(tokenizer, token.id),
    logprob: token.logprob ?? 0,
    bytes: tokenBytes(tokenizer, token.id),
    top_logprobs: (token.top ?? []).map((alternative) => ({
      token: tokenString(tokenizer, alternative.id),
      logprob: alternative.logprob,
      bytes: tokenBytes(tokenizer, alternative.id),
    })),
  }));
}
