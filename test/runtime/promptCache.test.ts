// Tests for the prompt cache's bookkeeping (promptCache.ts): the longest shared prefix wins, a prompt replaces
// the ones it extends, the least recently used go first beyond the limit, and short prefixes are not reused; its
// default size follows the model's bytes per position.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_PROMPT_CACHE_BYTES,
  MIN_DEFAULT_PROMPT_CACHE_POSITIONS,
  MIN_REUSED_TOKENS,
  PromptCache,
  defaultPromptCachePositions,
} from '../../server/src/runtime/promptCache';

const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
const prompt = (tokens: number[]) => ({ ids: tokens, data: [new Float32Array(tokens.length)] });

describe('prompt cache', () => {
  test('finds the longest shared prefix, leaving the last token to run', () => {
    const cache = new PromptCache(1000);
    cache.add(prompt(ids(0, 20)));
    cache.add(prompt([...ids(0, 10), ...ids(500, 20)]));
    assert.equal(cache.longestPrefix([...ids(0, 15), 999])?.length, 15);
    assert.equal(cache.longestPrefix([...ids(0, 10), ...ids(500, 5)])?.length, 14);
    assert.equal(cache.longestPrefix(ids(0, 20))?.length, 19);
    assert.equal(cache.longestPrefix(ids(0, MIN_REUSED_TOKENS - 1)), undefined);
    assert.equal(cache.longestPrefix(ids(7, 30)), undefined);
  });

  test('a prompt replaces the ones it extends, and is dropped when one extends it', () => {
    const cache = new PromptCache(1000);
    cache.add(prompt(ids(0, 20)));
    cache.add(prompt(ids(0, 30)));
    assert.equal(cache.positions, 30);
    cache.add(prompt(ids(0, 25)));
    assert.equal(cache.positions, 30);
  });

  test('evicts the least recently used beyond its limit, and keeps nothing at 0', () => {
    const cache = new PromptCache(50);
    cache.add(prompt(ids(0, 20)));
    cache.add(prompt(ids(100, 20)));
    assert.ok(cache.longestPrefix(ids(0, 21))); // now the most recently used
    cache.add(prompt(ids(200, 20)));
    assert.equal(cache.positions, 40);
    assert.equal(cache.longestPrefix(ids(100, 21)), undefined);
    assert.equal(cache.longestPrefix(ids(0, 21))?.length, 20);
    const none = new PromptCache(0);
    none.add(prompt(ids(0, 20)));
    assert.equal(none.positions, 0);
  });

  test('holds 128 MB of keys and values by default, and never fewer than 4096 positions', () => {
    // The default model: 4 layers of keys and values, 4 heads of 40 floats (5 KB a position).
    const geometry = { pastInputs: Array.from({ length: 8 }, (_, i) => `p${i}`), blocks: 4, rowSize: 40 };
    assert.equal(defaultPromptCachePositions({ ...geometry, kvType: 'float32' }), 26214);
    assert.equal(defaultPromptCachePositions({ ...geometry, kvType: 'float16' }), 52428);
    // Qwen2.5-0.5B: 24 layers, 2 key-value heads of 64 (24 KB).
    const qwen = { pastInputs: Array.from({ length: 48 }, (_, i) => `p${i}`), blocks: 2, rowSize: 64 };
    assert.equal(defaultPromptCachePositions({ ...qwen, kvType: 'float32' }), 5461);
    assert.ok(5461 * 48 * 2 * 64 * 4 <= DEFAULT_PROMPT_CACHE_BYTES);
    const large = { pastInputs: Array.from({ length: 60 }, (_, i) => `p${i}`), blocks: 4, rowSize: 128 };
    assert.equal(defaultPromptCachePositions({ ...large, kvType: 'float32' }), MIN_DEFAULT_PROMPT_CACHE_POSITIONS);
  });
});
