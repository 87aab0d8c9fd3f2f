// Finite-difference checks of every gradient rule in autodiff.ts: each case builds a tiny graph of one op on
// float inputs, reduces it to a scalar with a fixed random weighting, and compares the gradients that
// `backward` appends (run in onnxruntime) with float64 central differences of the forward graph.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { activate } from '../../server/src/engine/activations';
import { backward, differentiableOps } from '../../server/src/engine/autodiff';
import { Graph, type Value, concreteShape } from '../../server/src/engine/graph';
import { int } from '../../server/src/engine/onnx';
import type { Session } from '../../server/src/runtime/onnxSession';
import { f32, open, run, size, uniform } from '../helpers/engineHarness';

interface Input {
  shape: number[];
  /** Maps a uniform [0, 1) draw to the element's value; default uniform in [−1.5, 1.5). */
  init?: (u: number) => number;
}

interface Case {
  name: string;
  /** The op whose rule this case checks; it must occur in the case's forward graph. */
  op: string;
  inputs: Input[];
  build: (g: Graph, xs: Value[]) => Value;
}

const awayFromZero = (u: number) => (u < 0.5 ? -1 : 1) * (0.5 + 2 * Math.abs(u - 0.5) * 1.0); // ±[0.5, 1.5)
const wide = (u: number) => 6 * u - 3; // [−3, 3): covers GELU's curved region

const binary = (op: 'Add' | 'Sub' | 'Mul' | 'Div', a: number[], b: number[]): Case => ({
  name: `${op} [${a}] with [${b}]`,
  op,
  inputs: [{ shape: a }, { shape: b, init: op === 'Div' ? awayFromZero : undefined }],
  build: (g, [x, y]) => ({ Add: g.add, Sub: g.sub, Mul: g.mul, Div: g.div })[op].call(g, x, y),
});

const broadcastPairs: [number[], number[]][] = [
  [
    [2, 3, 4],
    [2, 3, 4],
  ],
  [[2, 3, 4], [4]],
  [
    [2, 3, 4],
    [1, 3, 1],
  ],
  [[4], [2, 3, 4]],
  [
    [1, 3, 1],
    [2, 1, 4],
  ],
  [[2, 3], []],
];

