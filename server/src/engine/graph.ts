// A small builder for ONNX graphs: each method appends one standard ONNX op (`contrib` an onnxruntime one, for
// inference graphs) and returns its output with a known shape, so that the model reads as plain code and
// autodiff.ts can walk the recorded nodes backwards.
// Shapes are concrete in training graphs; inference graphs use named (symbolic) dims for batch and length.
import {
  type Attribute,
  type DataType,
  type Dim,
  type ModelDescription,
  type NodeProto,
  type TensorData,
  float,
  int,
  ints,
  tensor,
} from './onnx';

export interface Value {
  readonly name: string;
  readonly type: DataType;
  readonly shape: readonly Dim[];
}

export interface Node {
  readonly op: string;
  readonly inputs: readonly Value[];
  readonly outputs: readonly Value[];
  readonly attributes: Record<string, Attribute>;
  /** 'com.microsoft' for onnxruntime's contrib ops, which autodiff cannot differentiate; absent for ONNX's. */
  readonly domain?: string;
}

export const OPSET = 20;

export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  readonly initializers = new Map<string, TensorData>();
  private counter = 0;
  private symbolCounter = 0;
  private readonly renames = new Map<string, string>();

  constructor(readonly name = 'graph') {}

  fresh(hint: string): string {
    return `${hint}_${this.counter++}`;
  }

  input(name: string, shape: readonly Dim[], type: DataType = 'float32'): Value {
    const v = { name, type, shape };
    this.inputs.push(v);
    return v;
  }

  /** Marks v as a graph output, under `name` if given (renaming its producer's output rather than copying). */
  output(v: Value, name?: string): Value {
    let out = v;
    if (name && name !== v.name) {
      const renamable = !this.renames.has(v.name) && this.nodes.some((n) => n.outputs.includes(v));
      if (renamable) {
        this.renames.set(v.name, name);
        out = { ...v, name };
      } else {
        out = this.identity(v, name);
      }
    }
    this.outputs.push(out);
    return out;
  }

  initializer(name: string, data: TensorData): Value {
    this.initializers.set(name, data);
    return { name, type: data.type, shape: data.dims };
  }

  /** A constant tensor stored as an initializer (float32 unless int64 data is given). */
  constant(values: number[] | Float32Array | BigInt64Array, dims: number[] = [values.length]): Value {
    const data = values instanceof BigInt64Array || values instanceof Float32Array ? values : Float32Array.from(values);
    const type: DataType = data instanceof BigInt64Array ? 'int64' : 'float32';
    return this.initializer(this.fresh('const'), { type, dims, data });
  }

  scalar(value: number): Value {
    return this.constant([value], []);
  }

  int64s(values: number[]): Value {
    return this.constant(BigInt64Array.from(values.map(BigInt)), [values.length]);
  }

  /** Appends a node; outputs are described by [shape, type] pairs. */
  node(
    op: string,
    inputs: Value[],
    outputs: [readonly Dim[], DataType][],
    attributes: Record<string, Attribute> = {},
    outputNames?: string[],
  ): Value[] {
    const outs = outputs.map(([shape, type], i) => ({ name: outputNames?.[i] ?? this.fresh(op), type, shape }));
    this.nodes.push({ op, inputs, outputs: outs, attributes });
    return outs;
  }

  /** Appends an onnxruntime contrib op (domain com.microsoft) with one output of the given shape and type. */
  contrib(
    op: string,
    inputs: Value[],
    output: [readonly Dim[], DataType],
    attributes: Record<string, Attribute>,
  ): Value {
    const out = { name: this.fresh(op), type: output[1], shape: output[0] };
    this.nodes.push({ op, inputs, outputs: [out], attributes, domain: 'com.microsoft' });
    return out;
  }

  private symbol(): string {
    return `d${this.symbolCounter++}`;
  }

  // ── elementwise ────────────────────────────────
  private elementwise(op: string, a: Value, b: Value): Value {
    return this.node(op, [a, b], [[broadcastShape(a.shape, b.shape), a.type]])[0];
  }
  add(a: Value, b: Value) {
    return this.elementwise('Add', a, b);
  }
  sub(a: Value, b: Value) {
    return this.elementwise('Sub', a, b);
  }
  mul(a: Value, b: Value) {
    return this.elementwise('Mul', a, b);
  }
  div(a: Value, b: Value) {
    return this.elementwise('Div', a, b);
  }
  pow(a: Value, b: Value) {
    return this.elementwise('Pow', a, b);
  }
  min(a: Value, b: Value) {
    return this.elementwise('Min', a, b);
  }
  max(a: Value, b: Value) {
    return this.elementwise('Max', a, b);
  }

  private unary(op: string, x: Value, attributes: Record<string, Attribute> = {}): Value {
    return this.node(op, [x], [[x.shape, x.type]], attributes)[0];
  }
  tanh(x: Value) {
    return this.unary('Tanh', x);
  }
  sqrt(x: Value) {
    return this.unary('Sqrt', x);
  }
  exp(x: Value) {
    return this.unary('Exp', x);
  }
  neg(x: Value) {
    return this.unary('Neg', x);
  }
  identity(x: Value, name?: string): Value {
    return this.node('Identity', [x], [[x.shape, x.type]], {}, name ? [name] : undefined)[0];
  }
  cast(x: Value, to: DataType): Value {
    const code = { float32: 1, int64: 7, bool: 9 }[to];
    return this.node('Cast', [x], [[x.shape, to]], { to: int(code) })[0];
  }
  /** GPT-2's GELU: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
  gelu(x: Value) {
    return this.unary('Gelu', x, { approximate: { kind: 'string', value: 'tanh' } });
  }
  softmax(x: Value, axis = -1) {
    return this.unary('Softmax', x, { axis: int(axis) });
  }

  // ── shapes ─────────────────────────────────
  /** ONNX Reshape: 0 copies the input's dim at that index, -1 is inferred. */
  reshape(x: Value, spec: number[]): Value {
    const shape: Dim[] = spec.map((s, i) => (s === 0 ? x.shape[i] : s));
    const inferred = shape.indexOf(-1);
    if (inferred >= 0) {
      const total = product(x.shape);
      const known = product(shape.filter((_, i) => i !== inferred));
      shape[inferred] = typeof total === 'number' && typeof known === 'number' ? total / known : this.symbol();
    }
    return this.node('Reshape', [x, this.int64s(spec)], [[shape, x.type]])[0];
  }

  transpose(x: Value, perm: number[]): Value {
    return this.node('Transpose', [x], [[perm.map((p) => x.shape[p]), x.type]], { perm: ints(perm) })[0];
  }

  /** Splits the last axis into equal parts. */
  split(x: Value, parts: number): Value[] {
    const last = x.shape[x.shape.length - 1];
    if (typeof last !== 'number') throw new Error('split needs a known last dim');
    const shape = [...x.shape.slice(0, -1), last / parts];
    const outs = Array.from({ length: parts }, () => [shape, x.type] as [Dim[], DataType]);
    return this.node('Split', [x], outs, { axis: int(-1), num_outputs: int(parts) });
  }

  concat(values: Value[], axis: number): Value {
    const rank = values[0].shape.length;
    const a = axis < 0 ? axis + rank : axis;
    const sizes = values.map((v) => v.shape[a]);
    const joined = sizes.every((s) => typeof s === 'number')
      ? (sizes as number[]).reduce((x, y) => x + y, 0)
      : this.symbol();
    const shape = values[0].shape.map((d, i) => (i === a ? joined : d));
    return this.node('Concat', values, [[shape, values[0].type]], { axis: int(axis) })[0];
  }

  unsqueeze(x: Value, axes: number[]): Value {
    const shape = [...x.shape];
    for (const a of [...axes].sort((p, q) => p - q)) shape.splice(a, 0, 1);
    return this.node('Unsqueeze', [x, this.int64s(axes)], [[shape, x.type]])[0];
  }

  /** Shape(x)[start:end] as a 1-D int64 tensor. */
  shapeOf(x: Value, start: number, end: number): Value {
    return this.node('Shape', [x], [[[end - start], 'int64']], { start: int(start), end: int(end) })[0];
  }

  // ── reductions ────────────────────────────────
  reduceSum(x: Value, axes: number[], keepdims = true): Value {
    const rank = x.shape.length;
    const norm = axes.map((a) => (a < 0 ? a + rank : a));
    const shape = keepdims
      ? x.shape.map((d, i) => (norm.includes(i) ? 1 : d))
      : x.shape.filter((_, i) => !norm.includes(i));
    return this.node('ReduceSum', [x, this.int64s(axes)], [[shape, x.type]], { keepdims: int(keepdims ? 1 : 0) })[0];
  }

  /** Sum of squares over all elements, as a scalar. */
  sumOfSquares(x: Value): Value {
    return this.node('ReduceSumSquare', [x], [[[], x.type]], { keepdims: int(0) })[0];
  }

  // ── linear algebra and layers ───────────────────────────
  matmul(a: Value, b: Value): Value {
    const batch = broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const shape = [...batch, a.shape[a.shape.length - 2], b.shape[b.shape.length - 1]];
    return this.node('MatMul', [a, b], [[shape, a.type]])[0];
  }

  /** y = x·W + b with W stored as [in, out] (GPT-2's Conv1D layout). */
  /** Rows of `table` picked by integer `indices` (embedding lookup). */
  gather(table: Value, indices: Value): Value {
    return this.node('Gather', [table, indices], [[[...indices.shape, ...table.shape.slice(1)], table.type]], {
      axis: int(0),
    })[0];
  }

  /** LayerNormalization over the last axis; also returns the saved mean and inverse std dev for backward. */
  layerNormWithStats(x: Value, scale: Value, bias: Value, epsilon = 1e-5): { y: Value; mean: Value; invStdDev: Value } {
    const statShape = [...x.shape.slice(0, -1), 1];
    const [y, mean, invStdDev] = this.node(
      'LayerNormalization',
      [x, scale, bias],
      [
        [x.shape, x.type],
        [statShape, 'float32'],
        [statShape, 'float32'],
      ],
      { axis: int(-1), epsilon: float(epsilon) },
    );
    return { y, mean, invStdDev };
  }

  layerNorm(x: Value, scale: Value, bias: Value, epsilon = 1e-5): Value {
    return this.layerNormWithStats(x, scale, bias, epsilon).y;
  }

  /**
   * Mean cross-entropy of logits [N, V] against labels [N], with the log-probabilities; with `classWeights` [V],
   * ONNX's weighted mean Σ w[yᵢ]·lossᵢ / Σ w[yᵢ] (PyTorch's cross_entropy with `weight`).
   */
  crossEntropy(logits: Value, labels: Value, classWeights?: Value): { loss: Value; logProb: Value } {
    const [loss, logProb] = this.node(
      'SoftmaxCrossEntropyLoss',
      classWeights ? [logits, labels, classWeights] : [logits, labels],
      [
        [[], 'float32'],
        [logits.shape, 'float32'],
      ],
      { reduction: { kind: 'string', value: 'mean' } },
    );
    return { loss, logProb };
  }

  zerosLike(x: Value): Value {
    const dims = x.shape.map((d) => {
      if (typeof d !== 'number') throw new Error('zerosLike needs a concrete shape');
      return d;
    });
    return this.node('ConstantOfShape', [this.int64s(dims)], [[x.shape, x.type]], {
      value: tensor({ type: 'float32', dims: [1], data: new Float32Array([0]) }),
    })[0];
  }

  toModel(opset = OPSET, metadata?: Record<string, string>): ModelDescription {
    const rename = (v: Value) => this.renames.get(v.name) ?? v.name;
    const nodes: NodeProto[] = this.nodes.map((n) => ({
      op: n.op,
      inputs: n.inputs.map(rename),
      outputs: n.outputs.map(rename),
      attributes: n.attributes,
      ...(n.domain ? { domain: n.domain } : {}),
    }));
    return {
      name: this.name,
      nodes,
      inputs: this.inputs.map((v) => ({ ...v, shape: [...v.shape] })),
      outputs: this.outputs.map((v) => ({ ...v, shape: [...v.shape] })),
      initializers: [...this.initializers].map(([name, t]) => ({ name, tensor: t })),
      opset,
      metadata,
    };
  }
}

export function broadcastShape(a: readonly Dim[], b: readonly Dim[]): Dim[] {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    if (x === 1) out.push(y);
    else if (y === 1 || x === y) out.push(x);
    else if (typeof x === 'string' || typeof y === 'string') out.push(typeof x === 'string' ? x : y);
    else throw new Error(`shapes [${a}] and [${b}] do not broadcast`);
  }
  return out;
}

export function product(shape: readonly Dim[]): Dim {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number') return '?';
    n *= d;
  }
  return n;
}

export function concreteShape(v: Value): number[] {
  return v.shape.map((d) => {
    if (typeof d !== 'number') throw new Error(`${v.name} has a symbolic dim`);
    return d;
  });
}
