// Checks the Llama-family training graphs against PyTorch (scripts/makeTrainingReference.py, run here with Debian's
// /usr/bin/python3 into a temp dir): on tiny random llama and qwen2 models, logits, loss, every gradient and one
// clipped AdamW step, for full fine-tuning and for LoRA (whose base must stay frozen), plus the LoRA merge, the
// reproducible dropout and the chunked causal attention of long windows.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Architecture } from '../../server/src/engine/architecture';
import type { LlamaConfig } from '../../server/src/engine/llama';
import {
  type LoraSettings,
  initialLoraParameters,
  loraModules,
  loraParameterShapes,
  mergeLora,
  seededDropout,
} from '../../server/src/engine/lora';
import { backward } from '../../server/src/engine/autodiff';
import { CAUSAL_CHUNK, attend } from '../../server/src/engine/causalAttention';
import { Graph } from '../../server/src/engine/graph';
import { causalBias } from '../../server/src/engine/model';
import { type AdamWSettings, stepScalarValues } from '../../server/src/engine/optimizer';
import {
  type TrainingSpec,
  buildEvaluation,
  buildGradients,
  buildTrainingStep,
  frozenInputShapes,
  names,
  packParameters,
  unpackParameters,
} from '../../server/src/engine/trainingGraph';
import { readArchitecture } from '../../server/src/modelFolder/config';
import type { Feeds } from '../../server/src/runtime/onnxSession';
import { checkPython, PYTHON } from '../helpers/familyModels';
import { f32, i64, maxAbs, maxAbsDiff, open, run, size, uniform } from '../helpers/engineHarness';

const SCRIPT = path.resolve(__dirname, '..', '..', 'scripts', 'makeTrainingReference.py');

interface Entry {
  name: string;
  shape: number[];
  data: number[];
}

interface Method {
  logits: { shape: number[]; data: number[] };
  loss: number;
  grads: Entry[];
  grad_norm: number;
  adamw: { lr: number; beta1: number; beta2: number; eps: number; weight_decay: number; max_grad_norm: number };
  updated: Entry[];
}

interface Reference {
  batch: number;
  seq: number;
  input_ids: number[][];
  targets: number[][];
  params: Entry[];
  full: Method;
  lora: Method & {
    settings: { r: number; lora_alpha: number; lora_dropout: number; target_modules: string[] };
    adapter: Entry[];
    base_unchanged: boolean;
  };
}

// Tolerances: float32 engine vs float32 PyTorch on the same numbers; differences are round-off of different
// summation orders. Logits and loss absolute; gradients relative to each tensor's largest |g|.
const LOGITS_TOLERANCE = 1e-4;
const LOSS_TOLERANCE = 1e-5;
const GRADIENT_TOLERANCE = 1e-4;
const GRAD_NORM_TOLERANCE = 1e-5; // relative
const STEP_TOLERANCE = 1e-6; // absolute, on parameters after one step of lr 1e-3

const weightsOf = (list: Entry[]) => new Map(list.map((e) => [e.name, Float32Array.from(e.data)]));

interface Case {
  reference: Reference;
  architecture: Architecture & { family: 'llama' };
  full: TrainingSpec;
  lora: TrainingSpec & { lora: LoraSettings };
  shape: { batch: number; time: number };
  base: Map<string, Float32Array>;
  batchFeeds: Feeds;
}

function makeCase(family: 'llama' | 'qwen2', targets: string[], dir: string): Case {
  const out = path.join(dir, family);
  execFileSync(PYTHON, [SCRIPT, '--family', family, '--out', out, '--targets', targets.join(',')], {
    env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE', PYTHONDONTWRITEBYTECODE: '1' },
  });
  const reference = JSON.parse(fs.readFileSync(path.join(out, 'trainingReference.json'), 'utf8')) as Reference;
  const architecture = readArchitecture(out);
  assert.equal(architecture.family, 'llama');
  const s = reference.lora.settings;
  const lora: LoraSettings = {
    rank: s.r,
    alpha: s.lora_alpha,
    dropout: s.lora_dropout,
    targetModules: s.target_modules,
  };
  const shape = { batch: reference.batch, time: reference.seq };
  return {
    reference,
    architecture: architecture as Case['architecture'],
    full: { architecture },
    lora: { architecture, lora },
    shape,
    base: weightsOf(reference.params),
    batchFeeds: {
      [names.inputIds]: i64(reference.input_ids.flat(), [shape.batch, shape.time]),
      [names.targets]: i64(reference.targets.flat(), [shape.batch, shape.time]),
    },
  };
}

