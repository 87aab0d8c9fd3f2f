// Post-processing filter: a suggestion must not end with text that already follows the cursor — `a, b)` before
// an auto-closed `)` becomes `a, b`, and a repeat of the whole rest of the line is dropped. A single matching
// letter or digit is left alone (too likely to be a coincidence).
import type { Filter } from './filter';

const PUNCTUATION = /^[)\]}>"'`;,.:]+$/;

export const removeSuffixOverlap: Filter = (text, { lineSuffix }) => {
  const suffix = lineSuffix.trimEnd();
  for (let k = Math.min(text.length, suffix.length); k > 0; k--) {
    const piece = suffix.slice(0, k);
    if (!text.endsWith(piece)) continue;
    if (k >= 2 || PUNCTUATION.test(piece)) return text.slice(0, text.length - k);
  }
  return text;
};
