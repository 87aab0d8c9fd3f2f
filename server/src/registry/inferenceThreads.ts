// How many threads a model the language server loads runs on: the user's setting, or by the model's size. Small
// models step in many short ops that one thread runs fastest; large ones have compute-bound prompts that more
// threads shorten, and their decoding steps do not get slower.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ONNX_CANDIDATES } from '../runtime/languageModel';

/** Weights from this size up count as a large model. */
export const LARGE_MODEL_BYTES = 64 * 2 ** 20;
/** Most threads chosen by size: decoding is bound by memory bandwidth, which a few cores already use up. */
const MOST_THREADS = 4;

/**
 * `setting` when it is positive; otherwise one thread under LARGE_MODEL_BYTES of weights (on two threads the
 * shipped default's decoding steps took 1.02–1.23 ms against 0.76–1.00 on one) and up to four from there (a
 * 1024-token prompt of the int8 Qwen2.5-0.5B shape took 2.7–3.2 s on two threads against 4.9–5.5 s on one).
 */
export function inferenceThreads(setting: number, weightBytes: number, cores = os.availableParallelism()): number {
  if (setting > 0) return setting;
  return weightBytes < LARGE_MODEL_BYTES ? 1 : Math.max(1, Math.min(MOST_THREADS, cores));
}

/** Bytes of the ONNX file a model folder loads (the first of ONNX_CANDIDATES) and of its external data; 0 if none. */
export function weightBytes(modelDir: string): number {
  for (const candidate of ONNX_CANDIDATES) {
    const file = path.join(modelDir, candidate);
    if (!fs.existsSync(file)) continue;
    const data = `${file}_data`;
    return fs.statSync(file).size + (fs.existsSync(data) ? fs.statSync(data).size : 0);
  }
  return 0;
}