const cases: Case[] = [
  ...(['Add', 'Sub', 'Mul', 'Div'] as const).flatMap((op) => broadcastPairs.map(([a, b]) => binary(op, a, b))),
  {
    name: 'MatMul x[2,3,4]·W[4,5]',
    op: 'MatMul',
    inputs: [{ shape: [2, 3, 4] }, { shape: [4, 5] }],
    build: (g, [a, b]) => g.matmul(a, b),
  },
  {
    name: 'MatMul x[2,2,3,4]·W[4,5]',
    op: 'MatMul',
    inputs: [{ shape: [2, 2, 3, 4] }, { shape: [4, 5] }],
    build: (g, [a, b]) => g.matmul(a, b),
  },
  {
    name: 'MatMul batched [2,2,3,4]·[2,2,4,5]',
    op: 'MatMul',
    inputs: [{ shape: [2, 2, 3, 4] }, { shape: [2, 2, 4, 5] }],
    build: (g, [a, b]) => g.matmul(a, b),
  },
  {
    name: 'MatMul broadcast batch [2,1,3,4]·[2,4,5]',
    op: 'MatMul',
    inputs: [{ shape: [2, 1, 3, 4] }, { shape: [2, 4, 5] }],
    build: (g, [a, b]) => g.matmul(a, b),
  },
  {
    name: 'MatMul [3,4]·[4,5]',
    op: 'MatMul',
    inputs: [{ shape: [3, 4] }, { shape: [4, 5] }],
    build: (g, [a, b]) => g.matmul(a, b),
  },
  {
    name: 'Gather with duplicate and unused rows',
    op: 'Gather',
    inputs: [{ shape: [5, 3] }],
    build: (g, [table]) => g.gather(table, g.constant(BigInt64Array.from([0n, 2n, 2n, 4n, 0n, 2n]), [2, 3])),
  },
  {
    name: 'LayerNormalization with scale and bias',
    op: 'LayerNormalization',
    inputs: [{ shape: [2, 3, 5], init: wide }, { shape: [5] }, { shape: [5] }],
    build: (g, [x, s, b]) => g.layerNorm(x, s, b),
  },
  {
    name: 'Split into 3 with the middle output unused',
    op: 'Split',
    inputs: [{ shape: [2, 3, 6] }],
    build: (g, [x]) => {
      const [a, , c] = g.split(x, 3);
      return g.mul(a, c);
    },
  },
  {
    name: 'Slice of axis 1, [1, 4) of 5, and a negative end on axis 2',
    op: 'Slice',
    inputs: [{ shape: [2, 5, 4] }],
    build: (g, [x]) =>
      g.node('Slice', [x, g.int64s([1, 0]), g.int64s([4, -1]), g.int64s([1, 2])], [[[2, 3, 3], 'float32']])[0],
  },
  {
    name: 'SiLU, x · Sigmoid(x) (one rule for the pair)',
    op: 'Mul',
    inputs: [{ shape: [3, 4], init: wide }],
    build: (g, [x]) => g.mul(g.node('Sigmoid', [x], [[x.shape, 'float32']])[0], x),
  },
  {
    name: 'Split into 3 using only the last output',
    op: 'Split',
    inputs: [{ shape: [2, 6] }],
    build: (g, [x]) => g.split(x, 3)[2],
  },
  {
    name: 'Transpose [2,3,4] perm [2,0,1]',
    op: 'Transpose',
    inputs: [{ shape: [2, 3, 4] }],
    build: (g, [x]) => g.transpose(x, [2, 0, 1]),
  },
  {
    name: 'Transpose [2,3,4,5] perm [0,2,1,3]',
    op: 'Transpose',
    inputs: [{ shape: [2, 3, 4, 5] }],
    build: (g, [x]) => g.transpose(x, [0, 2, 1, 3]),
  },
  {
    name: 'Reshape [2,3,4] → [4,-1]',
    op: 'Reshape',
    inputs: [{ shape: [2, 3, 4] }],
    build: (g, [x]) => g.reshape(x, [4, -1]),
  },
  {
    name: 'Reshape [2,3,4] → [0,0,2,2]',
    op: 'Reshape',
    inputs: [{ shape: [2, 3, 4] }],
    build: (g, [x]) => g.reshape(x, [0, 0, 2, 2]),
  },
  {
    name: 'Softmax last axis',
    op: 'Softmax',
    inputs: [{ shape: [2, 3, 5], init: wide }],
    build: (g, [x]) => g.softmax(x),
  },
  {
    name: 'Softmax axis 1',
    op: 'Softmax',
    inputs: [{ shape: [2, 3, 5], init: wide }],
    build: (g, [x]) => g.softmax(x, 1),
  },
  { name: 'Gelu (tanh)', op: 'Gelu', inputs: [{ shape: [3, 8], init: wide }], build: (g, [x]) => g.gelu(x) },
  {
    name: 'Gelu (exact)',
    op: 'Gelu',
    inputs: [{ shape: [3, 8], init: wide }],
    build: (g, [x]) => activate(g, x, 'gelu'),
  },
  {
    name: 'SoftmaxCrossEntropyLoss (mean) with repeated labels',
    op: 'SoftmaxCrossEntropyLoss',
    inputs: [{ shape: [5, 6], init: wide }],
    build: (g, [logits]) => g.crossEntropy(logits, g.constant(BigInt64Array.from([1n, 4n, 1n, 0n, 5n]), [5])).loss,
  },
  { name: 'Tanh', op: 'Tanh', inputs: [{ shape: [2, 3, 4], init: wide }], build: (g, [x]) => g.tanh(x) },
  { name: 'Exp', op: 'Exp', inputs: [{ shape: [2, 3, 4] }], build: (g, [x]) => g.exp(x) },
  { name: 'Neg', op: 'Neg', inputs: [{ shape: [2, 3, 4] }], build: (g, [x]) => g.neg(x) },
  { name: 'Identity', op: 'Identity', inputs: [{ shape: [2, 3, 4] }], build: (g, [x]) => g.identity(x) },
  {
    name: 'Sqrt',
    op: 'Sqrt',
    inputs: [{ shape: [2, 3, 4], init: (u) => 0.5 + 2 * u }],
    build: (g, [x]) => g.sqrt(x),
  },
  {
    name: 'Sigmoid',
    op: 'Sigmoid',
    inputs: [{ shape: [3, 8], init: wide }],
    build: (g, [x]) => unary(g, 'Sigmoid', x),
  },
  { name: 'Sin', op: 'Sin', inputs: [{ shape: [2, 6], init: wide }], build: (g, [x]) => unary(g, 'Sin', x) },
  { name: 'Cos', op: 'Cos', inputs: [{ shape: [2, 6], init: wide }], build: (g, [x]) => unary(g, 'Cos', x) },
  { name: 'Pow x²', op: 'Pow', inputs: [{ shape: [2, 3, 4] }], build: (g, [x]) => g.pow(x, g.scalar(2)) },
  {
    name: 'Pow x^1.5 of a positive base',
    op: 'Pow',
    inputs: [{ shape: [2, 5], init: (u) => 0.5 + 2 * u }],
    build: (g, [x]) => g.pow(x, g.scalar(1.5)),
  },
  {
    name: 'ReduceMean last axis, keepdims',
    op: 'ReduceMean',
    inputs: [{ shape: [2, 3, 5] }],
    build: (g, [x]) => g.node('ReduceMean', [x, g.int64s([-1])], [[[2, 3, 1], 'float32']])[0],
  },
  {
    name: 'ReduceMean axes [0, 2] without keepdims',
    op: 'ReduceMean',
    inputs: [{ shape: [2, 3, 4] }],
    build: (g, [x]) => g.node('ReduceMean', [x, g.int64s([0, 2])], [[[3], 'float32']], { keepdims: int(0) })[0],
  },
  {
    name: 'RMSNorm as the Llama family writes it (Pow, ReduceMean, Add, Sqrt, Div, Mul)',
    op: 'ReduceMean',
    inputs: [{ shape: [2, 3, 6], init: wide }, { shape: [6] }],
    build: (g, [x, w]) => {
      const meanSquare = g.node('ReduceMean', [g.pow(x, g.scalar(2)), g.int64s([-1])], [[[2, 3, 1], 'float32']])[0];
      return g.mul(g.div(x, g.sqrt(g.add(meanSquare, g.scalar(1e-5)))), w);
    },
  },
  {
    name: 'Expand [3,1] to [2,3,4]',
    op: 'Expand',
    inputs: [{ shape: [3, 1] }],
    build: (g, [x]) => g.node('Expand', [x, g.int64s([2, 3, 4])], [[[2, 3, 4], 'float32']])[0],
  },
  {
    name: 'Unsqueeze [2,3] at 1',
    op: 'Unsqueeze',
    inputs: [{ shape: [2, 3] }],
    build: (g, [x]) => g.mul(g.unsqueeze(x, [1]), g.constant([1, -2, 3, 0.5], [4, 1])),
  },
  {
    name: 'Squeeze [2,1,3]',
    op: 'Squeeze',
    inputs: [{ shape: [2, 1, 3] }],
    build: (g, [x]) => g.node('Squeeze', [x, g.int64s([1])], [[[2, 3], 'float32']])[0],
  },
  {
    name: 'Cast float to float',
    op: 'Cast',
    inputs: [{ shape: [2, 3] }],
    build: (g, [x]) => g.cast(x, 'float32'),
  },
  {
    name: 'Concat of three on the last axis (as rotate_half)',
    op: 'Concat',
    inputs: [{ shape: [2, 3, 2] }, { shape: [2, 3, 4] }, { shape: [2, 3, 1] }],
    build: (g, [a, b, c]) => g.concat([g.neg(b), a, g.mul(c, c)], -1),
  },
  {
    name: 'Concat on axis 1 with a constant',
    op: 'Concat',
    inputs: [{ shape: [2, 2, 3] }],
    build: (g, [a]) => g.concat([a, g.constant([1, 2, 3, 4, 5, 6], [2, 1, 3]), g.tanh(a)], 1),
  },
  {
    name: 'fan-out: x used by several consumers (gradient accumulation)',
    op: 'Tanh',
    inputs: [{ shape: [3, 4] }, { shape: [4] }],
    build: (g, [x, b]) => g.mul(g.add(x, b), g.tanh(g.mul(x, x))),
  },
];

