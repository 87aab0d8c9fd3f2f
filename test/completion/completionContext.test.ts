// Tests for the completion context: prefix/suffix split, the cursor line's halves, the next non-blank line,
// single-line mode when code follows the cursor, and the brackets left open before the cursor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { completionContext, indentWidth } from '../../server/src/completion/completionContext';

test('splits the document at the cursor and the cursor line in two', () => {
  const text = 'function f(a) {\n  return a;\n}\n';
  const offset = text.indexOf('a;');
  const context = completionContext(text, offset, 'typescript');
  assert.equal(context.prefix, 'function f(a) {\n  return ');
  assert.equal(context.suffix, 'a;\n}\n');
  assert.equal(context.linePrefix, '  return ');
  assert.equal(context.lineSuffix, 'a;');
  assert.equal(context.nextLine, '}');
  assert.deepEqual(context.openBeforeCursor, ['{']);
});

test('multi-line suggestions only on a blank line or after a block opener, and never before code', () => {
  const at = (text: string) => completionContext(text.replace('|', ''), text.indexOf('|'), 'typescript');
  assert.equal(at('foo(|)').singleLine, false);
  assert.equal(at('foo(|);').singleLine, false);
  assert.equal(at('if (ready) {|}').singleLine, false);
  assert.equal(at('items.map((item) =>|').singleLine, false);
  assert.equal(at('def run(self):|').singleLine, false);
  assert.equal(at('a();\n    |').singleLine, false);
  assert.equal(at('const x = |').singleLine, true);
  assert.equal(at('const x = |value;').singleLine, true);
  assert.equal(at('  return total|').singleLine, true);
});

test('the next line skips blank lines and is undefined at the end', () => {
  const text = 'a\n\n\n  b();\n';
  assert.equal(completionContext(text, 1, 'typescript').nextLine, 'b();');
  assert.equal(completionContext('abc', 3, 'typescript').nextLine, undefined);
});

test('open brackets ignore strings and comments, and use # comments for Python', () => {
  const ts = 'call("(", [1, // (\n';
  assert.deepEqual(completionContext(ts, ts.length, 'typescript').openBeforeCursor, ['(', '[']);
  const py = 'f(x,  # (\n';
  assert.deepEqual(completionContext(py, py.length, 'python').openBeforeCursor, ['(']);
});

test('rejects a cursor outside the document', () => {
  assert.throws(() => completionContext('abc', 4, 'typescript'), /outside the document/);
  assert.throws(() => completionContext('abc', -1, 'typescript'), /outside the document/);
});

test('indentWidth counts tabs as four', () => {
  assert.equal(indentWidth('    x'), 4);
  assert.equal(indentWidth('\t  x'), 6);
  assert.equal(indentWidth('x'), 0);
});
