// The arithmetic of a training's estimate, from what modelwright/estimateTraining measured: steps and time per
// epoch over the workspace's training tokens (validation passes included), how many epochs a time budget buys,
// and the sentences Train Model… shows before the run starts. Pure.
import { type EstimateTraining, formatDuration } from '../../server/src/protocol';
import { formatParameters } from './trainingChoices';

/** The trainer validates this many batches every this many steps; a validation batch costs about a third of a step. */
export const VALIDATION_BATCHES = 8;
export const EVAL_EVERY = 50;

export interface EpochEstimate {
  tokensPerStep: number;
  stepsPerEpoch: number;
  secondsPerEpoch: number;
}

export function epochEstimate(e: EstimateTraining.Result): EpochEstimate {
  const tokensPerStep = e.batchSize * e.contextLength;
  const stepsPerEpoch = Math.max(1, Math.ceil(e.trainTokens / tokensPerStep));
  const validationShare = VALIDATION_BATCHES / (3 * EVAL_EVERY);
  return { tokensPerStep, stepsPerEpoch, secondsPerEpoch: stepsPerEpoch * e.secondsPerStep * (1 + validationShare) };
}

/** Epochs (passes over the training tokens) that `minutes` of training buy. */
export function epochsIn(minutes: number, e: EstimateTraining.Result): number {
  return (minutes * 60) / epochEstimate(e).secondsPerEpoch;
}

/** "≈ 2.4 epochs", "≈ 35% of an epoch", "≈ 120 epochs". */
export function describeEpochs(epochs: number): string {
  if (!Number.isFinite(epochs)) return '';
  if (epochs < 1) return `≈ ${Math.max(1, Math.round(epochs * 100))}% of an epoch`;
  if (epochs < 10) return `≈ ${epochs.toFixed(1)} epochs`;
  return `≈ ${Math.round(epochs)} epochs`;
}

/** How the seconds per step were found, in words. */
export function describeSource(e: EstimateTraining.Result): string {
  if (e.source === 'estimated')
    return `estimated from ${formatParameters(e.parameters)} parameters (a probe step would take too long)`;
  const steps = e.probeSteps && e.probeSteps > 1 ? `the median of ${e.probeSteps} probe steps` : 'a probe step';
  const scaled =
    e.probeBatch && e.probeBatch < e.batchSize ? ` with ${e.probeBatch} of ${e.batchSize} sequences, scaled` : '';
  return `measured: ${steps} of this configuration${scaled}`;
}

/** One line: time per epoch, what an epoch is, and how it was found. */
export function describeEstimate(e: EstimateTraining.Result): string {
  const epoch = epochEstimate(e);
  const tokens = `${e.trainTokens.toLocaleString('en-US')} tokens${e.tokenizer === 'approximate' ? ' (approximately)' : ''}`;
  return (
    `≈ ${formatDuration(epoch.secondsPerEpoch)} per epoch: ${epoch.stepsPerEpoch} steps of ${e.batchSize}×${e.contextLength} ` +
    `tokens over ${tokens} in ${e.trainFiles} training file${e.trainFiles === 1 ? '' : 's'}; ${describeSource(e)}`
  );
}

/** A few words for a title: "≈ 3m 20s per epoch (measured)". */
export function shortEstimate(e: EstimateTraining.Result): string {
  const how = e.source === 'measured' ? 'measured' : 'estimated from its size';
  return `≈ ${formatDuration(epochEstimate(e).secondsPerEpoch)} per epoch (${how})`;
}
