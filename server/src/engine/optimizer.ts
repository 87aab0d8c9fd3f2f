// AdamW with decoupled weight decay and global gradient-norm clipping, appended to a graph so that the whole
// optimizer update runs inside the same onnxruntime call as the forward and backward pass; plus the
// learning-rate schedule (linear warmup, then cosine decay) computed per step on the host.
import type { Graph, Value } from './graph';

export interface AdamWSettings {
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
  maxGradNorm: number;
}

export const defaultAdamW: AdamWSettings = {
  beta1: 0.9,
  beta2: 0.95,
  epsilon: 1e-8,
  weightDecay: 0.1,
  maxGradNorm: 1.0,
};

/** The parameters as one flat vector with its gradient, Adam moments and weight-decay mask (1 = decayed). */
export interface OptimizerParameter {
  value: Value;
  gradient: Value;
  moment: Value;
  variance: Value;
  decayMask: Value;
  /** The true gradient is gradient·gradientScale (a constant, such as 1/N for a mean loss); default 1. */
  gradientScale?: number;
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

/** Appends one AdamW step; returns the gradient's global norm (before clipping) and the updated state. */
export function appendAdamW(g: Graph, p: OptimizerParameter, s: AdamWSettings, scalars: StepScalars) {
  // The clipped gradient (gradient·gradientScale·clip) is never a tensor of its own: its factors fold into the
  // scalars that multiply the moments' updates, and the bias corrections and learning rate into the step size.
  const scale = p.gradientScale ?? 1;
  const gradNorm = g.mul(g.sqrt(g.sumOfSquares(p.gradient)), g.scalar(scale));
  const clip = g.min(g.scalar(1), g.div(g.scalar(s.maxGradNorm), g.add(gradNorm, g.scalar(1e-6))));
  const factor = g.mul(clip, g.scalar(scale));
  const nextMoment = g.add(g.mul(p.moment, g.scalar(s.beta1)), g.mul(p.gradient, g.mul(factor, g.scalar(1 - s.beta1))));
  const nextVariance = g.add(
    g.mul(p.variance, g.scalar(s.beta2)),
    g.mul(g.mul(p.gradient, p.gradient), g.mul(g.mul(factor, factor), g.scalar(1 - s.beta2))),
  );
  // lr·m̂/(√v̂ + ε) with m̂ = m·momentScale and √v̂ = √v·varianceScale.
  const stepSize = g.div(g.mul(scalars.learningRate, scalars.momentScale), scalars.varianceScale);
  const epsilon = g.div(g.scalar(s.epsilon), scalars.varianceScale);
  const adam = g.div(g.mul(nextMoment, stepSize), g.add(g.sqrt(nextVariance), epsilon));
  const decay = g.mul(g.mul(p.value, g.mul(p.decayMask, g.scalar(s.weightDecay))), scalars.learningRate);
  const nextValue = g.sub(g.sub(p.value, adam), decay);
  return { gradNorm, nextValue, nextMoment, nextVariance };
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
