// Runs the post-processing filters over a finished suggestion, in an order where each one sees the previous
// one's result: trailing whitespace first (so overlaps are found), then suffix overlap, duplicated closers,
// and bracket balance. A suggestion that ends up blank becomes ''.
import { balanceBrackets } from './filters/balanceBrackets';
import { dropDuplicateClosers } from './filters/dropDuplicateClosers';
import type { Filter, FilterContext } from './filters/filter';
import { removeSuffixOverlap } from './filters/removeSuffixOverlap';
import { trimTrailingWhitespace } from './filters/trimTrailingWhitespace';

export const filters: readonly Filter[] = [
  trimTrailingWhitespace,
  removeSuffixOverlap,
  dropDuplicateClosers,
  balanceBrackets,
];

export function postprocess(text: string, context: FilterContext): string {
  let result = text;
  for (const filter of filters) {
    result = filter(result, context);
    if (result.trim() === '') return '';
  }
  return result;
}
