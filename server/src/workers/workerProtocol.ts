// Messages between the language server and its job child process (workers/trainingWorker.ts: training,
// evaluation, converting safetensors to ONNX): one job per process, progress as it runs, a cancel request, and the
// result or error at the end.
import type { ConversionDtype, ConversionResult } from '../convert/convertFolder';
import type { EvaluationResult } from '../eval/evaluate';
import type { TrainOptions, TrainProgress, TrainResult } from '../train/trainer';

export type WorkerJob =
  | { kind: 'train'; options: TrainOptions }
  | { kind: 'evaluate'; modelDir: string; workspace: string; samples?: number; record: boolean; threads: number }
  | { kind: 'convert'; modelDir: string; dtype: ConversionDtype };

export type ServerToWorker = { type: 'start'; job: WorkerJob } | { type: 'cancel' };

export type WorkerToServer =
  | { type: 'trainProgress'; progress: TrainProgress }
  | { type: 'evaluateProgress'; done: number; total: number; message: string }
  | { type: 'trainResult'; result: TrainResult }
  | { type: 'evaluateResult'; result: EvaluationResult }
  | { type: 'convertResult'; result: ConversionResult }
  | { type: 'error'; message: string };
