// Post-processing filter: a suggestion must not close a bracket that the text after the cursor already closes
// (`foo(|)` + `a);` → `a`, `foo(bar(|)` + `x));` → `x)`). The suggestion is cut at the first closing bracket
// after which the closers following the cursor would no longer match the brackets left open.
import { leadingClosers, openerOf, scanBrackets } from '../../util/brackets';
import type { Filter } from './filter';

export const dropDuplicateClosers: Filter = (text, { suffix, openBeforeCursor, lineComment }) => {
  const provided = leadingClosers(suffix);
  if (provided.length === 0) return text;
  /** Do the closers after the cursor match the open brackets once the suggestion has closed `closed` of them? */
  const matches = (closed: number): boolean => {
    const remaining = openBeforeCursor.length - closed;
    if (remaining < provided.length) return false;
    for (let i = 0; i < provided.length; i++) {
      if (openerOf[provided[i]] !== openBeforeCursor[remaining - 1 - i]) return false;
    }
    return true;
  };
  if (!matches(0)) return text; // the brackets around the cursor are not understood: leave the suggestion alone

  let own = 0; // brackets opened by the suggestion itself and still open
  let closed = 0; // brackets from before the cursor that the suggestion closed
  let cut = -1;
  scanBrackets(
    text,
    ({ index, opening }) => {
      if (opening) own++;
      else if (own > 0) own--;
      else if (matches(closed + 1)) closed++;
      else {
        cut = index;
        return false;
      }
    },
    lineComment,
  );
  if (cut < 0) return text;
  // A closer alone on its line goes with its line break and indentation.
  const lineStart = text.lastIndexOf('\n', cut - 1) + 1;
  return text.slice(lineStart, cut).trim() === '' && lineStart > 0 ? text.slice(0, lineStart - 1) : text.slice(0, cut);
};
