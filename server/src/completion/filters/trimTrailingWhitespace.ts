// Post-processing filter: no whitespace at the end of any line of a suggestion, and no trailing blank lines
// (editors would show them as ghost text the user has to delete).
import type { Filter } from './filter';

export const trimTrailingWhitespace: Filter = (text) =>
  text
    .split('\n')
    .map((line) => line.replace(/[ \t\r]+$/, ''))
    .join('\n')
    .replace(/\n+$/, '');
