// The confidence threshold: a suggestion is shown only when the model's mean probability of the tokens that
// made it (after the stop rules and filters cut it) reaches the threshold from the settings.

/**
 * Probabilities of the tokens whose text is (at least partly) inside the first `keptLength` characters.
 * `tokenEnds[i]` is the length of the text after token i was decoded.
 */
export function keptTokenProbabilities(
  tokenEnds: readonly number[],
  probabilities: readonly number[],
  keptLength: number,
): number[] {
  const kept: number[] = [];
  let start = 0;
  for (let i = 0; i < probabilities.length && start < keptLength; i++) {
    kept.push(probabilities[i]);
    start = tokenEnds[i] ?? start;
  }
  return kept;
}

export function meanProbability(probabilities: readonly number[]): number {
  if (probabilities.length === 0) return 0;
  let sum = 0;
  for (const p of probabilities) sum += p;
  return sum / probabilities.length;
}

/** True when the suggestion may be shown (a threshold of 0 shows everything). */
export function isConfident(mean: number, threshold: number): boolean {
  return threshold <= 0 || mean >= threshold;
}
