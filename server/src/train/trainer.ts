// Training, laid out like nanoGPT's train.py: the defaults, then one run from a workspace to a model folder —
// check the output folder, resume or start, prepare the data, build the step runner and the learning-rate
// schedule (planned from the measured speed under a time budget), run the training loop (validating and
// checkpointing as it goes), export the model folder with its card and measure its held-out loss.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { PresetName } from '../engine/model';
import { defaultAdamW, learningRateAt, type Schedule } from '../engine/optimizer';
import { type CurvePoint, readModelCard, updateModelCard } from '../modelFolder/modelCard';
import type { TrainProgress, TrainResult } from '../protocol';
import { loadLanguageModel } from '../runtime/languageModel';
import { trainingBatch, validationBatches } from './dataset';
import { exportModel, INCOMPLETE_MARKER, markIncomplete, modelCard } from './finalExport';
import { planTraining } from './fineTune';
import { heldOutLoss } from './heldOutLoss';
import { checkpointFile, type RunState, resumeRun, writeCheckpoint } from './resume';
import { BudgetPlan, budgetSeconds, defaultWarmup, type Overheads } from './timeBudget';
import { prepareData } from './trainingData';
import type { TrainOptions } from './trainOptions';
import { freshState, StepRunner, stateFromTensors } from './trainStep';

export type { TrainOptions, TrainProgress, TrainResult };

// Defaults. Where an option of the same name exists it overrides the default (`learningRate` both peaks).
const defaults = {
  preset: 'tiny' as PresetName, // the architecture of a model trained from scratch
  seed: 0, // seeds the initial weights, the train/validation split and every batch
  batchSize: 16, // sequences per step; the window is the model's context length unless `contextLength` is given
  learningRate: 1e-3, // the peak learning rate from scratch...
  fineTuneLearningRate: 3e-4, // ...and when fine-tuning a base model
  fineTuneWindow: 512, // a base's training window at most (hub models' contexts of thousands would not fit in memory)
  warmupSteps: 100, // until a time-budgeted run has planned its steps (a run of N steps warms up for N / 10)
  minLearningRateRatio: 0.1, // the cosine decay ends at this fraction of the peak
  evalEvery: 50, // steps between validation-loss measurements
  validationBatches: 8, // batches in each validation-loss measurement
  checkpointSeconds: 30, // seconds between checkpoints
  curveEvery: 10, // steps between points of the loss curve, besides the first step and every validated one
};

export interface TrainHooks {
  onProgress?: (update: TrainProgress) => void;
  signal?: AbortSignal;
}

export async function train(requested: TrainOptions, hooks: TrainHooks = {}): Promise<TrainResult> {
  const started = Date.now();
  const report = hooks.onProgress ?? (() => {});
  checkWorkspace(requested.workspace);
  const createdOut = prepareOutputFolder(requested);
  try {
    return await run(requested, hooks, report, started);
  } catch (error) {
    // A failed run leaves nothing that looks like a model: a folder it created without a checkpoint to resume
    // from is removed; one with a checkpoint keeps its marker, so nothing lists or loads it.
    if (createdOut && !fs.existsSync(checkpointFile(requested.out)))
      fs.rmSync(requested.out, { recursive: true, force: true });
    throw error;
  }
}

