// Converts a model folder that has only safetensors weights (a hub checkpoint such as the original Qwen2.5 repos)
// into a runnable one: builds the family's KV-cache inference graph with our engine from config.json and the
// weights, and writes it in the transformers.js layout: onnx/model.onnx in float32 (its weights in
// onnx/model.onnx_data when they would not fit in one 2 GB protobuf), or with `dtype: 'q8'`
// onnx/model_quantized.onnx with int8 weight matrices (engine/quantize.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parameterShapesOf } from '../engine/architecture';
import { buildInference } from '../engine/inferenceGraph';
import { writeModelFile } from '../engine/onnxFile';
import { quantizeModel } from '../engine/quantize';
import { ONNX_FILE, readArchitecture } from '../modelFolder/config';
import { hasSafetensors, readSafetensorsWeights } from '../modelFolder/weights';
import { ONNX_CANDIDATES } from '../runtime/languageModel';

export type ConversionDtype = 'fp32' | 'q8';
export const CONVERSION_DTYPES: readonly ConversionDtype[] = ['fp32', 'q8'];

/** The graph file each dtype is written to (transformers.js's names for its dtype option). */
export const CONVERTED_FILES: Record<ConversionDtype, string> = {
  fp32: ONNX_FILE,
  q8: path.join('onnx', 'model_quantized.onnx'),
};

export interface ConvertOptions {
  /** fp32 (default): float32 weights in onnx/model.onnx; q8: int8 weight matrices in onnx/model_quantized.onnx. */
  dtype?: ConversionDtype;
  /**
   * Store initializers of at least this many bytes in `<graph>_data` (ONNX external data). Default: only when
   * the graph would exceed protobuf's 2 GB.
   */
  externalDataThreshold?: number;
}

export interface ConversionResult {
  /** The written graph, relative to the model folder. */
  onnxFile: string;
  /** Its external data file, relative to the model folder, when one was written. */
  externalDataFile?: string;
  family: string;
  dtype: ConversionDtype;
  parameters: number;
  /** Bytes written: the graph plus its external data. */
  bytes: number;
}

export function convertFolder(modelDir: string, options: ConvertOptions = {}): ConversionResult {
  const dtype = options.dtype ?? 'fp32';
  if (!CONVERSION_DTYPES.includes(dtype)) throw new Error(`dtype "${dtype}" is not one of ${CONVERSION_DTYPES}`);
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
  stored.clear();
  let model = buildInference(architecture, weights);
  if (dtype === 'q8') model = quantizeModel(model).model;
  const onnxFile = CONVERTED_FILES[dtype];
  const written = writeModelFile(path.join(modelDir, onnxFile), model, {
    externalDataThreshold: options.externalDataThreshold,
  });
  return {
    onnxFile,
    externalDataFile: written.externalDataFile ? path.relative(modelDir, written.externalDataFile) : undefined,
    family: architecture.family,
    dtype,
    parameters,
    bytes: written.graphBytes + written.externalDataBytes,
  };
}

/** Converts the folder first when it has safetensors but no ONNX graph the runtime can load; says so via `log`. */
export function ensureRunnable(modelDir: string, log: (message: string) => void = () => {}): void {
  if (ONNX_CANDIDATES.some((file) => fs.existsSync(path.join(modelDir, file))) || !hasSafetensors(modelDir)) return;
  log(`${modelDir}: no ONNX graph; converting the safetensors weights`);
  const result = convertFolder(modelDir);
  log(`${modelDir}: wrote ${result.onnxFile} (${result.family}, ${result.parameters} parameters)`);
}
