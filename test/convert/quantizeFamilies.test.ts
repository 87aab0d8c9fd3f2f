// int8 conversion of the StarCoder2 and GPT-BigCode families (tiny random models from PyTorch): their linears,
// tied heads and GPT-BigCode's position table become int8, the logits stay within the tolerance the Llama-family
// q8 tests use, and the project's runtime and transformers.js both run the int8 graph (the fused key_value cache too).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { convertFolder } from '../../server/src/convert/convertFolder';
import { generate } from '../../server/src/runtime/generate';
import { loadLanguageModel } from '../../server/src/runtime/languageModel';
import { type AnyFamilyConfig, type FamilyModel, makeFamilyModel } from '../helpers/familyModels';
import { argmax, fullLogits, relativeError, safetensorsOnlyCopy, transformersGreedy } from './convertHarness';

/** As in quantize.test.ts: measured 2.3–2.4% for these families; scales on the wrong channels give 76–100%. */
const RELATIVE_TOLERANCE = 0.06;
const ARGMAX_AGREEMENT = 0.8;

for (const family of ['starcoder2', 'gpt_bigcode'] as const) {
  describe(`a ${family} model converted to q8`, () => {
    let folder: FamilyModel<AnyFamilyConfig>;
    let dir: string;

    before(async () => {
      folder = await makeFamilyModel({ family, seed: 8 });
      dir = safetensorsOnlyCopy(folder, 'q8');
      convertFolder(dir);
      convertFolder(dir, { dtype: 'q8' });
    });
    after(() => {
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
      folder?.remove();
    });

    test('every weight matrix is int8 and the logits stay close to float32', async (t) => {
      const quantized = path.join(dir, 'onnx', 'model_quantized.onnx');
      const graph = onnx.ModelProto.decode(fs.readFileSync(quantized)).graph;
      assert.ok(graph);
      const floatMatrices = (graph.initializer ?? []).filter(
        (i) =>
          i.dataType === onnx.TensorProto.DataType.FLOAT &&
          (i.dims ?? []).length === 2 &&
          !i.name?.endsWith('_scales') &&
          !i.name?.startsWith('rotary.'), // the tables of cos and sin per position
      );
      assert.deepEqual(
        floatMatrices.map((i) => i.name),
        [],
      );
      const { config, reference } = folder;
      const ids = [...reference.token_ids, ...reference.greedy.tokens];
      const want = await fullLogits(path.join(dir, 'onnx', 'model.onnx'), config, ids);
      const got = await fullLogits(quantized, config, ids);
      const error = relativeError(got, want);
      const agree = got.filter((row, p) => argmax(row) === argmax(want[p])).length / ids.length;
      t.diagnostic(`relative error ${error.toExponential(2)}, argmax agreement ${(agree * 100).toFixed(0)}%`);
      assert.ok(error < RELATIVE_TOLERANCE, `relative error ${error}`);
      assert.ok(agree >= ARGMAX_AGREEMENT, `argmax agrees on ${agree} of the positions`);
    });

    test("the project's runtime and transformers.js run the int8 graph alike", async () => {
      const { token_ids: ids, greedy } = folder.reference;
      fs.rmSync(path.join(dir, 'onnx', 'model.onnx')); // so that the runtime loads model_quantized.onnx
      const model = await loadLanguageModel(dir, { intraOpThreads: 1 });
      let ours: number[];
      try {
        assert.equal(model.onnxFile, path.join('onnx', 'model_quantized.onnx'));
        ours = (await generate(model, ids, { maxTokens: greedy.max_new_tokens, temperature: 0 })).generatedIds;
      } finally {
        await model.dispose();
      }
      assert.deepEqual(await transformersGreedy(dir, 'q8', ids, greedy.max_new_tokens), ours);
    });
  });
}
