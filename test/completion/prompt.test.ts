// Tests for the prompt: line-aligned anchors that stay put while the user types (so the KV cache is reused),
// move when the budget is exceeded, the document-start token, fill-in-the-middle layout, and FIM prompts continued
// with the typed text as the start of the middle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type PromptTokenizer, buildPrompt, continuePrompt } from '../../server/src/completion/prompt';
import { findFimTokens } from '../../server/src/tokenizer/fimFormats';

/** One token per character; FIM tokens as ids 1000–1002. */
const characters: PromptTokenizer = {
  encode: (text) => Array.from(text, (c) => c.charCodeAt(0)),
  tokenId: (token) => ({ '<|fim_prefix|>': 1000, '<|fim_suffix|>': 1001, '<|fim_middle|>': 1002 })[token],
};

const lines = Array.from({ length: 20 }, (_, i) => `line ${String(i).padStart(2, '0')}\n`).join(''); // 8 characters a line

test('a short document is the whole prompt, after the document-start token', () => {
  const prompt = buildPrompt(characters, 'abc\nde', '', { budget: 100, documentStartId: 0 });
  assert.equal(prompt.anchor, 0);
  assert.deepEqual(prompt.ids, [0, ...characters.encode('abc\nde')]);
});

test('a new anchor is a line start and leaves part of the budget free', () => {
  const prompt = buildPrompt(characters, lines, '', { budget: 64 });
  assert.equal(lines[prompt.anchor - 1], '\n');
  assert.ok(prompt.ids.length <= 0.6 * 64, `${prompt.ids.length} tokens`);
  assert.ok(prompt.ids.length > 0.6 * 64 - 8);
});

test('the anchor stays while the prompt fits, so consecutive prompts share their beginning', () => {
  const first = buildPrompt(characters, lines, '', { budget: 64 });
  const typed = buildPrompt(characters, `${lines}abc`, '', { budget: 64, anchor: first.anchor });
  assert.equal(typed.anchor, first.anchor);
  assert.deepEqual(typed.ids.slice(0, first.ids.length), first.ids);
});

test('the anchor moves when the prompt outgrows the budget, and never mid-line', () => {
  const first = buildPrompt(characters, lines, '', { budget: 64 });
  const longer = `${lines}${'more\n'.repeat(6)}`;
  const moved = buildPrompt(characters, longer, '', { budget: 64, anchor: first.anchor });
  assert.ok(moved.anchor > first.anchor);
  assert.equal(longer[moved.anchor - 1], '\n');
  assert.ok(moved.ids.length <= 64);
});

test('a single line longer than the budget is cut from the left', () => {
  const prompt = buildPrompt(characters, 'x'.repeat(200), '', { budget: 50, documentStartId: 0 });
  assert.equal(prompt.ids.length, 50);
});

test('fill-in-the-middle puts prefix, suffix and middle tokens in PSM order', () => {
  const prompt = buildPrompt(characters, 'ab', 'cd\nef\n', { budget: 100, fillInTheMiddle: true });
  assert.deepEqual(prompt.ids, [1000, ...characters.encode('ab'), 1001, ...characters.encode('cd\nef\n'), 1002]);
  assert.throws(
    () => buildPrompt({ ...characters, tokenId: () => undefined }, 'a', 'b', { budget: 10, fillInTheMiddle: true }),
    /fill-in-the-middle/,
  );
});

test("fill-in-the-middle uses the model family's spelling of the FIM tokens", () => {
  const spellings = {
    starcoder: { '<fim_prefix>': 7, '<fim_suffix>': 8, '<fim_middle>': 9 },
    deepseek: { '<｜fim▁begin｜>': 7, '<｜fim▁hole｜>': 8, '<｜fim▁end｜>': 9 },
  };
  for (const [family, ids] of Object.entries(spellings)) {
    const tokenizer = { ...characters, tokenId: (token: string) => (ids as Record<string, number>)[token] };
    assert.equal(findFimTokens(tokenizer.tokenId)?.format.family, family);
    const prompt = buildPrompt(tokenizer, 'ab', 'cd\n', { budget: 100, fillInTheMiddle: true });
    assert.deepEqual(prompt.ids, [7, ...characters.encode('ab'), 8, ...characters.encode('cd\n'), 9], family);
  }
  assert.equal(findFimTokens(characters.tokenId)?.format.family, 'qwen');
  const partial: Record<string, number> = { '<fim_prefix>': 1, '<fim_suffix>': 2 };
  assert.equal(
    findFimTokens((token) => partial[token]),
    undefined,
    'all three tokens are needed',
  );
});

test('typing on continues a fill-in-the-middle prompt: the typed text starts the middle', () => {
  const suffix = ');\nnext line\n';
  const first = buildPrompt(characters, `${lines}call(`, suffix, { budget: 100, fillInTheMiddle: true });
  const options = { budget: 100, context: [] };
  const typed = continuePrompt(characters, first, `${lines}call(ab`, suffix, options);
  assert.deepEqual(typed?.ids, [...first.ids, ...characters.encode('ab')]);
  assert.equal(typed?.anchor, first.anchor);
  // Continuing the continued prompt still starts from what the first was built with.
  const more = continuePrompt(characters, typed!, `${lines}call(abc`, suffix, options);
  assert.deepEqual(more?.ids, [...first.ids, ...characters.encode('abc')]);
  assert.deepEqual(continuePrompt(characters, first, `${lines}call(`, suffix, options)?.ids, first.ids);
});

test('a fill-in-the-middle prompt is not continued once the text around the cursor changed otherwise', () => {
  const suffix = ');\nnext line\n';
  const first = buildPrompt(characters, `${lines}call(`, suffix, { budget: 100, fillInTheMiddle: true });
  const options = { budget: 100, context: [] };
  const cases = {
    'a new line typed': continuePrompt(characters, first, `${lines}call(a\n`, suffix, options),
    'text before the cursor edited': continuePrompt(characters, first, `${lines}cal(a`, suffix, options),
    'the suffix changed': continuePrompt(characters, first, `${lines}call(a`, ');\nother line\n', options),
    'other workspace context': continuePrompt(characters, first, `${lines}call(a`, suffix, {
      budget: 100,
      context: [7],
    }),
    'over the budget': continuePrompt(characters, first, `${lines}call(${'a'.repeat(30)}`, suffix, options),
    'a prompt without FIM': continuePrompt(
      characters,
      buildPrompt(characters, lines, '', { budget: 100 }),
      `${lines}a`,
      '',
      options,
    ),
  };
  for (const [change, prompt] of Object.entries(cases)) assert.equal(prompt, undefined, change);
});
