// Tests for prompt lookup (promptLookup.ts) and generate()'s use of it: guesses come from the longest, then most
// recent, earlier occurrence of the last tokens; greedy decoding with guesses gives the tokens, probabilities, stops
// and reusable cache of decoding without them, with fewer runs. The model is small and randomly initialized.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type GenerateOptions, generate } from '../../server/src/runtime/generate';
import { type LanguageModel, loadLanguageModel } from '../../server/src/runtime/languageModel';
import { MAX_DRAFT_TOKENS, lookupDraft } from '../../server/src/runtime/promptLookup';
import { type ModelFolder, makeModelFolder } from '../helpers/makeModelFolder';

describe('lookupDraft', () => {
  test('continues the earlier occurrence of the last tokens, up to the limit', () => {
    assert.deepEqual(lookupDraft([1, 2, 3, 9, 8, 7, 6, 1, 2, 3], 4), [9, 8, 7, 6]);
    assert.deepEqual(lookupDraft([1, 2, 3, 9, 8, 7, 6, 1, 2, 3], 2), [9, 8]);
    // The continuation may run into the occurrence being continued.
    assert.deepEqual(lookupDraft([5, 5, 5], 4), [5]);
  });

  test('prefers a longer match, then the most recent one', () => {
    // [1, 2, 3] occurs at 0; only [2, 3] occurs, more recently, at 5.
    assert.deepEqual(lookupDraft([1, 2, 3, 4, 9, 2, 3, 5, 1, 2, 3], 3), [4, 9, 2]);
    assert.deepEqual(lookupDraft([2, 3, 4, 0, 2, 3, 5, 1, 2, 3], 3), [5, 1, 2]);
  });

  test('guesses nothing without an earlier occurrence of at least two tokens, or without room', () => {
    assert.deepEqual(lookupDraft([1, 2, 3, 4], 4), []);
    assert.deepEqual(lookupDraft([7, 1, 8, 1], 4), []); // one token in common is not enough
    assert.deepEqual(lookupDraft([1, 2, 1, 2], 0), []);
    assert.deepEqual(lookupDraft([1, 2, 1, 2], -1), []);
    assert.deepEqual(lookupDraft([], 4), []);
  });
});

describe('generate with prompt lookup', () => {
  let folder: ModelFolder;
  let model: LanguageModel;
  // Prompts after which this random model repeats itself, so that guesses are taken (checked below).
  const prompts = [
    'export function countOfTotal(count: number, total: number): number {\n',
    'const a = 1;\nconst b = 2;\nconst a = 1;\nconst',
    'x = x + 1;\nx = x + 1;\nx = x',
  ];
  const both = async (prompt: string, options: GenerateOptions) => ({
    guessed: await generate(model, prompt, options),
    plain: await generate(model, prompt, { ...options, draftTokens: 0 }),
  });

  before(async () => {
    folder = await makeModelFolder({ seed: 7, weightScale: 10 });
    model = await loadLanguageModel(folder.dir, { intraOpThreads: 1 });
  });
  after(async () => {
    await model?.dispose();
    folder?.remove();
  });

  test('gives the tokens and probabilities of plain greedy decoding, taking guesses', async () => {
    let accepted = 0;
    for (const prompt of prompts) {
      const { guessed, plain } = await both(prompt, { maxTokens: 40 });
      assert.deepEqual(guessed.generatedIds, plain.generatedIds);
      assert.deepEqual(guessed.tokenIds, plain.tokenIds);
      assert.equal(guessed.text, plain.text);
      assert.equal(guessed.finishReason, plain.finishReason);
      assert.equal(guessed.tokenProbabilities.length, plain.tokenProbabilities.length);
      guessed.tokenProbabilities.forEach((p, i) => assert.ok(Math.abs(p - plain.tokenProbabilities[i]) < 1e-4));
      assert.deepEqual(plain.drafts, { proposed: 0, accepted: 0 });
      assert.ok(guessed.drafts.accepted <= guessed.drafts.proposed);
      accepted += guessed.drafts.accepted;
    }
    assert.ok(accepted >= 5, `only ${accepted} guessed tokens were taken`);
  });

  test('stops at maxTokens exactly, also inside a run of taken guesses', async () => {
    // (The prompt is cut from the left to leave room for maxTokens, so each length is compared with its own.)
    for (let maxTokens = 1; maxTokens <= 30; maxTokens++) {
      const { guessed, plain } = await both(prompts[1], { maxTokens });
      assert.equal(guessed.generatedIds.length, maxTokens);
      assert.deepEqual(guessed.generatedIds, plain.generatedIds, `maxTokens ${maxTokens}`);
      assert.equal(guessed.cache.length, guessed.tokenIds.length - 1);
    }
  });

  test('a stop sequence or an abort inside a run of taken guesses ends there', async () => {
    const prompt = prompts[2];
    const { guessed, plain } = await both(prompt, { maxTokens: 30 });
    assert.ok(guessed.drafts.accepted > 0);
    for (let tokens = 2; tokens <= 12; tokens += 5) {
      const controller = new AbortController();
      let seen = 0;
      const result = await generate(model, prompt, {
        maxTokens: 30,
        signal: controller.signal,
        onToken: () => {
          if (++seen === tokens) controller.abort();
        },
      });
      assert.equal(result.finishReason, 'cancelled');
      assert.deepEqual(result.generatedIds, plain.generatedIds.slice(0, tokens));
      assert.equal(result.cache.length, result.tokenIds.length - 1);
    }
    const text = plain.text;
    const stop = text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 3);
    const stopped = await both(prompt, { maxTokens: 30, stop: [stop] });
    assert.equal(stopped.guessed.finishReason, 'stop');
    assert.equal(stopped.guessed.text, stopped.plain.text);
    assert.deepEqual(stopped.guessed.generatedIds, stopped.plain.generatedIds);
  });

  test('its cache continues like a cold start, and sampling takes no guesses', async () => {
    const prompt = prompts[0];
    const first = await generate(model, prompt, { maxTokens: 12 });
    assert.equal(first.cache.tokens.join(), first.tokenIds.slice(0, -1).join());
    const extended = model.tokenizer.decode(first.tokenIds) + ' x';
    const warm = await generate(model, extended, { maxTokens: 8, cache: first.cache });
    const cold = await generate(model, extended, { maxTokens: 8, draftTokens: 0 });
    assert.ok(warm.reusedTokens > 0);
    assert.deepEqual(warm.generatedIds, cold.generatedIds);
    const sampled = await generate(model, prompt, { maxTokens: 20, temperature: 0.8, seed: 3 });
    assert.deepEqual(sampled.drafts, { proposed: 0, accepted: 0 });
    assert.ok(MAX_DRAFT_TOKENS >= 1);
  });
});
