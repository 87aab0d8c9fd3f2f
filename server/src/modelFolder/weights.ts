// The weights stored in a model folder's ONNX graph, by Hugging Face parameter name: what fine-tuning
// starts from.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type GptConfig, parameterShapes } from '../engine/model';
import { readInitializers } from '../engine/onnx';
import { ONNX_FILE } from './config';

/** The weights of a model folder, by Hugging Face GPT-2 parameter name (for fine-tuning). */
export function readWeights(modelDir: string, config: GptConfig): Map<string, Float32Array> {
  const stored = readInitializers(fs.readFileSync(path.join(modelDir, ONNX_FILE)));
  const weights = new Map<string, Float32Array>();
  for (const [name, shape] of parameterShapes(config)) {
    const t = stored.get(name);
    if (!t) throw new Error(`${modelDir}: weight ${name} not found; only GPT-2-layout folders can be fine-tuned`);
    if (t.data.length !== shape.reduce((a, b) => a * b, 1))
      throw new Error(`${modelDir}: weight ${name} has shape [${t.dims}], expected [${shape}]`);
    weights.set(name, t.data);
  }
  return weights;
}
