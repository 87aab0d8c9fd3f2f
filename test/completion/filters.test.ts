// Tests for the post-processing filters, each on its own and in the pipeline order: trailing whitespace, overlap
// with the text after the cursor, closers the suffix already has, and bracket balance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { balanceBrackets } from '../../server/src/completion/filters/balanceBrackets';
import { dropDuplicateClosers } from '../../server/src/completion/filters/dropDuplicateClosers';
import type { FilterContext } from '../../server/src/completion/filters/filter';
import { removeSuffixOverlap } from '../../server/src/completion/filters/removeSuffixOverlap';
import { trimTrailingWhitespace } from '../../server/src/completion/filters/trimTrailingWhitespace';
import { postprocess } from '../../server/src/completion/postprocess';
import { completionContext } from '../../server/src/completion/completionContext';

/** The filter context for a document with the cursor at `|`. */
function at(document: string): FilterContext {
  const context = completionContext(document.replace('|', ''), document.indexOf('|'), 'typescript');
  return {
    lineSuffix: context.lineSuffix,
    suffix: context.suffix,
    openBeforeCursor: context.openBeforeCursor,
    lineComment: context.lineComment,
  };
}

test('trimTrailingWhitespace trims every line end and trailing blank lines', () => {
  assert.equal(trimTrailingWhitespace('a;  \n  b; \t\n\n\n', at('|')), 'a;\n  b;');
  assert.equal(trimTrailingWhitespace('  keep leading', at('|')), '  keep leading');
});

test('removeSuffixOverlap drops text the line already has after the cursor', () => {
  assert.equal(removeSuffixOverlap('a, b)', at('f(|)')), 'a, b');
  assert.equal(removeSuffixOverlap('value;', at('const x = |value;')), '');
  assert.equal(removeSuffixOverlap('count', at('|t')), 'count', 'one matching letter is a coincidence');
  assert.equal(removeSuffixOverlap('x', at('f(|)')), 'x');
});

test('dropDuplicateClosers cuts where the suggestion would close what the suffix closes', () => {
  assert.equal(dropDuplicateClosers('a);', at('f(|)')), 'a');
  assert.equal(dropDuplicateClosers('x));', at('f(g(|)')), 'x)');
  assert.equal(dropDuplicateClosers('g(1));', at('f(|)')), 'g(1)');
  assert.equal(dropDuplicateClosers(' return 1; }', at('if (x) {|}')), ' return 1; ');
  assert.equal(dropDuplicateClosers('  go();\n}', at('{\n|\n}')), '  go();');
  assert.equal(dropDuplicateClosers('a);', at('f(|')), 'a);', 'nothing after the cursor: nothing to duplicate');
});

test('balanceBrackets cuts stray closers and multi-line suggestions that leave brackets open', () => {
  assert.equal(balanceBrackets('a) + b', at('x = |')), 'a');
  assert.equal(balanceBrackets('a(b]', at('x = |')), 'a(b');
  assert.equal(balanceBrackets('done);', at('f(|')), 'done);', 'closes what the prefix opened');
  assert.equal(balanceBrackets('one();\nif (x) {\n  two();', at('|')), 'one();');
  assert.equal(balanceBrackets('if (x) {\n  two();', at('|')), 'if (x) {', 'the first line is always kept');
  assert.equal(balanceBrackets('call(a, ', at('|')), 'call(a, ', 'a single line is left as is');
});

test('postprocess applies the filters in order and returns "" for a blank result', () => {
  assert.equal(postprocess('a, b);  \n', at('f(|)')), 'a, b');
  assert.equal(postprocess('\n    return 1;\n  }', at('  if (x) {|}')), '\n    return 1;\n  ');
  assert.equal(postprocess('   \n  ', at('|')), '');
});
