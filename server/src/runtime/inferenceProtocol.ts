// Messages between the main thread and the inference worker (inferenceWorker.ts). Models, caches and batches live
// in the worker under numeric handles the main thread chooses, so operations that return nothing (cache clones,
// batch selects, releases) are sent without waiting; the worker handles messages in the order they were sent.
import type { FolderConfig } from '../modelFolder/config';
import type { RawTensor } from './batchedCore';
import type { Io } from './modelIo';

export type ModelKind = 'sequence' | 'batched';

export type InferenceRequest =
  | {
      op: 'load';
      model: number;
      kind: ModelKind;
      onnxPath: string;
      /** Prefix of error messages: "<folder>: <onnx file>". */
      where: string;
      config: FolderConfig;
      intraOpThreads: number;
      /**
       * Batched models: most positions of recent prompts kept for prompts that start the same way (0: none;
       * undefined: as many as fit in 128 MB, at least 4096; see promptCache.ts).
       */
      promptCachePositions?: number;
    }
  | { op: 'dispose'; model: number }
  | { op: 'release'; handle: number }
  | { op: 'newCache'; model: number; cache: number }
  | { op: 'derive'; model: number; from: number; to: number; length: number }
  | { op: 'run'; model: number; cache: number; ids: number[]; allPositions: boolean }
  | { op: 'prefill'; model: number; batch: number; prompts: number[][] }
  | { op: 'step'; model: number; from: number; to: number; tokens: number[] }
  | { op: 'select'; model: number; from: number; to: number; rows: number[] }
  | { op: 'remember'; model: number; batch: number; rows: { row: number; ids: number[] }[] }
  | { op: 'concat'; model: number; parts: number[]; to: number }
  | { op: 'runTensors'; model: number; inputs: RawTensor[]; outputNames: string[] }
  /** Releases every session and ends the worker after the requests sent before it. */
  | { op: 'stop' }
  /** Fails the worker at once, as an uncaught error would (to check that callers get a clear error). */
  | { op: 'crash'; message: string };

/** A request and the id its reply carries (0: no reply wanted). */
export interface InferenceEnvelope {
  id: number;
  request: InferenceRequest;
}

export type InferenceReply = { id: number; result: unknown } | { id: number; error: string };

/** A graph input or output as the session declares it. */
export interface IoSpec {
  name: string;
  /** onnxruntime's element type; undefined for non-tensors. */
  type?: string;
  shape: (number | string)[];
}

export interface LoadedModel {
  io: Io;
  inputs: IoSpec[];
  outputs: IoSpec[];
}
