// Tests for inference graphs built with num_logits_to_keep (the LM head over the last positions only): the
// runtime gives the logits of the graph without it (last position, all positions, batched, raw tensors), and
// transformers.js, which feeds the input itself, generates the runtime's greedy tokens from the same file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildInference } from '../../server/src/engine/inferenceGraph';
import { initialParameters } from '../../server/src/engine/model';
import { encodeModel } from '../../server/src/engine/onnx';
import { readArchitecture } from '../../server/src/modelFolder/config';
import { BatchedDecoder } from '../../server/src/runtime/batchedDecoder';
import { generate } from '../../server/src/runtime/generate';
import { type LanguageModel, loadLanguageModel } from '../../server/src/runtime/languageModel';
import { type ModelFolder, makeModelFolder } from '../helpers/makeModelFolder';
import { maxDifference } from '../helpers/compare';

type Transformers = typeof import('@huggingface/transformers', { with: { 'resolution-mode': 'import' }});

describe('num_logits_to_keep', () => {
  let plain: ModelFolder;
  let keeping: ModelFolder;
  let reference: LanguageModel;
  let model: LanguageModel;
  const prompt = Array.from({ length: 17 }, (_, i) => (i * 31 + 7) % 300);

  before(async () => {
    plain = await makeModelFolder({ seed: 9, weightScale: 8 });
    keeping = await makeModelFolder({ seed: 9, weightScale: 8 });
    // The weights makeModelFolder made: the seed's initial parameters, matrices scaled.
    const weights = initialParameters(keeping.config, 9);
    for (const [name, data] of weights)
      if (!name.includes('.ln_') && !name.endsWith('.bias')) for (let i = 0; i < data.length; i++) data[i] *= 8;
    const graph = buildInference(readArchitecture(keeping.dir), weights, { logitsToKeep: true });
    assert.ok(graph.inputs.some((input) => input.name === 'num_logits_to_keep'));
    fs.writeFileSync(path.join(keeping.dir, 'onnx', 'model.onnx'), encodeModel(graph));
    reference = await loadLanguageModel(plain.dir, { intraOpThreads: 1 });
    model = await loadLanguageModel(keeping.dir, { intraOpThreads: 1 });
  });
  after(async () => {
    await Promise.all([reference?.dispose(), model?.dispose()]);
    plain?.remove();
    keeping?.remove();
  });

  test('last-position and all-position logits, cold and cached, equal the graph without it', async () => {
    const vocab = plain.config.vocabSize;
    const all = await model.run(prompt, model.newCache(), { allPositions: true });
    assert.equal(all.length, prompt.length * vocab);
    assert.ok(maxDifference(all, await reference.run(prompt, reference.newCache(), { allPositions: true })) < 1e-4);
    const [ours, theirs] = [model.newCache(), reference.newCache()];
    const last = await model.run(prompt, ours);
    assert.equal(last.length, vocab);
    assert.ok(maxDifference(last, await reference.run(prompt, theirs)) < 1e-4);
    for (const id of [3, 4, 5])
      assert.ok(maxDifference(await model.run([id], ours), await reference.run([id], theirs)) < 1e-4);
  });

  test('the batched decoder hides the input, and runTensors gives every position', async () => {
    const [ours, theirs] = await Promise.all([
      BatchedDecoder.load(keeping.dir, { intraOpThreads: 1 }),
      BatchedDecoder.load(plain.dir, { intraOpThreads: 1 }),
    ]);
    try {
      assert.deepEqual(ours.inputs, theirs.inputs);
      const prompts = [prompt.slice(0, 5), prompt];
      const [a, b] = await Promise.all([ours.prefill(prompts), theirs.prefill(prompts)]);
      for (let row = 0; row < 2; row++) assert.ok(maxDifference(a.logits[row], b.logits[row]) < 1e-4);
      const n = 4;
      const inputs = ours.inputs.map((spec) => {
        const dims = spec.shape.map((d, axis) =>
          d >= 0 ? d : spec.name.startsWith('past') ? (axis === 2 ? 0 : 1) : axis === 0 ? 1 : n,
        );
        const count = dims.reduce((x, y) => x * y, 1);
        const data =
          spec.datatype === 'INT64'
            ? BigInt64Array.from({ length: count }, (_, i) =>
                spec.name === 'input_ids' ? BigInt(prompt[i]) : spec.name === 'position_ids' ? BigInt(i) : 1n,
              )
            : new Float32Array(count);
        return { name: spec.name, datatype: spec.datatype, shape: dims, data };
      });
      const [raw] = await ours.runTensors(inputs, ['logits']);
      assert.deepEqual(raw.shape, [1, n, plain.config.vocabSize]);
    } finally {
      await Promise.all([ours.dispose(), theirs.dispose()]);
    }
  });

  test("transformers.js generates the runtime's greedy tokens from the same file", async () => {
    const expected = await generate(model, prompt, { maxTokens: 8, temperature: 0 });
    const transformers: Transformers = await import('@huggingface/transformers');
    transformers.env.allowRemoteModels = false;
    const tjs = await transformers.AutoModelForCausalLM.from_pretrained(keeping.dir, {
      local_files_only: true,
      dtype: 'fp32',
    });
    try {
      const { Tensor } = transformers;
      const output = (await tjs.generate({
        input_ids: new Tensor('int64', BigInt64Array.from(prompt, BigInt), [1, prompt.length]),
        attention_mask: new Tensor('int64', new BigInt64Array(prompt.length).fill(1n), [1, prompt.length]),
        do_sample: false,
        max_new_tokens: 8,
        min_new_tokens: 8,
      })) as InstanceType<typeof Tensor>;
      const theirs = (output.tolist() as bigint[][])[0].map(Number).slice(prompt.length);
      assert.deepEqual(theirs, expected.generatedIds);
    } finally {
      await tjs.dispose();
    }
  });
});
