// Comparing numbers the tests compute two ways (our runtime against a reference, one graph against another).
import assert from 'node:assert/strict';

/** The largest absolute difference between two vectors of the same length. */
export function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'vector lengths differ');
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}
