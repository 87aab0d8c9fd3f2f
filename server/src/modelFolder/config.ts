// A model folder's config.json and generation_config.json in the Hugging Face / transformers.js GPT-2 layout:
// read from any GPT-2-layout folder (ours or one exported by PyTorch), written for the models we train.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { GptConfig } from '../engine/model';
import { writeFileAtomic } from '../util/atomicFile';

export const ONNX_FILE = path.join('onnx', 'model.onnx');

export interface FolderConfig extends GptConfig {
  eosTokenId: number;
  bosTokenId: number;
}

export function readFolderConfig(modelDir: string): FolderConfig {
  const file = path.join(modelDir, 'config.json');
  if (!fs.existsSync(file)) throw new Error(`${modelDir} is not a model folder: config.json is missing`);
  const raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  const number = (...keys: string[]) => {
    for (const k of keys) if (typeof raw[k] === 'number') return raw[k] as number;
    throw new Error(`${file}: missing ${keys.join(' or ')}`);
  };
  const eos = Array.isArray(raw.eos_token_id) ? raw.eos_token_id[0] : raw.eos_token_id;
  return {
    vocabSize: number('vocab_size'),
    contextLength: number('n_positions', 'max_position_embeddings', 'n_ctx'),
    layers: number('n_layer', 'num_hidden_layers'),
    heads: number('n_head', 'num_attention_heads'),
    embedding: number('n_embd', 'hidden_size'),
    eosTokenId: typeof eos === 'number' ? eos : 0,
    bosTokenId: typeof raw.bos_token_id === 'number' ? raw.bos_token_id : typeof eos === 'number' ? eos : 0,
  };
}

/** Writes config.json and generation_config.json for a GPT-2 model we trained. */
export function writeConfigFiles(modelDir: string, config: GptConfig, eosTokenId: number): void {
  const hf = {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    vocab_size: config.vocabSize,
    n_positions: config.contextLength,
    n_ctx: config.contextLength,
    n_embd: config.embedding,
    n_layer: config.layers,
    n_head: config.heads,
    n_inner: null,
    activation_function: 'gelu_new',
    layer_norm_epsilon: 1e-5,
    resid_pdrop: 0,
    embd_pdrop: 0,
    attn_pdrop: 0,
    initializer_range: 0.02,
    bos_token_id: eosTokenId,
    eos_token_id: eosTokenId,
    tie_word_embeddings: true,
    use_cache: true,
  };
  const generation = { bos_token_id: eosTokenId, eos_token_id: eosTokenId, max_new_tokens: 64 };
  writeFileAtomic(path.join(modelDir, 'config.json'), JSON.stringify(hf, null, 2) + '\n');
  writeFileAtomic(path.join(modelDir, 'generation_config.json'), JSON.stringify(generation, null, 2) + '\n');
}
