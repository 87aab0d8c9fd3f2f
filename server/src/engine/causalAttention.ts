// Scaled dot-product attention softmax(q·kᵀ + bias)·v over the last two axes, and its causal form for training
// graphs: the queries in chunks, each against only the keys up to its last position, so the scores a causal mask
// would hide anyway (about half of them) are neither computed nor differentiated.
import type { Graph, Value } from './graph';

/** Query positions per chunk in causal attention (at a 512-token window: 4 chunks, 62.5% of the full scores). */
export const CAUSAL_CHUNK = 128;

/**
 * softmax(q·kᵀ + bias)·v for q [..., time, d], k and v [..., keys, d] and bias broadcasting to [..., time, keys].
 * `causal` says the bias hides every key after its query (keys and queries at the same positions): then a concrete
 * time longer than one chunk runs in chunks with the same result.
 */
export function attend(g: Graph, q: Value, k: Value, v: Value, bias: Value, causal: boolean): Value {
  const axis = q.shape.length - 2;
  const time = q.shape[axis];
  const swapLast = [...Array(k.shape.length).keys()].map((i) => (i === axis ? axis + 1 : i === axis + 1 ? axis : i));
  const plain = (query: Value, keys: Value, values: Value, scoreBias: Value) =>
    g.matmul(g.softmax(g.add(g.matmul(query, g.transpose(keys, swapLast)), scoreBias)), values);
  if (!causal || typeof time !== 'number' || time <= CAUSAL_CHUNK || k.shape[axis] !== time)
    return plain(q, k, v, bias);
  const slice = (x: Value, along: number, from: number, to: number): Value => {
    if (from === 0 && to === x.shape[along]) return x;
    const shape = x.shape.map((d, i) => (i === along ? to - from : d));
    return g.node('Slice', [x, g.int64s([from]), g.int64s([to]), g.int64s([along])], [[shape, x.type]])[0];
  };
  const biasAxis = bias.shape.length - 2;
  const parts: Value[] = [];
  for (let start = 0; start < time; start += CAUSAL_CHUNK) {
    const end = Math.min(time, start + CAUSAL_CHUNK);
    const chunkBias = slice(slice(bias, biasAxis, start, end), biasAxis + 1, 0, end);
    parts.push(plain(slice(q, axis, start, end), slice(k, axis, 0, end), slice(v, axis, 0, end), chunkBias));
  }
  return g.concat(parts, axis);
}

/**
 * softmax(q·[pastK; k]ᵀ + bias)·[pastV; v] for new positions after a cache, computed without joining the past
 * and new keys (or values) into one tensor: the scores against each are joined instead, and the output is the
 * sum of the two halves of the weights times their values. The cached keys and values are then only read, not
 * copied, each step. q [..., time, d]; k, v [..., time, d]; pastK, pastV [..., past, d]; bias [..., time, past + time].
 */
export function attendAfterPast(
  g: Graph,
  q: Value,
  k: Value,
  v: Value,
  pastK: Value,
  pastV: Value,
  bias: Value,
): Value {
  const axis = q.shape.length - 2;
  const swapLast = [...Array(k.shape.length).keys()].map((i) => (i === axis ? axis + 1 : i === axis + 1 ? axis : i));
  // pastK·qᵀ, then swapped: for one new position a matrix-vector product over the keys as they are laid out,
  // where q·pastKᵀ would stride across them (measured: half the time at 32 rows of 256 positions).
  const pastScores = g.transpose(g.matmul(pastK, g.transpose(q, swapLast)), swapLast);
  const newScores = g.matmul(q, g.transpose(k, swapLast));
  const weights = g.softmax(g.add(g.concat([pastScores, newScores], -1), bias));
  const sizes = g.concat([g.shapeOf(pastK, axis, axis + 1), g.shapeOf(k, axis, axis + 1)], 0);
  const [pastWeights, newWeights] = g.node(
    'Split',
    [weights, sizes],
    [pastScores, newScores].map((s) => [s.shape, s.type]),
    {
      axis: { kind: 'int', value: -1 },
    },
  );
  return g.add(g.matmul(pastWeights, pastV), g.matmul(newWeights, v));
}
