// Makes tiny random model folders (llama, qwen2, starcoder2, gpt_bigcode) in a temp dir for runtime tests: PyTorch
// writes the Hugging Face files, the transformers.js ONNX export and reference logits (scripts/makeFamilyModels.py,
// run with /usr/bin/python3), and the project's BPE trainer adds tokenizer files with the model's vocabulary size.
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { trainBpe } from '../../server/src/train/bpeTrainer';
import { writeTokenizerFiles } from '../../server/src/tokenizer/tokenizerFiles';
import { sampleCode } from './makeModelFolder';

/** Families whose config.json uses the Llama names (hidden_size, num_hidden_layers, num_key_value_heads…). */
export type LlamaFamily = 'llama' | 'qwen2' | 'starcoder2';
export type Family = LlamaFamily | 'gpt_bigcode';

export interface FamilyModelOptions {
  family: Family;
  /** The tokenizer's target vocabulary; the model gets the size training actually reached (default 400). */
  vocabSize?: number;
  seed?: number;
  /** The dtype of the safetensors weights (the ONNX export and the reference are float32 either way). */
  dtype?: 'float32' | 'bfloat16' | 'float16';
  /** Write the safetensors weights in this many files with an index (default 1: model.safetensors). */
  shards?: number;
  /** Parent of the temp folder (default: the OS temp dir). */
  parentDir?: string;
  /** gpt_bigcode: one key/value head shared by all heads (default true, as StarCoder and SantaCoder have). */
  multiQuery?: boolean;
}

/** config.json of the Llama-named families as written by the script (the fields the tests read; the file has more). */
export interface FamilyConfig {
  architectures: string[];
  model_type: LlamaFamily;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim?: number;
  max_position_embeddings: number;
  /** llama and qwen2 (starcoder2 has norm_epsilon). */
  rms_norm_eps?: number;
  norm_epsilon?: number;
  /** starcoder2: keys this many positions or more before a query are hidden from it. */
  sliding_window?: number;
  rope_theta: number;
  rope_scaling: null | { rope_type: string; factor: number; [key: string]: unknown };
  tie_word_embeddings: boolean;
  vocab_size: number;
  bos_token_id: number;
  eos_token_id: number;
  torch_dtype: string;
}

/** config.json of a gpt_bigcode folder (GPTBigCodeConfig's names). */
export interface GptBigCodeFamilyConfig {
  architectures: string[];
  model_type: 'gpt_bigcode';
  n_embd: number;
  n_layer: number;
  n_head: number;
  n_inner: number | null;
  n_positions: number;
  multi_query: boolean;
  vocab_size: number;
  bos_token_id: number;
  eos_token_id: number;
  torch_dtype: string;
}

export type AnyFamilyConfig = FamilyConfig | GptBigCodeFamilyConfig;

/** The sizes the tests need, whatever names the family's config.json uses. */
export function modelShape(config: AnyFamilyConfig): {
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  contextLength: number;
  tied: boolean;
} {
  if (config.model_type === 'gpt_bigcode') {
    const { n_layer: layers, n_embd: hidden, n_head: heads } = config;
    const kvHeads = config.multi_query ? 1 : heads;
    return { layers, hidden, heads, kvHeads, headDim: hidden / heads, contextLength: config.n_positions, tied: true };
  }
  return {
    layers: config.num_hidden_layers,
    hidden: config.hidden_size,
    heads: config.num_attention_heads,
    kvHeads: config.num_key_value_heads,
    headDim: config.head_dim ?? config.hidden_size / config.num_attention_heads,
    contextLength: config.max_position_embeddings,
    tied: config.tie_word_embeddings,
  };
}

/**
 * The transformers.js cache of one layer: the suffixes of its past_key_values.{i}.* inputs and present.{i}.* outputs,
 * the axis that grows with the sequence, and the dims of an empty cache tensor (batch 1). Multi-query GPT-BigCode
 * keeps one fused key_value [batch, past, 2·headDim]; the others a key and a value [batch, kvHeads, past, headDim].
 */
