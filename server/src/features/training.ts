// modelwright/train (language models from scratch or fine-tuned, with the gain over the base; text classifiers) and
// modelwright/evaluate, run in a child process (workers/) so completions keep answering: work-done progress ("step
// 120/400 · loss 2.31 · 5400 tok/s"), TrainingProgress figures, clean cancellation (the trainer checkpoints and
// exports what it has), a hot-swap when a deployed model was retrained; and what Train Model… asks first: a run's
// estimate (modelwright/estimateTraining) and a labelled file's columns (modelwright/previewLabelledData).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CancellationToken, ServerCapabilities } from 'vscode-languageserver';
import { abortSignalFrom, requestCancelled } from '../util/cancellation';
import { type PresetName, presets } from '../engine/model';
import { filePath } from '../explanation/workspaceFiles';
import {
  EstimateTraining,
  EvaluateModel,
  PreviewLabelledData,
  TrainModel,
  type TrainingFigures,
  TrainingProgress,
  isValidModelName,
  modelNameRule,
} from '../protocol';
import { FINE_TUNE_METHODS } from '../train/fineTune';
import type { TrainProgress } from '../train/trainer';
import { runClassifierTraining, runEstimate, runEvaluation, runTraining } from '../workers/workerJob';
import { answering, invalidParams, requestFailed } from './errors';
import { previewLabelledData } from './labelledColumns';
import type { Feature } from './feature';
import type { TrainingState } from './models';
import { requireObject } from './params';
import type { ServerContext } from './serverContext';

/** Training figures go to the client at most this often (phase changes always). */
const NOTIFY_MS = 200;
/** Time budget when the client gives neither steps nor minutes. */
const DEFAULT_MINUTES = 10;
/** Next-line completions per model when a fine-tuned model is compared with its base. */
const COMPARE_SAMPLES = 30;
/** A text classifier's most epochs (early stopping usually ends it sooner). */
const CLASSIFIER_EPOCHS = 40;

/** On shutdown, a running training gets this long to save its checkpoint and model. */
const SHUTDOWN_GRACE_MS = 15_000;

export class TrainingFeature implements Feature, TrainingState {
  private training: string | undefined;
  /** Stops the running training (it then saves) and resolves when it has. */
  private stopRunning: (() => Promise<void>) | undefined;

  constructor(private readonly context: ServerContext) {}

  current(): string | undefined {
    return this.training;
  }

  initialize(): ServerCapabilities {
    this.context.connection.onRequest(TrainModel.type, (params, token) => answering(() => this.train(params, token)));
    this.context.connection.onRequest(EvaluateModel.type, (params, token) =>
      answering(() => this.evaluate(params, token)),
    );
    this.context.connection.onRequest(EstimateTraining.type, (params, token) =>
      answering(() => this.estimate(params, token)),
    );
    this.context.connection.onRequest(PreviewLabelledData.type, (params) =>
      answering(async () => this.preview(params)),
    );
    return {};
  }

