// The one place that talks to onnxruntime-node: creating sessions with our thread and optimization settings,
// and making tensors. Training steps, evaluation and inference all run through it.
import * as ort from 'onnxruntime-node';

export type Tensor = ort.Tensor;
export type Session = ort.InferenceSession;
export type Feeds = Record<string, ort.Tensor>;

export interface SessionSettings {
  /** Threads for one op; 0 lets onnxruntime choose (all cores). */
  intraOpThreads?: number;
  /** Write the optimized graph here (for profiling and inspection). */
  optimizedModelPath?: string;
  /** Profile every run into PREFIX_<date>.json (chrome://tracing format). */
  profileFilePrefix?: string;
}

export async function createSession(model: Uint8Array | string, settings: SessionSettings = {}): Promise<Session> {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: settings.intraOpThreads ?? 0,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    enableCpuMemArena: true,
    enableMemPattern: true,
  };
  if (settings.optimizedModelPath) options.optimizedModelFilePath = settings.optimizedModelPath;
  if (settings.profileFilePrefix) {
    options.enableProfiling = true;
    options.profileFilePrefix = settings.profileFilePrefix;
  }
  return typeof model === 'string'
    ? ort.InferenceSession.create(model, options)
    : ort.InferenceSession.create(model, options);
}

export function floatTensor(data: Float32Array, dims: readonly number[]): Tensor {
  return new ort.Tensor('float32', data, dims);
}

export function int64Tensor(data: BigInt64Array, dims: readonly number[]): Tensor {
  return new ort.Tensor('int64', data, dims);
}

export function scalarTensor(value: number): Tensor {
  return new ort.Tensor('float32', new Float32Array([value]), []);
}
