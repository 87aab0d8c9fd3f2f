// `modelwright deploy MODELDIR --export triton DIR`: writes a Triton model repository for a model folder,
// <name>/config.pbtxt (platform onnxruntime_onnx, inputs and outputs exactly as the ONNX graph declares them)
// and <name>/1/model.onnx (with its external data files), so the model moves unchanged to a Triton or KServe
// cluster.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ONNX_CANDIDATES } from '../runtime/languageModel';
import { checkModelName, nameForFolder } from '../serve/modelNames';
import { type OnnxSignature, type SignatureTensor, readOnnxFile } from './onnxSignature';
import { PbEnum, type PbMessage, writePbtxt } from './pbtxt';

/** Triton's data_type for each ONNX element type. */
export const tritonDataType: Record<string, string> = {
  FLOAT: 'TYPE_FP32',
  FLOAT16: 'TYPE_FP16',
  DOUBLE: 'TYPE_FP64',
  BFLOAT16: 'TYPE_BF16',
  INT64: 'TYPE_INT64',
  INT32: 'TYPE_INT32',
  INT16: 'TYPE_INT16',
  INT8: 'TYPE_INT8',
  UINT64: 'TYPE_UINT64',
  UINT32: 'TYPE_UINT32',
  UINT16: 'TYPE_UINT16',
  UINT8: 'TYPE_UINT8',
  BOOL: 'TYPE_BOOL',
  STRING: 'TYPE_STRING',
};

export interface TritonExportOptions {
  /** Model name in the repository (default: the folder's name). */
  name?: string;
  /** Version directory (default 1). */
  version?: number;
  /** CPU instances Triton runs (default 1). */
  instances?: number;
}

export interface TritonExport {
  name: string;
  configFile: string;
  modelFile: string;
  /** The copied external data files of model.onnx (absolute paths), when its weights are not inside it. */
  externalDataFiles: string[];
  signature: OnnxSignature;
}

/** The config.pbtxt text for a graph signature (max_batch_size 0: the batch dimension is part of dims). */
export function tritonConfig(name: string, signature: OnnxSignature, instances = 1): string {
  const block = (tensor: SignatureTensor): PbMessage => {
    const dataType = tritonDataType[tensor.elementType];
    if (!dataType) throw new Error(`${tensor.name}: ONNX element type ${tensor.elementType} has no Triton data type`);
    return { name: tensor.name, data_type: new PbEnum(dataType), dims: tensor.dims };
  };
  const config: PbMessage = {
    name,
    platform: 'onnxruntime_onnx',
    max_batch_size: 0,
    input: signature.inputs.map(block),
    output: signature.outputs.map(block),
    instance_group: [{ count: instances, kind: new PbEnum('KIND_CPU') }],
  };
  return (
    '# Triton model configuration written by modelwright deploy; inputs and outputs match its model.onnx.\n' +
    writePbtxt(config)
  );
}

export function exportTriton(modelDir: string, repositoryDir: string, options: TritonExportOptions = {}): TritonExport {
  const found = ONNX_CANDIDATES.find((f) => fs.existsSync(path.join(modelDir, f)));
  if (!found) throw new Error(`${modelDir}: ${ONNX_CANDIDATES[0]} is missing; is it a model folder?`);
  const onnxFile = path.join(modelDir, found);
  const name = checkModelName(options.name ?? nameForFolder(modelDir));
  const version = options.version ?? 1;
  if (!(Number.isInteger(version) && version >= 1))
    throw new Error(`version must be a positive integer, got ${version}`);
  const { signature, externalDataFiles } = readOnnxFile(onnxFile);
  for (const data of externalDataFiles) {
    if (!fs.existsSync(path.join(path.dirname(onnxFile), data)))
      throw new Error(`${onnxFile}: its external data file ${data} is missing`);
  }
  const config = tritonConfig(name, signature, options.instances ?? 1);

  const modelRoot = path.join(repositoryDir, name);
  const versionDir = path.join(modelRoot, String(version));
  fs.mkdirSync(versionDir, { recursive: true });
  const modelFile = path.join(versionDir, 'model.onnx');
  const configFile = path.join(modelRoot, 'config.pbtxt');
  // Written beside the target and renamed, so a Triton polling the repository never sees half a file; the weights
  // first, so the graph never points at data that is not there yet.
  for (const data of externalDataFiles) {
    const target = path.join(versionDir, data);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(path.join(path.dirname(onnxFile), data), `${target}.tmp`);
    fs.renameSync(`${target}.tmp`, target);
  }
  fs.copyFileSync(onnxFile, `${modelFile}.tmp`);
  fs.renameSync(`${modelFile}.tmp`, modelFile);
  fs.writeFileSync(`${configFile}.tmp`, config);
  fs.renameSync(`${configFile}.tmp`, configFile);
  return {
    name,
    configFile,
    modelFile,
    externalDataFiles: externalDataFiles.map((f) => path.join(versionDir, f)),
    signature,
  };
}
