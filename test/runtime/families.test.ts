// Checks tiny random Llama-family models (llama, qwen2) made by PyTorch in Hugging Face's layout against PyTorch's
// own logits: the exported onnx/model.onnx run with onnxruntime-node (full run and KV-cache steps), greedy
// generation by transformers.js and by the project's runtime, and the safetensors files' names and format.
// The same folders converted from safetensors by our engine (modelwright convert) must match PyTorch too.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ensureRunnable } from '../../server/src/convert/convertFolder';
import { generate } from '../../server/src/runtime/generate';
import { loadLanguageModel } from '../../server/src/runtime/languageModel';
import { type Family, type FamilyConfig, type FamilyModel, makeFamilyModel } from '../helpers/familyModels';

type Transformers = typeof import('@huggingface/transformers', { with: { 'resolution-mode': 'import' }});

const TOLERANCE = 1e-4;
const FAMILIES: Family[] = ['llama', 'qwen2'];

/** Largest absolute difference between two equally long vectors. */
function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'vector lengths differ');
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** Runs `ids` after the cached positions (batch 1, no padding) and returns every position's logits and the cache. */
async function runOnnx(
  session: ort.InferenceSession,
  config: FamilyConfig,
  ids: readonly number[],
  past: ort.Tensor[] | undefined,
): Promise<{ logits: Float32Array[]; present: ort.Tensor[] }> {
  const layers = config.num_hidden_layers;
  const headDim = config.head_dim ?? config.hidden_size / config.num_attention_heads;
  const empty = new ort.Tensor('float32', new Float32Array(0), [1, config.num_key_value_heads, 0, headDim]);
  const cache = past ?? Array.from({ length: 2 * layers }, () => empty);
  const pastLength = cache[0].dims[2];
  const total = pastLength + ids.length;
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]),
    position_ids: new ort.Tensor(
      'int64',
      BigInt64Array.from({ length: ids.length }, (_, i) => BigInt(pastLength + i)),
      [1, ids.length],
    ),
  };
  for (let i = 0; i < layers; i++) {
    feeds[`past_key_values.${i}.key`] = cache[2 * i];
    feeds[`past_key_values.${i}.value`] = cache[2 * i + 1];
  }
  const results = await session.run(feeds);
  const data = results.logits.data as Float32Array;
  const vocab = config.vocab_size;
  const logits = ids.map((_, i) => data.subarray(i * vocab, (i + 1) * vocab));
  const present: ort.Tensor[] = [];
  for (let i = 0; i < layers; i++) present.push(results[`present.${i}.key`], results[`present.${i}.value`]);
  return { logits, present };
}

/** Tensor names, dtypes and shapes from a safetensors header. */
function safetensorsHeader(file: string): Record<string, { dtype: string; shape: number[]; data_offsets: number[] }> {
  const bytes = fs.readFileSync(file);
  const length = Number(bytes.readBigUInt64LE(0));
  assert.equal(length % 8, 0, 'header length is a multiple of 8');
  const header = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8'));
  assert.deepEqual(header.__metadata__, { format: 'pt' });
  delete header.__metadata__;
  const ends = Object.values(header as Record<string, { data_offsets: number[] }>).map((t) => t.data_offsets[1]);
  assert.equal(8 + length + Math.max(...ends), bytes.length, 'data ends at the end of the file');
  return header;
}

/** The parameter names Hugging Face's LlamaForCausalLM / Qwen2ForCausalLM save. */
function expectedNames(config: FamilyConfig): string[] {
  const names = ['model.embed_tokens.weight', 'model.norm.weight'];
  if (!config.tie_word_embeddings) names.push('lm_head.weight');
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const p = `model.layers.${i}.`;
    names.push(`${p}input_layernorm.weight`, `${p}post_attention_layernorm.weight`);
    for (const proj of ['q', 'k', 'v', 'o']) names.push(`${p}self_attn.${proj}_proj.weight`);
    if (config.model_type === 'qwen2')
      for (const proj of ['q', 'k', 'v']) names.push(`${p}self_attn.${proj}_proj.bias`);
    for (const proj of ['gate', 'up', 'down']) names.push(`${p}mlp.${proj}_proj.weight`);
  }
  return names.sort();
}

