// Post-processing filter: brackets in a suggestion must balance. It is cut before a closing bracket that closes
// nothing (or the wrong kind), and a multi-line suggestion that leaves its own brackets open is cut back to the
// last line where all of them were closed (the first line is always kept).
import { closerOf, openerOf, scanBrackets } from '../../util/brackets';
import type { Filter } from './filter';

export const balanceBrackets: Filter = (text, { openBeforeCursor, lineComment }) => {
  const own: string[] = [];
  const outer = [...openBeforeCursor];
  let cut = -1;
  /** Bracket depth of the suggestion's own brackets at the end of each line. */
  const lineEndDepth: number[] = [];
  let nextLineEnd = text.indexOf('\n');
  const passLineEnds = (index: number) => {
    while (nextLineEnd >= 0 && nextLineEnd < index) {
      lineEndDepth.push(own.length);
      nextLineEnd = text.indexOf('\n', nextLineEnd + 1);
    }
  };
  scanBrackets(
    text,
    ({ char, index, opening }) => {
      passLineEnds(index);
      if (opening) {
        own.push(char);
      } else if (own.length > 0) {
        if (closerOf[own.at(-1)!] !== char) {
          cut = index;
          return false;
        }
        own.pop();
      } else if (outer.at(-1) === openerOf[char]) {
        outer.pop();
      } else {
        cut = index;
        return false;
      }
    },
    lineComment,
  );
  if (cut >= 0) return text.slice(0, cut).trimEnd();
  passLineEnds(text.length);
  if (own.length === 0 || lineEndDepth.length === 0) return text;
  // Multi-line and unbalanced: keep up to the last line end where the suggestion's own brackets were all closed.
  const lineEnds: number[] = [];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lineEnds.push(i);
  for (let line = lineEndDepth.length - 1; line >= 0; line--)
    if (lineEndDepth[line] === 0) return text.slice(0, lineEnds[line]);
  return text.slice(0, lineEnds[0]);
};