  private async train(raw: TrainModel.Params, token: CancellationToken): Promise<TrainModel.Result> {
    const { registry, options, status, connection, log } = this.context;
    const params = requireObject(raw, TrainModel.method) as Partial<TrainModel.Params>;
    if (!registry.trusted) throw requestFailed('untrusted workspace: training is disabled');
    const name = params.name;
    if (!isValidModelName(name))
      throw invalidParams(`${TrainModel.method}: name must be a model name (${modelNameRule.description})`);
    const workspace = folder(params.workspaceFolder, TrainModel.method);
    checkRunChoice(params, TrainModel.method);
    for (const key of ['steps', 'minutes'] as const) {
      const value = params[key];
      if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value) && value > 0))
        throw invalidParams(`${TrainModel.method}: ${key} must be a positive number`);
    }
    const samples = params.compareSamples;
    if (samples !== undefined && !(Number.isInteger(samples) && samples > 0))
      throw invalidParams(`${TrainModel.method}: compareSamples must be a positive integer`);
    const classifier = params.classifier !== undefined ? classifierParams(params, workspace) : undefined;
    const base = params.base !== undefined ? registry.resolve(params.base).dir : undefined;
    const existing = registry.find(name);
    if (existing?.bundled) throw invalidParams(`"${name}" is the name of a bundled model; choose another name`);
    const out = path.join(options.modelsDirectory, name);
    if (fs.existsSync(path.join(out, 'config.json')) && !(params.resume && !classifier)) {
      throw invalidParams(
        `a model named "${name}" exists; choose another name${classifier ? '' : ' or pass resume: true to continue its training'}`,
      );
    }
    if (this.training) throw requestFailed(`"${this.training}" is training; one training runs at a time`);

    this.training = name;
    const progress = await this.context.progress.begin(params.workDoneToken, `Training ${name}`, true);
    const cancellation = abortSignalFrom(token);
    const shutdown = new AbortController();
    const signal = AbortSignal.any([cancellation.signal, progress.signal, shutdown.signal]);
    let settle: () => void = () => {};
    const settled = new Promise<void>((resolve) => (settle = resolve));
    this.stopRunning = () => {
      shutdown.abort();
      return settled;
    };
    let figures: TrainingFigures = {
      name,
      phase: 'preparing',
      message: 'starting',
      step: 0,
      totalSteps: 0,
      elapsedSeconds: 0,
      ...(classifier ? { unit: 'epoch' as const } : {}),
    };
    let lastNotified = 0;
    let lastPhase = '';
    const publish = (force: boolean) => {
      const now = Date.now();
      if (!force && figures.phase === lastPhase && now - lastNotified < NOTIFY_MS) return;
      lastNotified = now;
      lastPhase = figures.phase;
      void connection.sendNotification(TrainingProgress.type, figures).catch(() => undefined);
      status.update({ training: figures }, force);
    };
    const run: Run = {
      name,
      workspace,
      out,
      signal,
      log: (line) => log.info(`[training ${name}] ${line}`),
      figures: () => figures,
      update: (next, force) => {
        figures = next;
        publish(force);
      },
      report: (message, percentage) => progress.report(message, percentage),
    };
    publish(true);
    try {
      const result = classifier
        ? await this.trainClassifier(run, params, classifier)
        : await this.trainLanguageModel(run, params, base);
      figures = {
        ...figures,
        phase: 'done',
        message: result.finished ? 'finished' : 'stopped',
        step: result.steps,
        comparison: result.comparison,
      };
      publish(true);
      progress.done(
        `${result.finished ? 'Trained' : 'Stopped'} ${name}: ${result.steps} ${classifier ? 'epochs' : 'steps'}, ` +
          `loss ${result.loss.toFixed(3)}`,
      );
      if (registry.rolesOf(name).length) await registry.reload(name); // the active model was retrained: swap it in
      return result;
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      figures = { ...figures, phase: 'failed', message };
      publish(true);
      progress.done(`Training ${name} failed`);
      throw requestFailed(`training "${name}" failed: ${message}`);
    } finally {
      this.training = undefined;
      this.stopRunning = undefined;
      settle();
      cancellation.dispose();
      status.update({ message: `training "${name}": ${figures.phase === 'failed' ? 'failed' : figures.message}` });
    }
  }

  /** A language model from scratch or fine-tuned; after a finished fine-tune, the comparison with its base. */
  private async trainLanguageModel(
    run: Run,
    params: Partial<TrainModel.Params>,
    base: string | undefined,
  ): Promise<TrainModel.Result> {
    const compare =
      base && params.base && params.compare !== false
        ? { base, baseName: params.base, name: run.name, samples: params.compareSamples ?? COMPARE_SAMPLES }
        : undefined;
    const result = await runTraining(
      {
        workspace: run.workspace,
        out: run.out,
        preset: params.preset as PresetName | undefined,
        base,
        method: params.method,
        steps: params.steps,
        minutes: params.minutes ?? (params.steps ? undefined : DEFAULT_MINUTES),
        resume: params.resume,
        threads: 1, // the other core keeps serving completions
      },
      {
        signal: run.signal,
        log: run.log,
        onTrainProgress: (p) => {
          // With a comparison to come, the trainer's end is not the run's: it measures the base next.
          const comparing = p.phase === 'done' && compare !== undefined && !run.signal.aborted;
          const next = toFigures(run.name, p);
          // A step with a validation measurement always goes out: the throttle may drop only plain steps.
          run.update(
            comparing ? { ...next, phase: 'saving', message: 'comparing with the base' } : next,
            p.phase !== 'training' || p.valLoss !== undefined,
          );
          const percentage = p.totalSteps ? (100 * p.step) / p.totalSteps : undefined;
          run.report(progressMessage(p), percentage);
        },
        onEvaluateProgress: (_done, _total, message) => {
          run.update({ ...run.figures(), phase: 'saving', message: `comparing with the base: ${message}` }, false);
          run.report(`comparing with the base: ${message}`);
        },
      },
      compare,
    );
    return {
      name: run.name,
      path: run.out,
      steps: result.steps,
      finished: result.finished,
      loss: result.loss,
      valLoss: result.valLoss,
      bitsPerByte: result.bitsPerByte,
      heldOutFiles: result.heldOutFiles,
      tokensPerSecond: result.tokensPerSecond,
      elapsedSeconds: result.elapsedSeconds,
      comparison: result.comparison,
    };
  }

  /** A text classifier on a labelled file of the folder (classify/trainClassifier.ts), its epochs as the steps. */
  private async trainClassifier(
    run: Run,
    params: Partial<TrainModel.Params>,
    data: NonNullable<TrainModel.Params['classifier']>,
  ): Promise<TrainModel.Result> {
    const epochs = params.steps ? Math.ceil(params.steps) : CLASSIFIER_EPOCHS;
    const started = Date.now();
    const result = await runClassifierTraining(
      {
        data: data.data,
        text: data.text,
        label: data.label,
        out: run.out,
        epochs,
        minutes: params.minutes ?? DEFAULT_MINUTES,
        threads: 1,
      },
      {
        signal: run.signal,
        log: run.log,
        onClassifierProgress: (p) => {
          const previous = run.figures();
          const step = p.epoch ?? previous.step;
          run.update(
            {
              ...previous,
              phase: p.phase,
              message: p.message,
              step,
              totalSteps: epochs,
              loss: p.loss,
              valLoss: p.valLoss,
              elapsedSeconds: (Date.now() - started) / 1000,
              fraction: Math.min(1, step / epochs),
              unit: 'epoch',
            },
            true,
          );
          run.report(p.message, p.epoch ? (100 * p.epoch) / epochs : undefined);
        },
      },
    );
    return {
      name: run.name,
      path: run.out,
      steps: result.epochs,
      finished: !run.signal.aborted,
      loss: result.loss,
      valLoss: result.valLoss,
      tokensPerSecond: 0,
      elapsedSeconds: result.elapsedSeconds,
      classification: result.metrics,
    };
  }

  /** Tokens of the workspace and seconds per step of a configuration, measured in a child process. */
  private async estimate(raw: EstimateTraining.Params, token: CancellationToken): Promise<EstimateTraining.Result> {
    const { registry } = this.context;
    const params = requireObject(raw, EstimateTraining.method) as Partial<EstimateTraining.Params>;
    if (!registry.trusted) throw requestFailed('untrusted workspace: training is disabled');
    const workspace = folder(params.workspaceFolder, EstimateTraining.method);
    checkRunChoice(params, EstimateTraining.method);
    const base = params.base !== undefined ? registry.resolve(params.base).dir : undefined;
    const cancellation = abortSignalFrom(token);
    try {
      return await runEstimate(
        {
          workspace,
          preset: (params.preset ?? (base ? undefined : 'tiny')) as PresetName | undefined,
          base,
          method: params.method,
          tokenizerDir: base ? undefined : registry.find('default')?.dir,
          threads: 1,
        },
        { signal: cancellation.signal, log: (line) => this.context.log.info(`[estimate] ${line}`) },
      );
    } catch (e) {
      if (cancellation.signal.aborted) throw requestCancelled('estimate cancelled');
      throw requestFailed(`estimating the training failed: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      cancellation.dispose();
    }
  }

  private preview(raw: PreviewLabelledData.Params): PreviewLabelledData.Result {
    const params = requireObject(raw, PreviewLabelledData.method) as Partial<PreviewLabelledData.Params>;
    if (!this.context.registry.trusted) throw requestFailed('untrusted workspace: training is disabled');
    const workspace = folder(params.workspaceFolder, PreviewLabelledData.method);
    return previewLabelledData(fileInside(workspace, params.file, PreviewLabelledData.method));
  }

  /** Shutdown: a running training stops and saves (the trainer checkpoints and exports), within a grace period. */
  async dispose(): Promise<void> {
    const stop = this.stopRunning;
    if (!stop) return;
    await Promise.race([stop(), new Promise((resolve) => setTimeout(resolve, SHUTDOWN_GRACE_MS).unref())]);
  }

  private async evaluate(raw: EvaluateModel.Params, token: CancellationToken): Promise<EvaluateModel.Result> {
    const { registry } = this.context;
    const params = requireObject(raw, EvaluateModel.method) as Partial<EvaluateModel.Params>;
    if (!isValidModelName(params.name)) throw invalidParams(`${EvaluateModel.method}: name must be a model name`);
    const entry = registry.resolve(params.name);
    const workspace = folder(params.workspaceFolder, EvaluateModel.method);
    if (params.samples !== undefined && !(Number.isInteger(params.samples) && params.samples > 0)) {
      throw invalidParams(`${EvaluateModel.method}: samples must be a positive integer`);
    }
    const progress = await this.context.progress.begin(params.workDoneToken, `Evaluating ${entry.name}`, true);
    const cancellation = abortSignalFrom(token);
    const signal = AbortSignal.any([cancellation.signal, progress.signal]);
    try {
      const result = await runEvaluation(
        {
          modelDir: entry.dir,
          workspace,
          samples: params.samples,
          record: registry.trusted && !entry.bundled,
          threads: 1,
        },
        {
          signal,
          log: (line) => this.context.log.info(`[evaluation ${entry.name}] ${line}`),
          onEvaluateProgress: (done, total, message) =>
            progress.report(message, total ? (100 * done) / total : undefined),
        },
      );
      return {
        valLoss: result.valLoss,
        perplexity: result.perplexity,
        exactMatch: result.exactMatch,
        editSimilarity: result.editSimilarity,
        latencyMs: result.latencyMs,
        samples: result.samples,
        at: new Date().toISOString(),
      };
    } catch (e) {
      if (signal.aborted) throw requestCancelled('evaluation cancelled');
      throw requestFailed(`evaluating "${entry.name}" failed: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      progress.done();
      cancellation.dispose();
    }
  }
}

