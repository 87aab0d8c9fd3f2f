// The weights stored in a model folder, by Hugging Face parameter name: from its ONNX graph (what fine-tuning a
// model we trained starts from) or from its safetensors, single-file or sharded with an index (what a hub
// checkpoint ships, and what conversion builds a graph from).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type GptConfig, parameterShapes } from '../engine/model';
import { readInitializers } from '../engine/onnx';
import { ONNX_FILE } from './config';
import { readSafetensorsFile } from './safetensors';

/** The weights of a model folder, by Hugging Face GPT-2 parameter name (for fine-tuning). */
export function readWeights(modelDir: string, config: GptConfig): Map<string, Float32Array> {
  const stored = readInitializers(path.join(modelDir, ONNX_FILE));
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

export const SAFETENSORS_FILE = 'model.safetensors';
export const SAFETENSORS_INDEX_FILE = 'model.safetensors.index.json';

/** True when the folder has safetensors weights (one file or an index of shards). */
export function hasSafetensors(modelDir: string): boolean {
  return ['model.safetensors', SAFETENSORS_INDEX_FILE].some((f) => fs.existsSync(path.join(modelDir, f)));
}

/** Every tensor of the folder's safetensors (all shards), as float32, by name. */
export function readSafetensorsWeights(modelDir: string): Map<string, { shape: number[]; data: Float32Array }> {
  const indexFile = path.join(modelDir, SAFETENSORS_INDEX_FILE);
  let files = [SAFETENSORS_FILE];
  if (fs.existsSync(indexFile)) {
    const index = JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { weight_map?: Record<string, string> };
    if (!index.weight_map) throw new Error(`${indexFile}: no weight_map`);
    files = [...new Set(Object.values(index.weight_map))];
  }
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const file of files) {
    const full = path.join(modelDir, file);
    if (!fs.existsSync(full)) throw new Error(`${modelDir}: ${file} is missing`);
    for (const [name, tensor] of readSafetensorsFile(full).tensors) weights.set(name, tensor);
  }
  return weights;
}
