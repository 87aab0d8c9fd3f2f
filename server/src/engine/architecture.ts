// The model families the engine can build, as one tagged type: each family's parameter table and forward pass,
// so inference graphs (and, for fine-tuning, training graphs) are built the same way for every family.
import type { Graph, Value } from './graph';
import { type GptBigCodeConfig, gptBigCodeForward, gptBigCodeParameterShapes, headDimOf } from './gptBigCode';
import { type LlamaConfig, llamaForward, llamaParameterShapes } from './llama';
import {
  type GptConfig,
  type LayerCacheValues,
  forward as gptForward,
  parameterShapes as gptParameterShapes,
} from './model';

export type Architecture =
  | { family: 'gpt2'; config: GptConfig }
  | { family: 'llama'; config: LlamaConfig }
  | { family: 'gpt_bigcode'; config: GptBigCodeConfig };

export function parameterShapesOf(a: Architecture): [string, number[]][] {
  switch (a.family) {
    case 'gpt2':
      return gptParameterShapes(a.config);
    case 'llama':
      return llamaParameterShapes(a.config);
    case 'gpt_bigcode':
      return gptBigCodeParameterShapes(a.config);
  }
}

export interface CacheGeometry {
  layers: number;
  kvHeads: number;
  headDim: number;
  /**
   * 'separate': past_key_values.{i}.key and .value, each [batch, kvHeads, past, headDim], and present.{i}.key and
   * .value. 'fused' (GPT-BigCode with multi-query attention, as transformers.js runs it): one
   * past_key_values.{i}.key_value [batch, past, 2·headDim] per layer, keys then values, and present.{i}.key_value.
   */
  layout: 'separate' | 'fused';
}

/** How a family's inference graph caches keys and values. */
export function cacheGeometry(a: Architecture): CacheGeometry {
  switch (a.family) {
    case 'gpt2':
      return {
        layers: a.config.layers,
        kvHeads: a.config.heads,
        headDim: a.config.embedding / a.config.heads,
        layout: 'separate',
      };
    case 'llama':
      return { layers: a.config.layers, kvHeads: a.config.kvHeads, headDim: a.config.headDim, layout: 'separate' };
    case 'gpt_bigcode': {
      const { layers, heads, multiQuery } = a.config;
      const headDim = headDimOf(a.config);
      return multiQuery
        ? { layers, kvHeads: 1, headDim, layout: 'fused' }
        : { layers, kvHeads: heads, headDim, layout: 'separate' };
    }
  }
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
  switch (a.family) {
    case 'gpt2':
      return gptForward(g, a.config, weights, tokens, positions, attentionBias, caches);
    case 'llama':
      return llamaForward(g, a.config, weights, tokens, positions, attentionBias, caches);
    case 'gpt_bigcode':
      return gptBigCodeForward(g, a.config, weights, tokens, positions, attentionBias, caches);
  }
}
