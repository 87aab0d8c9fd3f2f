// Checks tiny random models of every supported family (llama, qwen2, starcoder2, gpt_bigcode) made by PyTorch in
// Hugging Face's layout against PyTorch's own logits: the exported onnx/model.onnx run with onnxruntime-node (full
// run and KV-cache steps), greedy generation by transformers.js and by the project's runtime, and the safetensors
// files' names and format. The same folders converted from safetensors by our engine (modelwright convert) must
// match PyTorch too, in the same transformers.js cache layout (GPT-BigCode's fused key_value included).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ensureRunnable } from '../../server/src/convert/convertFolder';
import { generate } from '../../server/src/runtime/generate';
import { loadLanguageModel } from '../../server/src/runtime/languageModel';
import {
  type AnyFamilyConfig,
  type Family,
  type FamilyModel,
  type FamilyModelOptions,
  cacheLayout,
  makeFamilyModel,
  modelShape,
} from '../helpers/familyModels';
import { maxDifference } from '../helpers/compare';

type Transformers = typeof import('@huggingface/transformers', { with: { 'resolution-mode': 'import' }});

const TOLERANCE = 1e-4;
const FAMILIES: Family[] = ['llama', 'qwen2', 'starcoder2', 'gpt_bigcode'];
const ARCHITECTURES: Record<Family, string> = {
  llama: 'LlamaForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  starcoder2: 'Starcoder2ForCausalLM',
  gpt_bigcode: 'GPTBigCodeForCausalLM',
};

/** Largest absolute difference between two equally long vectors. */

/** Runs `ids` after the cached positions (batch 1, no padding) and returns every position's logits and the cache. */
async function runOnnx(
  session: ort.InferenceSession,
  config: AnyFamilyConfig,
  ids: readonly number[],
  past: ort.Tensor[] | undefined,
): Promise<{ logits: Float32Array[]; present: ort.Tensor[] }> {
  const { layers } = modelShape(config);
  const { kinds, pastAxis, emptyDims } = cacheLayout(config);
  const empty = new ort.Tensor('float32', new Float32Array(0), emptyDims);
  const cache = past ?? Array.from({ length: kinds.length * layers }, () => empty);
  const pastLength = cache[0].dims[pastAxis];
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
  const pastNames = cacheNames(config, 'past_key_values');
  pastNames.forEach((name, i) => {
    feeds[name] = cache[i];
  });
  const results = await session.run(feeds);
  const data = results.logits.data as Float32Array;
  const vocab = config.vocab_size;
  const logits = ids.map((_, i) => data.subarray(i * vocab, (i + 1) * vocab));
  const present = cacheNames(config, 'present').map((name) => results[name]);
  return { logits, present };
}

