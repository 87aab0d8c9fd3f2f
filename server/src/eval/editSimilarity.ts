// Edit similarity between a generated line and the real one: 1 − Levenshtein distance / longer length,
// the usual line-completion metric (1 = identical, 0 = nothing in common).
export function levenshtein(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  let current = new Array<number>(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min(substitution, previous[j] + 1, current[j - 1] + 1);
    }
    [previous, current] = [current, previous];
  }
  return previous[b.length];
}

export function editSimilarity(generated: string, expected: string): number {
  const longer = Math.max(generated.length, expected.length);
  return longer === 0 ? 1 : 1 - levenshtein(generated, expected) / longer;
}