function adamwOf(m: Method): AdamWSettings {
  const a = m.adamw;
  return { beta1: a.beta1, beta2: a.beta2, epsilon: a.eps, weightDecay: a.weight_decay, maxGradNorm: a.max_grad_norm };
}

/** The frozen base weights as the LoRA graphs' inputs. */
function frozenFeeds(c: Case, base = c.base): Feeds {
  const feeds: Feeds = {};
  for (const [name, shape] of frozenInputShapes(c.lora)) feeds[name] = f32(base.get(name)!, shape);
  return feeds;
}

function flatFeed(flat: Float32Array): Feeds {
  return { [names.parameters]: f32(flat, [flat.length]) };
}

function compare(label: string, reference: Entry[], actual: (name: string) => Float32Array | undefined, tol: number) {
  const failures: string[] = [];
  for (const e of reference) {
    const a = actual(e.name);
    if (!a) {
      failures.push(`${e.name}: missing`);
      continue;
    }
    const limit = tol * Math.max(maxAbs(e.data), 1e-12);
    const { diff, index } = maxAbsDiff(a, e.data);
    if (diff > limit) failures.push(`${e.name}[${index}]: engine ${a[index]} vs ${e.data[index]} (limit ${limit})`);
  }
  assert.deepEqual(failures, [], `${label} disagree with PyTorch`);
}

/** Parameters after one step: within STEP_TOLERANCE, except where ĝ is zero up to round-off (see reference.test). */
function compareStep(label: string, m: Method, before: Map<string, Float32Array>, after: Map<string, Float32Array>) {
  const clip = Math.min(1, m.adamw.max_grad_norm / (m.grad_norm + 1e-6));
  const grads = new Map(m.grads.map((e) => [e.name, e]));
  const failures: string[] = [];
  let moved = 0;
  for (const e of m.updated) {
    const a = after.get(e.name)!;
    const g = grads.get(e.name)!.data;
    const delta = 1e-5 * clip * maxAbs(g);
    for (let i = 0; i < a.length; i++) {
      const sensitivity = Math.min(2, (m.adamw.eps * delta) / (Math.abs(clip * g[i]) + m.adamw.eps) ** 2);
      const limit = STEP_TOLERANCE + m.adamw.lr * sensitivity;
      if (Math.abs(a[i] - e.data[i]) > limit) {
        failures.push(`${e.name}[${i}]: engine ${a[i]} vs ${e.data[i]}`);
        break;
      }
      if (a[i] !== before.get(e.name)![i]) moved++;
    }
  }
  assert.deepEqual(failures, [], `${label} disagree with PyTorch`);
  assert.ok(moved > 0, `${label}: nothing moved`);
}

async function evaluate(spec: TrainingSpec, c: Case, feeds: Feeds) {
  const session = await open(buildEvaluation(spec, c.shape, { logits: true }));
  try {
    return await run(session, { ...c.batchFeeds, ...feeds });
  } finally {
    await session.release();
  }
}

async function oneStep(spec: TrainingSpec, c: Case, m: Method, flat: Float32Array, extra: Feeds) {
  const adamw = adamwOf(m);
  const session = await open(buildTrainingStep(spec, c.shape, adamw));
  try {
    const s = stepScalarValues(adamw, 1, m.adamw.lr);
    return await run(session, {
      ...c.batchFeeds,
      ...extra,
      ...flatFeed(flat),
      [names.moments]: f32(new Float32Array(flat.length), [flat.length]),
      [names.variances]: f32(new Float32Array(flat.length), [flat.length]),
      [names.learningRate]: f32([s.learningRate], []),
      [names.momentScale]: f32([s.momentScale], []),
      [names.varianceScale]: f32([s.varianceScale], []),
    });
  } finally {
    await session.release();
  }
}

