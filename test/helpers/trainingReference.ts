// The PyTorch side of the fine-tuning graph tests: runs scripts/makeTrainingReference.py (Debian's /usr/bin/python3)
// for a tiny random model of a family, reads its reference (logits, loss, gradients, one clipped AdamW step, for full
// training and LoRA), runs the engine's graphs on the same numbers and compares them within float32 round-off.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Architecture } from '../../server/src/engine/architecture';
import type { LoraSettings } from '../../server/src/engine/lora';
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
import { f32, i64, maxAbs, maxAbsDiff, open, run } from './engineHarness';
import { PYTHON } from './familyModels';

const SCRIPT = path.resolve(__dirname, '..', '..', 'scripts', 'makeTrainingReference.py');

export interface Entry {
  name: string;
  shape: number[];
  data: number[];
}

export interface Method {
  logits: { shape: number[]; data: number[] };
  loss: number;
  grads: Entry[];
  grad_norm: number;
  adamw: { lr: number; beta1: number; beta2: number; eps: number; weight_decay: number; max_grad_norm: number };
  updated: Entry[];
}

export interface Reference {
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
export const LOGITS_TOLERANCE = 1e-4;
export const LOSS_TOLERANCE = 1e-5;
export const GRADIENT_TOLERANCE = 1e-4;
export const GRAD_NORM_TOLERANCE = 1e-5; // relative
const STEP_TOLERANCE = 1e-6; // absolute, on parameters after one step of lr 1e-3

export const weightsOf = (list: Entry[]) => new Map(list.map((e) => [e.name, Float32Array.from(e.data)]));

export interface Case {
  reference: Reference;
  architecture: Architecture;
  full: TrainingSpec;
  lora: TrainingSpec & { lora: LoraSettings };
  shape: { batch: number; time: number };
  base: Map<string, Float32Array>;
  batchFeeds: Feeds;
}

/** The reference of `family` with LoRA on `targets` (PEFT's module names), made in dir/family. */
export function makeCase(family: 'llama' | 'qwen2' | 'gpt2', targets: string[], dir: string): Case {
  const out = path.join(dir, family);
  execFileSync(PYTHON, [SCRIPT, '--family', family, '--out', out, '--targets', targets.join(',')], {
    env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE', PYTHONDONTWRITEBYTECODE: '1' },
  });
  const reference = JSON.parse(fs.readFileSync(path.join(out, 'trainingReference.json'), 'utf8')) as Reference;
  const architecture = readArchitecture(out);
  assert.equal(architecture.family, family === 'gpt2' ? 'gpt2' : 'llama');
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
    architecture,
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

export function adamwOf(m: Method): AdamWSettings {
  const a = m.adamw;
  return { beta1: a.beta1, beta2: a.beta2, epsilon: a.eps, weightDecay: a.weight_decay, maxGradNorm: a.max_grad_norm };
}

/** The frozen base weights as the LoRA graphs' inputs. */
export function frozenFeeds(c: Case, base = c.base): Feeds {
  const feeds: Feeds = {};
  for (const [name, shape] of frozenInputShapes(c.lora)) feeds[name] = f32(base.get(name)!, shape);
  return feeds;
}

export function flatFeed(flat: Float32Array): Feeds {
  return { [names.parameters]: f32(flat, [flat.length]) };
}

export function compare(
  label: string,
  reference: Entry[],
  actual: (name: string) => Float32Array | undefined,
  tol: number,
) {
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
export function compareStep(
  label: string,
  m: Method,
  before: Map<string, Float32Array>,
  after: Map<string, Float32Array>,
) {
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

/** The evaluation graph's loss and logits on the reference batch. */
export async function evaluate(spec: TrainingSpec, c: Case, feeds: Feeds) {
  const session = await open(buildEvaluation(spec, c.shape, { logits: true }));
  try {
    return await run(session, { ...c.batchFeeds, ...feeds });
  } finally {
    await session.release();
  }
}

/** One training step from `flat` with zero moments, at the reference's learning rate. */
export async function oneStep(spec: TrainingSpec, c: Case, m: Method, flat: Float32Array, extra: Feeds) {
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

/** LoRA's logits and loss, then every adapter gradient, against the reference; returns the reference's gradients. */
export async function checkLoraGradients(c: Case): Promise<Entry[]> {
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
  return m.grads;
}

/**
 * One clipped AdamW step of the adapter against the reference: the step's state is the adapter's alone (no output
 * for any base weight, the flat vector is the adapter), and the frozen base feeds come out unchanged.
 */
export async function checkLoraStep(c: Case): Promise<void> {
  const m = c.reference.lora;
  assert.ok(m.base_unchanged, 'PyTorch changed the frozen base');
  const adapter = weightsOf(m.adapter);
  const flat = packParameters(c.lora, adapter);
  const frozen = frozenFeeds(c);
  const copies = new Map(Object.entries(frozen).map(([n, t]) => [n, Float32Array.from(t.data as Float32Array)]));
  const model = buildTrainingStep(c.lora, c.shape, adamwOf(m));
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
}
