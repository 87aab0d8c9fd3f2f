// The held-out loss as both `train` (at its end) and `eval` report it, through the exported inference model: mean
// next-token cross-entropy over the whole text of a fixed choice of files, and bits per byte of that text, which
// compares models whose tokenizers differ (per-token figures do not).
import { createHash } from 'node:crypto';
import type { LanguageModel } from '../runtime/languageModel';
import { logSoftmax } from '../runtime/sampling';

/** Text measured at most, in bytes of whole files (at least one file), so that large workspaces stay quick. */
export const defaultLossBytes = 64_000;

export interface HeldOutLoss {
  /** Mean cross-entropy per token, in nats. */
  loss: number;
  /** Total cross-entropy in bits divided by the UTF-8 bytes of the text measured. */
  bitsPerByte: number;
  tokens: number;
  bytes: number;
  /** The files measured, in the order measured. */
  files: string[];
}

/**
 * The files the loss is measured on: ordered by a hash of their path (spread over the tree, independent of the
 * model), whole files until `maxBytes` is reached. The same files for every model, whatever its tokenizer.
 */
export function lossFiles<T extends { path: string; text: string }>(files: readonly T[], maxBytes: number): T[] {
  const key = (file: T) => createHash('sha256').update(file.path).digest('hex');
  const ordered = [...files].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const chosen: T[] = [];
  let bytes = 0;
  for (const file of ordered) {
    if (chosen.length > 0 && bytes + Buffer.byteLength(file.text) > maxBytes) continue;
    chosen.push(file);
    bytes += Buffer.byteLength(file.text);
    if (bytes >= maxBytes) break;
  }
  return chosen;
}

/**
 * Every token of the chosen files, each file after an end-of-text token, scored in non-overlapping windows of
 * the model's context (each window starts without a cache).
 */
export async function heldOutLoss(
  model: LanguageModel,
  files: readonly { path: string; text: string }[],
  options: { maxBytes?: number; signal?: AbortSignal } = {},
): Promise<HeldOutLoss> {
  const chosen = lossFiles(files, options.maxBytes ?? defaultLossBytes);
  const eos = model.config.eosTokenId;
  const stream: number[] = [];
  for (const file of chosen) stream.push(eos, ...model.tokenizer.encode(file.text));
  const window = model.config.contextLength;
  const vocab = model.config.vocabSize;
  const logProbs = new Float32Array(vocab);
  let total = 0;
  let count = 0;
  for (let start = 0; start + 1 < stream.length; start += window) {
    if (options.signal?.aborted) throw new Error('evaluation cancelled');
    const tokens = stream.slice(start, Math.min(start + window + 1, stream.length));
    const logits = await model.run(tokens.slice(0, -1), model.newCache(), { allPositions: true });
    for (let t = 0; t + 1 < tokens.length; t++) {
      logSoftmax(logits.subarray(t * vocab, (t + 1) * vocab), logProbs);
      total -= logProbs[tokens[t + 1]];
      count++;
    }
  }
  const bytes = chosen.reduce((sum, file) => sum + Buffer.byteLength(file.text), 0);
  return {
    loss: total / Math.max(1, count),
    bitsPerByte: total / Math.LN2 / Math.max(1, bytes),
    tokens: count,
    bytes,
    files: chosen.map((file) => file.path),
  };
}
