// The text around the cursor that the completion pipeline works from: prefix and suffix of the document, the
// cursor line split in two, the next non-blank line after it (for the stop rules), the brackets left open
// before the cursor, and whether only the rest of the current line should be completed.
import { lineCommentFor, unclosedOpeners } from '../util/brackets';

export interface CompletionContext {
  prefix: string;
  suffix: string;
  /** Text of the cursor line before the cursor. */
  linePrefix: string;
  /** Text of the cursor line after the cursor. */
  lineSuffix: string;
  /** The first non-blank line after the cursor line, trimmed; undefined at the end of the document. */
  nextLine: string | undefined;
  /**
   * Complete the current line only: code follows the cursor, or the line already has code that does not open a
   * block. Multi-line suggestions are for a blank line or after `{ ( [ :` or `=>` (as Copilot and Tabby do).
   */
  singleLine: boolean;
  /** Brackets opened before the cursor (in the last lines) and not yet closed, innermost last. */
  openBeforeCursor: string[];
  lineComment: string;
}

/** How many lines before the cursor are scanned for open brackets. */
const BRACKET_LINES = 60;

/** Only closing brackets, quotes and separators after the cursor still allow a multi-line suggestion. */
const CLOSERS_ONLY = /^[\s)\]}>"'`;,]*$/;
/** A line ending like this opens a block or a list that may continue on the next lines. */
const OPENS_BLOCK = /([{([:]|=>)\s*$/;

export function completionContext(text: string, offset: number, languageId: string): CompletionContext {
  if (!(Number.isInteger(offset) && offset >= 0 && offset <= text.length)) {
    throw new Error(`cursor offset ${offset} is outside the document (0..${text.length})`);
  }
  const prefix = text.slice(0, offset);
  const suffix = text.slice(offset);
  const lineStart = prefix.lastIndexOf('\n') + 1;
  const lineEndInSuffix = suffix.indexOf('\n');
  const linePrefix = prefix.slice(lineStart);
  const lineSuffix = lineEndInSuffix < 0 ? suffix : suffix.slice(0, lineEndInSuffix);
  let nextLine: string | undefined;
  if (lineEndInSuffix >= 0) {
    const match = /\S[^\n]*/.exec(suffix.slice(lineEndInSuffix + 1));
    nextLine = match?.[0].trim();
  }
  const lineComment = lineCommentFor(languageId);
  let windowStart = lineStart;
  for (let n = 0; n < BRACKET_LINES && windowStart > 0; n++)
    windowStart = prefix.lastIndexOf('\n', windowStart - 2) + 1;
  return {
    prefix,
    suffix,
    linePrefix,
    lineSuffix,
    nextLine,
    singleLine: !CLOSERS_ONLY.test(lineSuffix) || (linePrefix.trim() !== '' && !OPENS_BLOCK.test(linePrefix)),
    openBeforeCursor: unclosedOpeners(prefix.slice(windowStart), lineComment),
    lineComment,
  };
}

/** Width of a line's leading whitespace, a tab counting as four. */
export function indentWidth(line: string): number {
  let width = 0;
  for (const c of line) {
    if (c === ' ') width++;
    else if (c === '\t') width += 4;
    else break;
  }
  return width;
}
