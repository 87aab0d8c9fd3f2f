// int8 conversion (`convertFolder(dir, { dtype: 'q8' })`, `modelwright convert DIR --dtype q8`): the blockwise
// quantizer's rounding bound, then tiny Llama (untied head) and Qwen2 (tied head: the LM head and the embedding
// Gather share one int8 table) models from PyTorch converted to onnx/model_quantized.onnx: far smaller than
// float32, logits close to float32's (and a deliberately wrong scale layout is not), loaded and run by the
// project's runtime and by transformers.js (dtype q8), and the CLI's summary line.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { main } from '../../server/src/cli';
import { convertFolder } from '../../server/src/convert/convertFolder';
import { buildInference } from '../../server/src/engine/inferenceGraph';
import { initialParameters } from '../../server/src/engine/model';
import { encodeModel } from '../../server/src/engine/onnx';
import { dequantizeRows, quantizeModel, quantizeRows } from '../../server/src/engine/quantize';
import { readArchitecture } from '../../server/src/modelFolder/config';
import { readSafetensorsWeights } from '../../server/src/modelFolder/weights';
import { f32, i64, open, run } from '../helpers/engineHarness';
import { generate } from '../../server/src/runtime/generate';
import { loadLanguageModel } from '../../server/src/runtime/languageModel';
import { type FamilyModel, type LlamaFamily, makeFamilyModel } from '../helpers/familyModels';
import { argmax, fullLogits, relativeError, safetensorsOnlyCopy, transformersGreedy } from './convertHarness';

/**
 * The q8 logits may differ from float32's by at most this (‖Δ‖ / ‖float32‖ over every position). These tiny
 * random models have large weights, so rounding errors grow from layer to layer: measured over four seeds, int8
 * weights alone (dequantized into a float32 graph) give 2.0–3.5%, with MatMulNBits's int8 activations 3.0–4.5%.
 * Scales applied to the wrong channels (the test below) give 76–100%.
 */
const RELATIVE_TOLERANCE = 0.06;
/** At least this share of positions must keep float32's most likely token. */
const ARGMAX_AGREEMENT = 0.8;

describe('quantizeRows', () => {
  test('every weight is within half a step of its block scale, and the transposed layout is the transpose', () => {
    const rows = 5;
    const columns = 70; // three blocks of 32, the last one padded
    const data = Float32Array.from({ length: rows * columns }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 13)));
    const q = quantizeRows(data, rows, columns);
    assert.equal(q.blocks, 3);
    assert.equal(q.values.length, rows * 3 * 32);
    const back = dequantizeRows(q);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < columns; c++) {
        const scale = q.scales[r * 3 + Math.floor(c / 32)];
        const error = Math.abs(back[r * columns + c] - data[r * columns + c]);
        assert.ok(error <= scale / 2 + 1e-7, `(${r}, ${c}) off by ${error}, scale ${scale}`);
      }
      assert.equal(q.values[(r * 3 + 2) * 32 + 31], 128, 'padding is the zero point');
    }
    const transposedData = new Float32Array(rows * columns);
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < columns; c++) transposedData[c * rows + r] = data[r * columns + c];
    const t = quantizeRows(transposedData, rows, columns, 32, true);
    assert.deepEqual(t.values, q.values);
    assert.deepEqual(t.scales, q.scales);
    const zeros = quantizeRows(new Float32Array(64), 2, 32);
    assert.deepEqual(dequantizeRows(zeros), new Float32Array(64));
  });
});

test('a GPT-2 graph (Conv1D [in, out] weights, tied head, position embeddings) quantizes and stays close', async () => {
  const config = { vocabSize: 300, contextLength: 64, layers: 2, heads: 2, embedding: 64 };
  const weights = initialParameters(config, 11);
  const fp32 = buildInference({ family: 'gpt2', config }, weights);
  const { model, summary } = quantizeModel(fp32);
  assert.deepEqual(
    summary.quantized.sort(),
    [...weights.keys()].filter((n) => n.endsWith('.weight') && !/ln_/.test(n)).sort(),
    'every matrix, both embeddings included',
  );
  assert.ok(summary.bytes < 0.35 * summary.floatBytes, `${summary.bytes} of ${summary.floatBytes} bytes`);
  const names = model.initializers.map((i) => i.name);
  assert.ok(names.includes('transformer.wte.weight_quantized'), 'the tied head reads the embedding rows as is');
  assert.ok(names.includes('transformer.h.0.mlp.c_fc.weight_transposed_quantized'), 'Conv1D weights are transposed');
  const ids = [5, 17, 250, 3, 99, 42, 7, 123];
  const n = ids.length;
  const feeds = {
    input_ids: i64(ids, [1, n]),
    attention_mask: i64(new Array(n).fill(1), [1, n]),
    position_ids: i64(
      ids.map((_, i) => i),
      [1, n],
    ),
    ...Object.fromEntries(
      Array.from({ length: config.layers }, (_, i) => [
        [`past_key_values.${i}.key`, f32([], [1, config.heads, 0, config.embedding / config.heads])],
        [`past_key_values.${i}.value`, f32([], [1, config.heads, 0, config.embedding / config.heads])],
      ]).flat(),
    ),
  };
  const logits = async (m: typeof model) => {
    const session = await open(m);
    try {
      const data = (await run(session, feeds)).logits;
      return ids.map((_, p) => data.slice(p * config.vocabSize, (p + 1) * config.vocabSize));
    } finally {
      await session.release();
    }
  };
  const want = await logits(fp32);
  const got = await logits(model);
  const error = relativeError(got, want);
  assert.ok(error < RELATIVE_TOLERANCE, `relative error ${error}`);
  const agree = got.filter((row, p) => argmax(row) === argmax(want[p])).length;
  assert.ok(agree >= ARGMAX_AGREEMENT * n, `argmax agrees on ${agree} of ${n}`);
});

