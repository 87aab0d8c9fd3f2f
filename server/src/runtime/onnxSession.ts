// The one place that talks to onnxruntime-node: creating sessions with our thread and optimization settings,
// and making tensors. Training steps, evaluation and inference all run through it.
import * as os from 'node:os';
import * as ort from 'onnxruntime-node';

export type Tensor = ort.Tensor;
export type Session = ort.InferenceSession;
export type Feeds = Record<string, ort.Tensor>;

export interface SessionSettings {
  /** Threads for one op; 0 lets onnxruntime choose (all cores). */
  intraOpThreads?: number;
  /** Where a graph given as bytes finds its external data files (the graph file's folder). */
  externalDataFolder?: string;
  /** Write the optimized graph here (for profiling and inspection). */
  optimizedModelPath?: string;
  /** Profile every run into PREFIX_<date>.json (chrome://tracing format). */
  profileFilePrefix?: string;
  /**
   * Whether idle pool threads spin-wait for the next op (onnxruntime's session.intra_op.allow_spinning). Spinning
   * saves a wake-up per op on an idle machine (about 12% of a training step here) but halves the speed when other
   * work wants the cores. 'auto' (the default, or MODELWRIGHT_SPINNING=on|off|auto) spins only when the load
   * average leaves a core for every thread when the session is made.
   */
  spinning?: 'auto' | 'on' | 'off';
}

/** Whether a session with this many intra-op threads (0: all cores) should spin, for the given setting. */
export function shouldSpin(
  setting: SessionSettings['spinning'],
  threads: number,
  load = os.loadavg()[0],
  cores = os.availableParallelism(),
): boolean {
  const chosen = setting ?? process.env.MODELWRIGHT_SPINNING;
  if (chosen === 'on' || chosen === 'off') return chosen === 'on';
  const used = threads > 0 ? threads : cores;
  return used > 1 && load + used <= cores + 0.5;
}

export async function createSession(model: Uint8Array | string, settings: SessionSettings = {}): Promise<Session> {
  const threads = settings.intraOpThreads ?? 0;
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    enableCpuMemArena: true,
    enableMemPattern: true,
    extra: {
      session: {
        intra_op: { allow_spinning: shouldSpin(settings.spinning, threads) ? '1' : '0' },
        // The masked scores' exp underflows to denormals, and arithmetic on them is several times slower on x86.
        set_denormal_as_zero: '1',
        ...(settings.externalDataFolder
          ? { model_external_initializers_file_folder_path: settings.externalDataFolder }
          : {}),
      },
    },
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
