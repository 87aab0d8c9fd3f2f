// Exports trained weights as a model folder: config files and the KV-cache inference graph built from the same
// model definition the trainer used.
import * as path from 'node:path';
import { buildInference } from '../engine/inferenceGraph';
import type { GptConfig } from '../engine/model';
import { encodeModel } from '../engine/onnx';
import { ONNX_FILE, writeConfigFiles } from '../modelFolder/config';
import { writeFileAtomic } from '../util/atomicFile';

export function writeModelFiles(
  modelDir: string,
  config: GptConfig,
  weights: Map<string, Float32Array>,
  eosTokenId: number,
): void {
  writeConfigFiles(modelDir, config, eosTokenId);
  writeFileAtomic(path.join(modelDir, ONNX_FILE), encodeModel(buildInference({ family: 'gpt2', config }, weights)));
}
