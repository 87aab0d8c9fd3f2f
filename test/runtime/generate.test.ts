// Tests for the runtime's decoding: KV-cache generation against re-running the whole sequence, stop sequences,
// token limits, cancellation, left truncation, seeded sampling, cache reuse, the sampling filters on their own,
// and the errors loadLanguageModel gives for folders it cannot load. Models are small and randomly initialized.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { encodeModel } from '../../server/src/engine/onnx';
import { generate } from '../../server/src/runtime/generate';
import { KvCache, type LanguageModel, loadLanguageModel } from '../../server/src/runtime/languageModel';
import { toByteLevel } from '../../server/src/tokenizer/byteLevel';
import { Sampler, argmax, logProbability, logSoftmax, tokenProbability } from '../../server/src/runtime/sampling';
import { uniform } from '../helpers/engineHarness';
import { type ModelFolder, makeModelFolder } from '../helpers/makeModelFolder';

const PROMPT = 'export function countOfTotal(count: number, total: number): number {\n';

describe('generate', () => {
  let folder: ModelFolder;
  let model: LanguageModel;
  let promptIds: number[];
  /** Greedy continuation of PROMPT, 20 tokens, computed without the cache. */
  let reference: number[];

  before(async () => {
    folder = await makeModelFolder({ seed: 7, weightScale: 10 });
    model = await loadLanguageModel(folder.dir, { intraOpThreads: 1 });
    promptIds = model.tokenizer.encode(PROMPT);
    reference = [];
    const ids = promptIds.slice();
    for (let step = 0; step < 20; step++) {
      const logits = await model.run(ids, model.newCache());
      const id = argmax(logits);
      reference.push(id);
      ids.push(id);
    }
  });
  after(async () => {
    await model?.dispose();
    folder?.remove();
  });

  test('the reference continuation is varied and has no end-of-text (the other tests rely on it)', () => {
    assert.ok(new Set(reference).size >= 5, `greedy tokens too uniform: ${reference}`);
    assert.ok(!reference.includes(folder.eosTokenId));
  });

  test('KV-cache decoding gives the same greedy tokens and logits as re-running the whole sequence', async () => {
    const result = await generate(model, PROMPT, { maxTokens: 20 });
    assert.deepEqual(result.generatedIds, reference);
    assert.deepEqual(result.tokenIds, [...promptIds, ...reference]);
    assert.equal(result.finishReason, 'length');
    assert.equal(result.text, model.tokenizer.decode(reference));
    assert.equal(result.tokenProbabilities.length, 20);

    // Step by step, the cached logits match a full run of the same prefix.
    const cache = model.newCache();
    let cached = await model.run(promptIds, cache);
    const ids = promptIds.slice();
    for (const id of reference.slice(0, 5)) {
      const full = await model.run(ids, model.newCache());
      let worst = 0;
      for (let i = 0; i < full.length; i++) worst = Math.max(worst, Math.abs(full[i] - cached[i]));
      assert.ok(worst < 1e-3, `logits differ by ${worst}`);
      ids.push(id);
      cached = await model.run([id], cache);
    }
    assert.equal(cache.length, promptIds.length + 5);

    // The reported probabilities are the model's softmax of the chosen tokens.
    const first = await model.run(promptIds, model.newCache());
    assert.ok(Math.abs(result.tokenProbabilities[0] - tokenProbability(first, reference[0])) < 1e-6);
  });

  test('allPositions returns the logits of every new position', async () => {
    const all = await model.run(promptIds, model.newCache(), { allPositions: true });
    const vocab = folder.config.vocabSize;
    assert.equal(all.length, promptIds.length * vocab);
    const last = await model.run(promptIds, model.newCache());
    assert.deepEqual(Array.from(all.subarray(all.length - vocab)), Array.from(last));
  });

  test('a stop sequence ends generation and is left out of the text, also when streamed', async () => {
    const full = model.tokenizer.decode(reference);
    // A stop string that first occurs some way into the text.
    let at = -1;
    let stop = '';
    for (let i = Math.floor(full.length / 3); i + 2 <= full.length; i++) {
      const candidate = full.slice(i, i + 2);
      if (!candidate.includes('\uFFFD') && full.indexOf(candidate) === i) {
        at = i;
        stop = candidate;
        break;
      }
    }
    assert.ok(at > 0, `no usable stop string in ${JSON.stringify(full)}`);
    let streamed = '';
    const result = await generate(model, PROMPT, {
      maxTokens: 20,
      stop: ['this never occurs', stop],
      onToken: (text) => {
        streamed += text;
      },
    });
    assert.equal(result.finishReason, 'stop');
    assert.equal(result.text, full.slice(0, at));
    assert.equal(streamed, result.text);
    assert.deepEqual(result.generatedIds, reference.slice(0, result.generatedIds.length));
    assert.ok(model.tokenizer.decode(result.generatedIds).includes(stop));
    assert.ok(!model.tokenizer.decode(result.generatedIds.slice(0, -1)).includes(stop));
  });

  test('streamed text adds up to the result text', async () => {
    const pieces: string[] = [];
    const ids: number[] = [];
    const result = await generate(model, PROMPT, {
      maxTokens: 20,
      onToken: (text, id) => (pieces.push(text), ids.push(id)),
    });
    assert.equal(pieces.join(''), result.text);
    assert.deepEqual(ids, result.generatedIds);
  });

  test('maxTokens limits the number of generated tokens', async () => {
    const result = await generate(model, PROMPT, { maxTokens: 5 });
    assert.equal(result.finishReason, 'length');
    assert.deepEqual(result.generatedIds, reference.slice(0, 5));
    const none = await generate(model, PROMPT, { maxTokens: 0 });
    assert.equal(none.generatedIds.length, 0);
    assert.equal(none.text, '');
  });

  test('aborting after the 3rd token returns those 3 tokens as cancelled', async () => {
    const controller = new AbortController();
    let count = 0;
    const result = await generate(model, PROMPT, {
      maxTokens: 20,
      signal: controller.signal,
      onToken: () => {
        if (++count === 3) controller.abort();
      },
    });
    assert.equal(result.finishReason, 'cancelled');
    assert.deepEqual(result.generatedIds, reference.slice(0, 3));
    assert.equal(result.text, model.tokenizer.decode(reference.slice(0, 3)));
    assert.equal(count, 3);

    const already = await generate(model, PROMPT, { signal: AbortSignal.abort() });
    assert.equal(already.finishReason, 'cancelled');
    assert.equal(already.generatedIds.length, 0);
  });

  test('a prompt longer than the context is cut from the left so that prompt + maxTokens fits', async () => {
    const context = folder.config.contextLength;
    const long = Array.from({ length: 3 * context }, (_, i) => reference[i % reference.length]);
    const result = await generate(model, long, { maxTokens: 10 });
    assert.equal(result.truncatedTokens, long.length - (context - 10));
    assert.deepEqual(result.tokenIds.slice(0, context - 10), long.slice(-(context - 10)));
    assert.equal(result.generatedIds.length, 10);
    const direct = await generate(model, long.slice(-(context - 10)), { maxTokens: 10 });
    assert.deepEqual(result.generatedIds, direct.generatedIds);

    // Text prompts are truncated the same way.
    const longText = PROMPT.repeat(20);
    const fromText = await generate(model, longText, { maxTokens: 10 });
    assert.ok(fromText.truncatedTokens > 0);
    assert.equal(fromText.tokenIds.length, context);

    // More tokens than the context allows: generation stops with 'length' when the context is full.
    const tooMany = await generate(model, promptIds, { maxTokens: 2 * context });
    assert.equal(tooMany.finishReason, 'length');
    assert.equal(tooMany.tokenIds.length, context);
    assert.equal(tooMany.truncatedTokens, promptIds.length - 1);
  });

  test('seeded sampling is reproducible', async () => {
    const options = { maxTokens: 15, temperature: 1.5, seed: 42 };
    const a = await generate(model, PROMPT, options);
    const b = await generate(model, PROMPT, options);
    assert.deepEqual(a.generatedIds, b.generatedIds);
    assert.deepEqual(a.tokenProbabilities, b.tokenProbabilities);
    const c = await generate(model, PROMPT, { ...options, seed: 43 });
    const d = await generate(model, PROMPT, { ...options, seed: 44 });
    assert.ok(
      [c, d].some((r) => r.generatedIds.join() !== a.generatedIds.join()),
      'other seeds should give other samples',
    );
  });

  test('top-p with a tiny p, and top-k = 1, equal greedy decoding', async () => {
    const nucleus = await generate(model, PROMPT, { maxTokens: 20, temperature: 1, topP: 1e-6, seed: 1 });
    assert.deepEqual(nucleus.generatedIds, reference);
    const topOne = await generate(model, PROMPT, { maxTokens: 20, temperature: 1, topK: 1, seed: 1 });
    assert.deepEqual(topOne.generatedIds, reference);
  });

  test('reusing the cache of an earlier call for an extended prompt gives the output of a cold call', async () => {
    const first = await generate(model, PROMPT, { maxTokens: 8 });
    const cachedBefore = first.cache.length;
    assert.equal(cachedBefore, first.tokenIds.length - 1);

    // The user accepted the completion and typed more.
    const extended = [...first.tokenIds, ...model.tokenizer.encode(' return count;\n')];
    const warm = await generate(model, extended, { maxTokens: 12, cache: first.cache });
    const cold = await generate(model, extended, { maxTokens: 12 });
    assert.equal(warm.reusedTokens, cachedBefore);
    assert.equal(cold.reusedTokens, 0);
    assert.deepEqual(warm.generatedIds, cold.generatedIds);
    assert.equal(warm.text, cold.text);
    assert.equal(first.cache.length, cachedBefore, 'the cache passed in is not modified');

    // A prompt that shares only part of the cache (the user deleted the end), and the very same prompt.
    const edited = [...first.tokenIds.slice(0, promptIds.length + 2), ...model.tokenizer.encode('value')];
    const editedWarm = await generate(model, edited, { maxTokens: 12, cache: warm.cache });
    const editedCold = await generate(model, edited, { maxTokens: 12 });
    assert.equal(editedWarm.reusedTokens, promptIds.length + 2);
    assert.deepEqual(editedWarm.generatedIds, editedCold.generatedIds);
    const same = await generate(model, PROMPT, { maxTokens: 8, cache: first.cache });
    assert.equal(same.reusedTokens, promptIds.length - 1);
    assert.deepEqual(same.generatedIds, first.generatedIds);

    // A cache from another model is ignored rather than misused.
    const unrelated = { ...first.cache, owner: {} } as typeof first.cache;
    const ignored = await generate(model, extended, { maxTokens: 12, cache: unrelated });
    assert.equal(ignored.reusedTokens, 0);
  });

  test('streaming holds back a possible stop-sequence start and split UTF-8 characters', async () => {
    // A stand-in model that emits a scripted sequence of single-byte tokens, whatever the input.
    const { tokenizer } = model;
    const byteTokens = (text: string) => [...toByteLevel(text)].map((char) => tokenizer.tokenId(char)!);
    const script = byteTokens('ab</x<é</div>zz');
    const scripted: LanguageModel = {
      modelDir: 'scripted',
      onnxFile: 'none',
      config: model.config,
      tokenizer,
      dispose: async () => {},
      newCache: () => new KvCache(scripted, [], []),
      run: async (ids, cache, options) => {
        const rows = options?.allPositions ? ids.length : 1;
        const logits = new Float32Array(folder.config.vocabSize * rows);
        for (let i = 0; i < ids.length; i++) {
          cache.tokens.push(ids[i]);
          const row = i - (ids.length - rows);
          if (row >= 0) logits[row * folder.config.vocabSize + (script[cache.length - promptIds.length] ?? 0)] = 10;
        }
        return logits;
      },
    };
    const pieces: string[] = [];
    const result = await generate(scripted, promptIds, {
      maxTokens: 30,
      stop: ['</div>'],
      onToken: (text) => pieces.push(text),
    });
    assert.equal(result.finishReason, 'stop');
    assert.equal(result.text, 'ab</x<é');
    assert.equal(pieces.join(''), 'ab</x<é');
    // '<' is held until the next byte rules out '</div>'; the first byte of 'é' until its second arrives.
    assert.deepEqual(pieces.slice(0, 8), ['a', 'b', '', '', '</x', '', '', '<é']);
  });

  test('loads an export without position_ids, with use_cache_branch, from onnx/decoder_model_merged.onnx', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-merged-'));
    try {
      for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json'])
        fs.copyFileSync(path.join(folder.dir, file), path.join(dir, file));
      fs.mkdirSync(path.join(dir, 'onnx'));
      fs.writeFileSync(
        path.join(dir, 'onnx', 'decoder_model_merged.onnx'),
        likeAMergedExport(fs.readFileSync(path.join(folder.dir, 'onnx', 'model.onnx'))),
      );
      const merged = await loadLanguageModel(dir, { intraOpThreads: 1 });
      try {
        assert.equal(merged.onnxFile, 'onnx/decoder_model_merged.onnx');
        const result = await generate(merged, PROMPT, { maxTokens: 20 });
        assert.deepEqual(result.generatedIds, reference);
      } finally {
        await merged.dispose();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('timings are reported', async () => {
    const result = await generate(model, PROMPT, { maxTokens: 10 });
    assert.ok(result.timings.promptMs > 0);
    assert.ok(result.timings.perTokenMs > 0);
  });
});

describe('sampling', () => {
  const logits = Float32Array.from([1, 3, 2, -1, 2.5, 0]); // order: 1, 4, 2, 0, 5, 3

  test('greedy picks the largest logit and reports its probability', () => {
    const id = new Sampler().pick(logits);
    assert.equal(id, 1);
    const expected = Math.exp(3) / Array.from(logits).reduce((s, x) => s + Math.exp(x), 0);
    assert.ok(Math.abs(tokenProbability(logits, id) - expected) < 1e-9);
  });

  test('log-softmax helpers agree with each other', () => {
    const table = logSoftmax(logits);
    for (let i = 0; i < logits.length; i++) assert.ok(Math.abs(table[i] - logProbability(logits, i)) < 1e-6);
    const total = Array.from(table).reduce((s, x) => s + Math.exp(x), 0);
    assert.ok(Math.abs(total - 1) < 1e-6);
  });

  test('top-k keeps only the k most likely tokens', () => {
    const sampler = new Sampler({ temperature: 5, topK: 2, seed: 3 });
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) seen.add(sampler.pick(logits));
    assert.deepEqual([...seen].sort(), [1, 4]);
  });

  test('top-p keeps the smallest set reaching p', () => {
    // Probabilities at temperature 1: ≈ .459, .278, .169, .062, .023, .008 for ids 1, 4, 2, 0, 5, 3.
    const sampler = new Sampler({ temperature: 1, topP: 0.8, seed: 5 });
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) seen.add(sampler.pick(logits));
    assert.deepEqual([...seen].sort(), [1, 2, 4]);
  });

  test('top-k and top-p keep the same tokens as sorting would, on random distributions', () => {
    const random = uniform(17);
    for (let trial = 0; trial < 12; trial++) {
      const row = Float32Array.from({ length: 30 }, () => (random() - 0.5) * (trial % 3 === 0 ? 0.2 : 6));
      for (const topP of [0.3, 0.6, 0.9]) {
        for (const topK of [0, 10]) {
          // Reference: sort, cut to k, renormalize, keep the shortest prefix reaching p.
          const probs = Array.from(row, (x, id) => ({ id, p: Math.exp(x) })).sort((a, b) => b.p - a.p);
          const kept = topK ? probs.slice(0, topK) : probs;
          const total = kept.reduce((s, e) => s + e.p, 0);
          const nucleus: number[] = [];
          let sum = 0;
          for (const e of kept) {
            nucleus.push(e.id);
            sum += e.p;
            if (sum >= topP * total) break;
          }
          const sampler = new Sampler({ temperature: 1, topP, topK, seed: trial });
          const seen = new Set<number>();
          for (let i = 0; i < 4000; i++) seen.add(sampler.pick(row));
          assert.deepEqual(
            [...seen].sort((a, b) => a - b),
            nucleus.sort((a, b) => a - b),
            `trial ${trial} p ${topP} k ${topK}`,
          );
        }
      }
    }
  });

  test('sampling frequencies follow the softmax', () => {
    const sampler = new Sampler({ temperature: 1, seed: 11 });
    const counts = new Array(logits.length).fill(0);
    const n = 20000;
    for (let i = 0; i < n; i++) counts[sampler.pick(logits)]++;
    for (let id = 0; id < logits.length; id++) {
      const p = tokenProbability(logits, id);
      assert.ok(Math.abs(counts[id] / n - p) < 0.02, `id ${id}: ${counts[id] / n} vs ${p}`);
    }
  });

  test('invalid options are rejected', () => {
    assert.throws(() => new Sampler({ temperature: -1 }), /temperature/);
    assert.throws(() => new Sampler({ topP: 0 }), /topP/);
    assert.throws(() => new Sampler({ topK: 1.5 }), /topK/);
  });
});

describe('loadLanguageModel errors', () => {
  let scratch: string;
  before(() => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-bad-'));
  });
  after(() => fs.rmSync(scratch, { recursive: true, force: true }));

  const config = {
    model_type: 'gpt2',
    vocab_size: 8,
    n_positions: 16,
    n_layer: 1,
    n_head: 1,
    n_embd: 4,
    eos_token_id: 0,
  };
  function folderWith(name: string, files: Record<string, string | Uint8Array>): string {
    const dir = path.join(scratch, name);
    for (const [file, content] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      fs.writeFileSync(path.join(dir, file), content);
    }
    return dir;
  }

  test('a missing folder, config.json or ONNX file is named', async () => {
    await assert.rejects(loadLanguageModel(path.join(scratch, 'nowhere')), /model folder not found/);
    await assert.rejects(loadLanguageModel(folderWith('empty', { 'README.md': '' })), /config\.json is missing/);
    await assert.rejects(
      loadLanguageModel(folderWith('noOnnx', { 'config.json': JSON.stringify(config) })),
      /: onnx\/model\.onnx is missing/,
    );
  });

  test('a corrupt ONNX file and a model without past_key_values are reported', async () => {
    const tokenizerFiles = await tokenizerOf();
    await assert.rejects(
      loadLanguageModel(
        folderWith('corrupt', {
          'config.json': JSON.stringify(config),
          'onnx/model.onnx': 'not a model',
          ...tokenizerFiles,
        }),
      ),
      /onnx\/model\.onnx could not be loaded/,
    );
    // input_ids → logits with nothing else: a decoder exported without a KV cache.
    const noCache = encodeModel({
      name: 'no_cache',
      opset: 17,
      inputs: [{ name: 'input_ids', type: 'int64', shape: ['batch_size', 'sequence_length'] }],
      outputs: [{ name: 'logits', type: 'float32', shape: ['batch_size', 'sequence_length'] }],
      nodes: [
        { op: 'Cast', inputs: ['input_ids'], outputs: ['logits'], attributes: { to: { kind: 'int', value: 1 } } },
      ],
      initializers: [],
    });
    await assert.rejects(
      loadLanguageModel(
        folderWith('noCache', { 'config.json': JSON.stringify(config), 'onnx/model.onnx': noCache, ...tokenizerFiles }),
      ),
      /not a GPT-2-layout model \(no past_key_values inputs\)/,
    );
  });

  /** The tokenizer files of a tiny trained folder. */
  async function tokenizerOf(): Promise<Record<string, string>> {
    const small = await makeModelFolder({ parentDir: scratch });
    const files: Record<string, string> = {};
    for (const name of ['tokenizer.json', 'tokenizer_config.json'])
      files[name] = fs.readFileSync(path.join(small.dir, name), 'utf8');
    return files;
  }
});

