// Int8 weights for an inference graph (what `modelwright convert --dtype q8` writes): every weight matrix that a
// MatMul multiplies by (the attention, MLP and LM-head linears, directly or through a Transpose) or a Gather reads
// rows of (token and position embeddings) is stored as 8-bit integers in blocks of 32 along its input axis with
// one float32 scale per block (symmetric: q = round(w / s), s = max|w| / 127, kept as q + 128 in uint8), and
//   - a MatMul becomes onnxruntime's com.microsoft MatMulNBits (bits 8, block_size 32, accuracy_level 4: int8
//     activations in blocks of 32 too, multiplied in int8 by the CPU provider's SQNBitGemm kernels);
//   - a Gather reads the int8 rows and dequantizes only them (Gather, Cast, Sub 128, Mul by the gathered block
//     scales), so a tied embedding and LM head share one int8 table: MatMulNBits's [N, blocks, 32] weight layout
//     is the table's own row-major layout.
//
// Why MatMulNBits, measured on a chain of 24 layers 896→4864→896 (Qwen2.5-0.5B's MLP; 418 MB of float32
// weights, so nothing fits in cache) with onnxruntime-node 1.30 on 2 threads, per layer, and the relative error
// of one layer's output against float32 for inputs with a few large outlier channels (×40, as LLM activations
// have), for inputs without outliers in brackets:
//   float32 MatMul                              1 token 0.49 ms   64 tokens 1.79 ms   —
//   (a) DequantizeLinear (int8, per-channel) + MatMul: onnxruntime 1.30 fuses this into exactly (b) with block 32
//       (seen in the optimized graph)           1 token 0.12 ms   64 tokens 1.76 ms   1.4e-2 (9.3e-3)
//   (b) MatMulNBits bits 8, accuracy_level 4, block 32   0.12 ms   1.76 ms   1.3e-2 (7.4e-3)
//                                             block 64   0.11 ms   1.59 ms   1.8e-2
//                                             block 128  0.10 ms   1.19 ms   2.3e-2 (8.8e-3)
//       accuracy_level 0 (float32 compute) is exact-er (5e-3) but 3.3 ms per token, 7× slower than float32
//   (c) DynamicQuantizeLinear + MatMulInteger (fused into DynamicQuantizeMatMul)
//                                               1 token 0.09 ms   64 tokens 0.25 ms   7.3e-2 (1.1e-2)
// (c) is the fastest, by far for prompts, but quantizes each activation row with one scale, so one outlier
// channel costs every other channel its precision: 5× the error of (b) on outlier inputs, and decoder models do
// have such channels. (b) decodes 4× faster than float32 with an error close to weight rounding alone; block 32
// keeps outliers to their block (half the error of block 128, for ~15–25% more time and 12.5% instead of 3% of
// scale bytes), and writing MatMulNBits directly (rather than (a) and relying on the fusion) lets the Gather
// share the table. Whole model, Qwen2.5-0.5B-shaped (896 hidden, 24 layers, 4864 MLP, 151936 vocabulary, tied),
// runtime on 2 threads: float32 1976 MB, 70 ms per generated token, 64-token prompt 258 ms; q8 block 32 556 MB,
// 27 ms, 258 ms; block 128 510 MB, 24 ms, 194 ms (`blockSize` below).
import type { Attribute, ModelDescription, NodeProto, StoredTensor } from './onnx';

export const Q8_BLOCK_SIZE = 32;
const ZERO_POINT = 128;

export interface QuantizeOptions {
  /** Weights per scale along the input axis (16, 32, 64, 128 or 256; default 32). */
  blockSize?: number;
  /** Leave matrices with fewer elements in float32 (default 0: quantize every one). */
  minElements?: number;
}

/** An int8 matrix [rows, blocks, blockSize] (each row quantized along its columns) and its scales [rows, blocks]. */
export interface QuantizedMatrix {
  rows: number;
  columns: number;
  blockSize: number;
  blocks: number;
  values: Uint8Array;
  scales: Float32Array;
}

/**
 * Quantizes the rows of a matrix stored row-major as [rows, columns], or (`transposed`) the rows of the transpose
 * of a matrix stored as [columns, rows]: blocks of `blockSize` consecutive columns share a scale, the last block
 * is padded with zeros.
 */
export function quantizeRows(
  data: Float32Array,
  rows: number,
  columns: number,
  blockSize = Q8_BLOCK_SIZE,
  transposed = false,
): QuantizedMatrix {
  const blocks = Math.ceil(columns / blockSize);
  const values = new Uint8Array(rows * blocks * blockSize).fill(ZERO_POINT);
  const scales = new Float32Array(rows * blocks);
  const at = transposed
    ? (r: number, c: number) => data[c * rows + r]
    : (r: number, c: number) => data[r * columns + c];
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < blocks; b++) {
      const start = b * blockSize;
      const end = Math.min(columns, start + blockSize);
      let max = 0;
      for (let c = start; c < end; c++) max = Math.max(max, Math.abs(at(r, c)));
      if (max === 0 || !Number.isFinite(max)) {
        if (!Number.isFinite(max)) throw new Error(`cannot quantize a weight that is ${max}`);
        continue;
      }
      const scale = Math.fround(max / 127);
      scales[r * blocks + b] = scale;
      const out = (r * blocks + b) * blockSize - start;
      for (let c = start; c < end; c++) {
        const q = Math.round(at(r, c) / scale);
        values[out + c] = ZERO_POINT + Math.max(-127, Math.min(127, q));
      }
    }
  }
  return { rows, columns, blockSize, blocks, values, scales };
}