/** What a running training's two kinds of job share: where it writes, its cancellation and its figures. */
interface Run {
  name: string;
  workspace: string;
  out: string;
  signal: AbortSignal;
  log: (line: string) => void;
  figures: () => TrainingFigures;
  update: (figures: TrainingFigures, force: boolean) => void;
  report: (message: string, percentage?: number) => void;
}

/** The run's kind: a preset (from scratch), a base (fine-tune, with a method) or a classifier, one at a time. */
function checkRunChoice(
  params: { preset?: unknown; base?: unknown; method?: unknown; classifier?: unknown },
  method: string,
): void {
  if (params.preset !== undefined && !(typeof params.preset === 'string' && params.preset in presets)) {
    throw invalidParams(`${method}: unknown preset "${params.preset}"; presets: ${Object.keys(presets).join(', ')}`);
  }
  if (params.preset !== undefined && params.base !== undefined)
    throw invalidParams(`${method}: give preset (from scratch) or base (fine-tune), not both`);
  if (params.method !== undefined && !(FINE_TUNE_METHODS as readonly unknown[]).includes(params.method))
    throw invalidParams(`${method}: method must be ${FINE_TUNE_METHODS.join(' or ')}`);
  if (params.method !== undefined && params.base === undefined)
    throw invalidParams(`${method}: method applies to fine-tuning: give a base`);
  if (params.classifier !== undefined && (params.preset !== undefined || params.base !== undefined))
    throw invalidParams(`${method}: a classifier is trained on its own: give neither preset nor base`);
}

