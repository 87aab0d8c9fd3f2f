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
