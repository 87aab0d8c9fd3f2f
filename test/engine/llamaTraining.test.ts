// Checks the Llama-family training graphs against PyTorch (scripts/makeTrainingReference.py, run here with Debian's
// /usr/bin/python3 into a temp dir): on tiny random llama and qwen2 models, logits, loss, every gradient and one
// clipped AdamW step, for full fine-tuning and for LoRA (whose base must stay frozen), plus the LoRA merge, the
// reproducible dropout and the chunked causal attention of long windows.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Architecture } from '../../server/src/engine/architecture';
import type { LlamaConfig } from '../../server/src/engine/llama';
import {
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
import {
  type TrainingSpec,
  buildGradients,
  frozenInputShapes,
  names,
  packParameters,
  unpackParameters,
} from '../../server/src/engine/trainingGraph';
import type { Feeds } from '../../server/src/runtime/onnxSession';
import { checkPython } from '../helpers/familyModels';
import { f32, i64, maxAbs, maxAbsDiff, open, run, size, uniform } from '../helpers/engineHarness';
import {
  type Case,
  GRAD_NORM_TOLERANCE,
  GRADIENT_TOLERANCE,
  LOGITS_TOLERANCE,
  LOSS_TOLERANCE,
  checkLoraGradients,
  checkLoraStep,
  compare,
  compareStep,
  evaluate,
  flatFeed,
  frozenFeeds,
  makeCase,
  oneStep,
  weightsOf,
} from '../helpers/trainingReference';

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
        loraParameterShapes(c.architecture, c.lora.lora).map(([n, s]) => `${n} [${s}]`),
        c.reference.lora.adapter.map((e) => `${e.name} [${e.shape}]`),
      );
    });

    test('LoRA: logits, loss and every adapter gradient', async () => {
      await checkLoraGradients(c);
    });

    test('LoRA: one clipped AdamW step moves only the adapter', () => checkLoraStep(c));

    test('LoRA: merged weights give the adapted model’s logits', async () => {
      const m = c.reference.lora;
      const merged = mergeLora(c.architecture, c.lora.lora, c.base, weightsOf(m.adapter));
      const changed = loraModules(c.architecture, c.lora.lora).map((l) => `${l.module}.weight`);
      for (const n of changed) assert.notDeepEqual(merged.get(n), c.base.get(n), `${n} was not merged`);
      const out = await evaluate(c.full, c, flatFeed(packParameters(c.full, merged)));
      const { diff, index } = maxAbsDiff(out[names.logits], m.logits.data);
      assert.ok(diff <= LOGITS_TOLERANCE, `merged logits[${index}] off by ${diff}`);
    });

    test('LoRA: PEFT initialization leaves the base model unchanged', async () => {
      const adapter = initialLoraParameters(c.architecture, c.lora.lora, 5);
      for (const { module, inFeatures } of loraModules(c.architecture, c.lora.lora)) {
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
      loraParameterShapes(architecture, spec.lora!).map(([n, s]) => [
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
