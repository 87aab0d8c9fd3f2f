// The linear layer every model definition uses: x·W for GPT-2's Conv1D weights [in, out], x·Wᵀ for nn.Linear's
// [out, in], plus the bias, then the weight's adapter when it carries one (LoRA attaches itself there).
import type { Graph, Value } from './graph';

/** How a family stores a linear layer's weight: GPT-2's Conv1D as [in, out] (y = x·W), nn.Linear as [out, in]. */
export type WeightLayout = 'inOut' | 'outIn';

/** A linear layer's weight that may carry an adapter: `adapt(x, y)` gives the layer's output from its input x and
 * base output y (LoRA adds its low-rank path there). */
export interface AdaptedWeight extends Value {
  adapt?: (x: Value, y: Value) => Value;
}

/** The linear layer of every family: x·W or x·Wᵀ as `layout` says, plus the bias if any, then W's adapter if any. */
export function linear(g: Graph, layout: WeightLayout, x: Value, weight: AdaptedWeight, bias?: Value): Value {
  const y = g.matmul(x, layout === 'inOut' ? weight : g.transpose(weight, [1, 0]));
  const biased = bias ? g.add(y, bias) : y;
  return weight.adapt ? weight.adapt(x, biased) : biased;
}
