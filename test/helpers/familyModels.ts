// Makes tiny random Llama-family model folders (llama, qwen2) in a temp dir for runtime tests: PyTorch writes the
// Hugging Face files, the transformers.js ONNX export and reference logits (scripts/makeFamilyModels.py, run with
// /usr/bin/python3), and the project's BPE trainer adds tokenizer files with the model's vocabulary size.
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { trainBpe } from '../../server/src/train/bpeTrainer';
import { writeTokenizerFiles } from '../../server/src/tokenizer/tokenizerFiles';
import { sampleCode } from './makeModelFolder';

export type Family = 'llama' | 'qwen2';

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
}

/** config.json as written by the script (the fields the tests read; the file has more). */
export interface FamilyConfig {
  architectures: string[];
  model_type: Family;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim?: number;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling: null | { rope_type: string; factor: number; [key: string]: unknown };
  tie_word_embeddings: boolean;
  vocab_size: number;
  bos_token_id: number;
  eos_token_id: number;
  torch_dtype: string;
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

export interface FamilyModel {
  dir: string;
  config: FamilyConfig;
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

export async function makeFamilyModel(options: FamilyModelOptions): Promise<FamilyModel> {
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
  const config = read('config.json') as FamilyConfig;
  const reference = read('reference.json') as FamilyReference;
  writeTokenizerFiles(dir, trained, { modelMaxLength: config.max_position_embeddings });
  return { dir, config, reference, seconds, remove };
}
