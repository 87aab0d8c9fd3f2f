// Token streams for training: every file's tokens followed by <|endoftext|>, concatenated; training batches
// are random windows drawn by a generator seeded from (seed, step), so a resumed run sees exactly the batches
// the interrupted one would have; validation uses fixed, non-overlapping windows.
import { mixSeed, uniform } from '../engine/random';

export interface Batch {
  inputs: BigInt64Array; // [batch, time]
  targets: BigInt64Array; // [batch, time]
}

export function concatenateDocuments(documents: number[][], separator: number): Int32Array {
  const total = documents.reduce((n, d) => n + d.length + 1, 0);
  const stream = new Int32Array(total);
  let at = 0;
  for (const d of documents) {
    stream.set(d, at);
    at += d.length;
    stream[at++] = separator;
  }
  return stream;
}

function windowInto(stream: Int32Array, start: number, time: number, batch: Batch, row: number): void {
  for (let t = 0; t < time; t++) {
    batch.inputs[row * time + t] = BigInt(stream[start + t]);
    batch.targets[row * time + t] = BigInt(stream[start + t + 1]);
  }
}

function emptyBatch(batchSize: number, time: number): Batch {
  return { inputs: new BigInt64Array(batchSize * time), targets: new BigInt64Array(batchSize * time) };
}

/** A stream shorter than one window is repeated until it fills one. */
function atLeastOneWindow(stream: Int32Array, time: number): Int32Array {
  if (stream.length > time + 1) return stream;
  if (stream.length === 0) throw new Error('no tokens to train on');
  const repeated = new Int32Array(time + 2);
  for (let i = 0; i < repeated.length; i++) repeated[i] = stream[i % stream.length];
  return repeated;
}

export function trainingBatch(stream: Int32Array, batchSize: number, time: number, seed: number, step: number): Batch {
  const tokens = atLeastOneWindow(stream, time);
  const random = uniform(mixSeed(seed, step));
  const batch = emptyBatch(batchSize, time);
  const starts = tokens.length - time - 1;
  for (let row = 0; row < batchSize; row++) windowInto(tokens, Math.floor(random() * (starts + 1)), time, batch, row);
  return batch;
}

/** Non-overlapping windows covering the stream (at most maxBatches batches). */
export function validationBatches(stream: Int32Array, batchSize: number, time: number, maxBatches: number): Batch[] {
  const tokens = atLeastOneWindow(stream, time);
  const windows = Math.floor((tokens.length - 1) / time);
  const count = Math.max(1, Math.min(maxBatches, Math.floor(windows / batchSize)));
  const batches: Batch[] = [];
  for (let b = 0; b < count; b++) {
    const batch = emptyBatch(batchSize, time);
    for (let row = 0; row < batchSize; row++) {
      const w = (b * batchSize + row) % windows;
      windowInto(tokens, w * time, time, batch, row);
    }
    batches.push(batch);
  }
  return batches;
}
