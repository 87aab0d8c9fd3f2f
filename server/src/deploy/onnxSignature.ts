// The inputs and outputs an ONNX file declares (names, element types, dimensions with their symbols), read from
// the ModelProto with onnx-proto, without onnxruntime: what a Triton config.pbtxt must repeat; and the external
// data files its weights live in, which must travel with it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';

export interface SignatureTensor {
  name: string;
  /** ONNX element type name, e.g. "FLOAT", "INT64". */
  elementType: string;
  /** Fixed sizes, or -1 for a dynamic dimension. */
  dims: number[];
  /** The symbolic name of each dynamic dimension, when it has one. */
  symbols: (string | undefined)[];
}

export interface OnnxSignature {
  inputs: SignatureTensor[];
  outputs: SignatureTensor[];
}

export interface OnnxFileContents {
  signature: OnnxSignature;
  /** The external data files of its initializers, relative to the graph's folder, each once, in order. */
  externalDataFiles: string[];
}

export function readOnnxSignature(source: string | Uint8Array): OnnxSignature {
  return readOnnxFile(source).signature;
}

export function readOnnxFile(source: string | Uint8Array): OnnxFileContents {
  const bytes = typeof source === 'string' ? fs.readFileSync(source) : source;
  const graph = onnx.ModelProto.decode(bytes).graph;
  if (!graph) throw new Error('the ONNX file has no graph');
  // Old exporters list initializers among the inputs too; they are weights, not inputs a caller gives.
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
  const externalDataFiles = new Set<string>();
  for (const tensor of graph.initializer ?? []) {
    if (tensor.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
    const location = (tensor.externalData ?? []).find((entry) => entry.key === 'location')?.value ?? '';
    externalDataFiles.add(checkedLocation(tensor.name ?? '', location));
  }
  return {
    signature: {
      inputs: (graph.input ?? []).filter((v) => !initializers.has(v.name ?? '')).map(tensorOf),
      outputs: (graph.output ?? []).map(tensorOf),
    },
    externalDataFiles: [...externalDataFiles],
  };
}

/** An external data location must name a file inside the graph's folder. */
function checkedLocation(tensor: string, location: string): string {
  const normal = path.posix.normalize(location.replaceAll('\\', '/'));
  if (!location || path.posix.isAbsolute(normal) || normal === '..' || normal.startsWith('../')) {
    throw new Error(`initializer ${tensor}: external data location "${location}" is outside the model's folder`);
  }
  return normal;
}

function tensorOf(value: onnx.IValueInfoProto): SignatureTensor {
  const tensorType = value.type?.tensorType;
  if (!tensorType) throw new Error(`${value.name}: only tensor inputs and outputs are supported`);
  const elementType = onnx.TensorProto.DataType[tensorType.elemType ?? 0] ?? 'UNDEFINED';
  const dims = (tensorType.shape?.dim ?? []).map((d) =>
    d.dimValue !== undefined && d.dimValue !== null && !d.dimParam ? Number(d.dimValue) : -1,
  );
  const symbols = (tensorType.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : undefined));
  return { name: value.name ?? '', elementType, dims, symbols };
}