/** The float32 values a quantized matrix stands for, [rows, columns] (for tests and checks). */
export function dequantizeRows(m: QuantizedMatrix): Float32Array {
  const out = new Float32Array(m.rows * m.columns);
  for (let r = 0; r < m.rows; r++) {
    for (let c = 0; c < m.columns; c++) {
      const b = Math.floor(c / m.blockSize);
      out[r * m.columns + c] =
        (m.values[(r * m.blocks + b) * m.blockSize + (c % m.blockSize)] - ZERO_POINT) * m.scales[r * m.blocks + b];
    }
  }
  return out;
}

export interface QuantizationSummary {
  /** The float32 matrices now stored as int8, by name. */
  quantized: string[];
  /** Bytes of the initializers before and after. */
  floatBytes: number;
  bytes: number;
}

type Use =
  | { kind: 'matmul'; node: number } // MatMul(x, W): W is [K, N], quantize Wᵀ's rows
  | { kind: 'transposedMatmul'; node: number; transpose: number } // MatMul(x, Transpose(W)): W is [N, K]
  | { kind: 'gather'; node: number }; // Gather(W, ids) on axis 0: rows of W

const i64 = (values: number[]): StoredTensor => ({
  type: 'int64',
  dims: [values.length],
  data: BigInt64Array.from(values.map(BigInt)),
});
const intAttribute = (value: number): Attribute => ({ kind: 'int', value });

/**
 * `m` with its weight matrices in int8 as described at the top of this file. Other initializers (norms, biases,
 * constants) stay float32; a matrix with a use other than the ones above stays float32 too.
 */
export function quantizeModel(
  m: ModelDescription,
  options: QuantizeOptions = {},
): { model: ModelDescription; summary: QuantizationSummary } {
  const blockSize = options.blockSize ?? Q8_BLOCK_SIZE;
  if (![16, 32, 64, 128, 256].includes(blockSize)) throw new Error(`block size ${blockSize} is not 16, 32, …, 256`);
  const minElements = options.minElements ?? 0;
  const initializers = new Map(m.initializers.map((i) => [i.name, i.tensor]));
  const consumers = new Map<string, { node: number; input: number }[]>();
  m.nodes.forEach((n, node) =>
    n.inputs.forEach((name, input) => {
      const list = consumers.get(name) ?? [];
      list.push({ node, input });
      consumers.set(name, list);
    }),
  );
  const graphOutputs = new Set(m.outputs.map((o) => o.name));
  const isPerm10 = (n: NodeProto) => {
    const perm = n.attributes.perm;
    return perm?.kind === 'ints' && perm.value.length === 2 && perm.value[0] === 1 && perm.value[1] === 0;
  };
  const gatherAxis = (n: NodeProto) => {
    const axis = n.attributes.axis;
    return axis?.kind === 'int' ? axis.value : 0;
  };

  /** How each quantizable matrix is used; undefined when some use is not one of ours. */
  const usesOf = (name: string): Use[] | undefined => {
    const uses: Use[] = [];
    for (const { node, input } of consumers.get(name) ?? []) {
      const n = m.nodes[node];
      if (n.domain) return undefined;
      if (n.op === 'MatMul' && input === 1) uses.push({ kind: 'matmul', node });
      else if (n.op === 'Gather' && input === 0 && gatherAxis(n) === 0) uses.push({ kind: 'gather', node });
      else if (n.op === 'Transpose' && isPerm10(n) && !graphOutputs.has(n.outputs[0])) {
        const after = consumers.get(n.outputs[0]) ?? [];
        if (after.length === 0) return undefined;
        for (const c of after) {
          if (m.nodes[c.node].op !== 'MatMul' || c.input !== 1 || m.nodes[c.node].domain) return undefined;
          uses.push({ kind: 'transposedMatmul', node: c.node, transpose: node });
        }
      } else return undefined;
    }
    return uses.length > 0 ? uses : undefined;
  };

  const replaced = new Map<number, NodeProto[]>(); // node index → its replacement (empty: removed)
  const added: { name: string; tensor: StoredTensor }[] = [];
  const removed = new Set<string>();
  const quantized: string[] = [];
  let counter = 0;
  const fresh = (hint: string) => `q8_${hint}_${counter++}`;
  const constant = (hint: string, tensor: StoredTensor) => {
    const name = fresh(hint);
    added.push({ name, tensor });
    return name;
  };

  for (const [name, t] of initializers) {
    if (t.type !== 'float32' || t.dims.length !== 2 || graphOutputs.has(name)) continue;
    if (t.data.length < minElements || t.data.length === 0) continue;
    const uses = usesOf(name);
    if (!uses) continue;
    const [rows, columns] = t.dims;
    const data = t.data as Float32Array;
    // One int8 copy per layout: rows of W (transposed MatMul, Gather) and rows of Wᵀ (direct MatMul).
    const layouts = new Map<'rows' | 'transposed', { values: string; scales: string; q: QuantizedMatrix }>();
    const layout = (which: 'rows' | 'transposed') => {
      let l = layouts.get(which);
      if (!l) {
        const q =
          which === 'rows'
            ? quantizeRows(data, rows, columns, blockSize)
            : quantizeRows(data, columns, rows, blockSize, true);
        const suffix = which === 'rows' ? '' : '_transposed';
        l = { values: `${name}${suffix}_quantized`, scales: `${name}${suffix}_scales`, q };
        added.push(
          { name: l.values, tensor: { type: 'uint8', dims: [q.rows, q.blocks, q.blockSize], data: q.values } },
          { name: l.scales, tensor: { type: 'float32', dims: [q.rows, q.blocks], data: q.scales } },
        );
        layouts.set(which, l);
      }
      return l;
    };
    for (const use of uses) {
      const n = m.nodes[use.node];
      if (use.kind === 'gather') {
        replaced.set(use.node, dequantizingGather(layout('rows'), n, fresh, constant));
        continue;
      }
      const l = layout(use.kind === 'matmul' ? 'transposed' : 'rows');
      if (use.kind === 'transposedMatmul') replaced.set(use.transpose, []);
      replaced.set(use.node, [
        {
          op: 'MatMulNBits',
          domain: 'com.microsoft',
          inputs: [n.inputs[0], l.values, l.scales],
          outputs: n.outputs,
          attributes: {
            K: intAttribute(l.q.columns),
            N: intAttribute(l.q.rows),
            bits: intAttribute(8),
            block_size: intAttribute(blockSize),
            accuracy_level: intAttribute(4),
          },
        },
      ]);
    }
    removed.add(name);
    quantized.push(name);
  }

  const nodes = m.nodes.flatMap((n, i) => replaced.get(i) ?? [n]);
  const kept = m.initializers.filter((i) => !removed.has(i.name));
  const result: ModelDescription = {
    ...m,
    nodes,
    initializers: [...kept, ...added],
    metadata: { ...m.metadata, 'modelwright.quantization': `MatMulNBits bits=8 block_size=${blockSize}` },
  };
  const bytesOf = (list: { tensor: StoredTensor }[]) => list.reduce((sum, i) => sum + i.tensor.data.byteLength, 0);
  return {
    model: result,
    summary: { quantized, floatBytes: bytesOf(m.initializers), bytes: bytesOf(result.initializers) },
  };
}

