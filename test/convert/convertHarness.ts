// Shared helpers for the conversion tests: a copy of a PyTorch-made family model folder with only its safetensors
// (what a hub checkpoint has), full-sequence logits of an ONNX file, and greedy generation by transformers.js.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { type AnyFamilyConfig, type FamilyModel, cacheLayout, modelShape } from '../helpers/familyModels';

type Transformers = typeof import('@huggingface/transformers', { with: { 'resolution-mode': 'import' }});

/** A copy of the folder without its PyTorch ONNX export (the caller removes it). */
export function safetensorsOnlyCopy(folder: FamilyModel<AnyFamilyConfig>, suffix: string): string {
  const dir = `${folder.dir}-${suffix}`;
  fs.cpSync(folder.dir, dir, { recursive: true });
  fs.rmSync(path.join(dir, 'onnx'), { recursive: true });
  return dir;
}

/** The logits of every position of one run over `ids` (batch 1, empty cache), [ids.length][vocab]. */
export async function fullLogits(
  file: string,
  config: AnyFamilyConfig,
  ids: readonly number[],
): Promise<Float32Array[]> {
  const session = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  try {
    const { layers } = modelShape(config);
    const { kinds, emptyDims } = cacheLayout(config);
    const empty = new ort.Tensor('float32', new Float32Array(0), emptyDims);
    const n = ids.length;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, n]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]),
      position_ids: new ort.Tensor(
        'int64',
        BigInt64Array.from({ length: n }, (_, i) => BigInt(i)),
        [1, n],
      ),
    };
    for (let i = 0; i < layers; i++) for (const kind of kinds) feeds[`past_key_values.${i}.${kind}`] = empty;
    const data = (await session.run(feeds)).logits.data as Float32Array;
    const vocab = config.vocab_size;
    return ids.map((_, i) => data.slice(i * vocab, (i + 1) * vocab));
  } finally {
    await session.release();
  }
}

export function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** ‖a − b‖ / ‖b‖ over all positions. */
export function relativeError(a: Float32Array[], b: Float32Array[]): number {
  let difference = 0;
  let norm = 0;
  a.forEach((row, p) => {
    for (let i = 0; i < row.length; i++) {
      difference += (row[i] - b[p][i]) ** 2;
      norm += b[p][i] ** 2;
    }
  });
  return Math.sqrt(difference / norm);
}

/** transformers.js's greedy continuation of `ids` from the folder, with the ONNX file its `dtype` selects. */
export async function transformersGreedy(
  dir: string,
  dtype: 'fp32' | 'q8',
  ids: readonly number[],
  maxNewTokens: number,
): Promise<number[]> {
  const transformers: Transformers = await import('@huggingface/transformers');
  transformers.env.allowRemoteModels = false;
  const model = await transformers.AutoModelForCausalLM.from_pretrained(dir, { local_files_only: true, dtype });
  try {
    const { Tensor } = transformers;
    const output = (await model.generate({
      input_ids: new Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]),
      attention_mask: new Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
      do_sample: false,
      max_new_tokens: maxNewTokens,
    })) as InstanceType<typeof Tensor>;
    return (output.tolist() as bigint[][])[0].map(Number).slice(ids.length);
  } finally {
    await model.dispose();
  }
}
