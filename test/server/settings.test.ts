// Tests for reading the `modelwright` settings a client sends: missing sections and malformed values fall back to
// the defaults field by field, numbers are clamped to the bounds package.json declares (as the client clamps them),
// and model names are trimmed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeSettings } from '../../server/src/features/settings';
import { defaultSettings } from '../../server/src/protocol';

test('nothing, null or garbage gives the defaults', () => {
  for (const raw of [undefined, null, 42, 'modelwright', [], {}])
    assert.deepEqual(normalizeSettings(raw), defaultSettings);
});

test('valid values are kept, malformed ones replaced one by one, numbers out of range clamped', () => {
  const settings = normalizeSettings({
    models: { completion: ' mine ', explanation: 7 },
    completion: {
      enable: false,
      disabledLanguages: ['python', 3],
      maxTokens: 32,
      maxLines: -2,
      debounceMs: 'soon',
      confidenceThreshold: 0.35,
    },
    explanation: { hover: 'yes', maxTokens: 1e9 },
  });
  assert.deepEqual(settings, {
    models: { completion: 'mine', explanation: '' },
    completion: {
      enable: false,
      disabledLanguages: ['python'],
      maxTokens: 32,
      maxLines: 1,
      dropRepetition: true,
      promptLookup: true,
      debounceMs: 75,
      confidenceThreshold: 0.35,
      workspaceContext: true,
      contextTokens: 256,
      suffixTokens: 128,
      maxSuggestions: 3,
      indexMegabytes: 16,
    },
    explanation: { hover: false, maxTokens: 2048 },
    remote: defaultSettings.remote,
  });
});

test('the defaults object is never shared with a result', () => {
  const settings = normalizeSettings(undefined);
  settings.completion.disabledLanguages.push('go');
  assert.deepEqual(defaultSettings.completion.disabledLanguages, []);
});
