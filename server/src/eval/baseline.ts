// A simple baseline for next-line completion that needs no model: predict that the line repeats the previous
// non-blank line (after its indentation). A model is worth its cost where it beats this on the same samples.
import type { CompletionSample } from './completionSamples';
import { editSimilarity } from './editSimilarity';

export interface BaselineScores {
  exactMatch: number;
  editSimilarity: number;
}

export function previousLinePrediction(sample: CompletionSample): string {
  const lines = sample.prefix.split('\n');
  for (let i = lines.length - 2; i >= 0; i--) if (lines[i].trim()) return lines[i].trim();
  return '';
}

export function previousLineBaseline(samples: readonly CompletionSample[]): BaselineScores {
  let exact = 0;
  let similarity = 0;
  for (const sample of samples) {
    const predicted = previousLinePrediction(sample);
    if (predicted === sample.expected) exact++;
    similarity += editSimilarity(predicted, sample.expected);
  }
  const count = Math.max(1, samples.length);
  return { exactMatch: exact / count, editSimilarity: similarity / count };
}