for (const family of FAMILIES) {
  describe(`${family} models made by PyTorch`, () => {
    let folder: FamilyModel;
    let session: ort.InferenceSession;

    before(async () => {
      folder = await makeFamilyModel({ family, seed: 1 });
      session = await ort.InferenceSession.create(path.join(folder.dir, 'onnx', 'model.onnx'), {
        executionProviders: ['cpu'],
        intraOpNumThreads: 1,
      });
    });
    after(async () => {
      await session?.release();
      folder?.remove();
    });

    test('config.json and the safetensors file follow Hugging Face', () => {
      const { config } = folder;
      assert.equal(config.model_type, family);
      assert.deepEqual(config.architectures, [family === 'llama' ? 'LlamaForCausalLM' : 'Qwen2ForCausalLM']);
      assert.ok(config.num_key_value_heads < config.num_attention_heads, 'grouped-query attention');
      if (family === 'llama') assert.equal(config.rope_scaling?.rope_type, 'llama3');
      const header = safetensorsHeader(path.join(folder.dir, 'model.safetensors'));
      assert.deepEqual(Object.keys(header).sort(), expectedNames(config));
      assert.deepEqual(header['model.embed_tokens.weight'].shape, [config.vocab_size, config.hidden_size]);
      const headDim = config.head_dim ?? config.hidden_size / config.num_attention_heads;
      assert.deepEqual(header['model.layers.0.self_attn.k_proj.weight'].shape, [
        config.num_key_value_heads * headDim,
        config.hidden_size,
      ]);
      for (const file of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) {
        assert.ok(fs.existsSync(path.join(folder.dir, file)), file);
      }
    });

    test('the ONNX export has the transformers.js inputs and outputs', () => {
      const layers = folder.config.num_hidden_layers;
      const past = Array.from({ length: layers }, (_, i) => [`past_key_values.${i}.key`, `past_key_values.${i}.value`]);
      const present = Array.from({ length: layers }, (_, i) => [`present.${i}.key`, `present.${i}.value`]);
      assert.deepEqual(session.inputNames, ['input_ids', 'attention_mask', 'position_ids', ...past.flat()]);
      assert.deepEqual(session.outputNames, ['logits', ...present.flat()]);
    });

    test('ONNX logits equal PyTorch for a full run', async (t) => {
      const { reference, config } = folder;
      const { logits } = await runOnnx(session, config, reference.token_ids, undefined);
      const argmax = logits.map((row) => row.indexOf(Math.max(...row)));
      assert.deepEqual(argmax, reference.full.argmax);
      let max = 0;
      reference.full.positions.forEach((position, i) => {
        const difference = maxDifference(logits[position], reference.full.logits[i]);
        assert.ok(difference <= TOLERANCE, `position ${position}: logits differ by ${difference}`);
        max = Math.max(max, difference);
      });
      t.diagnostic(`max logit difference ${max.toExponential(2)}`);
    });

    test('ONNX logits equal PyTorch with the KV cache, one token at a time', async (t) => {
      const { reference, config } = folder;
      const ids = reference.token_ids;
      const prefill = reference.cached.prefill_length;
      let { present } = await runOnnx(session, config, ids.slice(0, prefill), undefined);
      let max = 0;
      for (const [i, position] of reference.cached.positions.entries()) {
        const step = await runOnnx(session, config, [ids[position]], present);
        present = step.present;
        assert.deepEqual(present[0].dims, [1, config.num_key_value_heads, position + 1, present[0].dims[3]]);
        const difference = maxDifference(step.logits[0], reference.cached.logits[i]);
        assert.ok(difference <= TOLERANCE, `position ${position}: logits differ by ${difference}`);
        max = Math.max(max, difference);
      }
      t.diagnostic(`max logit difference ${max.toExponential(2)}`);
    });

    test('ONNX attention_mask hides left padding as batched generation needs', async () => {
      // Two padding tokens on the left, masked out, with position ids as transformers.js makes them (cumsum - 1,
      // 1 under the padding): the last position's logits must not change.
      const { reference, config } = folder;
      const ids = [config.eos_token_id, config.eos_token_id, ...reference.token_ids];
      const n = ids.length;
      const mask = ids.map((_, i) => (i < 2 ? 0n : 1n));
      const positions = ids.map((_, i) => (i < 2 ? 1n : BigInt(i - 2)));
      const layers = config.num_hidden_layers;
      const headDim = config.head_dim ?? config.hidden_size / config.num_attention_heads;
      const empty = new ort.Tensor('float32', new Float32Array(0), [1, config.num_key_value_heads, 0, headDim]);
      const feeds: Record<string, ort.Tensor> = {
        input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, n]),
        attention_mask: new ort.Tensor('int64', BigInt64Array.from(mask), [1, n]),
        position_ids: new ort.Tensor('int64', BigInt64Array.from(positions), [1, n]),
      };
      for (let i = 0; i < layers; i++) {
        feeds[`past_key_values.${i}.key`] = empty;
        feeds[`past_key_values.${i}.value`] = empty;
      }
      const logits = (await session.run(feeds)).logits.data as Float32Array;
      const last = logits.subarray((n - 1) * config.vocab_size, n * config.vocab_size);
      const difference = maxDifference(last, reference.full.logits[1]);
      assert.ok(difference <= TOLERANCE, `logits differ by ${difference}`);
    });

    test('transformers.js greedy generation gives PyTorch greedy tokens', async () => {
      const transformers: Transformers = await import('@huggingface/transformers');
      transformers.env.allowRemoteModels = false;
      const model = await transformers.AutoModelForCausalLM.from_pretrained(folder.dir, {
        local_files_only: true,
        dtype: 'fp32',
      });
      try {
        const { Tensor } = transformers;
        const ids = folder.reference.token_ids;
        const output = (await model.generate({
          input_ids: new Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]),
          attention_mask: new Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
          do_sample: false,
          max_new_tokens: folder.reference.greedy.max_new_tokens,
        })) as InstanceType<typeof Tensor>;
        const theirs = (output.tolist() as bigint[][])[0].map(Number).slice(ids.length);
        assert.deepEqual(theirs, folder.reference.greedy.tokens);
      } finally {
        await model.dispose();
      }
    });

    test("the project's runtime generates PyTorch's greedy tokens", async () => {
      const model = await loadLanguageModel(folder.dir, { intraOpThreads: 1 });
      try {
        const { greedy, token_ids: ids } = folder.reference;
        const result = await generate(model, ids, { maxTokens: greedy.max_new_tokens, temperature: 0 });
        assert.deepEqual(result.tokenIds.slice(0, ids.length), ids, 'the prompt ran as given');
        assert.deepEqual(result.generatedIds, greedy.tokens);
        assert.ok(new Set(greedy.tokens).size >= 5, `greedy tokens too uniform to mean much: ${greedy.tokens}`);
      } finally {
        await model.dispose();
      }
    });
  });
}

