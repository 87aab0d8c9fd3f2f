// A model folder's config.json and generation_config.json in the Hugging Face / transformers.js layout: read from
// any folder (ours, a PyTorch export or a hub checkpoint of a supported family), written for the models we train.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { activationNames, isActivationName } from '../engine/activations';
import type { Architecture } from '../engine/architecture';
import type { GptBigCodeConfig } from '../engine/gptBigCode';
import type { LlamaConfig, RopeScaling } from '../engine/llama';
import type { GptConfig } from '../engine/model';
import { writeFileAtomic } from '../util/atomicFile';

export const ONNX_FILE = path.join('onnx', 'model.onnx');

/** A model folder's config and every file a tokenizer or chat template may need, besides the weights. */
export const METADATA_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'vocab.json',
  'merges.txt',
  'tokenizer.model',
  'chat_template.jinja',
] as const;

export interface FolderConfig extends GptConfig {
  /** config.json's model_type: gpt2, llama, qwen2, mistral, starcoder2, gpt_bigcode… */
  modelType: string;
  /** Key/value heads (fewer than `heads` with grouped-query attention) and the width of one head. */
  kvHeads: number;
  headDim: number;
  eosTokenId: number;
  bosTokenId: number;
}

/** The model_type values of the Llama family: one architecture, several names on the hub. */
export const llamaModelTypes = ['llama', 'qwen2', 'mistral', 'starcoder2'] as const;

/** Every model_type readArchitecture can build a graph for. */
export const convertibleModelTypes = ['gpt2', ...llamaModelTypes, 'gpt_bigcode'] as const;

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
    kvHeads: typeof raw.num_key_value_heads === 'number' ? raw.num_key_value_heads : isMultiQuery(raw) ? 1 : heads,
    headDim: typeof raw.head_dim === 'number' ? raw.head_dim : embedding / heads,
    embedding,
    eosTokenId: typeof eos === 'number' ? eos : 0,
    bosTokenId: typeof raw.bos_token_id === 'number' ? raw.bos_token_id : typeof eos === 'number' ? eos : 0,
  };
}

/** GPT-BigCode's multi_query (true unless config.json says otherwise): one key/value head for every query head. */
function isMultiQuery(raw: Record<string, unknown>): boolean {
  return raw.model_type === 'gpt_bigcode' && raw.multi_query !== false;
}

/** The architecture config.json describes, for building its graph with the engine (conversion, fine-tuning). */
export function readArchitecture(modelDir: string): Architecture {
  const { file, raw } = readRawConfig(modelDir);
  const folder = readFolderConfig(modelDir);
  const modelType = folder.modelType;
  if (modelType === 'gpt2') {
    const { vocabSize, contextLength, layers, heads, embedding } = folder;
    return { family: 'gpt2', config: { vocabSize, contextLength, layers, heads, embedding } };
  }
  if (modelType === 'gpt_bigcode') return { family: 'gpt_bigcode', config: readGptBigCode(file, raw, folder) };
  if (!(llamaModelTypes as readonly string[]).includes(modelType)) {
    throw new Error(
      `${file}: model_type "${modelType}" cannot be converted; supported: ${convertibleModelTypes.join(', ')}`,
    );
  }
  return { family: 'llama', config: readLlama(file, raw, folder) };
}

/** A boolean field, its default when absent or null; anything else is refused. */
function booleanReader(file: string, raw: Record<string, unknown>) {
  return (key: string, fallback: boolean): boolean => {
    const value = raw[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'boolean')
      throw new Error(`${file}: ${key} must be true or false, not ${JSON.stringify(value)}`);
    return value;
  };
}

/** Throws unless `raw[key]` is absent or one of `allowed` (naming the field, the value and what is supported). */
function requireOneOf(file: string, raw: Record<string, unknown>, key: string, allowed: readonly unknown[]): void {
  const value = raw[key];
  if (value === undefined || value === null || allowed.includes(value)) return;
  const modelType = String(raw.model_type);
  throw new Error(
    `${file}: ${key} ${JSON.stringify(value)} is not supported for ${modelType} (supported: ${allowed.map((v) => JSON.stringify(v)).join(', ')})`,
  );
}

