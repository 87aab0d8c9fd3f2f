// Which files of a hub repository a model needs for one dtype: its config and tokenizer files, README/LICENSE,
// and either the transformers.js ONNX export for that dtype (with its external data files) or, when there is
// none, the safetensors weights (one file, or the shards an index lists) to be converted to fp32 or q8.
import { METADATA_FILES } from '../modelFolder/config';

export type Dtype = 'fp32' | 'q8' | 'q4';
export const DTYPES: readonly Dtype[] = ['fp32', 'q8', 'q4'];

/** The ONNX model files of each dtype in transformers.js naming, in order of preference. */
export const ONNX_FILES: Record<Dtype, readonly string[]> = {
  fp32: ['onnx/model.onnx'],
  q8: ['onnx/model_quantized.onnx', 'onnx/model_int8.onnx'],
  q4: ['onnx/model_q4.onnx'],
};

/** The dtypes a safetensors download can be converted to (convert/convertFolder.ts). */
export const CONVERTIBLE_DTYPES: readonly Dtype[] = ['fp32', 'q8'];

export const CONFIG_FILE = 'config.json';
export const SAFETENSORS_FILE = 'model.safetensors';
export const SAFETENSORS_INDEX = 'model.safetensors.index.json';

const DOCUMENT_FILE = /^(readme|licen[cs]e|notice)(\.(md|txt|rst))?$/i;

export interface FileSelection {
  /** Paths to download, in the order to download them (small files first, weights last). */
  files: string[];
  weights: 'onnx' | 'safetensors';
  /** The ONNX model file chosen (weights 'onnx'). */
  onnxFile?: string;
  /**
   * Set when the weights are sharded safetensors and the shards are not known yet: download this index, read
   * its shard names with `shardsOfIndex`, and call `selectFiles` again with them.
   */
  needsShardIndex?: string;
}

export type SelectionFailure =
  | { missing: 'config' }
  | { missing: 'weights'; onnxFiles: string[] }
  /** The repository has safetensors, but only an ONNX export gives this dtype (conversion makes fp32 or q8). */
  | { missing: 'export'; dtype: Dtype };

/** The external data files of an ONNX file: `<file>_data`, `<file>_data_1`, `<file>_data_2`, … */
export function externalDataFiles(onnxFile: string, paths: readonly string[]): string[] {
  const data = `${onnxFile}_data`;
  const numbered = (p: string) => p.startsWith(`${data}_`) && /^\d+$/.test(p.slice(data.length + 1));
  return paths
    .filter((p) => p === data || numbered(p))
    .sort((a, b) => Number(a.slice(data.length + 1) || 0) - Number(b.slice(data.length + 1) || 0));
}

/** The shard file names of a `model.safetensors.index.json`, in order, each once. */
export function shardsOfIndex(indexJson: string): string[] {
  const parsed = JSON.parse(indexJson) as { weight_map?: Record<string, string> };
  if (!parsed || typeof parsed.weight_map !== 'object' || parsed.weight_map === null)
    throw new Error('no weight_map in the safetensors index');
  return [...new Set(Object.values(parsed.weight_map))].sort();
}

/**
 * Chooses the files to pull from the paths of a repository (all of them, recursively). Returns the reason
 * instead when the repository cannot give a model: no config.json, or no weights for the dtype.
 */
export function selectFiles(
  paths: readonly string[],
  dtype: Dtype,
  shards?: readonly string[],
): FileSelection | SelectionFailure {
  const present = new Set(paths);
  if (!present.has(CONFIG_FILE)) return { missing: 'config' };
  // Taken whenever the repository has them: the config and everything a tokenizer may need.
  const metadata = METADATA_FILES.filter((p) => present.has(p));
  const documents = paths.filter((p) => DOCUMENT_FILE.test(p)).sort();
  const take = (weights: string[], rest: Partial<FileSelection> & Pick<FileSelection, 'weights'>) => ({
    files: [...new Set([...metadata, ...documents, ...weights])],
    ...rest,
  });

  const onnxFile = ONNX_FILES[dtype].find((p) => present.has(p));
  if (onnxFile) return take([onnxFile, ...externalDataFiles(onnxFile, paths)], { weights: 'onnx', onnxFile });

  const hasSafetensors = present.has(SAFETENSORS_FILE) || present.has(SAFETENSORS_INDEX);
  if (hasSafetensors && !CONVERTIBLE_DTYPES.includes(dtype)) return { missing: 'export', dtype };
  if (present.has(SAFETENSORS_FILE)) return take([SAFETENSORS_FILE], { weights: 'safetensors' });
  if (present.has(SAFETENSORS_INDEX)) {
    if (!shards) return take([SAFETENSORS_INDEX], { weights: 'safetensors', needsShardIndex: SAFETENSORS_INDEX });
    return take([SAFETENSORS_INDEX, ...shards], { weights: 'safetensors' });
  }
  return { missing: 'weights', onnxFiles: paths.filter((p) => p.endsWith('.onnx')).sort() };
}

export function isSelectionFailure(value: FileSelection | SelectionFailure): value is SelectionFailure {
  return 'missing' in value;
}
