// Runs one job (training, a training's estimate, a text classifier's training, evaluation or conversion) in a child
// process (server/out/trainingWorker.js, bundled next to server.js) and gives back its result as a promise, its
// progress as callbacks, and cancellation through an AbortSignal. The child's stdout/stderr go to a log callback,
// never to the LSP stdio stream.
import { type ChildProcess, fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ConversionResult } from '../convert/convertFolder';
import type { EvaluationResult } from '../eval/evaluate';
import type { ClassifierProgress } from '../classify/trainClassifier';
import type { EstimateTraining } from '../protocol';
import type { TrainProgress } from '../train/trainer';
import type { EstimateJob } from './trainingEstimate';
import type {
  ClassifierJobOptions,
  ClassifierJobResult,
  CompareJob,
  TrainJobResult,
  WorkerJob,
  WorkerToServer,
} from './workerProtocol';

export interface JobHooks {
  signal?: AbortSignal;
  onTrainProgress?: (progress: TrainProgress) => void;
  onClassifierProgress?: (progress: ClassifierProgress) => void;
  onEvaluateProgress?: (done: number, total: number, message: string) => void;
  log?: (line: string) => void;
}

/** After a cancel, the child gets this long to save and exit before it is killed. */
const CANCEL_GRACE_MS = 120_000;

/** The worker entry: the bundle next to this file, or the TypeScript source when running from source (tsx). */
function workerEntry(): { file: string; execArgv: string[] } {
  const bundled = path.join(__dirname, 'trainingWorker.js');
  if (fs.existsSync(bundled)) return { file: bundled, execArgv: [] };
  const source = path.join(__dirname, 'trainingWorker.ts');
  if (fs.existsSync(source)) return { file: source, execArgv: ['--import', 'tsx'] };
  throw new Error(`the training worker is missing: ${bundled} (run npm run build)`);
}

/** Trains; with `compare`, then evaluates the base and the new model on the same files (progress as evaluation). */
export function runTraining(
  options: Extract<WorkerJob, { kind: 'train' }>['options'],
  hooks: JobHooks,
  compare?: CompareJob,
): Promise<TrainJobResult> {
  return runJob({ kind: 'train', options, compare }, hooks) as Promise<TrainJobResult>;
}

/** Tokens of the workspace and seconds per step of a training configuration (probe steps run in the child). */
export function runEstimate(job: EstimateJob, hooks: JobHooks): Promise<EstimateTraining.Result> {
  return runJob({ kind: 'estimate', ...job }, hooks) as Promise<EstimateTraining.Result>;
}

export function runClassifierTraining(options: ClassifierJobOptions, hooks: JobHooks): Promise<ClassifierJobResult> {
  return runJob({ kind: 'trainClassifier', options }, hooks) as Promise<ClassifierJobResult>;
}

export function runEvaluation(
  job: Omit<Extract<WorkerJob, { kind: 'evaluate' }>, 'kind'>,
  hooks: JobHooks,
): Promise<EvaluationResult> {
  return runJob({ kind: 'evaluate', ...job }, hooks) as Promise<EvaluationResult>;
}

/** Converts a safetensors-only folder to ONNX (convert/convertFolder.ts) without blocking the caller's thread. */
export function runConversion(
  job: Omit<Extract<WorkerJob, { kind: 'convert' }>, 'kind'>,
  hooks: JobHooks,
): Promise<ConversionResult> {
  return runJob({ kind: 'convert', ...job }, hooks) as Promise<ConversionResult>;
}

type JobResult = TrainJobResult | EstimateTraining.Result | ClassifierJobResult | EvaluationResult | ConversionResult;

function runJob(job: WorkerJob, hooks: JobHooks): Promise<JobResult> {
  return new Promise((resolve, reject) => {
    const entry = workerEntry();
    let child: ChildProcess;
    try {
      child = fork(entry.file, [], {
        execArgv: entry.execArgv,
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        env: { ...process.env, MODELWRIGHT_WORKER: '1' },
      });
    } catch (e) {
      reject(e);
      return;
    }
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    const finish = (error: Error | undefined, result?: JobResult) => {
      if (settled) return;
      settled = true;
      hooks.signal?.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      if (error) reject(error);
      else resolve(result!);
    };
    const forward = (stream: NodeJS.ReadableStream | null) => {
      let pending = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        pending += chunk;
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) if (line.trim()) hooks.log?.(line);
      });
    };
    forward(child.stdout);
    forward(child.stderr);
    const onAbort = () => {
      if (child.connected) child.send({ type: 'cancel' });
      // A conversion or an estimate has nothing to save (files are written atomically, if at all): it stops at once.
      const nothingToSave = job.kind === 'convert' || job.kind === 'estimate';
      killTimer = setTimeout(() => child.kill('SIGKILL'), nothingToSave ? 0 : CANCEL_GRACE_MS);
      killTimer.unref();
    };
    hooks.signal?.addEventListener('abort', onAbort, { once: true });

    child.on('message', (message: WorkerToServer) => {
      switch (message.type) {
        case 'trainProgress':
          hooks.onTrainProgress?.(message.progress);
          break;
        case 'classifierProgress':
          hooks.onClassifierProgress?.(message.progress);
          break;
        case 'evaluateProgress':
          hooks.onEvaluateProgress?.(message.done, message.total, message.message);
          break;
        case 'trainResult':
        case 'estimateResult':
        case 'classifierResult':
        case 'evaluateResult':
        case 'convertResult':
          finish(undefined, message.result);
          break;
        case 'error':
          finish(new Error(message.message));
          break;
      }
    });
    child.on('error', (e) => finish(e));
    child.on('exit', (code, signal) =>
      finish(new Error(`the training worker exited (${signal ?? `code ${code}`}) before it finished`)),
    );
    child.send({ type: 'start', job });
    if (hooks.signal?.aborted) onAbort();
  });
}
