// The training loop: from a workspace to a model folder. Collects the corpus, trains (or inherits) the
// tokenizer, runs optimizer steps with the learning-rate schedule, reports progress, measures validation
// loss, checkpoints atomically so that `resume` continues after a crash, and exports the model folder.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type GptConfig, type PresetName, initialParameters, parameterCount, presets } from '../engine/model';
import { type AdamWSettings, type Schedule, defaultAdamW, learningRateAt } from '../engine/optimizer';
import { type CurvePoint, type DataSnapshot, type ModelCard, writeModelCard } from '../modelFolder/modelCard';
import { readFolderConfig } from '../modelFolder/config';
import { readWeights } from '../modelFolder/weights';
import { writeModelFiles } from './export';
import type { TrainProgress, TrainResult } from '../protocol';
import { loadTokenizer } from '../runtime/tokenizer';
import { specialTokens } from '../tokenizer/specialTokens';
import { trainBpe } from './bpeTrainer';
import { writeTokenizerFiles } from '../tokenizer/tokenizerFiles';
import { collectCorpus, splitByFile } from '../workspace/corpus';
import { concatenateDocuments, trainingBatch, validationBatches } from './dataset';
import { decodeSafetensors, encodeSafetensors } from '../modelFolder/safetensors';
import { writeFileAtomic } from '../util/atomicFile';
import { StepRunner, freshState, stateFromTensors, stateToTensors } from './trainStep';

export type { TrainProgress, TrainResult };

export interface TrainOptions {
  workspace: string;
  out: string;
  /** Train from scratch with this architecture (and a new tokenizer). */
  preset?: PresetName;
  /** Fine-tune this model folder instead: keeps its tokenizer and architecture. */
  base?: string;
  minutes?: number;
  steps?: number;
  resume?: boolean;
  seed?: number;
  batchSize?: number;
  /** Training window; defaults to the model's context length. */
  contextLength?: number;
  learningRate?: number;
  warmupSteps?: number;
  evalEvery?: number;
  checkpointSeconds?: number;
  threads?: number;
}

/** Everything a resumed run needs besides the tensors; stored in the checkpoint's metadata. */
interface RunState {
  options: TrainOptions;
  config: GptConfig;
  adamw: AdamWSettings;
  schedule: Schedule;
  step: number;
  elapsedSeconds: number;
  curve: CurvePoint[];
  data: DataSnapshot;
  parent?: string;
}

const CHECKPOINT = path.join('checkpoint', 'state.safetensors');
const defaults = { seed: 0, batchSize: 16, evalEvery: 50, checkpointSeconds: 30, validationBatches: 8 };

