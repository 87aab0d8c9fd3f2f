// Tests what Train Model offers and accepts (client/src/trainingChoices.ts): downloaded pretrained models first
// (LoRA for the Llama family, every weight too when small, GPT-2 fully or with LoRA), then local models, the presets and a
// classifier per labelled file; the columns offered as text and label; time budgets typed by the user; and the new
// model's suggested and validated name (the protocol's rule).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ModelSummary, modelNameRule } from '../../server/src/protocol';
import {
  columnChoices,
  FULL_FINE_TUNE_MAX_PARAMETERS,
  fineTuneBases,
  parseMinutes,
  presetChoices,
  suggestModelName,
  trainingChoices,
  validateModelName,
} from '../../client/src/trainingChoices';

const model = (name: string, extra: Partial<ModelSummary> = {}): ModelSummary => ({
  name,
  path: `/models/${name}`,
  kind: 'causal-lm',
  bundled: false,
  sizeBytes: 1,
  status: 'idle',
  roles: [],
  ...extra,
});
const pulled = { repo: 'owner/repo', revision: 'main', commit: 'c'.repeat(40) };

test('pulled pretrained models come first, smallest first, then the active and shipped models', () => {
  const models = [
    model('default', { bundled: true, modelType: 'gpt2', parameters: 1.9e6 }),
    model('mine', { modelType: 'gpt2', parameters: 1.1e6 }),
    model('qwen', { origin: pulled, modelType: 'qwen2', parameters: 494e6 }),
    model('smol', { origin: pulled, modelType: 'llama', parameters: 135e6 }),
    model('distil', { origin: pulled, modelType: 'gpt2', parameters: 82e6 }),
    model('bigcode', { origin: pulled, modelType: 'gpt_bigcode', parameters: 160e6 }),
    model('sentiment', { origin: pulled, kind: 'text-classification' }),
    model('other', { modelType: 'gpt2' }),
  ];
  assert.deepEqual(
    fineTuneBases(models, 'mine').map((b) => b.name),
    ['distil', 'smol', 'qwen', 'mine', 'default'],
  );
  assert.deepEqual(
    fineTuneBases(models, undefined).map((b) => [b.name, b.pulled]),
    [
      ['distil', true],
      ['smol', true],
      ['qwen', true],
      ['default', false],
    ],
  );
});

test('Llama-family bases train LoRA by default, every weight only when small; GPT-2 bases every weight, or LoRA', () => {
  const bases = [
    { name: 'smol', modelType: 'llama', parameters: 135e6, pulled: true },
    { name: 'qwen', modelType: 'qwen2', parameters: FULL_FINE_TUNE_MAX_PARAMETERS + 1, pulled: true },
    { name: 'default', modelType: 'gpt2', parameters: 1.9e6, pulled: false },
  ];
  const choices = trainingChoices(bases, ['data/reviews.csv']);
  assert.deepEqual(
    choices.map((c) => [c.label, c.group, c.base ?? c.preset ?? c.data, c.method]),
    [
      ['Fine-tune smol with LoRA', 'fine-tune', 'smol', 'lora'],
      ['Fine-tune smol, every weight', 'fine-tune', 'smol', 'full'],
      ['Fine-tune qwen with LoRA', 'fine-tune', 'qwen', 'lora'],
      ['Fine-tune default', 'fine-tune', 'default', 'full'],
      ['Fine-tune default with LoRA', 'fine-tune', 'default', 'lora'],
      ['tiny', 'scratch', 'tiny', undefined],
      ['default', 'scratch', 'default', undefined],
      ['small', 'scratch', 'small', undefined],
      ['Train a text classifier from data/reviews.csv', 'classifier', 'data/reviews.csv', undefined],
    ],
  );
  assert.match(choices[0].description, /^recommended · 135M parameters · llama · pretrained$/);
  assert.doesNotMatch(choices[1].description, /recommended/);
  assert.equal(choices[3].description, '1.9M parameters · gpt2');
  assert.deepEqual(
    presetChoices.map((c) => c.preset),
    ['tiny', 'default', 'small'],
  );
  // Without models or labelled files: the presets alone, none recommended.
  assert.deepEqual(
    trainingChoices([]).map((c) => c.label),
    ['tiny', 'default', 'small'],
  );
});

test('text columns: longest first; label columns: two or more values, fewest first, never the text column', () => {
  const columns = [
    { name: 'id', samples: ['1', '2'], distinct: 200, meanLength: 3 },
    { name: 'review', samples: ['Great product', 'Broke in a day'], distinct: 198, meanLength: 64.4 },
    { name: 'sentiment', samples: ['positive', 'negative'], distinct: 2, meanLength: 8 },
    { name: 'source', samples: ['web'], distinct: 1, meanLength: 3 },
    { name: 'stars', samples: ['5', '1'], distinct: 5, meanLength: 1 },
  ];
  const text = columnChoices(columns, 'text');
  assert.deepEqual(
    text.map((c) => c.column),
    ['review', 'sentiment', 'id', 'source', 'stars'],
  );
  assert.equal(text[0].description, '64 characters on average');
  assert.equal(text[0].detail, 'Great product · Broke in a day');
  const labels = columnChoices(columns, 'label', 'review');
  assert.deepEqual(
    labels.map((c) => [c.column, c.description]),
    [
      ['sentiment', '2 distinct values'],
      ['stars', '5 distinct values'],
      ['id', '200 distinct values'],
    ],
  );
});

test('typed time budgets', () => {
  assert.equal(parseMinutes(' 2.5 '), 2.5);
  assert.equal(parseMinutes('0'), undefined);
  assert.equal(parseMinutes('-1'), undefined);
  assert.equal(parseMinutes('abc'), undefined);
  assert.equal(parseMinutes('100000'), undefined);
});

test('model names are folder-safe and new', () => {
  assert.equal(validateModelName('my-model_2.1', []), undefined);
  assert.match(validateModelName('', []) ?? '', /letters/);
  assert.match(validateModelName('../escape', []) ?? '', /letters/);
  assert.match(validateModelName('a b', []) ?? '', /letters/);
  assert.equal(validateModelName('a..b', []), `Use ${modelNameRule.description}.`);
  assert.match(validateModelName('taken', ['taken']) ?? '', /exists/);
});

test('suggested names come from the folder and the time, and avoid taken ones', () => {
  const now = new Date(2026, 10, 28, 14, 5);
  assert.equal(suggestModelName('My Project!', now, []), 'my-project-1128-1405');
  assert.equal(suggestModelName('x', now, ['x-1128-1405', 'x-1128-1405-2']), 'x-1128-1405-3');
  assert.equal(suggestModelName('***', now, []), 'model-1128-1405');
  assert.equal(suggestModelName('my..project', now, []), 'my.project-1128-1405');
  assert.equal(validateModelName(suggestModelName('Some Folder', now, []), []), undefined);
});
