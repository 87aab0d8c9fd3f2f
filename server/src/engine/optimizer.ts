// AdamW with decoupled weight decay and global gradient-norm clipping, appended to a graph so that the whole
// optimizer update runs inside the same onnxruntime call as the forward and backward pass; plus the
// learning-rate schedule (linear warmup, then cosine decay) computed per step on the host.
import { Graph, Value } from './graph';

export interface AdamWSettings {
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
  maxGradNorm: number;
}

export const defaultAdamW: AdamWSettings = { beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.1, maxGradNorm: 1.0 };

export interface OptimizerParameter {
  name: string;
  value: Value;
  gradient: Value;
  decayed: boolean;
}

/** Scalar inputs fed per step: the learning rate and Adam's bias corrections for the step number. */
export interface StepScalars {
  learningRate: Value;
  momentScale: Value; // 1 / (1 − β1ᵗ)
  varianceScale: Value; // 1 / √(1 − β2ᵗ)
}

export function stepScalarValues(s: AdamWSettings, step: number, learningRate: number) {
  return {
    learningRate,
    momentScale: 1 / (1 - s.beta1 ** step),
    varianceScale: 1 / Math.sqrt(1 - s.beta2 ** step),
  };
}

/**
 * Appends one AdamW step. Returns the gradient's global norm (before clipping) and, per parameter, the
 * updated value and moments; the moments enter as graph inputs `adam_m/NAME` and `adam_v/NAME`.
 */
export function appendAdamW(g: Graph, params: OptimizerParameter[], s: AdamWSettings, scalars: StepScalars) {
  const squares = params.map((p) => g.sumOfSquares(p.gradient));
  const sumOfSquares = squares.length === 1 ? squares[0] : g.node('Sum', squares, [[[], 'float32']])[0];
  const gradNorm = g.sqrt(sumOfSquares);
  const clip = g.min(g.scalar(1), g.div(g.scalar(s.maxGradNorm), g.add(gradNorm, g.scalar(1e-6))));

  const updates = params.map((p) => {
    const moment = g.input(`adam_m/${p.name}`, p.value.shape);
    const variance = g.input(`adam_v/${p.name}`, p.value.shape);
    const grad = g.mul(p.gradient, clip);
    const nextMoment = g.add(g.mul(moment, g.scalar(s.beta1)), g.mul(grad, g.scalar(1 - s.beta1)));
    const nextVariance = g.add(g.mul(variance, g.scalar(s.beta2)), g.mul(g.mul(grad, grad), g.scalar(1 - s.beta2)));
    const denominator = g.add(g.mul(g.sqrt(nextVariance), scalars.varianceScale), g.scalar(s.epsilon));
    let step = g.div(g.mul(nextMoment, scalars.momentScale), denominator);
    if (p.decayed && s.weightDecay > 0) step = g.add(step, g.mul(p.value, g.scalar(s.weightDecay)));
    const nextValue = g.sub(p.value, g.mul(step, scalars.learningRate));
    return { name: p.name, nextValue, nextMoment, nextVariance };
  });
  return { gradNorm, updates };
}

export interface Schedule {
  learningRate: number;
  warmupSteps: number;
  totalSteps: number;
  minLearningRateRatio: number;
}

/** Linear warmup to the peak rate, then cosine decay to peak·minLearningRateRatio at totalSteps. */
export function learningRateAt(s: Schedule, step: number): number {
  if (step < s.warmupSteps) return (s.learningRate * (step + 1)) / s.warmupSteps;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const progress = Math.min(1, (step - s.warmupSteps) / span);
  const floor = s.learningRate * s.minLearningRateRatio;
  return floor + 0.5 * (s.learningRate - floor) * (1 + Math.cos(Math.PI * progress));
}
