// Tests for the stop rules: end of block by indentation and by closing the block the suggestion opened, a line
// that repeats the next line after the cursor, max lines, single-line mode, judging only complete lines, and a line
// that repeats itself (judged while it streams in).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type StopRuleContext, StreamedStop, findStop, repeatsItself } from '../../server/src/completion/stopRules';

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

test('a line that repeats a unit back to back is repetition; runs of one character and short repeats are not', () => {
  for (const line of [
    'amily, most, most, most, most, most, most',
    ': 40909090909090',
    '.toTerTerTerTerTerTer',
    'aching, weight behavior, weight behavior, weight behavior, weight behavior,',
    'new Float32Array([0, 0, 0, 0, 0, 0, 0])',
  ])
    assert.ok(repeatsItself(line), line);
  for (const line of [
    '// ------------------------------------------------------------',
    'const zeros = [0, 0, 0, 0, 0, 0];',
    "const hex = '0x0000000000000000';",
    '\t\t\t\t\t\t\t\t\t\t\t\treturn;',
    'if (a && b && c && d && e) return;',
    'const sum = a + a + a + a + a;',
    'weight behavior, weight behavior, weight behavior,',
    '',
  ])
    assert.ok(!repeatsItself(line), line);
});

test('a first line that repeats itself is dropped whole; a later one is cut before its line break', () => {
  assert.deepEqual(findStop('x, most, most, most, most, most, most', rules({ singleLine: true })), {
    at: 0,
    rule: 'repetition',
  });
  const text = 'first();\n\nsecond(1, 1, 1, 1, 1, 1, 1, 1';
  assert.deepEqual(findStop(text, rules()), { at: 'first();'.length, rule: 'repetition' });
  // The user's own text before the cursor is not judged.
  assert.equal(findStop(', most', rules({ linePrefix: 'x, most, most, most, most, most' })), undefined);
});

test('with dropRepetition false a line that repeats itself is kept', () => {
  const text = 'x, most, most, most, most, most, most';
  assert.equal(findStop(text, rules({ singleLine: true, dropRepetition: false }), true), undefined);
  const streamed = new StreamedStop(rules({ singleLine: true, dropRepetition: false }), () => assert.fail('stopped'));
  streamed.add(text);
  assert.equal(streamed.stop, undefined);
});

test('a streamed suggestion stops at the piece that completes a repetition, not at the token limit', () => {
  let stopped = 0;
  const streamed = new StreamedStop(rules({ singleLine: true }), () => stopped++);
  const pieces = ['fam', 'ily', ',', ' most', ',', ' most', ',', ' most', ',', ' most', ',', ' most', ',', ' most'];
  let fired = -1;
  pieces.forEach((piece, i) => {
    streamed.add(piece);
    if (fired < 0 && streamed.stop) fired = i;
  });
  assert.equal(streamed.stop?.rule, 'repetition');
  assert.equal(stopped, 1);
  assert.equal(fired, pieces.length - 1);
  assert.equal(streamed.text, pieces.join(''));
});
