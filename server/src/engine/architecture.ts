// The model families the engine can build, as one tagged type: each family's parameter table and forward pass,
// so inference graphs (and, for fine-tuning, training graphs) are built the same way for every family.
import type { Graph, Value } from './graph';
import { type LlamaConfig, llamaForward, llamaParameterShapes } from './llama';
import {
  type GptConfig,
  type LayerCacheValues,
  forward as gptForward,
  parameterShapes as gptParameterShapes,
} from './model';

export type Architecture = { family: 'gpt2'; config: GptConfig } | { family: 'llama'; config: LlamaConfig };

export function parameterShapesOf(a: Architecture): [string, number[]][] {
  return a.family === 'gpt2' ? gptParameterShapes(a.config) : llamaParameterShapes(a.config);
}

/** The shape of one layer's cached keys (and values): [batch, kvHeads, past, headDim]. */
export function cacheGeometry(a: Architecture): { layers: number; kvHeads: number; headDim: number } {
  const c = a.config;
  if (a.family === 'gpt2') return { layers: c.layers, kvHeads: c.heads, headDim: c.embedding / c.heads };
  return { layers: c.layers, kvHeads: a.config.kvHeads, headDim: a.config.headDim };
}

export function forwardOf(
  g: Graph,
  a: Architecture,
  weights: Record<string, Value>,
  tokens: Value,
  positions: Value,
  attentionBias: Value,
  caches?: LayerCacheValues[],
): Value {
  return a.family === 'gpt2'
    ? gptForward(g, a.config, weights, tokens, positions, attentionBias, caches)
    : llamaForward(g, a.config, weights, tokens, positions, attentionBias, caches);
}