/**
 * Our model.onnx rewritten to look like other exporters' decoders: position_ids is computed inside the graph
 * from the attention mask's length instead of being an input, and there is a (here unused) use_cache_branch
 * input as in merged decoders.
 */
function likeAMergedExport(bytes: Uint8Array): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph!;
  const inputs = (graph.input ?? []).filter((input) => input.name !== 'position_ids');
  graph.input = inputs;
  inputs.push({
    name: 'use_cache_branch',
    type: { tensorType: { elemType: onnx.TensorProto.DataType.BOOL, shape: { dim: [{ dimValue: 1 }] } } },
  });
  const int64 = (name: string, values: bigint[], dims: number[]) => ({
    name,
    dims,
    dataType: onnx.TensorProto.DataType.INT64,
    rawData: new Uint8Array(BigInt64Array.from(values).buffer),
  });
  (graph.initializer ??= []).push(int64('position_one', [1n], []), int64('position_axes', [0n], [1]));
  const node = (opType: string, input: string[], output: string, attribute: onnx.IAttributeProto[] = []) =>
    onnx.NodeProto.create({ name: `position_${output}`, opType, input, output: [output], attribute });
  const axis0 = [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }];
  (graph.node ??= []).unshift(
    node('Shape', ['attention_mask'], 'mask_shape'),
    node('Gather', ['mask_shape', 'position_one'], 'total', axis0),
    node('Shape', ['input_ids'], 'ids_shape'),
    node('Gather', ['ids_shape', 'position_one'], 'new_length', axis0),
    node('Sub', ['total', 'new_length'], 'start'),
    node('Range', ['start', 'total', 'position_one'], 'range'),
    node('Unsqueeze', ['range', 'position_axes'], 'position_ids'),
  );
  return onnx.ModelProto.encode(model).finish();
}
