// Runs one training, evaluation or conversion job in a child process (server/out/trainingWorker.js, bundled next to
// server.js) and gives back its result as a promise, its progress as callbacks, and cancellation through an
// AbortSignal. The child's stdout/stderr go to a log callback, never to the LSP stdio stream.
import { type ChildProcess, fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ConversionResult } from '../convert/convertFolder';
import type { EvaluationResult } from '../eval/evaluate';
import type { TrainProgress, TrainResult } from '../train/trainer';
import type { WorkerJob, WorkerToServer } from './workerProtocol';

export interface JobHooks {
  signal?: AbortSignal;
  onTrainProgress?: (progress: TrainProgress) => void;
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

export function runTraining(
  options: Extract<WorkerJob, { kind: 'train' }>['options'],
  hooks: JobHooks,
): Promise<TrainResult> {
  return runJob({ kind: 'train', options }, hooks) as Promise<TrainResult>;
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

type JobResult = TrainResult | EvaluationResult | ConversionResult;

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
      // A conversion has nothing to save (its files are written atomically): it stops at once.
      killTimer = setTimeout(() => child.kill('SIGKILL'), job.kind === 'convert' ? 0 : CANCEL_GRACE_MS);
      killTimer.unref();
    };
    hooks.signal?.addEventListener('abort', onAbort, { once: true });

    child.on('message', (message: WorkerToServer) => {
      switch (message.type) {
        case 'trainProgress':
          hooks.onTrainProgress?.(message.progress);
          break;
        case 'evaluateProgress':
          hooks.onEvaluateProgress?.(message.done, message.total, message.message);
          break;
        case 'trainResult':
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
