// Reverse-mode automatic differentiation over a Graph: walks the recorded nodes backwards and appends,
// for each op, the standard ONNX ops that compute its inputs' gradients. The result is one graph that
// computes the loss and every parameter's gradient in a single onnxruntime run.
import { type Graph, type Node, type Value, concreteShape } from './graph';
import { int } from './onnx';

/** Gradients of a node's inputs from its outputs' gradients; `needs[i]` says whether input i wants one. */
type GradientRule = (g: Graph, node: Node, dOut: (Value | undefined)[], needs: boolean[]) => (Value | undefined)[];

/** Sums a broadcast gradient back down to the shape of the operand it came from. */
function unbroadcast(g: Graph, grad: Value, target: Value): Value {
  const shape = concreteShape(target);
  const gradShape = concreteShape(grad);
  if (shape.length === gradShape.length && shape.every((d, i) => d === gradShape[i])) return grad;
  if (shape.length === 1 && shape[0] === gradShape.at(-1)) return sumOverRows(g, grad);
  const lead = gradShape.length - shape.length;
  const axes: number[] = [];
  gradShape.forEach((d, i) => {
    if (i < lead || (shape[i - lead] === 1 && d !== 1)) axes.push(i);
  });
  const summed = axes.length ? g.reduceSum(grad, axes, true) : grad;
  return g.reshape(summed, shape);
}

function swapLastTwo(g: Graph, x: Value): Value {
  const rank = x.shape.length;
  const perm = [...Array(rank).keys()];
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  return g.transpose(x, perm);
}

/**
 * The sum over every axis but the last, [.., K] → [K], as ones[1, N]·rows(x): a bias's or a norm scale's gradient.
 * Measured: half the time of ReduceSum over the leading axes, which strides across rows.
 */
function sumOverRows(g: Graph, x: Value): Value {
  const shape = concreteShape(x);
  const count = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const ones = g.constant(new Float32Array(count).fill(1), [1, count]);
  return g.reshape(g.matmul(ones, rows(g, x)), [shape.at(-1)!]);
}

/** Flattens all but the last axis: [.., K] → [N, K]. */
function rows(g: Graph, x: Value): Value {
  return x.shape.length === 2 ? x : g.reshape(x, [-1, concreteShape(x).at(-1)!]);
}

/** The values of a constant (initializer) input, or undefined if it is computed. */
function constantValues(g: Graph, v: Value): number[] | undefined {
  const data = g.initializers.get(v.name)?.data;
  return data ? Array.from(data as ArrayLike<number | bigint>, Number) : undefined;
}

function integerAttribute(n: Node, name: string, fallback: number): number {
  return (n.attributes[name] as { value: number } | undefined)?.value ?? fallback;
}

/** Broadcasts dy back to x's shape (the reverse of a reduction or an Expand). */
function expandTo(g: Graph, dy: Value, x: Value): Value {
  return g.node('Expand', [dy, g.int64s(concreteShape(x))], [[x.shape, x.type]])[0];
}

/** The node computing each value of a graph's forward pass (built when the backward pass starts). */
const producers = new WeakMap<Graph, Map<string, Node>>();

/** The x of a node computing x · Sigmoid(x) (SiLU, in either order), or undefined. */
function siluInput(g: Graph, n: Node): Value | undefined {
  const [a, b] = n.inputs;
  for (const [x, s] of [
    [a, b],
    [b, a],
  ]) {
    const node = producers.get(g)?.get(s.name);
    if (node?.op === 'Sigmoid' && node.inputs[0] === x && x.shape.join() === s.shape.join()) return x;
  }
  return undefined;
}

