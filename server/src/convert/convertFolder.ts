// Converts a model folder that has only safetensors weights (a hub checkpoint such as the original Qwen2.5 repos)
// into a runnable one: builds the family's KV-cache inference graph with our engine from config.json and the
// weights, and writes it as onnx/model.onnx in the transformers.js layout.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parameterShapesOf } from '../engine/architecture';
import { buildInference } from '../engine/inferenceGraph';
import { encodeModel } from '../engine/onnx';
import { ONNX_FILE, readArchitecture } from '../modelFolder/config';
import { hasSafetensors, readSafetensorsWeights } from '../modelFolder/weights';
import { ONNX_CANDIDATES } from '../runtime/languageModel';
import { writeFileAtomic } from '../util/atomicFile';

/** Protocol buffers cannot hold more; larger graphs need ONNX external data. */
const MAX_SINGLE_FILE_BYTES = 2 ** 31 - 1;

export interface ConversionResult {
  /** The written graph, relative to the model folder. */
  onnxFile: string;
  family: string;
  parameters: number;
  bytes: number;
}

export function convertFolder(modelDir: string): ConversionResult {
  if (!hasSafetensors(modelDir)) throw new Error(`${modelDir}: no model.safetensors (or index of shards) to convert`);
  const architecture = readArchitecture(modelDir);
  const stored = readSafetensorsWeights(modelDir);
  const weights = new Map<string, Float32Array>();
  let parameters = 0;
  for (const [name, shape] of parameterShapesOf(architecture)) {
    const tensor = stored.get(name);
    if (!tensor) throw new Error(`${modelDir}: the safetensors have no ${name}, which config.json's model needs`);
    if (tensor.shape.length !== shape.length || tensor.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`${modelDir}: ${name} has shape [${tensor.shape}], config.json implies [${shape}]`);
    }
    weights.set(name, tensor.data);
    parameters += tensor.data.length;
  }
  if (parameters * 4 > MAX_SINGLE_FILE_BYTES) {
    throw new Error(
      `${modelDir}: ${parameters} float32 parameters need a graph over 2 GB, which needs ONNX external data ` +
        '(not written yet); use a hub ONNX export of this model instead',
    );
  }
  const bytes = encodeModel(buildInference(architecture, weights));
  writeFileAtomic(path.join(modelDir, ONNX_FILE), bytes);
  return { onnxFile: ONNX_FILE, family: architecture.family, parameters, bytes: bytes.length };
}

/** Converts the folder first when it has safetensors but no ONNX graph the runtime can load; says so via `log`. */
export function ensureRunnable(modelDir: string, log: (message: string) => void = () => {}): void {
  if (ONNX_CANDIDATES.some((file) => fs.existsSync(path.join(modelDir, file))) || !hasSafetensors(modelDir)) return;
  log(`${modelDir}: no ONNX graph; converting the safetensors weights`);
  const result = convertFolder(modelDir);
  log(`${modelDir}: wrote ${result.onnxFile} (${result.family}, ${result.parameters} parameters)`);
}