describe('sharded bfloat16 weights', () => {
  let folder: FamilyModel;
  before(async () => {
    folder = await makeFamilyModel({ family: 'qwen2', seed: 2, dtype: 'bfloat16', shards: 2 });
  });
  after(() => folder?.remove());

  test('the index maps every parameter to the shard that holds it', () => {
    const index = JSON.parse(fs.readFileSync(path.join(folder.dir, 'model.safetensors.index.json'), 'utf8')) as {
      metadata: { total_size: number };
      weight_map: Record<string, string>;
    };
    assert.ok(!fs.existsSync(path.join(folder.dir, 'model.safetensors')));
    const files = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    assert.deepEqual([...new Set(Object.values(index.weight_map))].sort(), files);
    let total = 0;
    const seen: string[] = [];
    for (const file of files) {
      for (const [name, tensor] of Object.entries(safetensorsHeader(path.join(folder.dir, file)))) {
        assert.equal(index.weight_map[name], file, name);
        assert.equal(tensor.dtype, 'BF16', name);
        assert.equal(tensor.data_offsets[1] - tensor.data_offsets[0], 2 * tensor.shape.reduce((a, b) => a * b, 1));
        total += tensor.data_offsets[1] - tensor.data_offsets[0];
        seen.push(name);
      }
    }
    assert.deepEqual(seen.sort(), expectedNames(folder.config));
    assert.equal(index.metadata.total_size, total);
    assert.equal(folder.config.torch_dtype, 'bfloat16');
  });

  test('the ONNX export uses the bfloat16-rounded weights the reference was computed with', async () => {
    const session = await ort.InferenceSession.create(path.join(folder.dir, 'onnx', 'model.onnx'));
    try {
      const { reference, config } = folder;
      const { logits } = await runOnnx(session, config, reference.token_ids, undefined);
      const last = reference.full.positions[1];
      const difference = maxDifference(logits[last], reference.full.logits[1]);
      assert.ok(difference <= TOLERANCE, `logits differ by ${difference}`);
    } finally {
      await session.release();
    }
  });
});

