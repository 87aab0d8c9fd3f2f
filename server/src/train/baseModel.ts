// The base model a fine-tuning run starts from: its architecture (config.json), its weights by Hugging Face name
// (model.safetensors or its shards, else the initializers of onnx/model.onnx) and its provenance for the model card
// (the hub repo, revision, commit and weight hashes of a pulled folder, else the folder and a hash of its weights).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Architecture, parameterShapesOf } from '../engine/architecture';
import { readInitializers } from '../engine/onnx';
import { ONNX_FILE, readArchitecture } from '../modelFolder/config';
import type { BaseRecord } from '../modelFolder/modelCard';
import { hasSafetensors, readSafetensorsWeights, readWeights, SAFETENSORS_INDEX_FILE } from '../modelFolder/weights';

export interface BaseModel {
  dir: string;
  architecture: Architecture;
  /** Reads every weight the architecture needs, by Hugging Face name (each call reads them again). */
  loadWeights: () => Map<string, Float32Array>;
}

/** The base's architecture now, its weights when asked (a resumed full fine-tuning run never needs them). */
export function readBaseModel(dir: string): BaseModel {
  const architecture = readArchitecture(dir);
  return { dir, architecture, loadWeights: () => loadWeights(dir, architecture) };
}

function loadWeights(dir: string, architecture: Architecture): Map<string, Float32Array> {
  if (architecture.family === 'gpt2') return readWeights(dir, architecture.config);
  const fromSafetensors = hasSafetensors(dir);
  const stored = fromSafetensors
    ? readSafetensorsWeights(dir)
    : fs.existsSync(path.join(dir, ONNX_FILE))
      ? new Map([...readInitializers(path.join(dir, ONNX_FILE))].map(([n, t]) => [n, { shape: t.dims, data: t.data }]))
      : undefined;
  if (!stored) throw new Error(`${dir}: no model.safetensors or ${ONNX_FILE} to fine-tune from`);
  const weightsFrom = fromSafetensors ? weightFiles(dir)[0] : ONNX_FILE;
  const weights = new Map<string, Float32Array>();
  for (const [name, shape] of parameterShapesOf(architecture)) {
    const tensor = stored.get(name);
    if (!tensor)
      throw new Error(
        `${dir}: ${weightsFrom} has no ${name}; fine-tuning needs weights under Hugging Face names ` +
          '(a hub ONNX export without safetensors cannot be fine-tuned: pull the safetensors)',
      );
    const size = shape.reduce((a, b) => a * b, 1);
    if (tensor.data.length !== size)
      throw new Error(`${dir}: ${name} has shape [${tensor.shape}], expected [${shape}]`);
    weights.set(name, tensor.data);
  }
  return weights;
}

/** The files holding a folder's weights, relative to it: safetensors (with shards), else the ONNX graph. */
function weightFiles(dir: string): string[] {
  const index = path.join(dir, SAFETENSORS_INDEX_FILE);
  if (fs.existsSync(index)) {
    const map = (JSON.parse(fs.readFileSync(index, 'utf8')) as { weight_map: Record<string, string> }).weight_map;
    return [...new Set(Object.values(map))].sort();
  }
  if (hasSafetensors(dir)) return ['model.safetensors'];
  const onnxData = `${ONNX_FILE}_data`;
  return fs.existsSync(path.join(dir, onnxData)) ? [ONNX_FILE, onnxData] : [ONNX_FILE];
}

/** Where the base came from: the pull manifest's record when it has one, else the folder and hashes of its weights. */
export function baseRecord(dir: string): BaseRecord {
  const files = weightFiles(dir).map((file) => file.split(path.sep).join('/'));
  const manifest = readPullRecord(dir);
  const pulled = new Map(manifest?.files.map((f) => [f.path, f.sha256]) ?? []);
  const weights = files.map((file) => ({ path: file, sha256: pulled.get(file) ?? sha256File(path.join(dir, file)) }));
  return {
    folder: path.resolve(dir),
    repo: manifest?.repo,
    revision: manifest?.revision,
    commit: manifest?.commit,
    weights,
  };
}

/** The fields of a pulled folder's `.pull.json` the card records (the hub layer writes it; read here as data). */
function readPullRecord(
  dir: string,
): { repo: string; revision?: string; commit?: string; files: { path: string; sha256: string }[] } | undefined {
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, PULL_MANIFEST_FILE), 'utf8'));
    return typeof manifest?.repo === 'string' && Array.isArray(manifest.files) ? manifest : undefined;
  } catch {
    return undefined;
  }
}

const PULL_MANIFEST_FILE = '.pull.json';

function sha256File(file: string): string {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(1 << 22);
    for (let read: number; (read = fs.readSync(fd, buffer, 0, buffer.length, null)) > 0; )
      hash.update(buffer.subarray(0, read));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}
