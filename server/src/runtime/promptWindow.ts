// Fitting a prompt into the model's context: an editor's file is always longer than the context, so a prompt
// is cut from the left, keeping room for the tokens to generate.

/**
 * The prompt ids to run for a completion of up to `maxTokens` tokens: cut from the left so that both fit the
 * context, and the begin-of-text id for an empty prompt. The editor (generate) and the HTTP service both use it.
 */
export function fitPrompt(
  ids: readonly number[],
  maxTokens: number,
  contextLength: number,
  bosTokenId: number,
): number[] {
  const prompt = ids.length ? ids : [bosTokenId];
  const keep = Math.max(1, contextLength - maxTokens);
  return prompt.length > keep ? prompt.slice(prompt.length - keep) : prompt.slice();
}