export function cacheLayout(config: AnyFamilyConfig): { kinds: string[]; pastAxis: number; emptyDims: number[] } {
  const { kvHeads, headDim } = modelShape(config);
  if (config.model_type === 'gpt_bigcode' && config.multi_query) {
    return { kinds: ['key_value'], pastAxis: 1, emptyDims: [1, 0, 2 * headDim] };
  }
  return { kinds: ['key', 'value'], pastAxis: 2, emptyDims: [1, kvHeads, 0, headDim] };
}

/** reference.json: PyTorch's logits and greedy tokens for `token_ids`. */
export interface FamilyReference {
  family: Family;
  seed: number;
  dtype: string;
  token_ids: number[];
  /** One run over every token: the logits at `positions` (the last two) and the argmax at every position. */
  full: { positions: number[]; logits: number[][]; argmax: number[] };
  /** A run over the first prefill_length tokens, then one run per remaining token with the cache: their logits. */
  cached: { prefill_length: number; positions: number[]; logits: number[][] };
  /** Greedy continuation of token_ids, stopping after the end-of-text token as generate does. */
  greedy: { max_new_tokens: number; eos_token_id: number; tokens: number[]; min_margin: number };
}

export interface FamilyModel<Config extends AnyFamilyConfig = FamilyConfig> {
  dir: string;
  config: Config;
  reference: FamilyReference;
  /** Seconds the Python script took. */
  seconds: number;
  remove(): void;
}

export const PYTHON = '/usr/bin/python3';
export const SCRIPT = path.resolve(__dirname, '..', '..', 'scripts', 'makeFamilyModels.py');

let pythonChecked = false;

/** Throws unless /usr/bin/python3 imports torch and onnx (Debian's packages; PyPI is not used). */
export function checkPython(): void {
  if (pythonChecked) return;
  const probe = spawnSync(PYTHON, ['-c', 'import torch, onnx'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    const why = probe.error ? probe.error.message : probe.stderr.trim().split('\n').pop();
    throw new Error(
      `makeFamilyModel needs PyTorch and ONNX for ${PYTHON} (${why}); install them with ` +
        '`apt-get install python3-torch python3-onnx`',
    );
  }
  pythonChecked = true;
}

export async function makeFamilyModel(options: FamilyModelOptions & { family: LlamaFamily }): Promise<FamilyModel>;
export async function makeFamilyModel(options: FamilyModelOptions): Promise<FamilyModel<AnyFamilyConfig>>;
export async function makeFamilyModel(options: FamilyModelOptions): Promise<FamilyModel<AnyFamilyConfig>> {
  checkPython();
  const trained = trainBpe(sampleCode(), { vocabSize: options.vocabSize ?? 400, minFrequency: 1 });
  const eos = trained.specialTokens.find((token) => token.content === '<|endoftext|>')?.id ?? 0;
  const dir = fs.mkdtempSync(path.join(options.parentDir ?? os.tmpdir(), `modelwright-${options.family}-`));
  const remove = () => fs.rmSync(dir, { recursive: true, force: true });
  const args = [
    SCRIPT,
    ...['--family', options.family, '--out', dir, '--vocab-size', String(trained.vocab.length)],
    ...['--seed', String(options.seed ?? 1), '--dtype', options.dtype ?? 'float32'],
    ...['--shards', String(options.shards ?? 1), '--bos-token-id', String(eos), '--eos-token-id', String(eos)],
    ...(options.family === 'gpt_bigcode' ? ['--multi-query', String(options.multiQuery ?? true)] : []),
  ];
  const start = performance.now();
  try {
    await promisify(execFile)(PYTHON, args, {
      // PASSIVE: torch's OpenMP threads do not spin after the script's work (it uses one thread anyway).
      env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE', PYTHONDONTWRITEBYTECODE: '1' },
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (e) {
    remove();
    const stderr = (e as { stderr?: string }).stderr?.trim();
    throw new Error(`${path.basename(SCRIPT)} --family ${options.family} failed: ${stderr || String(e)}`);
  }
  const seconds = (performance.now() - start) / 1000;
  const read = (name: string): unknown => JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8'));
  const config = read('config.json') as AnyFamilyConfig;
  const reference = read('reference.json') as FamilyReference;
  writeTokenizerFiles(dir, trained, { modelMaxLength: modelShape(config).contextLength });
  return { dir, config, reference, seconds, remove };
}