const rules: Record<string, GradientRule> = {
  Add: (g, n, [dy], needs) => n.inputs.map((v, i) => (needs[i] ? unbroadcast(g, dy!, v) : undefined)),
  Sub: (g, n, [dy], needs) => [
    needs[0] ? unbroadcast(g, dy!, n.inputs[0]) : undefined,
    needs[1] ? unbroadcast(g, g.neg(dy!), n.inputs[1]) : undefined,
  ],
  Mul: (g, n, [dy], needs) => {
    const [a, b] = n.inputs;
    const silu = siluInput(g, n);
    // SiLU, x·σ(x): its derivative σ(x)·(1 + x − x·σ(x)) in four elementwise ops instead of the product's and σ's six.
    if (silu) {
      const xIndex = silu === a ? 0 : 1;
      const slope = g.mul(n.inputs[1 - xIndex], g.add(g.sub(silu, n.outputs[0]), g.scalar(1)));
      return n.inputs.map((_, i) => (i === xIndex && needs[i] ? g.mul(dy!, slope) : undefined));
    }
    return [
      needs[0] ? unbroadcast(g, g.mul(dy!, b), a) : undefined,
      needs[1] ? unbroadcast(g, g.mul(dy!, a), b) : undefined,
    ];
  },
  Div: (g, n, [dy], needs) => {
    const [a, b] = n.inputs;
    const y = n.outputs[0];
    return [
      needs[0] ? unbroadcast(g, g.div(dy!, b), a) : undefined,
      needs[1] ? unbroadcast(g, g.neg(g.div(g.mul(dy!, y), b)), b) : undefined,
    ];
  },
  Identity: (_g, _n, [dy]) => [dy],
  Neg: (g, _n, [dy]) => [g.neg(dy!)],
  Tanh: (g, n, [dy]) => {
    const y = n.outputs[0];
    return [g.mul(dy!, g.sub(g.scalar(1), g.mul(y, y)))];
  },
  Exp: (g, n, [dy]) => [g.mul(dy!, n.outputs[0])],
  Sqrt: (g, n, [dy]) => [g.div(g.mul(dy!, g.scalar(0.5)), n.outputs[0])],
  Sigmoid: (g, n, [dy]) => {
    const y = n.outputs[0];
    return [g.mul(dy!, g.mul(y, g.sub(g.scalar(1), y)))];
  },
  Sin: (g, n, [dy]) => [g.mul(dy!, g.node('Cos', [n.inputs[0]], [[n.inputs[0].shape, 'float32']])[0])],
  Cos: (g, n, [dy]) => [g.neg(g.mul(dy!, g.node('Sin', [n.inputs[0]], [[n.inputs[0].shape, 'float32']])[0]))],
  Pow: (g, n, [dy], needs) => {
    // Only the base is differentiated (exponents are constants in the models); x² is the common case.
    if (needs[1]) throw new Error('no gradient rule for a Pow exponent');
    const [x, exponent] = n.inputs;
    const known = constantValues(g, exponent);
    if (known?.length === 1 && known[0] === 2) return [g.mul(dy!, g.mul(x, g.scalar(2)))];
    const slope = g.mul(exponent, g.pow(x, g.sub(exponent, g.scalar(1))));
    return [unbroadcast(g, g.mul(dy!, slope), x), undefined];
  },
  ReduceMean: (g, n, [dy]) => {
    const [x, axesInput] = n.inputs;
    const shape = concreteShape(x);
    const axes = (axesInput ? constantValues(g, axesInput) : undefined) ?? [...shape.keys()];
    const normalized = axes.map((a) => (a < 0 ? a + shape.length : a));
    const count = normalized.reduce((k, a) => k * shape[a], 1);
    const kept = shape.map((d, i) => (normalized.includes(i) ? 1 : d));
    const keptGrad = integerAttribute(n, 'keepdims', 1) ? dy! : g.reshape(dy!, kept);
    return [expandTo(g, g.mul(keptGrad, g.scalar(1 / count)), x), undefined];
  },
  Expand: (g, n, [dy]) => [unbroadcast(g, dy!, n.inputs[0]), undefined],
  Unsqueeze: (g, n, [dy]) => [g.reshape(dy!, concreteShape(n.inputs[0])), undefined],
  Squeeze: (g, n, [dy]) => [g.reshape(dy!, concreteShape(n.inputs[0])), undefined],
  Cast: (_g, n, [dy]) => [n.inputs[0].type === 'float32' && n.outputs[0].type === 'float32' ? dy : undefined],
  Concat: (g, n, [dy], needs) => {
    const rank = n.inputs[0].shape.length;
    const axis = (integerAttribute(n, 'axis', 0) + rank) % rank;
    const sizes = n.inputs.map((v) => concreteShape(v)[axis]);
    const parts = g.node(
      'Split',
      [dy!, g.int64s(sizes)],
      n.inputs.map((v) => [v.shape, v.type]),
      { axis: int(axis) },
    );
    return parts.map((part, i) => (needs[i] ? part : undefined));
  },
  MatMul: (g, n, [dy], needs) => {
    const [a, b] = n.inputs;
    if (b.shape.length === 2 && a.shape.length > 2) {
      // x·W with a weight matrix: dW = rows(x)ᵀ·rows(dy), one Gemm over all positions.
      const dA = needs[0] ? g.matmul(dy!, g.transpose(b, [1, 0])) : undefined;
      const dB = needs[1]
        ? g.node('Gemm', [rows(g, a), rows(g, dy!)], [[b.shape, b.type]], { transA: int(1) })[0]
        : undefined;
      return [dA, dB];
    }
    return [
      needs[0] ? unbroadcast(g, g.matmul(dy!, swapLastTwo(g, b)), a) : undefined,
      needs[1] ? unbroadcast(g, g.matmul(swapLastTwo(g, a), dy!), b) : undefined,
    ];
  },
  Gather: (g, n, [dy]) => {
    const [table, indices] = n.inputs;
    const zeros = g.zerosLike(table);
    const positions = g.unsqueeze(indices, [indices.shape.length]);
    const dTable = g.node('ScatterND', [zeros, positions, dy!], [[table.shape, table.type]], {
      reduction: { kind: 'string', value: 'add' },
    })[0];
    return [dTable, undefined];
  },
  Reshape: (g, n, [dy]) => [g.reshape(dy!, concreteShape(n.inputs[0]))],
  Transpose: (g, n, [dy]) => {
    const perm = (n.attributes.perm as { value: number[] }).value;
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [g.transpose(dy!, inverse)];
  },
  Slice: (g, n, [dy]) => {
    // Constant starts, ends and axes, unit steps: the gradient is dy padded with zeros back to x's shape.
    const [x, startsInput, endsInput, axesInput, stepsInput] = n.inputs;
    const shape = concreteShape(x);
    const starts = constantValues(g, startsInput);
    const ends = constantValues(g, endsInput);
    const axes = axesInput ? constantValues(g, axesInput) : starts?.map((_, i) => i);
    const steps = stepsInput ? constantValues(g, stepsInput) : undefined;
    if (!starts || !ends || !axes || steps?.some((step) => step !== 1))
      throw new Error('no gradient rule for a Slice with computed bounds or steps');
    const pads = new Array<number>(2 * shape.length).fill(0);
    axes.forEach((axis, i) => {
      const a = axis < 0 ? axis + shape.length : axis;
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + shape[a] : v, 0), shape[a]);
      pads[a] = clamp(starts[i]);
      pads[shape.length + a] = shape[a] - clamp(ends[i]);
    });
    return [g.node('Pad', [dy!, g.int64s(pads)], [[x.shape, x.type]])[0]];
  },
  Split: (g, n, dOut) => {
    const parts = n.outputs.map((o, i) => dOut[i] ?? g.zerosLike(o));
    return [g.concat(parts, integerAttribute(n, 'axis', 0)), undefined];
  },
  Softmax: (g, n, [dy]) => {
    const y = n.outputs[0];
    const axis = (n.attributes.axis as { value: number } | undefined)?.value ?? -1; // opset ≥ 13 default
    const dot = g.reduceSum(g.mul(dy!, y), [axis], true);
    return [g.mul(y, g.sub(dy!, dot))];
  },
  Gelu: (g, n, [dy]) => {
    const x = n.inputs[0];
    const x2 = g.mul(x, x);
    if ((n.attributes.approximate as { value: string } | undefined)?.value !== 'tanh') {
      // The exact GELU x·Φ(x) has the derivative Φ(x) + x·φ(x), φ(x) = exp(−x²/2)/√(2π).
      const cdf = g.mul(
        g.add(g.node('Erf', [g.mul(x, g.scalar(Math.SQRT1_2))], [[x.shape, x.type]])[0], g.scalar(1)),
        g.scalar(0.5),
      );
      const density = g.mul(g.exp(g.mul(x2, g.scalar(-0.5))), g.scalar(1 / Math.sqrt(2 * Math.PI)));
      return [g.mul(dy!, g.add(cdf, g.mul(x, density)))];
    }
    // The tanh GELU is y = x·σ(v) with v = 2k·(x + c·x³), so its derivative σ(v)·(1 + x·(1 − σ(v))·v′),
    // v′ = 2k·(1 + 3c·x²), is σ(v) + y·(1 − σ(v))·v′ with the node's own output y: twelve elementwise ops.
    const y = n.outputs[0];
    const k = Math.sqrt(2 / Math.PI);
    const c = 0.044715;
    const sigma = g.node(
      'Sigmoid',
      [g.mul(x, g.add(g.mul(x2, g.scalar(2 * k * c)), g.scalar(2 * k)))],
      [[x.shape, x.type]],
    )[0];
    const slope = g.add(g.mul(x2, g.scalar(6 * k * c)), g.scalar(2 * k));
    return [g.mul(dy!, g.add(sigma, g.mul(g.mul(y, g.sub(g.scalar(1), sigma)), slope)))];
  },
  LayerNormalization: (g, n, [dy], needs) => {
    // With x̂ = (x − μ)·σ⁻¹ and ĝ = dy·γ:  dx = σ⁻¹·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)).
    const [x, scale] = n.inputs;
    const [, mean, invStdDev] = n.outputs;
    const xHat = g.mul(g.sub(x, mean), invStdDev);
    const dScale = needs[1] ? sumOverRows(g, g.mul(dy!, xHat)) : undefined;
    const dBias = needs[2] ? sumOverRows(g, dy!) : undefined;
    let dx: Value | undefined;
    if (needs[0]) {
      const width = g.scalar(1 / concreteShape(x).at(-1)!);
      const gHat = g.mul(dy!, scale);
      const meanG = g.mul(g.reduceSum(gHat, [-1], true), width);
      const meanGX = g.mul(g.reduceSum(g.mul(gHat, xHat), [-1], true), width);
      dx = g.mul(invStdDev, g.sub(g.sub(gHat, meanG), g.mul(xHat, meanGX)));
    }
    return [dx, dScale, dBias];
  },
  SoftmaxCrossEntropyLoss: (g, n, [dLoss]) => {
    // d(mean loss)/d logits = (softmax − onehot(label)) / N; the −1 at each label is one scatter-add. With class
    // weights the mean is Σ w[yᵢ]·lossᵢ / Σ w[yᵢ], so row i is scaled by w[yᵢ] / Σ w[yⱼ] instead of 1/N.
    const [logits, labels, classWeights] = n.inputs;
    const [rowCount] = concreteShape(logits);
    const logProb = n.outputs[1];
    const minusOne = g.constant(new Float32Array(rowCount).fill(-1), [rowCount, 1]);
    const [dLogits] = g.node(
      'ScatterElements',
      [g.exp(logProb), g.unsqueeze(labels, [1]), minusOne],
      [[logits.shape, 'float32']],
      {
        axis: int(1),
        reduction: { kind: 'string', value: 'add' },
      },
    );
    if (!classWeights) return [g.mul(dLogits, g.mul(dLoss!, g.scalar(1 / rowCount))), undefined];
    const rowWeights = g.gather(classWeights, labels);
    const total = g.reduceSum(rowWeights, [0], false);
    const scale = g.div(g.unsqueeze(rowWeights, [1]), total);
    return [g.mul(dLogits, g.mul(dLoss!, scale)), undefined, undefined];
  },
};