function unary(g: Graph, op: string, x: Value): Value {
  return g.node(op, [x], [[x.shape, x.type]])[0];
}

/**
 * Appends a scalar loss: sum(y ⊙ R) for a fixed random R, built only from ops that have rules
 * (Reshape to [1, N], MatMul with R as [N, 1], Reshape to a scalar).
 */
function weightedSum(g: Graph, y: Value, seed: number): Value {
  const n = size(concreteShape(y));
  const r = uniform(seed);
  const weights = g.constant(
    Float32Array.from({ length: n }, () => 2 * r() - 1),
    [n, 1],
  );
  return g.reshape(g.matmul(g.reshape(y, [1, n]), weights), []);
}

const H = 1e-3;
const tolerance = (numeric: number) => 2e-3 + 2e-2 * Math.abs(numeric);

async function lossAt(session: Session, names: string[], values: Float32Array[], shapes: number[][]): Promise<number> {
  const feeds = Object.fromEntries(names.map((n, i) => [n, f32(values[i], shapes[i])]));
  return (await run(session, feeds)).loss[0];
}

async function check(c: Case, index: number): Promise<void> {
  const g = new Graph(`gradcheck_${index}`);
  const xs = c.inputs.map((input, i) => g.input(`x${i}`, input.shape));
  const y = c.build(g, xs);
  assert.ok(
    g.nodes.some((n) => n.op === c.op),
    `the graph of "${c.name}" contains no ${c.op}`,
  );
  const loss = weightedSum(g, y, 1000 + index);
  g.output(loss, 'loss');
  const forwardModel = g.toModel();

  const grads = backward(g, loss, xs);
  xs.forEach((x) => g.output(grads.get(x.name)!, `grad/${x.name}`));
  const gradientModel = g.toModel();

  const r = uniform(index + 1);
  const values = c.inputs.map((input) =>
    Float32Array.from({ length: size(input.shape) }, () => (input.init ?? ((u) => 3 * u - 1.5))(r())),
  );
  const names = xs.map((x) => x.name);
  const shapes = c.inputs.map((input) => input.shape);

  const [fwd, full] = await Promise.all([open(forwardModel), open(gradientModel)]);
  try {
    const analytic = await run(full, Object.fromEntries(names.map((n, i) => [n, f32(values[i], shapes[i])])));
    const base = await lossAt(fwd, names, values, shapes);
    assert.ok(
      Math.abs(base - analytic.loss[0]) <= 1e-6 * (1 + Math.abs(base)),
      'forward and gradient graphs disagree on the loss',
    );

    for (let i = 0; i < xs.length; i++) {
      const grad = analytic[`grad/${names[i]}`];
      assert.equal(grad.length, values[i].length, `gradient of ${names[i]} has the wrong size`);
      for (let j = 0; j < values[i].length; j++) {
        const original = values[i][j];
        values[i][j] = original + H;
        const plusX = values[i][j];
        const plus = await lossAt(fwd, names, values, shapes);
        values[i][j] = original - H;
        const minusX = values[i][j];
        const minus = await lossAt(fwd, names, values, shapes);
        values[i][j] = original;
        const numeric = (plus - minus) / (plusX - minusX); // the actual float32 step, in float64
        const a = grad[j];
        assert.ok(
          Math.abs(a - numeric) <= tolerance(numeric),
          `${c.name}: d loss / d ${names[i]}[${j}] analytic ${a} vs numeric ${numeric}`,
        );
      }
    }
  } finally {
    await Promise.all([fwd.release(), full.release()]);
  }
}

