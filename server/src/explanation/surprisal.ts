// How unusual each line of a file is for this codebase: the mean surprisal (bits per token) of the line's tokens
// under the workspace's completion model, with the file's mean and standard deviation so that lines far above
// it (mean + 2σ) can be marked. Long files are scored in overlapping windows of the model's context.
import type { LanguageModel } from '../runtime/languageModel';
import { logSoftmax } from '../runtime/sampling';

export interface LineStatistics {
  /** First line scored (0-based); bitsPerToken[i] belongs to line firstLine + i. */
  firstLine: number;
  /** Mean bits per token of each line; undefined for blank lines. */
  bitsPerToken: (number | undefined)[];
  mean: number;
  deviation: number;
}

/** Lines above mean + UNUSUAL_DEVIATIONS · σ are unusual. */
export const UNUSUAL_DEVIATIONS = 2;

/**
 * Scores lines [firstLine, endLine) of `text`. Each line is encoded on its own (with its line break), so tokens
 * map to lines exactly; the first line is predicted after the end-of-text token, as documents start in training.
 */
export async function lineSurprisal(
  model: LanguageModel,
  text: string,
  options: { firstLine?: number; endLine?: number; signal?: AbortSignal } = {},
): Promise<LineStatistics> {
  const allLines = text.split('\n');
  const firstLine = Math.max(0, Math.min(options.firstLine ?? 0, allLines.length));
  const endLine = Math.max(firstLine, Math.min(options.endLine ?? allLines.length, allLines.length));
  const lines = allLines.slice(firstLine, endLine);
  const sequence: number[] = [model.config.eosTokenId];
  const lineOf: number[] = [-1];
  lines.forEach((line, i) => {
    const ids = model.tokenizer.encode(firstLine + i < allLines.length - 1 ? `${line}\n` : line);
    for (const id of ids) {
      sequence.push(id);
      lineOf.push(i);
    }
  });

  const bits = new Float64Array(lines.length);
  const counts = new Int32Array(lines.length);
  const window = model.config.contextLength;
  const stride = Math.max(1, Math.floor(window / 2));
  const vocab = model.config.vocabSize;
  const logProbs = new Float32Array(vocab);
  let scoredUntil = 1; // tokens before this index have been scored
  for (let start = 0; scoredUntil < sequence.length; start += stride) {
    if (options.signal?.aborted) throw new Error('cancelled');
    const end = Math.min(start + window, sequence.length);
    const logits = await model.run(sequence.slice(start, end), model.newCache(), { allPositions: true });
    for (let target = Math.max(scoredUntil, start + 1); target < end; target++) {
      const row = target - 1 - start;
      logSoftmax(logits.subarray(row * vocab, (row + 1) * vocab), logProbs);
      const line = lineOf[target];
      bits[line] += -logProbs[sequence[target]] / Math.LN2;
      counts[line]++;
    }
    scoredUntil = end;
  }

  const bitsPerToken = lines.map((line, i) =>
    line.trim() === '' || counts[i] === 0 ? undefined : bits[i] / counts[i],
  );
  const scored = bitsPerToken.filter((b): b is number => b !== undefined);
  const mean = scored.length ? scored.reduce((a, b) => a + b, 0) / scored.length : 0;
  const variance = scored.length ? scored.reduce((a, b) => a + (b - mean) ** 2, 0) / scored.length : 0;
  return { firstLine, bitsPerToken, mean, deviation: Math.sqrt(variance) };
}

/** Bits per token of a line (0-based, in the file), or undefined when blank or not scored. */
export function lineBits(statistics: LineStatistics, line: number): number | undefined {
  return statistics.bitsPerToken[line - statistics.firstLine];
}

export function isUnusual(statistics: LineStatistics, line: number): boolean {
  const value = lineBits(statistics, line);
  return (
    value !== undefined &&
    statistics.deviation > 0 &&
    value > statistics.mean + UNUSUAL_DEVIATIONS * statistics.deviation
  );
}