export async function train(
  requested: TrainOptions,
  hooks: { onProgress?: (p: TrainProgress) => void; signal?: AbortSignal } = {},
): Promise<TrainResult> {
  const started = Date.now();
  const report = hooks.onProgress ?? (() => {});
  const checkpointFile = path.join(requested.out, CHECKPOINT);
  const resuming = requested.resume && fs.existsSync(checkpointFile);
  if (requested.resume && !resuming) throw new Error(`nothing to resume: ${checkpointFile} does not exist`);

  const saved = resuming ? decodeSafetensors(fs.readFileSync(checkpointFile)) : undefined;
  const savedRun: RunState | undefined = saved ? JSON.parse(saved.metadata.run) : undefined;
  const options: TrainOptions = savedRun ? { ...savedRun.options, ...definedOnly(requested), resume: true } : requested;
  const seed = options.seed ?? defaults.seed;
  const progress = (p: Omit<TrainProgress, 'elapsedSeconds'>) =>
    report({ ...p, elapsedSeconds: (savedRun?.elapsedSeconds ?? 0) + (Date.now() - started) / 1000 });

  progress({ phase: 'preparing', message: 'reading the workspace', step: 0, totalSteps: 0 });
  const corpus = await collectCorpus(options.workspace);
  if (corpus.files.length === 0) throw new Error(`no source files to train on in ${options.workspace}`);
  const split = splitByFile(corpus.files, { seed });

  fs.mkdirSync(options.out, { recursive: true });
  let config: GptConfig;
  if (savedRun) {
    config = savedRun.config;
  } else if (options.base) {
    const base = readFolderConfig(options.base);
    config = {
      vocabSize: base.vocabSize,
      contextLength: base.contextLength,
      layers: base.layers,
      heads: base.heads,
      embedding: base.embedding,
    };
    for (const file of ['tokenizer.json', 'tokenizer_config.json'])
      fs.copyFileSync(path.join(options.base, file), path.join(options.out, file));
  } else {
    config = { ...presets[options.preset ?? 'tiny'] };
    progress({ phase: 'preparing', message: `training a ${config.vocabSize}-token tokenizer`, step: 0, totalSteps: 0 });
    const trained = trainBpe(
      split.train.map((f) => f.text),
      { vocabSize: config.vocabSize },
    );
    config.vocabSize = trained.vocab.length; // a small corpus may run out of merges before the preset's size
    writeTokenizerFiles(options.out, trained, { modelMaxLength: config.contextLength });
  }

  progress({ phase: 'preparing', message: 'tokenizing', step: 0, totalSteps: 0 });
  const tokenizer = await loadTokenizer(options.out);
  const eos = tokenizer.eosTokenId ?? specialTokens.endOfText;
  const trainStream = concatenateDocuments(
    split.train.map((f) => tokenizer.encode(f.text)),
    eos,
  );
  const validationStream = concatenateDocuments(
    split.validation.map((f) => tokenizer.encode(f.text)),
    eos,
  );
  const data: DataSnapshot = {
    workspace: path.resolve(options.workspace),
    files: [
      ...split.train.map((f) => ({ path: f.path, sha256: f.sha256, bytes: f.bytes, split: 'train' as const })),
      ...split.validation.map((f) => ({
        path: f.path,
        sha256: f.sha256,
        bytes: f.bytes,
        split: 'validation' as const,
      })),
    ].sort((a, b) => a.path.localeCompare(b.path)),
    excluded: corpus.excluded,
    trainTokens: trainStream.length,
    validationTokens: validationStream.length,
  };

  const batchSize = options.batchSize ?? defaults.batchSize;
  const time = Math.min(options.contextLength ?? config.contextLength, config.contextLength);
  const adamw = savedRun?.adamw ?? defaultAdamW;
  const state = saved
    ? stateFromTensors(config, saved.tensors)
    : freshState(config, options.base ? readWeights(options.base, config) : initialParameters(config, seed));
  const runner = await StepRunner.create(config, { batch: batchSize, time }, adamw, state, {
    intraOpThreads: options.threads ?? 0,
  });
  const validation = validationBatches(validationStream, batchSize, time, defaults.validationBatches);

  const schedule: Schedule = savedRun?.schedule ?? {
    learningRate: options.learningRate ?? (options.base ? 3e-4 : 1e-3),
    // 10% of the run, at most 100 steps; a time-budgeted run settles it once its step time is measured.
    warmupSteps: options.warmupSteps ?? (options.steps ? defaultWarmup(options.steps) : 100),
    totalSteps: options.steps ?? 0, // set from the measured speed when only a time budget is given
    minLearningRateRatio: 0.1,
  };
  if (savedRun && requested.steps) schedule.totalSteps = requested.steps;
  const budgetSeconds = options.minutes !== undefined ? options.minutes * 60 : Infinity;
  if (!options.steps && budgetSeconds === Infinity) throw new Error('give a budget: --steps N or --minutes N');
  const sizedByTime = !savedRun && !options.steps;
  const curve: CurvePoint[] = savedRun?.curve ?? [];
  let step = savedRun?.step ?? 0;
  const elapsedBefore = savedRun?.elapsedSeconds ?? 0;
  const loopStarted = Date.now();
  const elapsed = () => elapsedBefore + (Date.now() - loopStarted) / 1000;
  const tokensPerStep = batchSize * time;
  let loss = NaN;
  let valLoss = curve.findLast((p) => p.valLoss !== undefined)?.valLoss ?? NaN;
  let lastCheckpoint = Date.now();
  const stepTimes: number[] = [];

  const runState = (): RunState => ({
    options,
    config,
    adamw,
    schedule,
    step,
    elapsedSeconds: elapsed(),
    curve,
    data,
    parent: options.base,
  });
  const writeCheckpoint = () => {
    writeFileAtomic(
      checkpointFile,
      encodeSafetensors(stateToTensors(config, runner.state()), { run: JSON.stringify(runState()) }),
    );
    lastCheckpoint = Date.now();
  };
  const tokensPerSecond = () => {
    const recent = stepTimes.slice(-20).sort((a, b) => a - b);
    return recent.length ? tokensPerStep / (recent[Math.floor(recent.length / 2)] / 1000) : 0;
  };

  try {
    while (!hooks.signal?.aborted) {
      if (schedule.totalSteps > 0 && step >= schedule.totalSteps) break;
      if (elapsed() >= budgetSeconds) break;
      const batch = trainingBatch(trainStream, batchSize, time, seed, step);
      const learningRate = learningRateAt(schedule, step);
      const t0 = performance.now();
      const result = await runner.step(batch, step + 1, learningRate);
      stepTimes.push(performance.now() - t0);
      step++;
      loss = result.loss;
      if (!Number.isFinite(loss))
        throw new Error(`training diverged at step ${step} (loss ${loss}); try a lower learning rate`);

      if (sizedByTime && [3, 10, 30, 100].includes(stepTimes.length)) {
        // Only a time budget: size the schedule from the measured step time, and refine it while the learning
        // rate is still warming up (the first steps are slow while onnxruntime sizes its memory arena).
        const recent = stepTimes.slice(-20).sort((a, b) => a - b);
        const perStep = recent[Math.floor(recent.length / 2)] / 1000;
        schedule.totalSteps = Math.max(step + 1, step + Math.floor((budgetSeconds - elapsed()) / (perStep * 1.05)));
        if (stepTimes.length === 3 && options.warmupSteps === undefined)
          schedule.warmupSteps = defaultWarmup(schedule.totalSteps);
      }

      const evalEvery = options.evalEvery ?? defaults.evalEvery;
      const point: CurvePoint = {
        step,
        loss,
        learningRate,
        tokensPerSecond: tokensPerSecond(),
        elapsedSeconds: elapsed(),
      };
      if (step % evalEvery === 0) point.valLoss = valLoss = await runner.validationLoss(validation);
      if (step % 10 === 0 || point.valLoss !== undefined || step === 1) curve.push(point);
      const remainingSteps = Math.max(0, (schedule.totalSteps || step) - step);
      progress({
        phase: 'training',
        message: `step ${step}/${schedule.totalSteps}`,
        step,
        totalSteps: schedule.totalSteps,
        loss,
        valLoss: point.valLoss,
        learningRate,
        tokensPerSecond: point.tokensPerSecond,
        etaSeconds: Math.min(
          budgetSeconds - elapsed(),
          remainingSteps * (tokensPerStep / Math.max(1, tokensPerSecond())),
        ),
      });
      if (Date.now() - lastCheckpoint >= (options.checkpointSeconds ?? defaults.checkpointSeconds) * 1000)
        writeCheckpoint();
    }

    progress({
      phase: 'saving',
      message: 'measuring validation loss and saving',
      step,
      totalSteps: schedule.totalSteps,
    });
    valLoss = await runner.validationLoss(validation);
    if (curve.at(-1)?.step === step) curve.at(-1)!.valLoss = valLoss;
    else curve.push({ step, loss, valLoss, elapsedSeconds: elapsed() });
    writeCheckpoint();
    const finished = !hooks.signal?.aborted;
    writeModelFiles(options.out, config, runner.parameters(), eos);
    writeModelCard(options.out, modelCard(options, config, runState(), finished, tokensPerSecond()));
    progress({
      phase: 'done',
      message: finished ? 'finished' : 'stopped; resume with --resume',
      step,
      totalSteps: schedule.totalSteps,
      loss,
      valLoss,
    });
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
    await tokenizer.dispose?.();
  }
}