/** A classifier's data file (inside the workspace folder) and its text and label columns. */
function classifierParams(
  params: Partial<TrainModel.Params>,
  workspace: string,
): NonNullable<TrainModel.Params['classifier']> {
  const given = params.classifier as Partial<TrainModel.Params['classifier']> | null;
  if (!given || typeof given !== 'object') throw invalidParams(`${TrainModel.method}: classifier must be an object`);
  for (const key of ['text', 'label'] as const)
    if (typeof given[key] !== 'string' || !given[key])
      throw invalidParams(`${TrainModel.method}: classifier.${key} must name a column`);
  if (params.resume) throw invalidParams(`${TrainModel.method}: a classifier's training cannot be resumed`);
  const data = fileInside(workspace, given.data, `${TrainModel.method}: classifier.data`);
  return { data, text: given.text as string, label: given.label as string };
}

/** A file given absolute or relative to the workspace folder; it must exist inside it. */
function fileInside(workspace: string, value: unknown, what: string): string {
  if (typeof value !== 'string' || !value) throw invalidParams(`${what}: a file is required`);
  const resolved = value.startsWith('file:') ? filePath(value) : path.resolve(workspace, value);
  const relative = resolved ? path.relative(workspace, resolved) : '';
  if (!resolved || relative.startsWith('..') || path.isAbsolute(relative))
    throw invalidParams(`${what}: ${value} is not inside ${workspace}`);
  if (!fs.existsSync(resolved) || !fs.statSync(resolved).isFile())
    throw invalidParams(`${what}: ${value} is not a file`);
  return resolved;
}