/** Every layer's cache input (or output) names in order: past_key_values.{i}.key, .value or .key_value. */
function cacheNames(config: AnyFamilyConfig, prefix: 'past_key_values' | 'present'): string[] {
  const { kinds } = cacheLayout(config);
  return Array.from({ length: modelShape(config).layers }, (_, i) => kinds.map((k) => `${prefix}.${i}.${k}`)).flat();
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

/** The parameter names Hugging Face's LlamaForCausalLM, Qwen2ForCausalLM, Starcoder2ForCausalLM and
 * GPTBigCodeForCausalLM save (tied heads are not saved). */
function expectedNames(config: AnyFamilyConfig): string[] {
  const names: string[] = [];
  const { layers, tied } = modelShape(config);
  if (config.model_type === 'gpt_bigcode') {
    names.push('transformer.wte.weight', 'transformer.wpe.weight', 'transformer.ln_f.weight', 'transformer.ln_f.bias');
    for (let i = 0; i < layers; i++) {
      for (const linear of ['ln_1', 'attn.c_attn', 'attn.c_proj', 'ln_2', 'mlp.c_fc', 'mlp.c_proj']) {
        names.push(`transformer.h.${i}.${linear}.weight`, `transformer.h.${i}.${linear}.bias`);
      }
    }
    return names.sort();
  }
  const starcoder2 = config.model_type === 'starcoder2';
  const parameters = (name: string, bias: boolean) => names.push(`${name}.weight`, ...(bias ? [`${name}.bias`] : []));
  parameters('model.embed_tokens', false);
  parameters('model.norm', starcoder2);
  if (!tied) parameters('lm_head', false);
  for (let i = 0; i < layers; i++) {
    const p = `model.layers.${i}.`;
    parameters(`${p}input_layernorm`, starcoder2);
    parameters(`${p}post_attention_layernorm`, starcoder2);
    for (const proj of ['q', 'k', 'v'])
      parameters(`${p}self_attn.${proj}_proj`, starcoder2 || config.model_type === 'qwen2');
    parameters(`${p}self_attn.o_proj`, starcoder2);
    const mlp = starcoder2 ? ['c_fc', 'c_proj'] : ['gate_proj', 'up_proj', 'down_proj'];
    for (const linear of mlp) parameters(`${p}mlp.${linear}`, starcoder2);
  }
  return names.sort();
}

for (const family of FAMILIES) {
  describe(`${family} models made by PyTorch`, () => {
    let folder: FamilyModel<AnyFamilyConfig>;
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
      assert.deepEqual(config.architectures, [ARCHITECTURES[family]]);
      const { kvHeads, heads, headDim, hidden } = modelShape(config);
      assert.ok(kvHeads < heads, 'grouped-query or multi-query attention');
      const header = safetensorsHeader(path.join(folder.dir, 'model.safetensors'));
      assert.deepEqual(Object.keys(header).sort(), expectedNames(config));
      if (config.model_type === 'gpt_bigcode') {
        assert.equal(kvHeads, 1);
        assert.deepEqual(header['transformer.wte.weight'].shape, [config.vocab_size, hidden]);
        // nn.Linear [out, in]: every head's query, then one key head and one value head.
        assert.deepEqual(header['transformer.h.0.attn.c_attn.weight'].shape, [hidden + 2 * headDim, hidden]);
      } else {
        if (family === 'llama') assert.equal(config.rope_scaling?.rope_type, 'llama3');
        if (family === 'starcoder2') assert.ok(config.sliding_window! < folder.reference.token_ids.length);
        assert.deepEqual(header['model.embed_tokens.weight'].shape, [config.vocab_size, hidden]);
        assert.deepEqual(header['model.layers.0.self_attn.k_proj.weight'].shape, [kvHeads * headDim, hidden]);
      }
      for (const file of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) {
        assert.ok(fs.existsSync(path.join(folder.dir, file)), file);
      }
    });

    test('the ONNX export has the transformers.js inputs and outputs', () => {
      const { config } = folder;
      const past = cacheNames(config, 'past_key_values');
      assert.deepEqual(session.inputNames, ['input_ids', 'attention_mask', 'position_ids', ...past]);
      assert.deepEqual(session.outputNames, ['logits', ...cacheNames(config, 'present')]);
      if (family === 'gpt_bigcode')
        assert.deepEqual(past, ['past_key_values.0.key_value', 'past_key_values.1.key_value']);
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
        const { pastAxis, emptyDims } = cacheLayout(config);
        assert.deepEqual(
          present[0].dims,
          emptyDims.map((d, axis) => (axis === pastAxis ? position + 1 : d)),
        );
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
      const empty = new ort.Tensor('float32', new Float32Array(0), cacheLayout(config).emptyDims);
      const feeds: Record<string, ort.Tensor> = {
        input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, n]),
        attention_mask: new ort.Tensor('int64', BigInt64Array.from(mask), [1, n]),
        position_ids: new ort.Tensor('int64', BigInt64Array.from(positions), [1, n]),
      };
      for (const name of cacheNames(config, 'past_key_values')) feeds[name] = empty;
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
function convertedCopy(folder: FamilyModel<AnyFamilyConfig>): string {
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
  ['starcoder2', { family: 'starcoder2', seed: 3 }],
  ['gpt_bigcode', { family: 'gpt_bigcode', seed: 3 }],
  ['gpt_bigcode with a key/value head per head', { family: 'gpt_bigcode', seed: 3, multiQuery: false }],
] as [string, FamilyModelOptions][]) {
  describe(`${family} converted from safetensors by our engine`, () => {
    let folder: FamilyModel<AnyFamilyConfig>;
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
      assert.deepEqual(session.inputNames.slice(3), cacheNames(config, 'past_key_values'), 'the same cache layout');
      const presentNames = session.outputNames.filter((name) => name.startsWith('present.'));
      assert.deepEqual(presentNames, cacheNames(config, 'present'));
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
