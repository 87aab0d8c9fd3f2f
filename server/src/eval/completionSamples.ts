// Picks the cursor positions at which evaluation asks for a next-line completion: the start of a line (after
// its indentation) in a held-out file, skipping trivial lines such as a lone `}` or a blank line.
import { uniform } from '../engine/random';

export interface CompletionSample {
  path: string;
  prefix: string; // file text up to the cursor, including the line's indentation
  expected: string; // the rest of the line
}

/** A line is worth predicting when it has at least 4 characters of which some are letters or digits. */
export function isTrivialLine(line: string): boolean {
  const t = line.trim();
  return t.length < 4 || !/[\p{L}\p{N}]/u.test(t);
}

export function sampleCompletions(
  files: { path: string; text: string }[],
  count: number,
  seed: number,
): CompletionSample[] {
  const candidates: CompletionSample[] = [];
  for (const file of files) {
    let offset = 0;
    const lines = file.text.split('\n');
    lines.forEach((line, index) => {
      const indentation = line.length - line.trimStart().length;
      if (index > 0 && !isTrivialLine(line)) {
        candidates.push({
          path: file.path,
          prefix: file.text.slice(0, offset + indentation),
          expected: line.slice(indentation).trimEnd(),
        });
      }
      offset += line.length + 1;
    });
  }
  const random = uniform(seed);
  for (let i = candidates.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [candidates[i], candidates[j]] = [candidates[j], candidates[i]];
  }
  return candidates.slice(0, count);
}
