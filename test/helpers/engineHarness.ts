// Shared helpers for the engine tests: run a ModelDescription in onnxruntime with plain arrays in and out,
// a seeded random source, and small array comparisons that report where the worst disagreement is.
// Sessions are single-threaded: the test graphs are tiny, and several test files run in parallel.
import { type ModelDescription, encodeModel } from '../../server/src/engine/onnx';
import {
  type Feeds,
  type Session,
  type Tensor,
  createSession,
  floatTensor,
  int64Tensor,
} from '../../server/src/runtime/onnxSession';

export async function open(model: ModelDescription): Promise<Session> {
  return createSession(encodeModel(model), { intraOpThreads: 1 });
}

export const f32 = (data: ArrayLike<number>, dims: readonly number[]): Tensor =>
  floatTensor(Float32Array.from(data), dims);
export const i64 = (data: ArrayLike<number>, dims: readonly number[]): Tensor =>
  int64Tensor(BigInt64Array.from(Array.from(data, (v) => BigInt(v))), dims);

/** Runs a session and returns every output's data as a Float32Array (float outputs only). */
export async function run(session: Session, feeds: Feeds): Promise<Record<string, Float32Array>> {
  const results = await session.run(feeds);
  const out: Record<string, Float32Array> = {};
  for (const [name, t] of Object.entries(results)) out[name] = t.data as Float32Array;
  return out;
}

export { uniform } from '../../server/src/engine/random';

export const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Largest |a[i] − b[i]| with its index. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; index: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} ≠ ${b.length}`);
  let diff = 0;
  let index = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return { diff: Infinity, index: i };
    if (d > diff) {
      diff = d;
      index = i;
    }
  }
  return { diff, index };
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
