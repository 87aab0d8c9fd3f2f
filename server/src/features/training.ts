// modelwright/train and modelwright/evaluate, run in a child process (workers/) so completions keep answering:
// work-done progress ("step 120/400 · loss 2.31 · 5400 tok/s"), TrainingProgress figures, clean cancellation (the
// trainer checkpoints and exports what it has), and a hot-swap when a deployed model was retrained.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CancellationToken, ServerCapabilities } from 'vscode-languageserver';
import { abortSignalFrom, requestCancelled } from '../util/cancellation';
import { type PresetName, presets } from '../engine/model';
import { filePath } from '../explanation/workspaceFiles';
import {
  EvaluateModel,
  TrainModel,
  type TrainingFigures,
  TrainingProgress,
  isValidModelName,
  modelNameRule,
} from '../protocol';
import type { TrainProgress } from '../train/trainer';
import { runEvaluation, runTraining } from '../workers/workerJob';
import { answering, invalidParams, requestFailed } from './errors';
import type { Feature } from './feature';
import type { TrainingState } from './models';
import { requireObject } from './params';
import type { ServerContext } from './serverContext';

/** Training figures go to the client at most this often (phase changes always). */
const NOTIFY_MS = 200;
/** Time budget when the client gives neither steps nor minutes. */
const DEFAULT_MINUTES = 10;

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
    if (params.preset !== undefined && !(params.preset in presets)) {
      throw invalidParams(
        `${TrainModel.method}: unknown preset "${params.preset}"; presets: ${Object.keys(presets).join(', ')}`,
      );
    }
    if (params.preset !== undefined && params.base !== undefined)
      throw invalidParams(`${TrainModel.method}: give preset (from scratch) or base (fine-tune), not both`);
    const base = params.base !== undefined ? registry.resolve(params.base).dir : undefined;
    for (const key of ['steps', 'minutes'] as const) {
      const value = params[key];
      if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value) && value > 0))
        throw invalidParams(`${TrainModel.method}: ${key} must be a positive number`);
    }
    const existing = registry.find(name);
    if (existing?.bundled) throw invalidParams(`"${name}" is the name of a bundled model; choose another name`);
    const out = path.join(options.modelsDirectory, name);
    if (fs.existsSync(path.join(out, 'config.json')) && !params.resume) {
      throw invalidParams(
        `a model named "${name}" exists; choose another name or pass resume: true to continue its training`,
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
    publish(true);
    try {
      const result = await runTraining(
        {
          workspace,
          out,
          preset: params.preset as PresetName | undefined,
          base,
          steps: params.steps,
          minutes: params.minutes ?? (params.steps ? undefined : DEFAULT_MINUTES),
          resume: params.resume,
          threads: 1, // the other core keeps serving completions
        },
        {
          signal,
          log: (line) => log.info(`[training ${name}] ${line}`),
          onTrainProgress: (p) => {
            figures = toFigures(name, p);
            const percentage = p.totalSteps ? (100 * p.step) / p.totalSteps : undefined;
            progress.report(progressMessage(p), percentage);
            publish(p.phase !== 'training');
          },
        },
      );
      figures = { ...figures, phase: 'done', message: result.finished ? 'finished' : 'stopped', step: result.steps };
      publish(true);
      progress.done(
        `${result.finished ? 'Trained' : 'Stopped'} ${name}: ${result.steps} steps, loss ${result.loss.toFixed(3)}`,
      );
      if (registry.rolesOf(name).length) await registry.reload(name); // the active model was retrained: swap it in
      return {
        name,
        path: out,
        steps: result.steps,
        finished: result.finished,
        loss: result.loss,
        valLoss: result.valLoss,
        tokensPerSecond: result.tokensPerSecond,
        elapsedSeconds: result.elapsedSeconds,
      };
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
