// Turns labelled rows into what the classifier trains on: a stratified train/validation split decided by a hash of
// each text (the same row always lands on the same side, whatever the file order), and token batches in BERT's
// layout — [CLS] text, padded to the longest row of the batch, with an attention mask.
import * as crypto from 'node:crypto';
import type { LabelledRow } from './labelledData';

export interface Split {
  train: LabelledRow[];
  validation: LabelledRow[];
}

/** The fraction of each class held out for validation (at least one row of every class with two or more). */
export const DEFAULT_VALIDATION_FRACTION = 0.2;

const hashOf = (text: string) => crypto.createHash('sha256').update(text).digest('hex');

/** Per class, the rows whose text hashes lowest are held out: stratified, and stable when the file is reordered. */
export function stratifiedSplit(rows: readonly LabelledRow[], fraction = DEFAULT_VALIDATION_FRACTION): Split {
  const byLabel = new Map<string, { row: LabelledRow; hash: string }[]>();
  for (const row of rows) {
    const list = byLabel.get(row.label) ?? [];
    list.push({ row, hash: hashOf(row.text) });
    byLabel.set(row.label, list);
  }
  const held = new Set<LabelledRow>();
  for (const list of byLabel.values()) {
    list.sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
    const count = list.length >= 2 ? Math.max(1, Math.round(list.length * fraction)) : 0;
    for (const { row } of list.slice(0, count)) held.add(row);
  }
  return { train: rows.filter((r) => !held.has(r)), validation: rows.filter((r) => held.has(r)) };
}

/** Token ids of one text (no special tokens), e.g. a loaded tokenizer's encode. */
export type Encode = (text: string) => number[];

export interface SpecialIds {
  cls: number;
  pad: number;
}

export interface EncodedBatch {
  batch: number;
  time: number;
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
}

/** [CLS] + the text's ids, cut to `maxLength`. */
export function encodeText(encode: Encode, text: string, ids: SpecialIds, maxLength: number): number[] {
  return [ids.cls, ...encode(text)].slice(0, maxLength);
}

/** Pads sequences to `time` (default: the longest) with the pad id and mask 0. */
export function padBatch(sequences: readonly number[][], ids: SpecialIds, time?: number): EncodedBatch {
  const width = time ?? Math.max(1, ...sequences.map((s) => s.length));
  const inputIds = new BigInt64Array(sequences.length * width).fill(BigInt(ids.pad));
  const attentionMask = new BigInt64Array(sequences.length * width);
  sequences.forEach((sequence, b) => {
    for (let t = 0; t < Math.min(width, sequence.length); t++) {
      inputIds[b * width + t] = BigInt(sequence[t]);
      attentionMask[b * width + t] = 1n;
    }
  });
  return { batch: sequences.length, time: width, inputIds, attentionMask };
}
