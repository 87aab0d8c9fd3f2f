// Builds the inference graph of a model of any family in the Hugging Face / transformers.js layout: inputs
// input_ids, attention_mask, position_ids, past_key_values.{i}.key|value (optionally num_logits_to_keep); outputs
// logits and present.{i}.key|value (GPT-BigCode: one fused .key_value per layer), with the weights stored as initializers
// under their Hugging Face names. new_key_values.{i}.* hold the new positions' keys and values alone, so that a
// runtime can keep the cache in its own buffers instead of taking back whole present tensors every step.
import { Graph, type Value } from './graph';
import { type Architecture, cacheGeometry, forwardOf, parameterShapesOf } from './architecture';
import type { LayerCacheValues } from './model';
import { type ModelDescription, tensor } from './onnx';

export interface InferenceOptions {
  /**
   * Add the input num_logits_to_keep (int64 scalar, transformers.js feeds it: 1 when generating, 0 for all
   * positions) and compute the LM head for that many last positions only.
   */
  logitsToKeep?: boolean;
}

export function buildInference(
  a: Architecture,
  weights: Map<string, Float32Array>,
  options: InferenceOptions = {},
): ModelDescription {
  const g = new Graph(`modelwright_${a.family}`);
  const { layers, kvHeads, headDim, layout } = cacheGeometry(a);
  const tokens = g.input('input_ids', ['batch_size', 'sequence_length'], 'int64');
  const mask = g.input('attention_mask', ['batch_size', 'total_sequence_length'], 'int64');
  const positions = g.input('position_ids', ['batch_size', 'sequence_length'], 'int64');
  const caches: LayerCacheValues[] = [];
  for (let i = 0; i < layers; i++) {
    if (layout === 'fused') {
      const keyValue = g.input(`past_key_values.${i}.key_value`, ['batch_size', 'past_sequence_length', 2 * headDim]);
      caches.push({ pastKey: keyValue, pastValue: keyValue });
      continue;
    }
    const shape = ['batch_size', kvHeads, 'past_sequence_length', headDim];
    caches.push({
      pastKey: g.input(`past_key_values.${i}.key`, shape),
      pastValue: g.input(`past_key_values.${i}.value`, shape),
    });
  }
  const w: Record<string, Value> = {};
  for (const [name, dims] of parameterShapesOf(a)) {
    const data = weights.get(name);
    if (!data) throw new Error(`weight ${name} is missing`);
    if (data.length !== dims.reduce((x, y) => x * y, 1))
      throw new Error(`weight ${name} does not have shape [${dims}]`);
    w[name] = g.initializer(name, { type: 'float32', dims, data });
  }

  const pastAxis = layout === 'fused' ? 1 : 2;
  const bias = attentionBias(g, tokens, mask, g.shapeOf(caches[0].pastKey, pastAxis, pastAxis + 1));
  let logits = forwardOf(g, a, w, tokens, positions, bias, caches);
  if (options.logitsToKeep) logits = headOverLastPositions(g, logits, g.input('num_logits_to_keep', [], 'int64'));
  g.output(logits, 'logits');
  caches.forEach((cache, i) => {
    if (layout === 'fused') {
      g.output(cache.presentKey!, `present.${i}.key_value`);
      return;
    }
    g.output(cache.presentKey!, `present.${i}.key`);
    g.output(cache.presentValue!, `present.${i}.value`);
  });
  caches.forEach((cache, i) => {
    if (layout === 'fused') {
      g.output(newRows(g, cache.presentKey!), `new_key_values.${i}.key_value`);
      return;
    }
    g.output(newRows(g, cache.presentKey!), `new_key_values.${i}.key`);
    g.output(newRows(g, cache.presentValue!), `new_key_values.${i}.value`);
  });
  return g.toModel();
}

/**
 * Moves the LM head (the MatMul that makes `logits`) behind a Slice of the hidden states to their last `keep`
 * positions (all when keep is 0, as transformers.js's num_logits_to_keep means), so that a prefill computes the
 * head once instead of once per position.
 */
function headOverLastPositions(g: Graph, logits: Value, keep: Value): Value {
  const at = g.nodes.findIndex((node) => node.outputs.includes(logits));
  const head = g.nodes[at];
  if (head?.op !== 'MatMul') throw new Error(`the LM head is a ${head?.op}, not a MatMul`);
  g.nodes.splice(at, 1);
  const [hidden, weight] = head.inputs;
  const start = g.neg(g.unsqueeze(keep, [0]));
  const kept = g.node(
    'Slice',
    [hidden, start, g.int64s([Number.MAX_SAFE_INTEGER]), g.int64s([1])],
    [[[hidden.shape[0], 'logits_length', ...hidden.shape.slice(2)], hidden.type]],
  )[0];
  return g.matmul(kept, weight);
}

/** The new positions' part of a present tensor: the second input of the Concat that appends them to the past. */
function newRows(g: Graph, present: Value): Value {
  const concat = g.nodes.find((node) => node.outputs.includes(present));
  if (concat?.op !== 'Concat' || concat.inputs.length !== 2) throw new Error(`${present.name} is not a concatenation`);
  return concat.inputs[1];
}

/**
 * The additive attention bias [batch, 1, new, past + new]: a query at position past + i may look at keys
 * j ≤ past + i that the attention mask does not mark as padding.
 */
function attentionBias(g: Graph, tokens: Value, mask: Value, pastLength: Value): Value {
  const newLength = g.shapeOf(tokens, 1, 2);
  const totalLength = g.add(pastLength, newLength);
  const one = tensor({ type: 'float32', dims: [1], data: new Float32Array([1]) });
  const ones = g.node(
    'ConstantOfShape',
    [g.concat([newLength, totalLength], 0)],
    [[['sequence_length', 'total_sequence_length'], 'float32']],
    { value: one },
  )[0];
  const diagonal = g.node('Squeeze', [pastLength, g.int64s([0])], [[[], 'int64']])[0];
  const causal = g.node('Trilu', [ones, diagonal], [[ones.shape, 'float32']], { upper: { kind: 'int', value: 0 } })[0];
  const padding = g.unsqueeze(g.cast(mask, 'float32'), [1, 2]); // [batch, 1, 1, total]
  const allowed = g.mul(causal, padding);
  return g.mul(g.sub(allowed, g.scalar(1)), g.scalar(1e9));
}
