// Training, laid out like nanoGPT's train.py: the defaults, then one run from a workspace to a model folder —
// resume or start, prepare the data, build the step runner and the learning-rate schedule, run the training
// loop (validating and checkpointing as it goes), and export the model folder with its card.
import { initialParameters, type PresetName } from '../engine/model';
import { defaultAdamW, learningRateAt, type Schedule } from '../engine/optimizer';
import type { CurvePoint } from '../modelFolder/modelCard';
import { readWeights } from '../modelFolder/weights';
import type { TrainProgress, TrainResult } from '../protocol';
import { trainingBatch, validationBatches } from './dataset';
import { exportModel } from './finalExport';
import { type RunState, resumeRun, writeCheckpoint } from './resume';
import { budgetSeconds, defaultWarmup, sizeScheduleToBudget, StepTimes } from './timeBudget';
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
  warmupSteps: 100, // until a time-budgeted run has measured its step time (a run of N steps warms up for N / 10)
  minLearningRateRatio: 0.1, // the cosine decay ends at this fraction of the peak
  evalEvery: 50, // steps between validation-loss measurements
  validationBatches: 8, // batches in each validation-loss measurement
  checkpointSeconds: 30, // seconds between checkpoints
  curveEvery: 10, // steps between points of the loss curve, besides the first step and every validated one
};

export async function train(
  requested: TrainOptions,
  hooks: { onProgress?: (update: TrainProgress) => void; signal?: AbortSignal } = {},
): Promise<TrainResult> {
  const started = Date.now();
  const report = hooks.onProgress ?? (() => {});
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
  const time = Math.min(options.contextLength ?? config.contextLength, config.contextLength);
  const adamw = resumed?.adamw ?? defaultAdamW;
  const state = checkpoint
    ? stateFromTensors(config, checkpoint.tensors)
    : freshState(config, options.base ? readWeights(options.base, config) : initialParameters(config, seed));
  const runner = await StepRunner.create(config, { batch: batchSize, time }, adamw, state, {
    intraOpThreads: options.threads ?? 0,
  });
  const validation = validationBatches(data.validationTokens, batchSize, time, defaults.validationBatches);
  const schedule = resumed?.schedule ?? newSchedule(options);
  const budget = budgetSeconds(options);
  const sizedByTime = !resumed && !options.steps; // only a time budget: sized from the measured step time
  const evalEvery = options.evalEvery ?? defaults.evalEvery;
  const checkpointSeconds = options.checkpointSeconds ?? defaults.checkpointSeconds;

  const curve: CurvePoint[] = resumed?.curve ?? [];
  let step = resumed?.step ?? 0;
  let loss = NaN;
  const loopStarted = Date.now();
  const elapsed = () => elapsedBefore + (Date.now() - loopStarted) / 1000;
  const stepTimes = new StepTimes();
  const tokensPerStep = batchSize * time;
  const tokensPerSecond = () => (stepTimes.count ? tokensPerStep / stepTimes.secondsPerStep() : 0);
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
    writeCheckpoint(options.out, config, runner.state(), runState());
    lastCheckpoint = Date.now();
  };
  const reportStep = (point: CurvePoint) => {
    const remainingSteps = Math.max(0, (schedule.totalSteps || step) - step);
    progress({
      phase: 'training',
      message: `step ${step}/${schedule.totalSteps}`,
      step,
      totalSteps: schedule.totalSteps,
      loss: point.loss,
      valLoss: point.valLoss,
      learningRate: point.learningRate,
      tokensPerSecond: point.tokensPerSecond,
      etaSeconds: Math.min(budget - elapsed(), remainingSteps * (tokensPerStep / Math.max(1, tokensPerSecond()))),
    });
  };
  const stopping = () =>
    hooks.signal?.aborted || (schedule.totalSteps > 0 && step >= schedule.totalSteps) || elapsed() >= budget;

  try {
    // The training loop: one optimizer step per iteration until the schedule ends, time runs out or Ctrl-C.
    while (!stopping()) {
      const batch = trainingBatch(data.trainTokens, batchSize, time, seed, step);
      const learningRate = learningRateAt(schedule, step);
      loss = (await stepTimes.measure(() => runner.step(batch, step + 1, learningRate))).loss;
      step++;
      if (!Number.isFinite(loss))
        throw new Error(`training diverged at step ${step} (loss ${loss}); try a lower learning rate`);
      if (sizedByTime)
        sizeScheduleToBudget(schedule, stepTimes, step, budget - elapsed(), options.warmupSteps !== undefined);

      const point: CurvePoint = {
        step,
        loss,
        learningRate,
        tokensPerSecond: tokensPerSecond(),
        elapsedSeconds: elapsed(),
      };
      if (step % evalEvery === 0) point.valLoss = await runner.validationLoss(validation);
      if (step % defaults.curveEvery === 0 || point.valLoss !== undefined || step === 1) curve.push(point);
      reportStep(point);
      if (Date.now() - lastCheckpoint >= checkpointSeconds * 1000) saveCheckpoint();
    }

    progress({
      phase: 'saving',
      message: 'measuring validation loss and saving',
      step,
      totalSteps: schedule.totalSteps,
    });
    const valLoss = await runner.validationLoss(validation);
    const last = curve.at(-1);
    if (last?.step === step) last.valLoss = valLoss;
    else curve.push({ step, loss, valLoss, elapsedSeconds: elapsed() });
    saveCheckpoint();
    const finished = !hooks.signal?.aborted;
    exportModel({
      runState,
      settings: { preset, batchSize, contextLength: time, seed },
      parameters: runner.parameters(),
      endOfTextId: data.endOfTextId,
      finished,
      tokensPerSecond: tokensPerSecond(),
    });
    const message = finished ? 'finished' : 'stopped; resume with --resume';
    progress({ phase: 'done', message, step, totalSteps: schedule.totalSteps, loss, valLoss });
    return {
      modelDir: options.out,
      steps: step,
      finished,
      loss,
      valLoss,
      tokensPerSecond: tokensPerSecond(),
      elapsedSeconds: elapsed(),
    };
  } finally {
    await runner.dispose();
  }
}

/** A new run's learning-rate schedule; with only a time budget, its length is set once the step time is known. */
function newSchedule(options: TrainOptions): Schedule {
  return {
    learningRate: options.learningRate ?? (options.base ? defaults.fineTuneLearningRate : defaults.learningRate),
    warmupSteps: options.warmupSteps ?? (options.steps ? defaultWarmup(options.steps) : defaults.warmupSteps),
    totalSteps: options.steps ?? 0,
    minLearningRateRatio: defaults.minLearningRateRatio,
  };
}
