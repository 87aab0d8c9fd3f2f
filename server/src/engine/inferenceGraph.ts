// Builds the inference graph of a model of any family in the Hugging Face / transformers.js layout: inputs
// input_ids, attention_mask, position_ids and past_key_values.{i}.key|value; outputs logits and
// present.{i}.key|value, with the weights stored as initializers under their Hugging Face names.
import { Graph, type Value } from './graph';
import { type Architecture, cacheGeometry, forwardOf, parameterShapesOf } from './architecture';
import type { LayerCacheValues } from './model';
import { type ModelDescription, tensor } from './onnx';

export function buildInference(a: Architecture, weights: Map<string, Float32Array>): ModelDescription {
  const g = new Graph(`modelwright_${a.family}`);
  const { layers, kvHeads, headDim } = cacheGeometry(a);
  const tokens = g.input('input_ids', ['batch_size', 'sequence_length'], 'int64');
  const mask = g.input('attention_mask', ['batch_size', 'total_sequence_length'], 'int64');
  const positions = g.input('position_ids', ['batch_size', 'sequence_length'], 'int64');
  const caches: LayerCacheValues[] = [];
  for (let i = 0; i < layers; i++) {
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

  const bias = attentionBias(g, tokens, mask, caches[0].pastKey);
  const logits = forwardOf(g, a, w, tokens, positions, bias, caches);
  g.output(logits, 'logits');
  caches.forEach((cache, i) => {
    g.output(cache.presentKey!, `present.${i}.key`);
    g.output(cache.presentValue!, `present.${i}.value`);
  });
  return g.toModel();
}

/**
 * The additive attention bias [batch, 1, new, past + new]: a query at position past + i may look at keys
 * j ≤ past + i that the attention mask does not mark as padding.
 */
function attentionBias(g: Graph, tokens: Value, mask: Value, pastKey: Value): Value {
  const pastLength = g.shapeOf(pastKey, 2, 3);
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