for (const [family, seed] of [
  ['llama', 6],
  ['qwen2', 7],
] as [LlamaFamily, number][]) {
  describe(`a ${family} model converted to q8`, () => {
    let folder: FamilyModel;
    let fp32: string;
    let q8: string;
    let parameters: number;
    const quantizedFile = () => path.join(q8, 'onnx', 'model_quantized.onnx');

    before(async () => {
      folder = await makeFamilyModel({ family, seed });
      fp32 = safetensorsOnlyCopy(folder, 'fp32');
      q8 = safetensorsOnlyCopy(folder, 'q8');
      convertFolder(fp32);
      const result = convertFolder(q8, { dtype: 'q8' });
      assert.equal(result.onnxFile, path.join('onnx', 'model_quantized.onnx'));
      assert.equal(result.dtype, 'q8');
      parameters = result.parameters;
      assert.equal(result.bytes, fs.statSync(quantizedFile()).size);
      assert.deepEqual(fs.readdirSync(path.join(q8, 'onnx')), ['model_quantized.onnx']);
    });
    after(() => {
      for (const dir of [fp32, q8]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
      folder?.remove();
    });

    test('every weight matrix is int8 with block scales, and the file is far smaller than float32', () => {
      const model = onnx.ModelProto.decode(fs.readFileSync(quantizedFile()));
      const graph = model.graph;
      assert.ok(graph);
      const types = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t.dataType]));
      const floatNames = [...types].filter(([, type]) => type === onnx.TensorProto.DataType.FLOAT).map(([n]) => n);
      const matrices = floatNames.filter((n) => /(proj|embed_tokens|lm_head)\.weight$/.test(n));
      assert.deepEqual(matrices, [], 'no float32 weight matrix is left');
      const c = folder.config;
      const linears = c.num_hidden_layers * 7 + (c.tie_word_embeddings ? 0 : 1);
      const nbits = (graph.node ?? []).filter((n) => n.opType === 'MatMulNBits');
      assert.equal(nbits.length, linears + (c.tie_word_embeddings ? 1 : 0), 'every linear and the LM head');
      assert.ok(nbits.every((n) => n.domain === 'com.microsoft'));
      for (const n of nbits) {
        const bits = n.attribute?.find((a) => a.name === 'bits')?.i;
        assert.equal(Number(bits), 8);
        assert.equal(types.get(n.input?.[1] ?? ''), onnx.TensorProto.DataType.UINT8);
      }
      assert.equal(types.get('model.embed_tokens.weight_quantized'), onnx.TensorProto.DataType.UINT8);
      const gathers = (graph.node ?? []).filter((n) => n.opType === 'Gather' && n.input?.[0].startsWith('model.'));
      assert.deepEqual(
        gathers.map((n) => n.input?.[0]),
        ['model.embed_tokens.weight_quantized', 'model.embed_tokens.weight_scales'],
        'the embedding lookup reads the int8 table and its scales',
      );
      assert.ok(model.opsetImport?.some((o) => o.domain === 'com.microsoft'));
      const fp32Bytes = fs.statSync(path.join(fp32, 'onnx', 'model.onnx')).size;
      const q8Bytes = fs.statSync(quantizedFile()).size;
      // int8 values plus a float32 scale per 32 weights: 0.28 of float32 for the matrices; norms and biases stay.
      assert.ok(q8Bytes < 0.35 * fp32Bytes, `q8 ${q8Bytes} bytes against float32 ${fp32Bytes}`);
    });

    test(`logits are within ${RELATIVE_TOLERANCE * 100}% of float32's with the same argmax on most positions`, async (t) => {
      const { config, reference } = folder;
      const ids = [...reference.token_ids, ...reference.greedy.tokens];
      const want = await fullLogits(path.join(fp32, 'onnx', 'model.onnx'), config, ids);
      const got = await fullLogits(quantizedFile(), config, ids);
      const error = relativeError(got, want);
      const agree = got.filter((row, p) => argmax(row) === argmax(want[p])).length / ids.length;
      t.diagnostic(`relative error ${error.toExponential(2)}, argmax agreement ${(agree * 100).toFixed(0)}%`);
      assert.ok(error < RELATIVE_TOLERANCE, `relative error ${error}`);
      assert.ok(agree >= ARGMAX_AGREEMENT, `argmax agrees on ${agree} of the positions`);
    });

    test('the tolerance catches scales applied along the wrong axis', async (t) => {
      // The same graph with every scale table transposed within its rows' blocks (the scale of output channel r
      // used for a different channel): what a quantizer that confused the weight's axes would produce.
      const architecture = readArchitecture(fp32);
      const weights = new Map([...readSafetensorsWeights(fp32)].map(([name, w]) => [name, w.data]));
      const { model } = quantizeModel(buildInference(architecture, weights));
      for (const { name, tensor } of model.initializers) {
        if (!name.endsWith('_scales')) continue;
        const [rows, blocks] = tensor.dims;
        const scales = tensor.data as Float32Array;
        const shuffled = new Float32Array(scales.length);
        for (let r = 0; r < rows; r++)
          for (let b = 0; b < blocks; b++) shuffled[r * blocks + b] = scales[((r * 7 + 3) % rows) * blocks + b];
        tensor.data = shuffled;
      }
      const file = path.join(q8, 'onnx', 'wrong-axis.onnx');
      fs.writeFileSync(file, encodeModel(model));
      try {
        const { config, reference } = folder;
        const want = await fullLogits(path.join(fp32, 'onnx', 'model.onnx'), config, reference.token_ids);
        const error = relativeError(await fullLogits(file, config, reference.token_ids), want);
        t.diagnostic(`relative error with misplaced scales ${error.toExponential(2)}`);
        assert.ok(error > 2 * RELATIVE_TOLERANCE, `misplaced scales give only ${error}`);
      } finally {
        fs.rmSync(file);
      }
    });

    test("the project's runtime loads onnx/model_quantized.onnx and generates like transformers.js's q8", async (t) => {
      const { greedy, token_ids: ids } = folder.reference;
      const model = await loadLanguageModel(q8, { intraOpThreads: 1 });
      let ours: number[];
      try {
        assert.equal(model.onnxFile, path.join('onnx', 'model_quantized.onnx'));
        const result = await generate(model, ids, { maxTokens: greedy.max_new_tokens, temperature: 0 });
        ours = result.generatedIds;
      } finally {
        await model.dispose();
      }
      assert.equal(ours.length, greedy.tokens.length);
      assert.ok(ours.every((id) => Number.isInteger(id) && id >= 0 && id < folder.config.vocab_size));
      t.diagnostic(`q8 greedy ${ours}; float32 ${greedy.tokens}`);
      assert.deepEqual(await transformersGreedy(q8, 'q8', ids, greedy.max_new_tokens), ours);
    });

    test('modelwright convert --dtype q8 prints its summary', async () => {
      const dir = safetensorsOnlyCopy(folder, 'cli');
      const writes: string[] = [];
      const write = process.stdout.write;
      process.stdout.write = ((chunk: string) => (writes.push(chunk), true)) as typeof process.stdout.write;
      let code: number;
      try {
        code = await main(['convert', dir, '--dtype', 'q8']);
      } finally {
        process.stdout.write = write;
        fs.rmSync(dir, { recursive: true, force: true });
      }
      assert.equal(code, 0);
      const file = path.join(dir, 'onnx', 'model_quantized.onnx');
      const line = writes.join('');
      assert.ok(line.startsWith(`${file}: llama, q8, ${parameters} parameters, `), line);
      assert.match(line, /, \d+\.\d MB, \S+\n$/);
    });
  });
}

test('convert rejects an unknown --dtype', async () => {
  const errors: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string) => (errors.push(chunk), true)) as typeof process.stderr.write;
  let code: number;
  try {
    code = await main(['convert', '/nonexistent', '--dtype', 'q4']);
  } finally {
    process.stderr.write = write;
  }
  assert.equal(code, 2);
  // The message names the option, the value given and the choices, whatever the wording.
  assert.match(errors.join(''), /--dtype.*q4.*fp32, q8|--dtype must be fp32 or q8, got "q4"/s);
});
