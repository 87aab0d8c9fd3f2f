// Models with random weights for the benchmarks: the `small` preset's GPT-2 shape, and Qwen2.5-0.5B's and
// SmolLM2-135M's (their config.json, with a 2048-token context), built with the engine in float32 or int8 into .tmp on first use and kept,
// with a byte-level tokenizer trained on this repository's engine sources so that prompts of code have realistic lengths.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CONVERTED_FILES, type ConversionDtype } from '../server/src/convert/convertFolder';
import { parameterShapesOf } from '../server/src/engine/architecture';
import { buildInference } from '../server/src/engine/inferenceGraph';
import { writeModelFile } from '../server/src/engine/onnxFile';
import { quantizeModel } from '../server/src/engine/quantize';
import { gaussian } from '../server/src/engine/random';
import { readArchitecture } from '../server/src/modelFolder/config';
import type { BpeModel } from '../server/src/tokenizer/bpeEncoder';
import { writeTokenizerFiles } from '../server/src/tokenizer/tokenizerFiles';
import { trainBpe } from '../server/src/train/bpeTrainer';

const repository = path.resolve(__dirname, '..');
/** Named after the graph's features, so that a changed graph is rebuilt. */
const root = path.join(repository, '.tmp', 'bench-random-v5');

export const shapes = {
  'gpt2-small': {
    description: 'the small preset (GPT-2, hidden 256, 6 layers, 8 heads, vocab 8192, context 512)',
    config: {
      model_type: 'gpt2',
      architectures: ['GPT2LMHeadModel'],
      vocab_size: 8192,
      n_positions: 512,
      n_ctx: 512,
      n_embd: 256,
      n_layer: 6,
      n_head: 8,
      activation_function: 'gelu_new',
      layer_norm_epsilon: 1e-5,
      bos_token_id: 0,
      eos_token_id: 0,
      tie_word_embeddings: true,
      use_cache: true,
    },
  },
  'qwen2.5-0.5b': {
    description: 'Qwen2.5-0.5B (hidden 896, 24 layers, 14 heads, 2 kv heads, vocab 151936, tied)',
    config: {
      model_type: 'qwen2',
      architectures: ['Qwen2ForCausalLM'],
      hidden_size: 896,
      num_hidden_layers: 24,
      num_attention_heads: 14,
      num_key_value_heads: 2,
      intermediate_size: 4864,
      vocab_size: 151936,
      max_position_embeddings: 2048,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000,
      tie_word_embeddings: true,
      hidden_act: 'silu',
      bos_token_id: 151643,
      eos_token_id: 151643,
      use_cache: true,
    },
  },
  'smollm2-135m': {
    description: 'SmolLM2-135M (hidden 576, 30 layers, 9 heads, 3 kv heads, vocab 49152, tied)',
    config: {
      model_type: 'llama',
      architectures: ['LlamaForCausalLM'],
      hidden_size: 576,
      num_hidden_layers: 30,
      num_attention_heads: 9,
      num_key_value_heads: 3,
      intermediate_size: 1536,
      vocab_size: 49152,
      max_position_embeddings: 2048,
      rms_norm_eps: 1e-5,
      rope_theta: 100000,
      tie_word_embeddings: true,
      hidden_act: 'silu',
      bos_token_id: 0,
      eos_token_id: 0,
      use_cache: true,
    },
  },
} as const;

/** The scales of layer and RMS norms, in each family's naming (GPT-2's ln_1, Llama's input_layernorm, model.norm). */
const normScale = /(^|\.)(ln_\w+|\w*layernorm|norm)\.weight$/;

export type ShapeName = keyof typeof shapes;

/** The folder of one shape and dtype, built on first use. */
export function randomModelFolder(shape: ShapeName, dtype: ConversionDtype): string {
  const dir = path.join(root, `${shape}-${dtype}`);
  const onnxFile = path.join(dir, CONVERTED_FILES[dtype]);
  if (fs.existsSync(onnxFile)) return dir;
  const { config } = shapes[shape];
  const context = 'n_positions' in config ? config.n_positions : config.max_position_embeddings;
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeTokenizerFiles(dir, codeTokenizer(config.vocab_size), { modelMaxLength: context });
  const started = performance.now();
  const architecture = readArchitecture(dir);
  const random = gaussian(11);
  const weights = new Map<string, Float32Array>();
  for (const [name, dims] of parameterShapesOf(architecture)) {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    if (normScale.test(name)) data.fill(1);
    else if (!name.endsWith('.bias')) for (let i = 0; i < data.length; i++) data[i] = random() * 0.02;
    weights.set(name, data);
  }
  let model = buildInference(architecture, weights, { logitsToKeep: true });
  weights.clear();
  if (dtype === 'q8') model = quantizeModel(model).model;
  writeModelFile(onnxFile, model);
  console.log(
    `  built ${path.relative(repository, onnxFile)} in ${((performance.now() - started) / 1000).toFixed(0)} s`,
  );
  return dir;
}

/**
 * A byte-level BPE of up to 4096 tokens trained on the engine's sources (not the files the benchmarks type in), its
 * vocabulary filled up to the model's with tokens no merge produces (a space and lowercase letters), as a large
 * pretrained vocabulary holds many tokens that code never uses: the server accepts only a tokenizer of the model's size.
 */
function codeTokenizer(vocabSize: number): BpeModel {
  const sources = path.join(repository, 'server', 'src', 'engine');
  const texts = fs
    .readdirSync(sources)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => fs.readFileSync(path.join(sources, f), 'utf8'));
  const trained = trainBpe(texts, { vocabSize: Math.min(4096, vocabSize) });
  const vocab = [...trained.vocab];
  const taken = new Set(vocab);
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  for (let n = 0; vocab.length < vocabSize; n++) {
    let filler = '';
    for (let rest = n; filler.length < 4; rest = Math.floor(rest / letters.length)) filler += letters[rest % 26];
    if (!taken.has(`Ġ${filler}`)) vocab.push(`Ġ${filler}`);
  }
  return { vocab, merges: trained.merges, specialTokens: trained.specialTokens };
}