/** A workspace folder given as a path or a file: URI; it must exist. */
function folder(value: unknown, method: string): string {
  if (typeof value !== 'string' || !value) throw invalidParams(`${method}: workspaceFolder is missing`);
  const resolved = value.startsWith('file:') ? filePath(value) : path.resolve(value);
  if (!resolved || !fs.existsSync(resolved) || !fs.statSync(resolved).isDirectory())
    throw invalidParams(`${method}: ${value} is not a folder`);
  return resolved;
}

function toFigures(name: string, p: TrainProgress): TrainingFigures {
  return {
    name,
    phase: p.phase,
    message: p.phase === 'training' ? progressMessage(p) : p.message,
    step: p.step,
    totalSteps: p.totalSteps,
    loss: p.loss,
    valLoss: p.valLoss,
    learningRate: p.learningRate,
    tokensPerSecond: p.tokensPerSecond,
    elapsedSeconds: p.elapsedSeconds,
    etaSeconds: p.etaSeconds,
  };
}

export function progressMessage(p: TrainProgress): string {
  if (p.phase !== 'training') return p.message;
  const parts = [`step ${p.step}/${p.totalSteps}`];
  if (p.loss !== undefined) parts.push(`loss ${p.loss.toFixed(2)}`);
  if (p.tokensPerSecond) parts.push(`${Math.round(p.tokensPerSecond)} tok/s`);
  return parts.join(' · ');
}
