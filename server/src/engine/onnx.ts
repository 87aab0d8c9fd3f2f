// Serializes the engine's graphs to ONNX ModelProto bytes with the onnx-proto (protobufjs) bindings.
// Attributes carry an explicit kind: a float attribute written as an integer would be encoded as INT and
// rejected by onnxruntime ("Mismatched attribute type").
// Large initializers may live in ONNX external data (a side file such as model.onnx_data): `planExternalData`
// lays them out, `encodeModel` then writes references (location, offset, length) instead of their bytes, and
// onnxFile.ts streams the bytes into the side file. `readInitializers` reads either kind back.
import * as fs from 'node:fs';
import * as path from 'node:path';
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

/** What an initializer may hold: the graph builder's types, plus the 8-bit integers of quantized weights. */
export type StorageType = DataType | 'int8' | 'uint8';

export interface StoredTensor {
  type: StorageType;
  dims: number[];
  data: Float32Array | BigInt64Array | Uint8Array | Int8Array;
}

export interface NodeProto {
  op: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, Attribute>;
  /** The operator set domain: '' (the default) for standard ONNX ops, 'com.microsoft' for onnxruntime's. */
  domain?: string;
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
  initializers: { name: string; tensor: StoredTensor }[];
  opset: number;
  metadata?: Record<string, string>;
}

const elementType: Record<StorageType, onnx.TensorProto.DataType> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
  int8: onnx.TensorProto.DataType.INT8,
  uint8: onnx.TensorProto.DataType.UINT8,
};

/** The bytes of a tensor's data (a view, no copy). */
export function tensorBytes(t: StoredTensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** Where initializers stored outside the graph are: one file (relative to the graph's folder) and byte ranges. */
export interface ExternalDataLayout {
  location: string;
  tensors: Map<string, { offset: number; length: number }>;
  /** The size of the data file. */
  bytes: number;
}

/** onnx's tools align every tensor in the data file to 4 KiB (the page size, so it can be memory-mapped). */
export const EXTERNAL_DATA_ALIGNMENT = 4096;

/**
 * Lays out the initializers of at least `threshold` bytes (in graph order) in one external data file at
 * `location`, each at a 4 KiB-aligned offset.
 */
export function planExternalData(m: ModelDescription, location: string, threshold: number): ExternalDataLayout {
  const tensors = new Map<string, { offset: number; length: number }>();
  let bytes = 0;
  for (const { name, tensor } of m.initializers) {
    const length = tensor.data.byteLength;
    if (length < threshold || length === 0) continue;
    const offset = Math.ceil(bytes / EXTERNAL_DATA_ALIGNMENT) * EXTERNAL_DATA_ALIGNMENT;
    tensors.set(name, { offset, length });
    bytes = offset + length;
  }
  return { location, tensors, bytes };
}

function tensorProto(name: string, t: StoredTensor, external?: ExternalDataLayout): onnx.ITensorProto {
  const place = external?.tensors.get(name);
  if (place && external) {
    return {
      name,
      dims: t.dims,
      dataType: elementType[t.type],
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: external.location },
        { key: 'offset', value: String(place.offset) },
        { key: 'length', value: String(place.length) },
      ],
    };
  }
  return { name, dims: t.dims, dataType: elementType[t.type], rawData: tensorBytes(t) };
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

/**
 * The ModelProto bytes of `m`. With `external`, the initializers it lays out are written as references to the
 * external data file (whose bytes the caller writes, see onnxFile.ts) instead of inline.
 */
export function encodeModel(m: ModelDescription, external?: ExternalDataLayout): Uint8Array {
  const graph: onnx.IGraphProto = {
    name: m.name,
    node: m.nodes.map((n, i) => ({
      name: `${n.op}_${i}`,
      opType: n.op,
      domain: n.domain || undefined,
      input: n.inputs,
      output: n.outputs,
      attribute: Object.entries(n.attributes).map(([k, a]) => attributeProto(k, a)),
    })),
    input: m.inputs.map(valueInfo),
    output: m.outputs.map(valueInfo),
    initializer: m.initializers.map((i) => tensorProto(i.name, i.tensor, external)),
  };
  const domains = new Set(m.nodes.map((n) => n.domain ?? '').filter((d) => d !== ''));
  const opsetImport = [{ domain: '', version: m.opset }, ...[...domains].map((domain) => ({ domain, version: 1 }))];
  const model: onnx.IModelProto = {
    irVersion: 9,
    producerName: 'modelwright',
    opsetImport,
    graph,
    metadataProps: Object.entries(m.metadata ?? {}).map(([key, value]) => ({ key, value })),
  };
  return onnx.ModelProto.encode(model).finish();
}

/**
 * The float32 initializers of an ONNX model, by name (the weights of a model folder, for fine-tuning). `model` is
 * the graph file's path or its bytes; initializers in external data are read from the file their `location`
 * names, relative to the graph's folder (`externalDataDir` when bytes are given).
 */
export function readInitializers(
  model: Uint8Array | string,
  externalDataDir?: string,
): Map<string, { dims: number[]; data: Float32Array }> {
  const bytes = typeof model === 'string' ? fs.readFileSync(model) : model;
  const dir = typeof model === 'string' ? path.dirname(model) : externalDataDir;
  const decoded = onnx.ModelProto.decode(bytes);
  const out = new Map<string, { dims: number[]; data: Float32Array }>();
  const files = new Map<string, number>();
  try {
    for (const t of decoded.graph?.initializer ?? []) {
      if (t.dataType !== onnx.TensorProto.DataType.FLOAT) continue;
      const dims = (t.dims ?? []).map(Number);
      let data: Float32Array;
      if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
        data = readExternalFloats(t, dir, files);
      } else if (t.rawData?.length) {
        data = new Float32Array(t.rawData.length / 4);
        new Uint8Array(data.buffer).set(t.rawData);
      } else {
        data = Float32Array.from(t.floatData ?? []);
      }
      if (data.length !== dims.reduce((a, b) => a * b, 1)) {
        throw new Error(`initializer ${t.name} has ${data.length} values, its dims [${dims}] need more or fewer`);
      }
      out.set(t.name ?? '', { dims, data });
    }
  } finally {
    for (const fd of files.values()) fs.closeSync(fd);
  }
  return out;
}

/** A float32 tensor's values from its external data file (files: open descriptors by location, reused). */
function readExternalFloats(t: onnx.ITensorProto, dir: string | undefined, files: Map<string, number>): Float32Array {
  const entries = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = entries.get('location');
  if (!location) throw new Error(`initializer ${t.name}: external data without a location`);
  if (dir === undefined) {
    throw new Error(`initializer ${t.name} is in external data (${location}): read the model from its file path`);
  }
  if (path.isAbsolute(location) || location.split(/[\\/]/).includes('..')) {
    throw new Error(`initializer ${t.name}: external data location ${location} is outside the model's folder`);
  }
  const file = path.join(dir, location);
  let fd = files.get(file);
  if (fd === undefined) {
    fd = fs.openSync(file, 'r');
    files.set(file, fd);
  }
  const offset = Number(entries.get('offset') ?? 0);
  const count = (t.dims ?? []).map(Number).reduce((a, b) => a * b, 1);
  const length = entries.has('length') ? Number(entries.get('length')) : count * 4;
  if (length !== count * 4) throw new Error(`initializer ${t.name}: external length ${length} is not ${count} floats`);
  const data = new Float32Array(count);
  const target = new Uint8Array(data.buffer);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, target, done, length - done, offset + done);
    if (n === 0) throw new Error(`initializer ${t.name}: ${location} ends before offset ${offset + length}`);
    done += n;
  }
  return data;
}
