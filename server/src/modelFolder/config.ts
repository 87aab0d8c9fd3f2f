// A model folder's config.json and generation_config.json in the Hugging Face / transformers.js layout: read from
// any folder (ours, a PyTorch export or a hub checkpoint of a supported family), written for the models we train.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Architecture } from '../engine/architecture';
import type { RopeScaling } from '../engine/llama';
import type { GptConfig } from '../engine/model';
import { writeFileAtomic } from '../util/atomicFile';

export const ONNX_FILE = path.join('onnx', 'model.onnx');

export interface FolderConfig extends GptConfig {
  /** config.json's model_type: gpt2, llama, qwen2, mistral… */
  modelType: string;
  /** Key/value heads (fewer than `heads` with grouped-query attention) and the width of one head. */
  kvHeads: number;
  headDim: number;
  eosTokenId: number;
  bosTokenId: number;
}

/** The model_type values of the Llama family: one architecture, several names on the hub. */
export const llamaModelTypes = ['llama', 'qwen2', 'mistral'] as const;

function readRawConfig(modelDir: string): { file: string; raw: Record<string, unknown> } {
  const file = path.join(modelDir, 'config.json');
  if (!fs.existsSync(file)) throw new Error(`${modelDir} is not a model folder: config.json is missing`);
  return { file, raw: JSON.parse(fs.readFileSync(file, 'utf8')) };
}

function numberReader(file: string, raw: Record<string, unknown>) {
  return (...keys: string[]): number => {
    for (const k of keys) if (typeof raw[k] === 'number') return raw[k] as number;
    throw new Error(`${file}: missing ${keys.join(' or ')}`);
  };
}

export function readFolderConfig(modelDir: string): FolderConfig {
  const { file, raw } = readRawConfig(modelDir);
  const number = numberReader(file, raw);
  const eos = Array.isArray(raw.eos_token_id) ? raw.eos_token_id[0] : raw.eos_token_id;
  const heads = number('n_head', 'num_attention_heads');
  const embedding = number('n_embd', 'hidden_size');
  return {
    modelType: typeof raw.model_type === 'string' ? raw.model_type : 'gpt2',
    vocabSize: number('vocab_size'),
    contextLength: number('n_positions', 'max_position_embeddings', 'n_ctx'),
    layers: number('n_layer', 'num_hidden_layers'),
    heads,
    kvHeads: typeof raw.num_key_value_heads === 'number' ? raw.num_key_value_heads : heads,
    headDim: typeof raw.head_dim === 'number' ? raw.head_dim : embedding / heads,
    embedding,
    eosTokenId: typeof eos === 'number' ? eos : 0,
    bosTokenId: typeof raw.bos_token_id === 'number' ? raw.bos_token_id : typeof eos === 'number' ? eos : 0,
  };
}

/** The architecture config.json describes, for building its graph with the engine (conversion, fine-tuning). */
export function readArchitecture(modelDir: string): Architecture {
  const { file, raw } = readRawConfig(modelDir);
  const number = numberReader(file, raw);
  const folder = readFolderConfig(modelDir);
  const modelType = folder.modelType;
  if (modelType === 'gpt2') {
    const { vocabSize, contextLength, layers, heads, embedding } = folder;
    return { family: 'gpt2', config: { vocabSize, contextLength, layers, heads, embedding } };
  }
  if (!(llamaModelTypes as readonly string[]).includes(modelType)) {
    throw new Error(
      `${file}: model_type "${modelType}" cannot be converted; supported: gpt2, ${llamaModelTypes.join(', ')}`,
    );
  }
  if (raw.hidden_act !== undefined && raw.hidden_act !== 'silu') {
    throw new Error(`${file}: hidden_act "${String(raw.hidden_act)}" is not supported for ${modelType} (silu is)`);
  }
  return {
    family: 'llama',
    config: {
      vocabSize: folder.vocabSize,
      contextLength: folder.contextLength,
      layers: folder.layers,
      heads: folder.heads,
      kvHeads: folder.kvHeads,
      headDim: folder.headDim,
      embedding: folder.embedding,
      intermediate: number('intermediate_size'),
      normEpsilon: typeof raw.rms_norm_eps === 'number' ? raw.rms_norm_eps : 1e-6,
      ropeTheta: typeof raw.rope_theta === 'number' ? raw.rope_theta : 10000,
      ropeScaling: readRopeScaling(file, raw.rope_scaling),
      qkvBias: modelType === 'qwen2' || raw.attention_bias === true,
      tiedHead: raw.tie_word_embeddings === true,
    },
  };
}

function readRopeScaling(file: string, value: unknown): RopeScaling | undefined {
  if (value === null || value === undefined) return undefined;
  const scaling = value as Record<string, unknown>;
  const type = scaling.rope_type ?? scaling.type;
  if (type === 'default') return undefined;
  if (type !== 'linear' && type !== 'llama3') {
    throw new Error(`${file}: rope_scaling of type "${String(type)}" is not supported (linear and llama3 are)`);
  }
  const optional = (key: string) => (typeof scaling[key] === 'number' ? (scaling[key] as number) : undefined);
  const factor = optional('factor');
  if (factor === undefined) throw new Error(`${file}: rope_scaling has no factor`);
  return {
    type,
    factor,
    lowFrequencyFactor: optional('low_freq_factor'),
    highFrequencyFactor: optional('high_freq_factor'),
    originalContextLength: optional('original_max_position_embeddings'),
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
