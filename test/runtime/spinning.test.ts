// Tests of when onnxruntime's pool threads spin-wait: always or never when told, and with 'auto' only when the
// load average leaves a core for every thread of the session (a single thread has no pool to spin).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { shouldSpin } from '../../server/src/runtime/onnxSession';

test('spinning follows the setting, and the load when automatic', () => {
  assert.equal(shouldSpin('on', 2, 8, 2), true);
  assert.equal(shouldSpin('off', 2, 0, 2), false);
  assert.equal(shouldSpin('auto', 2, 0.1, 2), true, 'a quiet machine spins');
  assert.equal(shouldSpin('auto', 2, 1.9, 2), false, 'a busy one does not');
  assert.equal(shouldSpin(undefined, 0, 1.2, 4), false, 'all cores while one is busy');
  assert.equal(shouldSpin(undefined, 2, 1.2, 4), true, 'two of four cores while one is busy');
  assert.equal(shouldSpin('auto', 1, 0, 4), false, 'one thread has no pool');
});
