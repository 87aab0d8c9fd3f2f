// Checks LoRA on GPT-2 against PyTorch (scripts/makeTrainingReference.py --family gpt2: GPT2LMHeadModel in plain
// torch with Conv1D weights [in, out], PEFT's LoRA beside each target layer): the adapter's PEFT names and shapes, the
// loss, logits and every adapter gradient, one clipped AdamW step that leaves the base frozen, the fan_in_fan_out
// merge, PEFT's initialization, and dropout masks that differ each time a layer runs (once per chunk of a batch).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Graph, type Value } from '../../server/src/engine/graph';
import {
  type LoraSettings,
  attachLora,
  initialLoraParameters,
  loraModules,
  loraNames,
  loraParameterShapes,
  loraScale,
  mergeLora,
} from '../../server/src/engine/lora';
import type { AdaptedWeight } from '../../server/src/engine/linear';
import { type GptConfig, parameterShapes } from '../../server/src/engine/model';
import { frozenInputShapes, names, packParameters } from '../../server/src/engine/trainingGraph';
import { checkPython } from '../helpers/familyModels';
import { i64, maxAbs, maxAbsDiff, open, run } from '../helpers/engineHarness';
import {
  type Case,
  LOGITS_TOLERANCE,
  LOSS_TOLERANCE,
  checkLoraGradients,
  checkLoraStep,
  evaluate,
  flatFeed,
  frozenFeeds,
  makeCase,
  weightsOf,
} from '../helpers/trainingReference';

let workDir = '';
let c: Case;
before(() => {
  checkPython();
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-gpt2-lora-'));
  c = makeCase('gpt2', ['c_attn', 'c_proj', 'c_fc'], workDir);
});
after(() => fs.rmSync(workDir, { recursive: true, force: true }));

describe('GPT-2 LoRA graphs against PyTorch', () => {
  test('the adapter in PEFT names and shapes: lora_A [r, in], lora_B [out, r] on Conv1D weights [in, out]', () => {
    const shapes = loraParameterShapes(c.architecture, c.lora.lora);
    assert.deepEqual(
      shapes.map(([n, s]) => `${n} [${s}]`),
      c.reference.lora.adapter.map((e) => `${e.name} [${e.shape}]`),
    );
    // c_proj names the attention's output and the MLP's, as PEFT's suffix match has it.
    const layer0 = shapes.filter(([n]) => n.includes('.h.0.') && n.endsWith('lora_B.weight'));
    assert.deepEqual(
      layer0.map(([n, s]) => `${n.replace('base_model.model.transformer.h.0.', '')} [${s}]`),
      ['attn.c_attn.lora_B.weight [96,4]', 'attn.c_proj.lora_B.weight [32,4]'].concat([
        'mlp.c_fc.lora_B.weight [128,4]',
        'mlp.c_proj.lora_B.weight [32,4]',
      ]),
    );
  });

  test('the plain-torch GPT-2 is the engine’s: full-training logits and loss agree', async () => {
    const out = await evaluate(c.full, c, flatFeed(packParameters(c.full, c.base)));
    const { diff, index } = maxAbsDiff(out[names.logits], c.reference.full.logits.data);
    assert.ok(diff <= LOGITS_TOLERANCE, `logits[${index}] off by ${diff}`);
    assert.ok(Math.abs(out[names.loss][0] - c.reference.full.loss) <= LOSS_TOLERANCE, `loss ${out[names.loss][0]}`);
  });

  test('LoRA: logits, loss and every adapter gradient', async () => {
    const grads = await checkLoraGradients(c);
    assert.equal(grads.length, 2 * 4 * 2, 'A and B of c_attn, attn.c_proj, c_fc and mlp.c_proj in 2 layers');
  });

  test('LoRA: one clipped AdamW step moves only the adapter; the base stays frozen', async () => {
    assert.deepEqual(
      frozenInputShapes(c.lora).map(([n]) => n),
      parameterShapes(c.architecture.config as GptConfig).map(([n]) => n),
    );
    await checkLoraStep(c);
  });

  test('LoRA: the merge adds (alpha/r)·(B·A)ᵀ to the [in, out] weights and gives the adapted logits', async () => {
    const m = c.reference.lora;
    const adapter = weightsOf(m.adapter);
    const merged = mergeLora(c.architecture, c.lora.lora, c.base, adapter);
    const scale = loraScale(c.lora.lora);
    const rank = c.lora.lora.rank;
    for (const { module, inFeatures, outFeatures } of loraModules(c.architecture, c.lora.lora)) {
      const a = adapter.get(loraNames.a(module))!;
      const b = adapter.get(loraNames.b(module))!;
      const before = c.base.get(`${module}.weight`)!;
      const after = merged.get(`${module}.weight`)!;
      assert.equal(after.length, inFeatures * outFeatures);
      // Element [i, o] of the weight, for a few (i, o) spread over it.
      for (const [i, o] of [
        [0, 0],
        [inFeatures - 1, 1],
        [3, outFeatures - 1],
      ]) {
        let update = 0;
        for (let k = 0; k < rank; k++) update += b[o * rank + k] * a[k * inFeatures + i];
        const got = after[i * outFeatures + o] - before[i * outFeatures + o];
        assert.ok(Math.abs(got - scale * update) <= 1e-6, `${module}.weight[${i}, ${o}]: ${got} vs ${scale * update}`);
      }
    }
    const out = await evaluate(c.full, c, flatFeed(packParameters(c.full, merged)));
    const { diff, index } = maxAbsDiff(out[names.logits], m.logits.data);
    assert.ok(diff <= LOGITS_TOLERANCE, `merged logits[${index}] off by ${diff}`);
  });

  test('LoRA: PEFT initialization leaves the base model unchanged', async () => {
    const adapter = initialLoraParameters(c.architecture, c.lora.lora, 5);
    for (const { module, inFeatures } of loraModules(c.architecture, c.lora.lora)) {
      const a = adapter.get(loraNames.a(module))!;
      assert.ok(maxAbs(a) <= 1 / Math.sqrt(inFeatures) && maxAbs(a) > 0.5 / Math.sqrt(inFeatures));
      assert.equal(maxAbs(adapter.get(loraNames.b(module))!), 0);
    }
    const lora = await evaluate(c.lora, c, { ...frozenFeeds(c), ...flatFeed(packParameters(c.lora, adapter)) });
    assert.ok(Math.abs(lora[names.loss][0] - c.reference.full.loss) <= LOSS_TOLERANCE);
  });
});

