// The ranges the user edited last, per file: found by comparing a document's text before and after a change
// (the common start and end), merged when they touch, newest first. Completions in another file show them.

export interface EditedRange {
  key: string;
  /** 0-based first and last line of the changed text, in the text after the change. */
  startLine: number;
  endLine: number;
  /** Increases with every recorded edit. */
  sequence: number;
}

/** Lines two edits may be apart and still count as one range. */
const MERGE_DISTANCE = 3;

export class RecentEdits {
  private ranges: EditedRange[] = [];
  private sequence = 0;

  constructor(private readonly capacity = 16) {}

  /** Records where `after` differs from `before`. */
  record(key: string, before: string, after: string): void {
    const changed = changedLines(before, after);
    if (!changed) return;
    const sequence = ++this.sequence;
    const near = this.ranges.find(
      (r) =>
        r.key === key &&
        r.startLine - MERGE_DISTANCE <= changed.endLine &&
        changed.startLine <= r.endLine + MERGE_DISTANCE,
    );
    if (near) {
      near.startLine = Math.min(near.startLine, changed.startLine);
      near.endLine = Math.max(near.endLine, changed.endLine);
      near.sequence = sequence;
    } else this.ranges.push({ key, ...changed, sequence });
    this.ranges.sort((a, b) => b.sequence - a.sequence);
    this.ranges.length = Math.min(this.ranges.length, this.capacity);
  }

  forget(key: string): void {
    this.ranges = this.ranges.filter((r) => r.key !== key);
  }

  /** The newest ranges first. */
  newest(): readonly EditedRange[] {
    return this.ranges;
  }
}

/** The lines of `after` that differ from `before`, or undefined when the texts are equal. */
export function changedLines(before: string, after: string): { startLine: number; endLine: number } | undefined {
  if (before === after) return undefined;
  let start = 0;
  const shorter = Math.min(before.length, after.length);
  while (start < shorter && before.charCodeAt(start) === after.charCodeAt(start)) start++;
  let end = 0;
  while (
    end < shorter - start &&
    before.charCodeAt(before.length - 1 - end) === after.charCodeAt(after.length - 1 - end)
  )
    end++;
  const startLine = countLines(after, start);
  const endLine = countLines(after, Math.max(start, after.length - end));
  return { startLine, endLine };
}

function countLines(text: string, offset: number): number {
  let lines = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) lines++;
  return lines;
}
