// Messages between the language server and its job child process (workers/trainingWorker.ts: training, with the
// comparison against the base after a fine-tune, estimating a training's cost, training a text classifier,
// evaluation, converting safetensors to ONNX): one job per process, progress as it runs, a cancel request, and the
// result or error at the end.
import type { ClassifierProgress, TrainClassifierOptions, TrainClassifierResult } from '../classify/trainClassifier';
import type { ConversionDtype, ConversionResult } from '../convert/convertFolder';
import type { EvaluationResult } from '../eval/evaluate';
import type { EstimateTraining, TrainingComparison } from '../protocol';
import type { TrainOptions, TrainProgress, TrainResult } from '../train/trainer';
import type { EstimateJob } from './trainingEstimate';

/** After fine-tuning: evaluate the base and the new model on the same held-out files, this many completions each. */
export interface CompareJob {
  base: string;
  baseName: string;
  name: string;
  samples: number;
}

export type ClassifierJobOptions = Omit<TrainClassifierOptions, 'signal' | 'onProgress'>;

/** A classifier's result without the data's rows (they stay in the worker). */
export type ClassifierJobResult = Omit<TrainClassifierResult, 'data'> & {
  data: Omit<TrainClassifierResult['data'], 'rows'> & { rows: number };
  /** The training loss of the last epoch. */
  loss: number;
};

export type TrainJobResult = TrainResult & { comparison?: TrainingComparison };

export type WorkerJob =
  | { kind: 'train'; options: TrainOptions; compare?: CompareJob }
  | ({ kind: 'estimate' } & EstimateJob)
  | { kind: 'trainClassifier'; options: ClassifierJobOptions }
  | { kind: 'evaluate'; modelDir: string; workspace: string; samples?: number; record: boolean; threads: number }
  | { kind: 'convert'; modelDir: string; dtype: ConversionDtype };

export type ServerToWorker = { type: 'start'; job: WorkerJob } | { type: 'cancel' };

export type WorkerToServer =
  | { type: 'trainProgress'; progress: TrainProgress }
  | { type: 'classifierProgress'; progress: ClassifierProgress }
  | { type: 'evaluateProgress'; done: number; total: number; message: string }
  | { type: 'trainResult'; result: TrainJobResult }
  | { type: 'estimateResult'; result: EstimateTraining.Result }
  | { type: 'classifierResult'; result: ClassifierJobResult }
  | { type: 'evaluateResult'; result: EvaluationResult }
  | { type: 'convertResult'; result: ConversionResult }
  | { type: 'error'; message: string };