async function run(
  requested: TrainOptions,
  hooks: TrainHooks,
  report: (update: TrainProgress) => void,
  started: number,
): Promise<TrainResult> {
  const { options, checkpoint } = resumeRun(requested);
  const resumed = checkpoint?.run;
  const elapsedBefore = resumed?.elapsedSeconds ?? 0;
  const progress = (update: Omit<TrainProgress, 'elapsedSeconds'>) =>
    report({ ...update, elapsedSeconds: elapsedBefore + (Date.now() - started) / 1000 });

  const seed = options.seed ?? defaults.seed;
  const preset = options.preset ?? defaults.preset;
  const data = await prepareData(options, { seed, preset, resumedConfig: resumed?.config }, (message) =>
    progress({ phase: 'preparing', message, step: 0, totalSteps: 0 }),
  );

  const config = data.config;
  const batchSize = options.batchSize ?? defaults.batchSize;
  const window = options.contextLength ?? (options.base ? defaults.fineTuneWindow : config.contextLength);
  const time = Math.min(window, config.contextLength);
  const adamw = resumed?.adamw ?? defaultAdamW;
  const trainingPlan = planTraining(options, config, seed);
  const state = checkpoint
    ? stateFromTensors(trainingPlan.trained, checkpoint.tensors)
    : freshState(trainingPlan.trained, trainingPlan.initialWeights());
  const runner = await StepRunner.create(
    trainingPlan.trained,
    { batch: batchSize, time },
    adamw,
    state,
    { intraOpThreads: options.threads ?? 0 },
    trainingPlan.stepOptions,
  );
  const validation = validationBatches(data.validationTokens, batchSize, time, defaults.validationBatches);
  const schedule = resumed?.schedule ?? newSchedule(options);
  const budget = budgetSeconds(options);
  const evalEvery = options.evalEvery ?? defaults.evalEvery;
  const checkpointSeconds = options.checkpointSeconds ?? defaults.checkpointSeconds;

  const curve: CurvePoint[] = resumed?.curve ?? [];
  let step = resumed?.step ?? 0;
  let loss = NaN;
  const loopStarted = Date.now();
  const elapsed = () => elapsedBefore + (Date.now() - loopStarted) / 1000;
  // A run with only a time budget plans its steps; a resumed one keeps its plan and follows the clock.
  const timed = budget < Infinity && !options.steps;
  const plan = timed
    ? new BudgetPlan(budget, schedule, {
        startStep: step,
        startSeconds: resumed ? 0 : elapsed(),
        warmupGiven: options.warmupSteps !== undefined,
        planned: resumed ? schedule.totalSteps : undefined,
      })
    : undefined;
  const overheads: Overheads = { validationSeconds: 0, evalEvery };
  let validationMeasured = false;
  const tokensPerStep = batchSize * time;
  let trainingSeconds = 0;
  let stepsThisProcess = 0;
  const tokensPerSecond = () => (trainingSeconds > 0 ? (tokensPerStep * stepsThisProcess) / trainingSeconds : 0);
  const runState = (): RunState => ({
    options,
    config,
    adamw,
    schedule,
    step,
    elapsedSeconds: elapsed(),
    curve,
    data: data.snapshot,
    parent: options.base,
  });
  let lastCheckpoint = Date.now();
  const saveCheckpoint = () => {
    writeCheckpoint(options.out, trainingPlan.trained, runner.state(), runState());
    lastCheckpoint = Date.now();
  };
  const fraction = () => (plan ? plan.fraction(step, elapsed()) : Math.min(1, step / Math.max(1, schedule.totalSteps)));
  const reportStep = (point: CurvePoint) => {
    const totalSteps = plan ? plan.totalSteps : schedule.totalSteps;
    const done = fraction();
    const secondsPerStep = trainingSeconds / Math.max(1, stepsThisProcess);
    const bySteps = Math.max(0, totalSteps - step) * secondsPerStep;
    const byClock = plan ? Math.max(0, budget - elapsed()) : Infinity;
    progress({
      phase: 'training',
      message: `step ${step}/${totalSteps}`,
      step,
      totalSteps,
      totalStepsFinal: plan ? plan.fixed : true,
      fraction: done,
      loss: point.loss,
      valLoss: point.valLoss,
      learningRate: point.learningRate,
      tokensPerSecond: point.tokensPerSecond,
      etaSeconds: plan && !plan.fixed ? byClock : Math.min(byClock, bySteps),
    });
  };
  const stopping = () =>
    hooks.signal?.aborted || (plan ? plan.done(step, elapsed()) : step >= schedule.totalSteps || elapsed() >= budget);

  try {
    // The training loop: one optimizer step per iteration until the schedule ends, time runs out or Ctrl-C.
    while (!stopping()) {
      const batch = trainingBatch(data.trainTokens, batchSize, time, seed, step);
      const learningRate = learningRateAt(schedule, plan ? plan.rateStep(step, elapsed()) : step);
      const stepStarted = performance.now();
      loss = (await runner.step(batch, step + 1, learningRate)).loss;
      trainingSeconds += (performance.now() - stepStarted) / 1000;
      stepsThisProcess++;
      step++;
      if (!Number.isFinite(loss))
        throw new Error(`training diverged at step ${step} (loss ${loss}); try a lower learning rate`);

      const point: CurvePoint = {
        step,
        loss,
        learningRate,
        tokensPerSecond: tokensPerSecond(),
        elapsedSeconds: elapsed(),
      };
      let overhead = 0;
      if (step % evalEvery === 0) {
        const validationStarted = performance.now();
        point.valLoss = await runner.validationLoss(validation);
        overhead = (performance.now() - validationStarted) / 1000;
        overheads.validationSeconds = overhead;
        validationMeasured = true;
      } else if (!validationMeasured) {
        // Until measured: a validation batch is a forward pass, about a third of a training step.
        overheads.validationSeconds = (validation.length * trainingSeconds) / stepsThisProcess / 3;
      }
      plan?.afterStep(step, elapsed(), overhead, overheads);
      if (step % defaults.curveEvery === 0 || point.valLoss !== undefined || step === 1) curve.push(point);
      reportStep(point);
      if (Date.now() - lastCheckpoint >= checkpointSeconds * 1000) saveCheckpoint();
    }

    progress({
      phase: 'saving',
      message: 'saving and measuring the held-out loss',
      step,
      totalSteps: schedule.totalSteps,
      fraction: 1,
    });
    saveCheckpoint();
    const finished = !hooks.signal?.aborted;
    const finishedRun = {
      runState,
      settings: { preset, batchSize, contextLength: time, seed },
      parameters: runner.parameters(),
      endOfTextId: data.endOfTextId,
      finished,
      tokensPerSecond: tokensPerSecond(),
    };
    if (trainingPlan.exportModel) trainingPlan.exportModel(finishedRun, modelCard);
    else exportModel(finishedRun);
    // The held-out loss as `eval` measures it, with the exported model, so that the two always agree.
    const measured = await measureHeldOutLoss(options, data.validationFiles, options.threads);
    const valLoss = measured.loss;
    updateModelCard(options.out, (card) => {
      const last = card.curve.at(-1);
      if (last?.step === step) last.valLoss = valLoss;
      else card.curve.push({ step, loss, valLoss, elapsedSeconds: elapsed() });
    });
    const message = finished ? 'finished' : 'stopped; resume with --resume';
    progress({ phase: 'done', message, step, totalSteps: schedule.totalSteps, fraction: 1, loss, valLoss });
    return {
      modelDir: options.out,
      steps: step,
      finished,
      loss,
      valLoss,
      bitsPerByte: measured.bitsPerByte,
      heldOutFiles: measured.files.length,
      tokensPerSecond: tokensPerSecond(),
      elapsedSeconds: elapsed(),
    };
  } finally {
    await runner.dispose();
  }
}

