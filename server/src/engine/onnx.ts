// Serializes the engine's graphs to ONNX ModelProto bytes with the onnx-proto (protobufjs) bindings.
// Attributes carry an explicit kind: a float attribute written as an integer would be encoded as INT and
// rejected by onnxruntime ("Mismatched attribute type").
import { onnx } from 'onnx-proto';

export type DataType = 'float32' | 'int64' | 'bool';
export type Dim = number | string;

export type Attribute =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: TensorData };

export const int = (value: number): Attribute => ({ kind: 'int', value });
export const float = (value: number): Attribute => ({ kind: 'float', value });
export const ints = (value: number[]): Attribute => ({ kind: 'ints', value });
export const string = (value: string): Attribute => ({ kind: 'string', value });
export const tensor = (value: TensorData): Attribute => ({ kind: 'tensor', value });

export interface TensorData {
  type: DataType;
  dims: number[];
  data: Float32Array | BigInt64Array | Uint8Array;
}

export interface NodeProto {
  op: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, Attribute>;
}

export interface ValueInfo {
  name: string;
  type: DataType;
  shape: Dim[];
}

export interface ModelDescription {
  name: string;
  nodes: NodeProto[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers: { name: string; tensor: TensorData }[];
  opset: number;
  metadata?: Record<string, string>;
}

const elementType: Record<DataType, onnx.TensorProto.DataType> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
};

function tensorProto(name: string, t: TensorData): onnx.ITensorProto {
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return { name, dims: t.dims, dataType: elementType[t.type], rawData: bytes };
}

function attributeProto(name: string, a: Attribute): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.kind) {
    case 'int':
      return { name, type: T.INT, i: a.value };
    case 'float':
      return { name, type: T.FLOAT, f: a.value };
    case 'ints':
      return { name, type: T.INTS, ints: a.value };
    case 'floats':
      return { name, type: T.FLOATS, floats: a.value };
    case 'string':
      return { name, type: T.STRING, s: new TextEncoder().encode(a.value) };
    case 'tensor':
      return { name, type: T.TENSOR, t: tensorProto('', a.value) };
  }
}

function valueInfo(v: ValueInfo): onnx.IValueInfoProto {
  const dim = v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return { name: v.name, type: { tensorType: { elemType: elementType[v.type], shape: { dim } } } };
}

export function encodeModel(m: ModelDescription): Uint8Array {
  const graph: onnx.IGraphProto = {
    name: m.name,
    node: m.nodes.map((n, i) => ({
      name: `${n.op}_${i}`,
      opType: n.op,
      input: n.inputs,
      output: n.outputs,
      attribute: Object.entries(n.attributes).map(([k, a]) => attributeProto(k, a)),
    })),
    input: m.inputs.map(valueInfo),
    output: m.outputs.map(valueInfo),
    initializer: m.initializers.map((i) => tensorProto(i.name, i.tensor)),
  };
  const opsetImport = [{ domain: '', version: m.opset }];
  const model: onnx.IModelProto = {
    irVersion: 9,
    producerName: 'modelwright',
    opsetImport,
    graph,
    metadataProps: Object.entries(m.metadata ?? {}).map(([key, value]) => ({ key, value })),
  };
  return onnx.ModelProto.encode(model).finish();
}

/** The float32 initializers of an ONNX model, by name (the weights of a model folder, for fine-tuning). */
export function readInitializers(bytes: Uint8Array): Map<string, { dims: number[]; data: Float32Array }> {
  const model = onnx.ModelProto.decode(bytes);
  const out = new Map<string, { dims: number[]; data: Float32Array }>();
  for (const t of model.graph?.initializer ?? []) {
    if (t.dataType !== onnx.TensorProto.DataType.FLOAT) continue;
    const dims = (t.dims ?? []).map(Number);
    let data: Float32Array;
    if (t.rawData?.length) {
      data = new Float32Array(t.rawData.length / 4);
      new Uint8Array(data.buffer).set(t.rawData);
    } else {
      data = Float32Array.from(t.floatData ?? []);
    }
    out.set(t.name ?? '', { dims, data });
  }
  return out;
}