const families: ['llama' | 'qwen2', string[]][] = [
  ['llama', ['q_proj', 'k_proj', 'v_proj', 'o_proj']],
  ['qwen2', ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']],
];

let workDir = '';
before(() => {
  checkPython();
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-training-reference-'));
});
after(() => fs.rmSync(workDir, { recursive: true, force: true }));

for (const [family, targets] of families) {
  describe(`${family} training graphs against PyTorch`, () => {
    let c: Case;
    before(() => {
      c = makeCase(family, targets, workDir);
    });

    test('full fine-tuning: logits and loss', async () => {
      const out = await evaluate(c.full, c, flatFeed(packParameters(c.full, c.base)));
      const { diff, index } = maxAbsDiff(out[names.logits], c.reference.full.logits.data);
      assert.ok(diff <= LOGITS_TOLERANCE, `logits[${index}] off by ${diff}`);
      assert.ok(Math.abs(out[names.loss][0] - c.reference.full.loss) <= LOSS_TOLERANCE, `loss ${out[names.loss][0]}`);
    });

    test('full fine-tuning: every gradient', async () => {
      const session = await open(buildGradients(c.full, c.shape));
      const out = await run(session, { ...c.batchFeeds, ...flatFeed(packParameters(c.full, c.base)) });
      await session.release();
      assert.equal(c.reference.full.grads.length, c.base.size);
      compare('gradients', c.reference.full.grads, (n) => out[names.gradient(n)], GRADIENT_TOLERANCE);
    });

    test('full fine-tuning: one clipped AdamW step', async () => {
      const m = c.reference.full;
      const flat = packParameters(c.full, c.base);
      const out = await oneStep(c.full, c, m, flat, {});
      assert.ok(m.grad_norm > m.adamw.max_grad_norm, 'the reference should exercise clipping');
      assert.ok(Math.abs(out[names.gradNorm][0] - m.grad_norm) <= GRAD_NORM_TOLERANCE * m.grad_norm, 'grad norm');
      compareStep('parameters after one step', m, c.base, unpackParameters(c.full, out[names.next(names.parameters)]));
    });

    test('LoRA: the adapter in PEFT names and shapes', () => {
      assert.deepEqual(
        loraParameterShapes(c.architecture.config, c.lora.lora).map(([n, s]) => `${n} [${s}]`),
        c.reference.lora.adapter.map((e) => `${e.name} [${e.shape}]`),
      );
    });

    test('LoRA: logits, loss and every adapter gradient', async () => {
      const m = c.reference.lora;
      const flat = packParameters(c.lora, weightsOf(m.adapter));
      const evaluation = await evaluate(c.lora, c, { ...frozenFeeds(c), ...flatFeed(flat) });
      const { diff, index } = maxAbsDiff(evaluation[names.logits], m.logits.data);
      assert.ok(diff <= LOGITS_TOLERANCE, `logits[${index}] off by ${diff}`);
      assert.ok(Math.abs(evaluation[names.loss][0] - m.loss) <= LOSS_TOLERANCE, `loss ${evaluation[names.loss][0]}`);
      const session = await open(buildGradients(c.lora, c.shape));
      const out = await run(session, { ...c.batchFeeds, ...frozenFeeds(c), ...flatFeed(flat) });
      await session.release();
      compare('adapter gradients', m.grads, (n) => out[names.gradient(n)], GRADIENT_TOLERANCE);
    });

    test('LoRA: one clipped AdamW step moves only the adapter', async () => {
      const m = c.reference.lora;
      assert.ok(m.base_unchanged, 'PyTorch changed the frozen base');
      const adapter = weightsOf(m.adapter);
      const flat = packParameters(c.lora, adapter);
      const frozen = frozenFeeds(c);
      const copies = new Map(Object.entries(frozen).map(([n, t]) => [n, Float32Array.from(t.data as Float32Array)]));
      const model = buildTrainingStep(c.lora, c.shape, adamwOf(m));
      // The step's state is the adapter's alone: no output for any base weight, and the flat vector is the adapter.
      const baseNames = new Set(frozenInputShapes(c.lora).map(([n]) => n));
      assert.ok(model.outputs.every((o) => !baseNames.has(o.name.replace(/^next\//, ''))));
      assert.equal(
        flat.length,
        [...adapter.values()].reduce((n, a) => n + a.length, 0),
      );
      const out = await oneStep(c.lora, c, m, flat, frozen);
      assert.ok(m.grad_norm > m.adamw.max_grad_norm, 'the reference should exercise clipping');
      assert.ok(Math.abs(out[names.gradNorm][0] - m.grad_norm) <= GRAD_NORM_TOLERANCE * m.grad_norm, 'grad norm');
      compareStep('adapter after one step', m, adapter, unpackParameters(c.lora, out[names.next(names.parameters)]));
      for (const [n, t] of Object.entries(frozen)) assert.deepEqual(t.data, copies.get(n), `${n} changed`);
    });

    test('LoRA: merged weights give the adapted model’s logits', async () => {
      const m = c.reference.lora;
      const merged = mergeLora(c.architecture.config, c.lora.lora, c.base, weightsOf(m.adapter));
      const changed = loraModules(c.architecture.config, c.lora.lora).map((l) => `${l.module}.weight`);
      for (const n of changed) assert.notDeepEqual(merged.get(n), c.base.get(n), `${n} was not merged`);
      const out = await evaluate(c.full, c, flatFeed(packParameters(c.full, merged)));
      const { diff, index } = maxAbsDiff(out[names.logits], m.logits.data);
      assert.ok(diff <= LOGITS_TOLERANCE, `merged logits[${index}] off by ${diff}`);
    });

    test('LoRA: PEFT initialization leaves the base model unchanged', async () => {
      const config: LlamaConfig = c.architecture.config;
      const adapter = initialLoraParameters(config, c.lora.lora, 5);
      for (const { module, inFeatures } of loraModules(config, c.lora.lora)) {
        const a = adapter.get(`base_model.model.${module}.lora_A.weight`)!;
        assert.ok(maxAbs(a) <= 1 / Math.sqrt(inFeatures) && maxAbs(a) > 0.5 / Math.sqrt(inFeatures));
        assert.equal(maxAbs(adapter.get(`base_model.model.${module}.lora_B.weight`)!), 0);
      }
      const lora = await evaluate(c.lora, c, { ...frozenFeeds(c), ...flatFeed(packParameters(c.lora, adapter)) });
      assert.ok(Math.abs(lora[names.loss][0] - c.reference.full.loss) <= LOSS_TOLERANCE);
    });
  });
}

test('LoRA dropout: the same seed draws the same mask, another seed another, at the set rate', async () => {
  const config: LlamaConfig = {
    vocabSize: 32,
    contextLength: 16,
    layers: 1,
    heads: 2,
    kvHeads: 1,
    headDim: 8,
    embedding: 16,
    intermediate: 24,
    normEpsilon: 1e-5,
    ropeTheta: 10000,
    qkvBias: false,
    tiedHead: true,
  };
  const architecture: Architecture = { family: 'llama', config };
  const rate = 0.25;
  const spec: TrainingSpec = { architecture, lora: { rank: 2, alpha: 4, dropout: rate, targetModules: ['q_proj'] } };
  const shape = { batch: 2, time: 16 };
  const random = (n: number, seed: number) => {
    let s = seed;
    return Float32Array.from({ length: n }, () => ((s = (s * 16807) % 2147483647) / 2147483647 - 0.5) * 0.5);
  };
  const feeds: Feeds = {
    [names.inputIds]: i64(
      Array.from({ length: 32 }, (_, i) => (i * 7) % 32),
      [2, 16],
    ),
    [names.targets]: i64(
      Array.from({ length: 32 }, (_, i) => (i * 5) % 32),
      [2, 16],
    ),
  };
  for (const [n, s] of frozenInputShapes(spec))
    feeds[n] = f32(
      random(
        s.reduce((a, b) => a * b, 1),
        n.length,
      ),
      s,
    );
  const adapter = packParameters(
    spec,
    new Map(
      loraParameterShapes(config, spec.lora!).map(([n, s]) => [
        n,
        random(
          s.reduce((a, b) => a * b, 1),
          7,
        ),
      ]),
    ),
  );
  const session = await open(buildGradients(spec, shape));
  const gradient = async (seed: number) => {
    const out = await run(session, { ...feeds, ...flatFeed(adapter), [names.dropoutSeed]: i64([seed], []) });
    return out[names.gradient('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight')];
  };
  const [first, again, other] = [await gradient(1), await gradient(1), await gradient(2)];
  await session.release();
  assert.deepEqual(first, again);
  assert.notDeepEqual(first, other);
});

test('seeded dropout keeps 1 − rate of the elements, scaled by 1/(1 − rate), reproducibly', async () => {
  const rate = 0.25;
  const g = new Graph('dropout');
  const seed = g.input(names.dropoutSeed, [], 'int64');
  const ones = g.constant(new Float32Array(64 * 64).fill(1), [64, 64]);
  g.output(seededDropout(g, ones, rate, seed, 0), 'stream0');
  g.output(seededDropout(g, ones, rate, seed, 1), 'stream1');
  const session = await open(g.toModel());
  const draw = (s: number) => run(session, { [names.dropoutSeed]: i64([s], []) });
  const [first, again, other] = [await draw(11), await draw(11), await draw(12)];
  await session.release();
  assert.deepEqual(first.stream0, again.stream0);
  assert.notDeepEqual(first.stream0, other.stream0);
  assert.notDeepEqual(first.stream0, first.stream1);
  for (const mask of [first.stream0, first.stream1, other.stream0]) {
    const kept = mask.filter((v) => v !== 0);
    assert.ok(kept.every((v) => Math.abs(v - 1 / (1 - rate)) < 1e-6));
    // 4096 draws: the kept fraction's standard deviation is 0.007, so ±0.03 fails only for a broken mask.
    assert.ok(Math.abs(kept.length / mask.length - (1 - rate)) < 0.03, `kept ${kept.length / mask.length}`);
  }
});

test('causal attention in query chunks equals the full attention, values and gradients', async () => {
  // 300 positions: two whole chunks of CAUSAL_CHUNK and a partial one; GQA-shaped [batch, kv, group, time, d].
  const time = 300;
  assert.ok(time > 2 * CAUSAL_CHUNK && time % CAUSAL_CHUNK !== 0);
  const shape = [1, 2, 2, time, 8];
  const kvShape = [1, 2, 1, time, 8];
  const random = uniform(5);
  const values = (dims: number[]) => Float32Array.from({ length: size(dims) }, () => 2 * random() - 1);
  const feeds = { q: f32(values(shape), shape), k: f32(values(kvShape), kvShape), v: f32(values(kvShape), kvShape) };
  // A loss weighting every output differently, so each gradient entry is checked.
  const lossWeights = values(shape);
  const outputs: Record<string, Float32Array>[] = [];
  for (const chunked of [false, true]) {
    const g = new Graph('attention');
    const [q, k, v] = [g.input('q', shape), g.input('k', kvShape), g.input('v', kvShape)];
    const bias = g.constant(causalBias(time), [1, 1, 1, time, time]);
    const y = attend(g, q, k, v, bias, chunked);
    assert.equal(
      g.nodes.some((n) => n.op === 'Slice'),
      chunked,
      'the chunked form slices, the full one does not',
    );
    const weights = g.constant(lossWeights, shape);
    const loss = g.node('ReduceMean', [g.mul(y, weights)], [[[], 'float32']], {
      keepdims: { kind: 'int', value: 0 },
    })[0];
    const grads = backward(g, loss, [q, k, v]);
    g.output(y, 'y');
    for (const name of ['q', 'k', 'v']) g.output(grads.get(name)!, `d${name}`);
    const session = await open(g.toModel());
    outputs.push(await run(session, feeds));
    await session.release();
  }
  for (const name of ['y', 'dq', 'dk', 'dv']) {
    const { diff } = maxAbsDiff(outputs[0][name], outputs[1][name]);
    assert.ok(diff <= 1e-4 * maxAbs(outputs[0][name]), `${name} differs by ${diff}`);
  }
});
