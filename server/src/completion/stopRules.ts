// Where a multi-line suggestion should end, judged line by line while tokens stream in (so decoding stops as
// soon as a rule fires): at the end of the block by indentation, before a line that repeats the next line
// after the cursor, and after the maximum number of lines.
import { bracketBalance, lineCommentFor } from '../util/brackets';
import { indentWidth } from './completionContext';

export interface StopRuleContext {
  /** Text of the cursor line before the cursor. */
  linePrefix: string;
  /** The first non-blank line after the cursor line, trimmed. */
  nextLine: string | undefined;
  maxLines: number;
  /** Complete the current line only. */
  singleLine: boolean;
  lineComment?: string;
}

export type StopRule = 'maxLines' | 'endOfBlock' | 'dedent' | 'repeatsSuffix';

export interface Stop {
  /** Length of the text to keep. */
  at: number;
  rule: StopRule;
}

/**
 * The first place where `text` (the suggestion so far) should end, or undefined. Only lines that are complete
 * are judged — all of them when `final` (generation has ended), otherwise all but the last.
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

  for (let i = 1; i < Math.min(complete, maxLines); i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
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