/**
 * Gather(W, ids) for a W stored as QuantizedMatrix: gathers the int8 rows [..., blocks, blockSize] and their
 * scales [..., blocks], dequantizes them and flattens the blocks back to [..., columns].
 */
function dequantizingGather(
  l: { values: string; scales: string; q: QuantizedMatrix },
  gather: NodeProto,
  fresh: (hint: string) => string,
  constant: (hint: string, tensor: StoredTensor) => string,
): NodeProto[] {
  const ids = gather.inputs[1];
  const [output] = gather.outputs;
  const node = (op: string, inputs: string[], outputs: string[], attributes: Record<string, Attribute> = {}) => ({
    op,
    inputs,
    outputs,
    attributes,
  });
  const rows = fresh('rows');
  const floats = fresh('rows_float');
  const centered = fresh('rows_centered');
  const scales = fresh('scales');
  const scalesUnsqueezed = fresh('scales_unsqueezed');
  const blocks = fresh('rows_dequantized');
  const idsShape = fresh('ids_shape');
  const shape = fresh('shape');
  const padded = l.q.blocks * l.q.blockSize !== l.q.columns;
  const flat = padded ? fresh('rows_padded') : output;
  const zero = constant('zero_point', { type: 'float32', dims: [], data: new Float32Array([ZERO_POINT]) });
  const nodes: NodeProto[] = [
    node('Gather', [l.values, ids], [rows], { axis: intAttribute(0) }),
    node('Cast', [rows], [floats], { to: intAttribute(1) }),
    node('Sub', [floats, zero], [centered]),
    node('Gather', [l.scales, ids], [scales], { axis: intAttribute(0) }),
    node('Unsqueeze', [scales, constant('last_axis', i64([-1]))], [scalesUnsqueezed]),
    node('Mul', [centered, scalesUnsqueezed], [blocks]),
    node('Shape', [ids], [idsShape]),
    node('Concat', [idsShape, constant('width', i64([l.q.blocks * l.q.blockSize]))], [shape], {
      axis: intAttribute(0),
    }),
    node('Reshape', [blocks, shape], [flat]),
  ];
  if (padded) {
    const starts = constant('starts', i64([0]));
    const ends = constant('ends', i64([l.q.columns]));
    nodes.push(node('Slice', [flat, starts, ends, constant('axes', i64([-1]))], [output]));
  }
  return nodes;
}