function modelCard(
  options: TrainOptions,
  config: GptConfig,
  run: RunState,
  finished: boolean,
  tokensPerSecond: number,
): ModelCard {
  return {
    name: path.basename(path.resolve(options.out)),
    kind: 'causal-lm',
    createdAt: new Date().toISOString(),
    parent: options.base ? path.resolve(options.base) : undefined,
    preset: options.base ? undefined : (options.preset ?? 'tiny'),
    parameters: parameterCount(config),
    hyperparameters: {
      ...config,
      batchSize: options.batchSize ?? defaults.batchSize,
      contextLength: Math.min(options.contextLength ?? config.contextLength, config.contextLength),
      seed: options.seed ?? defaults.seed,
      learningRate: run.schedule.learningRate,
      warmupSteps: run.schedule.warmupSteps,
      totalSteps: run.schedule.totalSteps,
      minLearningRateRatio: run.schedule.minLearningRateRatio,
      ...Object.fromEntries(Object.entries(run.adamw).map(([k, v]) => [`adamw.${k}`, v])),
    },
    data: run.data,
    curve: run.curve,
    evaluations: [],
    training: { steps: run.step, elapsedSeconds: run.elapsedSeconds, finished, tokensPerSecond },
  };
}

const defaultWarmup = (totalSteps: number) => Math.min(100, Math.max(1, Math.floor(totalSteps / 10)));

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
