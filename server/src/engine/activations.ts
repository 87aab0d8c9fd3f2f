// The MLP activations of the supported families under Hugging Face's names (config.json's hidden_act or
// activation_function, the keys of transformers' ACT2FN), written as ONNX ops with the Graph builder.
import type { Graph, Value } from './graph';

/** gelu_new, gelu_pytorch_tanh and gelu_fast are all the tanh approximation; gelu is the exact (erf) one. */
export const activationNames = ['silu', 'swish', 'gelu', 'gelu_new', 'gelu_pytorch_tanh', 'gelu_fast', 'relu'] as const;
export type ActivationName = (typeof activationNames)[number];

export function isActivationName(name: unknown): name is ActivationName {
  return (activationNames as readonly unknown[]).includes(name);
}

export function activate(g: Graph, x: Value, name: ActivationName): Value {
  switch (name) {
    case 'silu':
    case 'swish':
      return g.mul(x, g.node('Sigmoid', [x], [[x.shape, x.type]])[0]);
    case 'gelu':
      return g.node('Gelu', [x], [[x.shape, x.type]])[0];
    case 'relu':
      return g.node('Relu', [x], [[x.shape, x.type]])[0];
    default:
      return g.gelu(x);
  }
}
