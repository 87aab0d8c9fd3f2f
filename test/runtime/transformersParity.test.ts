// Checks that a model folder we write is a working transformers.js model: @huggingface/transformers loads it
// offline (config.json + onnx/model.onnx + tokenizer files) and its greedy generation gives exactly the token
// ids of our own runtime's greedy generation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generate } from '../../server/src/runtime/generate';
import { type LanguageModel, loadLanguageModel } from '../../server/src/runtime/languageModel';
import { type ModelFolder, makeModelFolder } from '../helpers/makeModelFolder';

const PROMPTS = [
  'export function countOfTotal(count: number, total: number): number {\n',
  '  for (let i = 0; i < length; i++) {',
  'café',
];

type Transformers = typeof import('@huggingface/transformers', { with: { 'resolution-mode': 'import' }});

describe('transformers.js parity', () => {
  let folder: ModelFolder;
  let model: LanguageModel;
  let transformers: Transformers;
  let theirs: Awaited<ReturnType<typeof transformers.AutoModelForCausalLM.from_pretrained>>;

  before(async () => {
    // Weights ×10 make the random model's greedy choices depend on the context, so the comparison means something.
    folder = await makeModelFolder({
      seed: 2,
      weightScale: 10,
      config: { contextLength: 128, layers: 3, heads: 4, embedding: 32 },
    });
    model = await loadLanguageModel(folder.dir, { intraOpThreads: 1 });
    transformers = await import('@huggingface/transformers');
    transformers.env.allowRemoteModels = false;
    // An absolute path is read from disk as is; no env.localModelPath needed.
    theirs = await transformers.AutoModelForCausalLM.from_pretrained(folder.dir, {
      local_files_only: true,
      dtype: 'fp32',
    });
  });
  after(async () => {
    await theirs?.dispose();
    await model?.dispose();
    folder?.remove();
  });

  test('greedy generation gives identical token ids', async () => {
    for (const prompt of PROMPTS) {
      const ours = await generate(model, prompt, { maxTokens: 20, temperature: 0 });
      const ids = ours.tokenIds.slice(0, ours.tokenIds.length - ours.generatedIds.length);
      const { Tensor } = transformers;
      const output = (await theirs.generate({
        input_ids: new Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]),
        attention_mask: new Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
        do_sample: false,
        max_new_tokens: 20,
      })) as InstanceType<typeof Tensor>;
      const theirIds = (output.tolist() as bigint[][])[0].map(Number);
      assert.deepEqual(theirIds, ours.tokenIds, `prompt ${JSON.stringify(prompt)}`);
      const distinct = new Set(ours.generatedIds).size;
      assert.ok(distinct >= 5, `greedy output too uniform to be a meaningful comparison: ${ours.generatedIds}`);
    }
  });

  test('the text-generation pipeline loads the folder and continues the prompt as our runtime does', async () => {
    const generator = await transformers.pipeline('text-generation', folder.dir, {
      local_files_only: true,
      dtype: 'fp32',
    });
    try {
      const prompt = PROMPTS[0];
      const output = (await generator(prompt, { do_sample: false, max_new_tokens: 20 })) as {
        generated_text: string;
      }[];
      const ours = await generate(model, prompt, { maxTokens: 20, temperature: 0 });
      // The seeded model does not emit the end-of-text token within 20 tokens of this prompt, so both sides
      // generate exactly 20 tokens and the whole text is compared (with an end-of-text token the pipeline would
      // stop there too, but the comparison would be shorter).
      assert.equal(ours.finishReason, 'length');
      assert.equal(ours.generatedIds.length, 20);
      assert.equal(output[0].generated_text, prompt + ours.text);
    } finally {
      await generator.dispose();
    }
  });
});
