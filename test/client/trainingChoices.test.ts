// Tests what Train Model offers and accepts (client/src/trainingChoices.ts): fine-tuning first, the presets,
// time budgets typed by the user, and the new model's suggested and validated name (the protocol's rule).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { modelNameRule } from '../../server/src/protocol';
import {
  parseMinutes,
  presetChoices,
  suggestModelName,
  trainingChoices,
  validateModelName,
} from '../../client/src/trainingChoices';

test('fine-tuning choices come first, recommended, then the presets', () => {
  const choices = trainingChoices(['default', 'other']);
  assert.deepEqual(
    choices.map((c) => c.label),
    ['Fine-tune default', 'Fine-tune other', 'tiny', 'default', 'small'],
  );
  assert.equal(choices[0].base, 'default');
  assert.equal(choices[0].description, 'recommended');
  assert.equal(choices[1].description, '');
  assert.deepEqual(
    presetChoices.map((c) => c.preset),
    ['tiny', 'default', 'small'],
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