/** Llama, Qwen2, Mistral and StarCoder2 (LayerNorm, use_bias, a plain MLP, norm_epsilon). */
function readLlama(file: string, raw: Record<string, unknown>, folder: FolderConfig): LlamaConfig {
  const number = numberReader(file, raw);
  const boolean = booleanReader(file, raw);
  const modelType = folder.modelType;
  const starcoder2 = modelType === 'starcoder2';
  const activation = raw.hidden_act ?? (starcoder2 ? 'gelu_pytorch_tanh' : 'silu');
  // The gated MLP multiplies silu(gate) by up; StarCoder2's plain MLP takes any of the gelu family.
  requireOneOf(file, raw, 'hidden_act', starcoder2 ? activationNames : ['silu']);
  if (!isActivationName(activation)) throw new Error(`${file}: hidden_act ${String(activation)} is not supported`);
  if (modelType === 'qwen2' && raw.use_sliding_window === true) {
    throw new Error(`${file}: use_sliding_window true is not supported for qwen2 (its windows depend on the layer)`);
  }
  requireOneOf(file, raw, 'partial_rotary_factor', [1]);
  const epsilonKey = starcoder2 ? 'norm_epsilon' : 'rms_norm_eps';
  const attentionBias = boolean('attention_bias', false);
  const useBias = boolean('use_bias', true);
  const rope = (raw.rope_parameters ?? {}) as Record<string, unknown>;
  const ropeTheta = raw.rope_theta ?? rope.rope_theta ?? 10000;
  if (typeof ropeTheta !== 'number') throw new Error(`${file}: rope_theta must be a number`);
  const slidingWindow = modelType === 'qwen2' ? null : raw.sliding_window;
  if (
    slidingWindow !== undefined &&
    slidingWindow !== null &&
    !(Number.isInteger(slidingWindow) && (slidingWindow as number) > 0)
  ) {
    throw new Error(`${file}: sliding_window must be a positive integer or null, not ${JSON.stringify(slidingWindow)}`);
  }
  return {
    vocabSize: folder.vocabSize,
    contextLength: folder.contextLength,
    layers: folder.layers,
    heads: folder.heads,
    kvHeads: folder.kvHeads,
    headDim: folder.headDim,
    embedding: folder.embedding,
    intermediate: number('intermediate_size'),
    normEpsilon: raw[epsilonKey] === undefined ? (starcoder2 ? 1e-5 : 1e-6) : number(epsilonKey),
    norm: starcoder2 ? 'layer' : 'rms',
    mlp: starcoder2 ? 'plain' : 'gated',
    activation,
    ropeTheta,
    ropeScaling: readRopeScaling(file, raw.rope_scaling ?? (raw.rope_parameters as unknown)),
    qkvBias: starcoder2 ? useBias : modelType === 'qwen2' || attentionBias,
    outputBias: starcoder2 ? useBias : modelType !== 'qwen2' && attentionBias,
    mlpBias: starcoder2 ? useBias : boolean('mlp_bias', false),
    slidingWindow:
      typeof slidingWindow === 'number' && slidingWindow < folder.contextLength ? slidingWindow : undefined,
    // Hugging Face's default: tied for StarCoder2 (Starcoder2Config), untied for Llama, Qwen2 and Mistral.
    tiedHead: boolean('tie_word_embeddings', starcoder2),
  };
}

/** GPT-BigCode: StarCoder, SantaCoder, tiny_starcoder (GPTBigCodeConfig's names and defaults). */
function readGptBigCode(file: string, raw: Record<string, unknown>, folder: FolderConfig): GptBigCodeConfig {
  const boolean = booleanReader(file, raw);
  if (boolean('add_cross_attention', false)) throw new Error(`${file}: add_cross_attention true is not supported`);
  requireOneOf(file, raw, 'activation_function', activationNames);
  const activation = raw.activation_function ?? 'gelu_pytorch_tanh';
  if (!isActivationName(activation))
    throw new Error(`${file}: activation_function ${String(activation)} is not supported`);
  const { embedding, heads } = folder;
  if (embedding % heads !== 0) throw new Error(`${file}: n_embd ${embedding} is not a multiple of n_head ${heads}`);
  const inner = raw.n_inner ?? 4 * embedding;
  if (!(Number.isInteger(inner) && (inner as number) > 0)) {
    throw new Error(`${file}: n_inner must be a positive integer or null, not ${JSON.stringify(raw.n_inner)}`);
  }
  return {
    vocabSize: folder.vocabSize,
    contextLength: folder.contextLength,
    layers: folder.layers,
    heads,
    embedding,
    inner: inner as number,
    multiQuery: isMultiQuery(raw),
    normEpsilon: typeof raw.layer_norm_epsilon === 'number' ? raw.layer_norm_epsilon : 1e-5,
    activation,
    scaleAttention: boolean('scale_attn_weights', true),
    tiedHead: boolean('tie_word_embeddings', true),
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