test('GPT-2 LoRA targets are checked against the family’s layers', () => {
  const lora: LoraSettings = { rank: 2, alpha: 4, dropout: 0, targetModules: ['q_proj'] };
  assert.throws(() => loraModules(c.architecture, lora), /q_proj are not linear layers of gpt2 models/);
});

test('LoRA dropout draws another mask each time a layer runs (GPT-2 runs its blocks once per chunk)', async () => {
  const config: GptConfig = { vocabSize: 16, contextLength: 8, layers: 1, heads: 2, embedding: 8 };
  const architecture = { family: 'gpt2', config } as const;
  const lora: LoraSettings = { rank: 2, alpha: 2, dropout: 0.5, targetModules: ['c_attn'] };
  const g = new Graph('dropout_runs');
  const seed = g.input(names.dropoutSeed, [], 'int64');
  const ones = (dims: number[]) => g.constant(new Float32Array(dims[0] * dims[1]).fill(1), dims);
  const module = 'transformer.h.0.attn.c_attn';
  const x = g.constant(new Float32Array(4 * 8).fill(1), [1, 4, 8]);
  const y: Value = g.constant(new Float32Array(4 * 24), [1, 4, 24]);
  // The layer's own output y stands for its base weight, which `adapt` never reads.
  const weights = attachLora(
    g,
    architecture,
    lora,
    { [`${module}.weight`]: y },
    { [loraNames.a(module)]: ones([2, 8]), [loraNames.b(module)]: ones([24, 2]) },
    seed,
  );
  const layer = weights[`${module}.weight`] as AdaptedWeight;
  g.output(layer.adapt!(x, y), 'first');
  g.output(layer.adapt!(x, y), 'second');
  const session = await open(g.toModel());
  const draw = (s: number) => run(session, { [names.dropoutSeed]: i64([s], []) });
  const [once, again] = [await draw(3), await draw(3)];
  await session.release();
  assert.deepEqual(once.first, again.first, 'the same seed draws the same masks');
  assert.notDeepEqual(once.first, once.second, 'a second run of the layer reused the first run’s mask');
});
