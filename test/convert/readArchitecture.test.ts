// readArchitecture on config.json files as the hub has them: StarCoder2 (LayerNorm, use_bias, plain gelu MLP,
// sliding window, tied by default) and GPT-BigCode (multi_query, n_inner null, tied) read with Hugging Face's
// defaults, Llama's attention_bias reaching o_proj too, and unsupported options refused with the field named.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cacheGeometry, parameterShapesOf } from '../../server/src/engine/architecture';
import { readArchitecture, readFolderConfig } from '../../server/src/modelFolder/config';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-configs-'));
let count = 0;
function folderWith(config: Record<string, unknown>): string {
  const dir = path.join(root, String(count++));
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

/** bigcode/starcoder2-3b's config.json, shrunk. */
const starcoder2 = {
  architectures: ['Starcoder2ForCausalLM'],
  model_type: 'starcoder2',
  hidden_size: 48,
  intermediate_size: 192,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  hidden_act: 'gelu_pytorch_tanh',
  max_position_embeddings: 16384,
  norm_epsilon: 1e-5,
  rope_theta: 999999.4420358813,
  sliding_window: 4096,
  use_bias: true,
  vocab_size: 300,
  bos_token_id: 0,
  eos_token_id: 0,
};

/** bigcode/tiny_starcoder_py's config.json, shrunk (no tie_word_embeddings, n_inner null). */
const gptBigCode = {
  architectures: ['GPTBigCodeForCausalLM'],
  model_type: 'gpt_bigcode',
  n_embd: 48,
  n_head: 4,
  n_inner: null,
  n_layer: 2,
  n_positions: 64,
  activation_function: 'gelu_pytorch_tanh',
  layer_norm_epsilon: 1e-5,
  multi_query: true,
  scale_attn_weights: true,
  vocab_size: 300,
  bos_token_id: 0,
  eos_token_id: 0,
};

after(() => fs.rmSync(root, { recursive: true, force: true }));

describe('StarCoder2 configs', () => {
  test('read as the Llama family with LayerNorm, biases everywhere, a plain MLP and the sliding window', () => {
    const a = readArchitecture(folderWith(starcoder2));
    assert.equal(a.family, 'llama');
    if (a.family !== 'llama') return;
    const { norm, mlp, activation, qkvBias, outputBias, mlpBias, slidingWindow, tiedHead, normEpsilon } = a.config;
    assert.deepEqual(
      { norm, mlp, activation, qkvBias, outputBias, mlpBias, slidingWindow, tiedHead, normEpsilon },
      {
        norm: 'layer',
        mlp: 'plain',
        activation: 'gelu_pytorch_tanh',
        qkvBias: true,
        outputBias: true,
        mlpBias: true,
        slidingWindow: 4096,
        tiedHead: true,
        normEpsilon: 1e-5,
      },
    );
    const names = parameterShapesOf(a).map(([name]) => name);
    for (const name of ['model.norm.bias', 'model.layers.1.self_attn.o_proj.bias', 'model.layers.0.mlp.c_fc.bias']) {
      assert.ok(names.includes(name), name);
    }
    assert.ok(!names.includes('lm_head.weight') && !names.some((n) => n.includes('gate_proj')));
  });

  test('use_bias false drops every bias but the LayerNorms', () => {
    const a = readArchitecture(folderWith({ ...starcoder2, use_bias: false, tie_word_embeddings: false }));
    const biases = parameterShapesOf(a).filter(([name]) => name.endsWith('.bias'));
    assert.ok(biases.every(([name]) => name.includes('norm')));
    assert.ok(parameterShapesOf(a).some(([name]) => name === 'lm_head.weight'));
  });

  test('an unsupported activation or option is refused with the field named', () => {
    assert.throws(() => readArchitecture(folderWith({ ...starcoder2, hidden_act: 'mish' })), /hidden_act "mish"/);
    assert.throws(() => readArchitecture(folderWith({ ...starcoder2, sliding_window: 'wide' })), /sliding_window/);
    assert.throws(() => readArchitecture(folderWith({ ...starcoder2, use_bias: 'yes' })), /use_bias/);
  });
});

describe('GPT-BigCode configs', () => {
  test('multi_query reads as one fused key/value cache head; n_inner null is 4 · n_embd; the head is tied', () => {
    const dir = folderWith(gptBigCode);
    const a = readArchitecture(dir);
    assert.equal(a.family, 'gpt_bigcode');
    if (a.family !== 'gpt_bigcode') return;
    assert.equal(a.config.inner, 192);
    assert.equal(a.config.multiQuery, true);
    assert.equal(a.config.tiedHead, true);
    assert.deepEqual(cacheGeometry(a), { layers: 2, kvHeads: 1, headDim: 12, layout: 'fused' });
    const shapes = new Map(parameterShapesOf(a));
    assert.deepEqual(shapes.get('transformer.h.0.attn.c_attn.weight'), [48 + 2 * 12, 48]);
    assert.deepEqual(shapes.get('transformer.h.0.mlp.c_fc.weight'), [192, 48]);
    assert.ok(!shapes.has('lm_head.weight'));
    assert.equal(readFolderConfig(dir).kvHeads, 1);
  });

  test('multi_query false caches keys and values per head, apart', () => {
    const a = readArchitecture(folderWith({ ...gptBigCode, multi_query: false, n_inner: 96 }));
    assert.deepEqual(cacheGeometry(a), { layers: 2, kvHeads: 4, headDim: 12, layout: 'separate' });
    assert.deepEqual(new Map(parameterShapesOf(a)).get('transformer.h.1.attn.c_attn.weight'), [3 * 48, 48]);
  });

  test('unsupported options are refused with the field named', () => {
    assert.throws(
      () => readArchitecture(folderWith({ ...gptBigCode, add_cross_attention: true })),
      /add_cross_attention/,
    );
    assert.throws(
      () => readArchitecture(folderWith({ ...gptBigCode, activation_function: 'mish' })),
      /activation_function/,
    );
    assert.throws(() => readArchitecture(folderWith({ ...gptBigCode, n_inner: 2.5 })), /n_inner/);
  });
});

describe('the other families', () => {
  const llama = {
    model_type: 'llama',
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 1,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 64,
    vocab_size: 100,
  };

  test("Llama's attention_bias puts biases on q, k, v and o_proj; mlp_bias on the MLP", () => {
    const a = readArchitecture(folderWith({ ...llama, attention_bias: true, mlp_bias: true }));
    const biases = parameterShapesOf(a)
      .map(([name]) => name)
      .filter((name) => name.endsWith('.bias'));
    const projections = ['q', 'k', 'v', 'o'].map((p) => `model.layers.0.self_attn.${p}_proj.bias`);
    const mlp = ['gate', 'up', 'down'].map((p) => `model.layers.0.mlp.${p}_proj.bias`);
    assert.deepEqual(biases.sort(), [...projections, ...mlp].sort());
  });

  test('Mistral reads its sliding_window; Qwen2 with use_sliding_window is refused; unknown families name the supported', () => {
    const mistral = readArchitecture(folderWith({ ...llama, model_type: 'mistral', sliding_window: 16 }));
    assert.equal(mistral.family === 'llama' && mistral.config.slidingWindow, 16);
    const qwen2 = readArchitecture(folderWith({ ...llama, model_type: 'qwen2', sliding_window: 16 }));
    assert.equal(qwen2.family === 'llama' && qwen2.config.slidingWindow, undefined);
    assert.throws(
      () => readArchitecture(folderWith({ ...llama, model_type: 'qwen2', use_sliding_window: true })),
      /use_sliding_window/,
    );
    assert.throws(() => readArchitecture(folderWith({ ...llama, hidden_act: 'gelu' })), /hidden_act "gelu"/);
    assert.throws(() => readArchitecture(folderWith({ ...llama, model_type: 'mamba' })), /starcoder2, gpt_bigcode/);
  });
});