export const differentiableOps = Object.keys(rules);

/**
 * Appends the gradient graph of `loss` (a scalar) with respect to `params` and returns each parameter's
 * gradient by parameter name. `seed` starts the walk elsewhere: the gradient of the loss with respect to an
 * intermediate value, given in closed form (the training graphs give the logits' one), so the ops between that value
 * and the loss are not differentiated.
 */
export function backward(
  g: Graph,
  loss: Value,
  params: Value[],
  seed?: { value: Value; gradient: Value },
): Map<string, Value> {
  const forwardNodes = [...g.nodes];
  producers.set(g, new Map(forwardNodes.flatMap((node) => node.outputs.map((o): [string, Node] => [o.name, node]))));
  const requiresGrad = new Set(params.map((p) => p.name));
  for (const node of forwardNodes) {
    if (node.inputs.some((v) => requiresGrad.has(v.name))) node.outputs.forEach((o) => requiresGrad.add(o.name));
  }

  const pending = new Map<string, Value[]>();
  const contribute = (v: Value, grad: Value) => {
    const list = pending.get(v.name) ?? [];
    list.push(grad);
    pending.set(v.name, list);
  };
  const total = (v: Value): Value | undefined => {
    const list = pending.get(v.name);
    if (!list) return undefined;
    if (list.length === 1) return list[0];
    const summed = g.node('Sum', list, [[v.shape, v.type]])[0];
    pending.set(v.name, [summed]);
    return summed;
  };

  if (seed) contribute(seed.value, seed.gradient);
  else contribute(loss, g.constant([1], []));
  for (let i = forwardNodes.length - 1; i >= 0; i--) {
    const node = forwardNodes[i];
    const needs = node.inputs.map((v) => requiresGrad.has(v.name));
    if (!needs.some(Boolean)) continue;
    const dOut = node.outputs.map(total);
    if (dOut.every((d) => d === undefined)) continue;
    const rule = rules[node.op];
    if (!rule) throw new Error(`no gradient rule for ${node.op}`);
    const dIn = rule(g, node, dOut, needs);
    node.inputs.forEach((v, k) => {
      const d = dIn[k];
      if (d && needs[k]) contribute(v, d);
    });
  }

  const grads = new Map<string, Value>();
  for (const p of params) grads.set(p.name, total(p) ?? g.zerosLike(p));
  return grads;
}
