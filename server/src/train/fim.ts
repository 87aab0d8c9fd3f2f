// Fill-in-the-middle training examples (Bavarian et al. 2022): a document is cut into prefix, middle (from any
// character to a line boundary) and suffix and rearranged with the tokenizer's FIM tokens, so the model learns to
// write the middle from both sides, exactly as the completion prompt (completion/prompt.ts, PSM order) asks it to.
import { mixSeed, uniform } from '../engine/random';
import type { FimTokenIds } from '../tokenizer/fimFormats';

export type FimOrder = 'psm' | 'spm';

export interface FimOptions {
  /** Share of documents turned into FIM examples (default 0.5, as in the paper). */
  rate: number;
  /** Share of FIM examples in SPM order (default 0.5: joint PSM/SPM training); the rest are PSM. */
  spmRate: number;
  seed: number;
}

export const DEFAULT_FIM_RATE = 0.5;

export interface FimSplit {
  order: FimOrder;
  prefix: string;
  middle: string;
  suffix: string;
}

/** Offsets just after each newline, plus 0 and the end: where a span may begin or end. */
function lineBoundaries(text: string): number[] {
  const boundaries = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) {
    if (i + 1 < text.length) boundaries.push(i + 1);
  }
  boundaries.push(text.length);
  return boundaries;
}

/**
 * The FIM cut of document `index`, or undefined when it stays an ordinary left-to-right example. Deterministic in
 * (seed, index), so a resumed run rebuilds the same examples.
 */
export function fimSplit(text: string, index: number, options: FimOptions): FimSplit | undefined {
  const random = uniform(mixSeed(options.seed, index));
  if (random() >= options.rate) return undefined;
  const boundaries = lineBoundaries(text);
  if (boundaries.length < 3) return undefined; // one line: there is no middle to take out
  // The middle starts at any character, as an editor's cursor stands anywhere in a line, and ends at a line
  // boundary after it (the end of its line or of a later one), so it is never empty and the model learns to finish
  // the line it is in rather than to start a new one.
  const start = Math.floor(random() * (text.length - 1));
  const after = boundaries.filter((b) => b > start);
  const end = after[Math.floor(random() * after.length)];
  const order: FimOrder = random() < options.spmRate ? 'spm' : 'psm';
  return { order, prefix: text.slice(0, start), middle: text.slice(start, end), suffix: text.slice(end) };
}

/**
 * The token ids of a FIM example. PSM: <prefix> P <suffix> S <middle> M; SPM (the variant of the paper's appendix
 * that StarCoder uses): <prefix> <suffix> S <middle> P M. Each part is encoded on its own, as the prompt does.
 */
export function fimExample(split: FimSplit, tokens: FimTokenIds, encode: (text: string) => number[]): number[] {
  const [prefix, middle, suffix] = [split.prefix, split.middle, split.suffix].map(encode);
  return split.order === 'psm'
    ? [tokens.prefix, ...prefix, tokens.suffix, ...suffix, tokens.middle, ...middle]
    : [tokens.prefix, tokens.suffix, ...suffix, tokens.middle, ...prefix, ...middle];
}

/** Every document's ids, a share of them as FIM examples; also how many became FIM examples. */
export function encodeWithFim(
  texts: readonly string[],
  encode: (text: string) => number[],
  tokens: FimTokenIds,
  options: FimOptions,
): { documents: number[][]; fimDocuments: number } {
  let fimDocuments = 0;
  const documents = texts.map((text, index) => {
    const split = fimSplit(text, index, options);
    if (!split) return encode(text);
    fimDocuments++;
    return fimExample(split, tokens, encode);
  });
  return { documents, fimDocuments };
}
