// The end of a run: writes the model folder's config files and inference graph, and its model card (the
// architecture, hyperparameters, data snapshot and loss curve, and how far the training got). Until then the
// folder carries a marker file, so that a run that failed or was killed never passes for a model.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type PresetName, parameterCount } from '../engine/model';
import { type ModelCard, writeModelCard } from '../modelFolder/modelCard';
import { writeModelFiles } from './export';
import type { RunState } from './resume';

/** The settings the run used where its options left them to the defaults. */
export interface RunSettings {
  preset: PresetName;
  batchSize: number;
  contextLength: number;
  seed: number;
}

export interface FinishedRun {
  /** Read after the model files are written, so that the card's elapsed time includes writing them. */
  runState: () => RunState;
  settings: RunSettings;
  parameters: Map<string, Float32Array>;
  endOfTextId: number;
  /** False when the run was stopped before its end. */
  finished: boolean;
  tokensPerSecond: number;
}

/** In a model folder whose training has not exported a model yet; catalogs and loaders skip such folders. */
export const INCOMPLETE_MARKER = '.incomplete';

export function markIncomplete(modelDir: string): void {
  fs.writeFileSync(
    path.join(modelDir, INCOMPLETE_MARKER),
    'Training started here has not exported a model yet. Continue it with `modelwright train --out DIR --resume`.\n',
  );
}

export function isIncomplete(modelDir: string): boolean {
  return fs.existsSync(path.join(modelDir, INCOMPLETE_MARKER));
}

export function exportModel(finishedRun: FinishedRun): void {
  const { options, config } = finishedRun.runState();
  writeModelFiles(options.out, config, finishedRun.parameters, finishedRun.endOfTextId);
  writeModelCard(options.out, modelCard(finishedRun.runState(), finishedRun));
  fs.rmSync(path.join(options.out, INCOMPLETE_MARKER), { force: true });
}

/** The card of a finished run (the export of a LoRA or Llama-family fine-tune adds its own fields over it). */
export function modelCard(run: RunState, { settings, finished, tokensPerSecond }: FinishedRun): ModelCard {
  const { options, config } = run;
  return {
    name: path.basename(path.resolve(options.out)),
    kind: 'causal-lm',
    createdAt: new Date().toISOString(),
    parent: options.base ? path.resolve(options.base) : undefined,
    preset: options.base ? undefined : settings.preset,
    parameters: parameterCount(config),
    hyperparameters: {
      ...config,
      batchSize: settings.batchSize,
      contextLength: settings.contextLength,
      seed: settings.seed,
      learningRate: run.schedule.learningRate,
      warmupSteps: run.schedule.warmupSteps,
      totalSteps: run.schedule.totalSteps,
      minLearningRateRatio: run.schedule.minLearningRateRatio,
      ...Object.fromEntries(Object.entries(run.adamw).map(([name, value]) => [`adamw.${name}`, value])),
    },
    data: run.data,
    curve: run.curve,
    evaluations: [],
    training: { steps: run.step, elapsedSeconds: run.elapsedSeconds, finished, tokensPerSecond },
  };
}
