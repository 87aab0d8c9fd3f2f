// Tests for the debouncer: waits, newer calls supersede older ones per key, other keys are independent, and an
// abort or a zero delay resolves at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Debouncer } from '../../server/src/completion/debouncer';

test('goes ahead after the delay', async () => {
  const debouncer = new Debouncer();
  const started = performance.now();
  assert.equal(await debouncer.wait('a', 30), true);
  assert.ok(performance.now() - started >= 25);
  assert.equal(debouncer.pendingCount, 0);
});

test('a newer wait for the same key supersedes the older one at once', async () => {
  const debouncer = new Debouncer();
  const first = debouncer.wait('a', 50);
  const second = debouncer.wait('a', 50);
  const other = debouncer.wait('b', 50);
  assert.equal(await first, false);
  assert.equal(await second, true);
  assert.equal(await other, true);
});

test('supersede and abort resolve false without waiting', async () => {
  const debouncer = new Debouncer();
  const waiting = debouncer.wait('a', 10_000);
  debouncer.supersede('a');
  assert.equal(await waiting, false);
  const controller = new AbortController();
  const aborted = debouncer.wait('a', 10_000, controller.signal);
  controller.abort();
  assert.equal(await aborted, false);
  assert.equal(await debouncer.wait('a', 10, controller.signal), false);
  assert.equal(await debouncer.wait('a', 0), true);
});