async function measureHeldOutLoss(
  options: TrainOptions,
  files: { path: string; text: string }[],
  threads: number | undefined,
) {
  const model = await loadLanguageModel(options.out, { intraOpThreads: threads || 1 });
  try {
    return await heldOutLoss(model, files);
  } finally {
    await model.dispose();
  }
}

/** A clear error for a workspace that is not there, before anything is written. */
function checkWorkspace(workspace: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(workspace);
  } catch {
    throw new Error(`workspace ${path.resolve(workspace)} does not exist`);
  }
  if (!stat.isDirectory()) throw new Error(`workspace ${path.resolve(workspace)} is not a folder`);
}

/**
 * Makes sure a run never destroys a model by accident: a new run refuses an output folder that holds files
 * unless `force` (which empties it), and marks a folder it starts as incomplete until the export. Returns
 * whether this run created the folder's contents (so that a failure can remove them).
 */
function prepareOutputFolder(options: TrainOptions): boolean {
  const out = path.resolve(options.out);
  if (options.resume) return false;
  const existing = fs.existsSync(out) ? fs.readdirSync(out) : [];
  if (existing.length > 0) {
    if (!options.force) {
      const what = readModelCardSafely(out) ? 'a trained model' : `${existing.length} files`;
      throw new Error(
        `${out} already holds ${what}: give --resume to continue its run, --force to replace it, ` + 'or another --out',
      );
    }
    const workspace = path.resolve(options.workspace);
    if (workspace === out || workspace.startsWith(out + path.sep))
      throw new Error(`--force would delete the workspace: ${out} contains ${workspace}`);
    fs.rmSync(out, { recursive: true, force: true });
  }
  fs.mkdirSync(out, { recursive: true });
  markIncomplete(out);
  return true;
}

function readModelCardSafely(dir: string) {
  try {
    return readModelCard(dir);
  } catch {
    return undefined;
  }
}

/** A new run's learning-rate schedule; with only a time budget, its length is planned once the speed is known. */
function newSchedule(options: TrainOptions): Schedule {
  return {
    learningRate: options.learningRate ?? (options.base ? defaults.fineTuneLearningRate : defaults.learningRate),
    warmupSteps: options.warmupSteps ?? (options.steps ? defaultWarmup(options.steps) : defaults.warmupSteps),
    totalSteps: options.steps ?? 0,
    minLearningRateRatio: defaults.minLearningRateRatio,
  };
}

export { INCOMPLETE_MARKER };
