// The shape of a post-processing filter: a function from a suggestion to a (usually shorter) suggestion,
// given what surrounds the cursor. Each filter lives in its own file; postprocess.ts runs them in order.

export interface FilterContext {
  /** The rest of the cursor line after the cursor. */
  lineSuffix: string;
  /** The whole document after the cursor. */
  suffix: string;
  /** Brackets opened before the cursor and not closed, innermost last. */
  openBeforeCursor: readonly string[];
  lineComment: string;
}

export type Filter = (text: string, context: FilterContext) => string;
