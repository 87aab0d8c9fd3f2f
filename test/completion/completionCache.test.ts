// Tests for the completion cache: exact hits, the typed-ahead remainder, what must match (document, model, text
// before the cursor, rest of the line), cached "no suggestion", and the LRU bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CompletionCache } from '../../server/src/completion/completionCache';
import { LruMap } from '../../server/src/util/lruMap';

const key = { uri: 'file:///a.ts', modelKey: 'm#1' };

test('serves the same position and the remainder while the user types the suggestion', () => {
  const cache = new CompletionCache();
  cache.store(key, { prefix: 'const x = ', lineSuffix: '' }, 'compute(1);');
  assert.equal(cache.lookup(key, { prefix: 'const x = ', lineSuffix: '' }), 'compute(1);');
  assert.equal(cache.lookup(key, { prefix: 'const x = com', lineSuffix: '' }), 'pute(1);');
  assert.equal(cache.lookup(key, { prefix: 'const x = compute(1)', lineSuffix: '' }), ';');
  assert.equal(cache.lookup(key, { prefix: 'const x = compute(1);', lineSuffix: '' }), undefined, 'typed it all');
  assert.equal(cache.lookup(key, { prefix: 'const x = cop', lineSuffix: '' }), undefined, 'typed something else');
});

test('misses for another document, model, earlier text or rest of line', () => {
  const cache = new CompletionCache();
  cache.store(key, { prefix: 'let a = ', lineSuffix: ')' }, 'b');
  assert.equal(cache.lookup({ ...key, uri: 'file:///b.ts' }, { prefix: 'let a = ', lineSuffix: ')' }), undefined);
  assert.equal(cache.lookup({ ...key, modelKey: 'm#2' }, { prefix: 'let a = ', lineSuffix: ')' }), undefined);
  assert.equal(cache.lookup(key, { prefix: 'let z = ', lineSuffix: ')' }), undefined);
  assert.equal(cache.lookup(key, { prefix: 'let a = ', lineSuffix: '' }), undefined);
});

test('an empty suggestion is cached for its position only', () => {
  const cache = new CompletionCache();
  cache.store(key, { prefix: 'x', lineSuffix: '' }, '');
  assert.equal(cache.lookup(key, { prefix: 'x', lineSuffix: '' }), '');
  assert.equal(cache.lookup(key, { prefix: 'xy', lineSuffix: '' }), undefined);
});

test('holds at most its capacity, forgetting the least recently used', () => {
  const cache = new CompletionCache(2);
  cache.store(key, { prefix: 'a', lineSuffix: '' }, '1');
  cache.store(key, { prefix: 'b', lineSuffix: '' }, '2');
  cache.lookup(key, { prefix: 'a', lineSuffix: '' });
  cache.store(key, { prefix: 'c', lineSuffix: '' }, '3');
  assert.equal(cache.size, 2);
  assert.equal(cache.lookup(key, { prefix: 'b', lineSuffix: '' }), undefined);
  assert.equal(cache.lookup(key, { prefix: 'a', lineSuffix: '' }), '1');
});

test('LruMap evicts in least-recently-used order and reports evictions', () => {
  const evicted: string[] = [];
  const map = new LruMap<string, number>(2, (k) => evicted.push(k));
  map.set('a', 1);
  map.set('b', 2);
  map.get('a');
  map.set('c', 3);
  assert.deepEqual(evicted, ['b']);
  assert.deepEqual(
    map.newestFirst().map(([k]) => k),
    ['c', 'a'],
  );
});