cases.forEach((c, i) => {
  test(`gradient of ${c.name}`, () => check(c, i));
});

test('every differentiable op has a finite-difference case', () => {
  const covered = new Set(cases.map((c) => c.op));
  const missing = differentiableOps.filter((op) => !covered.has(op));
  assert.deepEqual(missing, []);
});

test('a parameter that does not reach the loss gets a zero gradient', async () => {
  const g = new Graph('unused');
  const x = g.input('x', [2, 3]);
  const unused = g.input('unused', [4]);
  const loss = weightedSum(g, g.tanh(x), 7);
  const grads = backward(g, loss, [x, unused]);
  g.output(grads.get('unused')!, 'grad');
  const session = await open(g.toModel());
  const out = await run(session, { x: f32([1, 2, 3, 4, 5, 6], [2, 3]), unused: f32([1, 1, 1, 1], [4]) });
  assert.deepEqual(Array.from(out.grad), [0, 0, 0, 0]);
  await session.release();
});

test('backward refuses an op without a gradient rule', () => {
  const g = new Graph('norule');
  const x = g.input('x', [2, 3]);
  const loss = g.reshape(g.reduceSum(x, [0, 1], true), []);
  assert.throws(() => backward(g, loss, [x]), /no gradient rule for ReduceSum/);
});

