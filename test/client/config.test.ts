// Tests the settings mapping (client/src/config.ts): what the server receives for workspace/configuration is
// well-typed and within bounds whatever the user wrote, and where the models directory resolves to.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { defaultSettings } from '../../server/src/protocol';
import {
  defaultClientSettings,
  readClientSettings,
  readSettings,
  resolveModelsDirectory,
} from '../../client/src/config';

const reader = (values: Record<string, unknown>) => ({ get: <T>(key: string) => values[key] as T | undefined });

test('nothing set: the protocol defaults', () => {
  assert.deepEqual(readSettings(reader({})), defaultSettings);
  assert.deepEqual(readClientSettings(reader({})), defaultClientSettings);
});

test('values the user set are passed on', () => {
  const s = readSettings(
    reader({
      'models.completion': ' mine ',
      'completion.enable': false,
      'completion.disabledLanguages': ['markdown', 3, 'plaintext'],
      'completion.maxTokens': 64,
      'completion.confidenceThreshold': 0.35,
      'explanation.hover': true,
    }),
  );
  assert.equal(s.models.completion, 'mine');
  assert.equal(s.models.explanation, '');
  assert.equal(s.completion.enable, false);
  assert.deepEqual(s.completion.disabledLanguages, ['markdown', 'plaintext']);
  assert.equal(s.completion.maxTokens, 64);
  assert.equal(s.completion.confidenceThreshold, 0.35);
  assert.equal(s.explanation.hover, true);
});

test('wrong types fall back to defaults and numbers are clamped', () => {
  const s = readSettings(
    reader({
      'completion.enable': 'yes',
      'completion.maxTokens': 100000,
      'completion.maxLines': 2.6,
      'completion.debounceMs': -5,
      'completion.confidenceThreshold': 7,
      'completion.disabledLanguages': 'markdown',
      'explanation.maxTokens': Number.NaN,
    }),
  );
  assert.equal(s.completion.enable, true);
  assert.equal(s.completion.maxTokens, 512);
  assert.equal(s.completion.maxLines, 3);
  assert.equal(s.completion.debounceMs, 0);
  assert.equal(s.completion.confidenceThreshold, 1);
  assert.deepEqual(s.completion.disabledLanguages, []);
  assert.equal(s.explanation.maxTokens, defaultSettings.explanation.maxTokens);
});

test('models directory: global storage unless an absolute path (or ~) is set', () => {
  assert.equal(resolveModelsDirectory('', '/storage'), path.join('/storage', 'models'));
  assert.equal(resolveModelsDirectory('relative/dir', '/storage'), path.join('/storage', 'models'));
  assert.equal(resolveModelsDirectory('/data/models/', '/storage'), '/data/models/');
  assert.equal(resolveModelsDirectory('~/models', '/storage', '/home/u'), '/home/u/models');
  assert.equal(resolveModelsDirectory('~', '/storage', '/home/u'), '/home/u');
});
