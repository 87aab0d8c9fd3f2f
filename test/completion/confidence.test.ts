// Tests for the confidence threshold: which tokens count (those whose text survived the cuts), their mean
// probability, and the threshold comparison (0 shows everything).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isConfident, keptTokenProbabilities, meanProbability } from '../../server/src/completion/confidence';

test('only tokens that start inside the kept text count', () => {
  // Texts "ab", "cd", "\n", "ef": ends at 2, 4, 5, 7.
  const ends = [2, 4, 5, 7];
  const probabilities = [0.9, 0.8, 0.1, 0.05];
  assert.deepEqual(keptTokenProbabilities(ends, probabilities, 4), [0.9, 0.8]);
  assert.deepEqual(keptTokenProbabilities(ends, probabilities, 3), [0.9, 0.8]);
  assert.deepEqual(keptTokenProbabilities(ends, probabilities, 7), probabilities);
});

test('mean probability and threshold', () => {
  assert.equal(meanProbability([0.5, 1]), 0.75);
  assert.equal(meanProbability([]), 0);
  assert.equal(isConfident(0.3, 0.2), true);
  assert.equal(isConfident(0.1, 0.2), false);
  assert.equal(isConfident(0, 0), true);
});