// Finite differences in float32 cannot tell GELU's two forms apart (their derivatives differ by at most 9e-4), so
// each form's gradient is also checked against its closed-form derivative in float64.
const geluDerivatives = {
  tanh: (x: number) => {
    const k = Math.sqrt(2 / Math.PI);
    const sigma = 1 / (1 + Math.exp(-2 * k * (x + 0.044715 * x ** 3)));
    return sigma * (1 + x * (1 - sigma) * 2 * k * (1 + 3 * 0.044715 * x * x));
  },
  exact: (x: number) => 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp((-x * x) / 2)) / Math.sqrt(2 * Math.PI),
};

/** erf by its Maclaurin series: within 1e-10 of the true value for |x| ≤ 4. */
function erf(x: number): number {
  let term = x;
  let sum = x;
  for (let n = 1; n < 100; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

for (const [form, derivative] of Object.entries(geluDerivatives)) {
  test(`gradient of Gelu (${form}) matches its closed form`, async () => {
    const g = new Graph(`gelu_${form}`);
    const x = g.input('x', [64]);
    const y = activate(g, x, form === 'tanh' ? 'gelu_new' : 'gelu');
    const loss = g.reshape(g.matmul(g.reshape(y, [1, 64]), g.constant(new Float32Array(64).fill(1), [64, 1])), []);
    g.output(backward(g, loss, [x]).get('x')!, 'grad');
    const values = Float32Array.from({ length: 64 }, (_, i) => -4 + (8 * i) / 63);
    const session = await open(g.toModel());
    try {
      const { grad } = await run(session, { x: f32(values, [64]) });
      values.forEach((v, i) =>
        assert.ok(Math.abs(grad[i] - derivative(v)) < 2e-6, `x = ${v}: ${grad[i]} vs ${derivative(v)}`),
      );
    } finally {
      await session.release();
    }
  });
}
