// Tests for the stop rules: end of block by indentation and by closing the block the suggestion opened, a line
// that repeats the next line after the cursor, max lines, single-line mode, and judging only complete lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type StopRuleContext, findStop } from '../../server/src/completion/stopRules';

const rules = (overrides: Partial<StopRuleContext> = {}): StopRuleContext => ({
  linePrefix: '',
  nextLine: undefined,
  maxLines: 10,
  singleLine: false,
  ...overrides,
});

test('stops before a line indented less than the cursor line (end of block)', () => {
  const text = 'doThis();\n  doThat();\n}\nfunction next() {';
  const stop = findStop(text, rules({ linePrefix: '  ' }));
  assert.deepEqual(stop, { at: text.indexOf('\n}'), rule: 'dedent' });
  assert.equal(text.slice(0, stop!.at), 'doThis();\n  doThat();');
});

test('stops after the line that closes a block the suggestion opened', () => {
  const text = 'if (ready) {\n    go();\n  }\n  more();\n';
  const stop = findStop(text, rules({ linePrefix: '  ' }));
  assert.equal(stop?.rule, 'endOfBlock');
  assert.equal(text.slice(0, stop!.at), 'if (ready) {\n    go();\n  }');
});

test('a block opened on the cursor line ends with its closing line', () => {
  const text = '\n  return 1;\n}\n\nfunction other() {';
  const stop = findStop(text, rules({ linePrefix: 'function f() {' }));
  assert.equal(text.slice(0, stop!.at), '\n  return 1;\n}');
});

test('stops before a line that repeats the next line after the cursor', () => {
  const text = 'a();\nb();\nc();\n';
  const stop = findStop(text, rules({ nextLine: 'b();' }));
  assert.deepEqual(stop, { at: 4, rule: 'repeatsSuffix' });
});

test('max lines and single-line mode', () => {
  const text = 'one\ntwo\nthree\nfour\n';
  assert.deepEqual(findStop(text, rules({ maxLines: 2 })), { at: 7, rule: 'maxLines' });
  assert.deepEqual(findStop(text, rules({ singleLine: true })), { at: 3, rule: 'maxLines' });
});

test('the last line is judged only when generation has ended', () => {
  assert.equal(findStop('a\n}', rules({ linePrefix: '  ' })), undefined);
  assert.equal(findStop('a\n}', rules({ linePrefix: '  ' }), true)?.rule, 'dedent');
  assert.equal(findStop('a();\nb();', rules({ maxLines: 3 }), true), undefined);
});

test('blank lines before a cut are dropped with it', () => {
  const text = 'a();\n\n\n}';
  assert.equal(findStop(text, rules({ linePrefix: '  ' }), true)?.at, 4);
});
