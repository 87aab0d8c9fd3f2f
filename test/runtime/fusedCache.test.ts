// Tests for GPT-BigCode's fused cache layout (past_key_values.N.key_value [batch, past, 2·headDim], multi-query):
// the runtime discovers it, and cached decoding, prefixes and batched decoding (select, concat) match cold runs,
// both with the runtime's own cache buffers (new_key_values outputs) and with the present tensors alone.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parameterShapesOf } from '../../server/src/engine/architecture';
import { buildInference } from '../../server/src/engine/inferenceGraph';
import { encodeModel } from '../../server/src/engine/onnx';
import { gaussian } from '../../server/src/engine/random';
import { readArchitecture } from '../../server/src/modelFolder/config';
import { BatchedDecoder } from '../../server/src/runtime/batchedDecoder';
import { type LanguageModel, loadLanguageModel } from '../../server/src/runtime/languageModel';
import { type ModelFolder, makeModelFolder } from '../helpers/makeModelFolder';
import { maxDifference } from '../helpers/compare';

/** A random multi-query GPT-BigCode model in `folder`, with or without the new_key_values outputs. */
function writeBigCode(folder: ModelFolder, withNewRows: boolean): void {
  const configFile = path.join(folder.dir, 'config.json');
  const config = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  Object.assign(config, {
    model_type: 'gpt_bigcode',
    architectures: ['GPTBigCodeForCausalLM'],
    multi_query: true,
    activation_function: 'gelu_pytorch_tanh',
  });
  fs.writeFileSync(configFile, JSON.stringify(config));
  const architecture = readArchitecture(folder.dir);
  const random = gaussian(5);
  const weights = new Map<string, Float32Array>();
  for (const [name, shape] of parameterShapesOf(architecture)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name.includes('.ln_') && name.endsWith('.weight')) data.fill(1);
    else for (let i = 0; i < data.length; i++) data[i] = random() * 0.3;
    weights.set(name, data);
  }
  const graph = buildInference(architecture, weights);
  if (!withNewRows) graph.outputs = graph.outputs.filter((o) => !o.name.startsWith('new_key_values.'));
  fs.writeFileSync(path.join(folder.dir, 'onnx', 'model.onnx'), encodeModel(graph));
}

for (const withNewRows of [true, false]) {
  describe(`fused key_value cache (${withNewRows ? 'runtime buffers' : 'present tensors'})`, () => {
    let folder: ModelFolder;
    let model: LanguageModel;
    const prompt = Array.from({ length: 21 }, (_, i) => (i * 29 + 3) % 300);

    before(async () => {
      folder = await makeModelFolder({ seed: 4 });
      writeBigCode(folder, withNewRows);
      model = await loadLanguageModel(folder.dir, { intraOpThreads: 1 });
    });
    after(async () => {
      await model?.dispose();
      folder?.remove();
    });

    const cold = (tokens: number[]) => model.run(tokens, model.newCache());

    test('the graph has the fused layout and the runtime finds it', () => {
      const io = (model as unknown as { io: { pastInputs: string[]; pastRank: number; rowSize: number } }).io;
      assert.equal(io.pastInputs[0], 'past_key_values.0.key_value');
      assert.equal(io.pastInputs.length, folder.config.layers);
      assert.equal(io.pastRank, 3);
      assert.equal(io.rowSize, (2 * folder.config.embedding) / folder.config.heads);
    });

    test('cached decoding and prefixes give the logits of cold runs', async () => {
      const cache = model.newCache();
      await model.run(prompt, cache);
      const tokens = prompt.slice();
      for (let step = 0; step < 15; step++) {
        const id = (step * 17 + 5) % 300;
        tokens.push(id);
        const cached = await model.run([id], cache);
        assert.ok(maxDifference(cached, await cold(tokens)) < 1e-4, `step ${step}`);
      }
      const short = cache.prefix(10);
      const expected = await cold([...tokens.slice(0, 10), 42]);
      assert.ok(maxDifference(await model.run([42], short), expected) < 1e-4);
    });

    test('batched prefill, steps, select and concat give each prompt run alone', async () => {
      const decoder = await BatchedDecoder.load(folder.dir, { intraOpThreads: 1 });
      try {
        const prompts = [prompt.slice(0, 7), prompt.slice(3, 15), prompt.slice(0, 4)];
        const { batch, logits } = await decoder.prefill(prompts);
        for (let row = 0; row < prompts.length; row++)
          assert.ok(maxDifference(logits[row], await cold(prompts[row])) < 1e-4, `row ${row}`);
        const stepped = await decoder.step(batch, [1, 2, 3]);
        const kept = decoder.select(stepped.batch, [2, 0]);
        const joined = decoder.concat(kept, (await decoder.prefill([prompt.slice(5, 10)])).batch);
        const last = await decoder.step(joined, [4, 5, 6]);
        const expected = [
          [...prompts[2], 3, 4],
          [...prompts[0], 1, 5],
          [...prompt.slice(5, 10), 6],
        ];
        for (let row = 0; row < expected.length; row++)
          assert.ok(maxDifference(last.logits[row], await cold(expected[row])) < 1e-4, `joined row ${row}`);
      } finally {
        await decoder.dispose();
      }
    });
  });
}
