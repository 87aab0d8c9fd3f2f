// Where a multi-line suggestion should end, judged line by line while tokens stream in (so decoding stops as
// soon as a rule fires): at the end of the block by indentation, before a line that repeats the next line
// after the cursor, after the maximum number of lines, and at a line that repeats itself (a small model's
// degenerate `most, most, most, …`, which would otherwise run to the token limit).
import { bracketBalance, lineCommentFor } from '../util/brackets';
import { type CompletionContext, indentWidth } from './completionContext';

export interface StopRuleContext {
  /** Text of the cursor line before the cursor. */
  linePrefix: string;
  /** The first non-blank line after the cursor line, trimmed. */
  nextLine: string | undefined;
  maxLines: number;
  /** Complete the current line only. */
  singleLine: boolean;
  lineComment?: string;
  /** Whether a line that repeats itself ends the suggestion (default true). */
  dropRepetition?: boolean;
}

/** The stop rules' view of a cursor's context, with the completion settings they read. */
export function stopRuleContext(
  context: CompletionContext,
  settings: { maxLines: number; dropRepetition?: boolean },
): StopRuleContext {
  return {
    linePrefix: context.linePrefix,
    nextLine: context.nextLine,
    maxLines: settings.maxLines,
    dropRepetition: settings.dropRepetition,
    singleLine: context.singleLine,
    lineComment: context.lineComment,
  };
}

export type StopRule = 'maxLines' | 'endOfBlock' | 'dedent' | 'repeatsSuffix' | 'repetition';

export interface Stop {
  /** Length of the text to keep. */
  at: number;
  rule: StopRule;
}

/**
 * The first place where `text` (the suggestion so far) should end, or undefined. Only lines that are complete
 * are judged — all of them when `final` (generation has ended), otherwise all but the last — except for repetition,
 * which drops a line as soon as it repeats itself, so that decoding can stop there.
 */
export function findStop(text: string, context: StopRuleContext, final = false): Stop | undefined {
  const lines = text.split('\n');
  const maxLines = context.singleLine ? 1 : Math.max(1, context.maxLines);
  const complete = final ? lines.length : lines.length - 1;
  const lineComment = context.lineComment ?? lineCommentFor('');
  const starts: number[] = [];
  for (let i = 0, offset = 0; i < lines.length; i++) {
    starts.push(offset);
    offset += lines[i].length + 1;
  }
  /** Keeps lines [0, i): the cut drops the line break before line i and any blank lines above it. */
  const before = (i: number): number => {
    let last = i - 1;
    while (last > 0 && lines[last].trim() === '') last--;
    return starts[last] + lines[last].length;
  };

  const firstLine = context.linePrefix + lines[0];
  let reference = firstLine.trim() ? indentWidth(firstLine) : undefined;
  let depth = bracketBalance(firstLine, lineComment);
  let opened = depth > 0;

  for (let i = 0; i < Math.min(lines.length, maxLines); i++) {
    const line = lines[i];
    if (context.dropRepetition !== false && repeatsItself(line))
      return { at: i === 0 ? 0 : before(i), rule: 'repetition' };
    if (i === 0 || i >= complete || line.trim() === '') continue;
    if (reference === undefined) reference = indentWidth(line);
    if (context.nextLine && line.trim() === context.nextLine) return { at: before(i), rule: 'repeatsSuffix' };
    const indent = indentWidth(line);
    if (indent < reference) return { at: before(i), rule: 'dedent' };
    depth += bracketBalance(line, lineComment);
    if (depth > 0) opened = true;
    if (opened && depth <= 0 && indent <= reference) return { at: starts[i] + line.length, rule: 'endOfBlock' };
  }
  if (lines.length > maxLines && complete >= maxLines) return { at: before(maxLines), rule: 'maxLines' };
  return undefined;
}

/**
 * Judges a suggestion while its pieces stream in, so that decoding can end as soon as a rule fires: `stop` is the
 * first stop found, and `onStop` is called when it is. The rules run when a line completes or the open line has
 * begun to repeat itself.
 */
export class StreamedStop {
  text = '';
  stop: Stop | undefined;
  private readonly lines = new RepetitionScanner();

  constructor(
    private readonly context: StopRuleContext,
    private readonly onStop: () => void,
  ) {}

  add(piece: string): void {
    this.text += piece;
    if (this.stop) return;
    const repeated = this.context.dropRepetition !== false && this.lines.scan(this.text);
    if (!repeated && !piece.includes('\n')) return;
    this.stop = findStop(this.text, this.context);
    if (this.stop) this.onStop();
  }
}

/** Units of up to this many characters are looked for. */
const LONGEST_UNIT = 40;

/**
 * Whether a stretch of the line repeats one unit back to back: a unit of 2–9 characters 6 times, or a longer one
 * 4 times (the thresholds of editor assistants' repetition filters). Runs of a single character (`-----`, `0000`,
 * indentation) are not repetition; nor is `[0, 0, 0, 0, 0, 0]`, whose unit `, 0` occurs 5 times.
 */
export function repeatsItself(line: string): boolean {
  return new RepetitionScanner().scan(line);
}

/**
 * Looks for repetition (see repeatsItself) in a text that grows, line by line: for each unit length, how many
 * characters in a row have equalled the one a unit before them.
 */
class RepetitionScanner {
  private scanned = 0;
  private lineStart = 0;
  private readonly runs = new Int32Array(LONGEST_UNIT + 1);
  private found = false;

  /** Scans what `text` (the text of earlier calls and more) adds; true once a line of it has repeated itself. */
  scan(text: string): boolean {
    for (let i = this.scanned; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code === 10) {
        this.lineStart = i + 1;
        this.runs.fill(0);
        continue;
      }
      for (let unit = 2; unit <= Math.min(LONGEST_UNIT, i - this.lineStart); unit++) {
        const run = code === text.charCodeAt(i - unit) ? this.runs[unit] + 1 : 0;
        this.runs[unit] = run;
        if (run >= ((unit < 10 ? 6 : 4) - 1) * unit && isRealUnit(text.slice(i + 1 - unit, i + 1))) this.found = true;
      }
    }
    this.scanned = text.length;
    return this.found;
  }
}

/** A unit of more than one distinct character, not all white space. */
function isRealUnit(unit: string): boolean {
  return unit.trim() !== '' && [...unit].some((c) => c !== unit[0]);
}