/** A copy of the folder without its PyTorch ONNX export, converted by our engine (what `modelwright convert` does). */
function convertedCopy(folder: FamilyModel): string {
  const dir = `${folder.dir}-converted`;
  fs.cpSync(folder.dir, dir, { recursive: true });
  fs.rmSync(path.join(dir, 'onnx'), { recursive: true });
  ensureRunnable(dir);
  return dir;
}

for (const [family, options] of [
  ['llama', { family: 'llama', seed: 3 }],
  ['qwen2', { family: 'qwen2', seed: 3 }],
  ['sharded bfloat16 qwen2', { family: 'qwen2', seed: 4, dtype: 'bfloat16', shards: 2 }],
] as const) {
  describe(`${family} converted from safetensors by our engine`, () => {
    let folder: FamilyModel;
    let dir: string;
    let session: ort.InferenceSession;

    before(async () => {
      folder = await makeFamilyModel(options);
      dir = convertedCopy(folder);
      session = await ort.InferenceSession.create(path.join(dir, 'onnx', 'model.onnx'), { intraOpNumThreads: 1 });
    });
    after(async () => {
      await session?.release();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
      folder?.remove();
    });

    test('logits equal PyTorch for a full run and with the KV cache', async () => {
      const { reference, config } = folder;
      const full = await runOnnx(session, config, reference.token_ids, undefined);
      reference.full.positions.forEach((position, i) => {
        const difference = maxDifference(full.logits[position], reference.full.logits[i]);
        assert.ok(difference <= TOLERANCE, `position ${position}: logits differ by ${difference}`);
      });
      const prefill = reference.token_ids.slice(0, reference.cached.prefill_length);
      let { present } = await runOnnx(session, config, prefill, undefined);
      for (const [i, position] of reference.cached.positions.entries()) {
        const step = await runOnnx(session, config, [reference.token_ids[position]], present);
        present = step.present;
        const difference = maxDifference(step.logits[0], reference.cached.logits[i]);
        assert.ok(difference <= TOLERANCE, `cached step at ${position}: logits differ by ${difference}`);
      }
    });

    test("the project's runtime and transformers.js both generate PyTorch's greedy tokens", async () => {
      const { greedy, token_ids: ids } = folder.reference;
      const model = await loadLanguageModel(dir, { intraOpThreads: 1 });
      try {
        const result = await generate(model, ids, { maxTokens: greedy.max_new_tokens, temperature: 0 });
        assert.deepEqual(result.generatedIds, greedy.tokens);
      } finally {
        await model.dispose();
      }
      const transformers: Transformers = await import('@huggingface/transformers');
      transformers.env.allowRemoteModels = false;
      const theirs = await transformers.AutoModelForCausalLM.from_pretrained(dir, {
        local_files_only: true,
        dtype: 'fp32',
      });
      try {
        const { Tensor } = transformers;
        const output = (await theirs.generate({
          input_ids: new Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]),
          attention_mask: new Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
          do_sample: false,
          max_new_tokens: greedy.max_new_tokens,
        })) as InstanceType<typeof Tensor>;
        assert.deepEqual((output.tolist() as bigint[][])[0].map(Number).slice(ids.length), greedy.tokens);
      } finally {
        await theirs.dispose();
      }
    });
  });
}
