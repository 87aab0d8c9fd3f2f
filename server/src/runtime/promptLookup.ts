// Guesses of the next tokens for greedy decoding, read off the context (prompt lookup decoding): code repeats
// itself, so the tokens that followed the last earlier occurrence of the sequence's last few tokens are often
// what comes next. generate() checks a guess in one run with the next token and keeps the part the model agrees with.

/** Most tokens guessed at once. */
export const MAX_DRAFT_TOKENS = 4;
/** Fewest and most last tokens looked up (longer matches first). */
const MIN_MATCH = 2;
const MAX_MATCH = 4;

/**
 * Up to `limit` tokens that followed the most recent earlier occurrence of the last n tokens of `tokens`, for the
 * longest n from MAX_MATCH down to MIN_MATCH that occurs; empty when none does.
 */
export function lookupDraft(tokens: readonly number[], limit: number): number[] {
  const length = tokens.length;
  if (limit <= 0) return [];
  for (let n = Math.min(MAX_MATCH, length - 1); n >= MIN_MATCH; n--) {
    const suffix = length - n;
    for (let start = suffix - 1; start >= 0; start--) {
      let k = 0;
      while (k < n && tokens[start + k] === tokens[suffix + k]) k++;
      if (k < n) continue;
      const from = start + n;
      return tokens.slice(from, Math.min(from + limit, length));
    }
  }
  return [];
}
