// Runs training steps and validation on onnxruntime sessions built from the engine's graphs. The flat parameter
// vector and AdamW moments live in two preallocated buffer sets used in turn: a step reads set A and writes set B
// in place, the next step reads B and writes A, so no state tensor is allocated or copied per step. A LoRA run's
// frozen base weights are tensors made once over the base's arrays and fed unchanged to every step.
import { encodeModel } from '../engine/onnx';
import { type AdamWSettings, stepScalarValues } from '../engine/optimizer';
import {
  type BatchShape,
  type Trainable,
  buildEvaluation,
  buildTrainingStep,
  names,
  packParameters,
  parameterLayout,
  unpackParameters,
} from '../engine/trainingGraph';
import {
  type Feeds,
  type Session,
  type SessionSettings,
  type Tensor,
  createSession,
  floatTensor,
  int64Tensor,
  scalarTensor,
} from '../runtime/onnxSession';
import type { Batch } from './dataset';
import type { Tensors } from '../modelFolder/safetensors';

/** Flat parameter vector and Adam moments, laid out by `parameterLayout`. */
export interface TrainerState {
  parameters: Float32Array;
  moments: Float32Array;
  variances: Float32Array;
}

const stateInputs = [names.parameters, names.moments, names.variances] as const;

/** Inputs fed unchanged to every run: a LoRA run's frozen base weights, by input name. */
export type FrozenInputs = Map<string, { data: Float32Array; shape: number[] }>;

export interface StepOptions {
  /** The frozen weights the graphs take as inputs (LoRA). */
  frozen?: FrozenInputs;
  /** The seed of a step's dropout masks (LoRA dropout), from the step number. */
  dropoutSeed?: (step: number) => bigint;
}

export class StepRunner {
  private buffers: [Feeds, Feeds] = [{}, {}];
  private current = 0;
  private readonly frozenFeeds: Feeds = {};

  private constructor(
    readonly spec: Trainable,
    readonly shape: BatchShape,
    readonly adamw: AdamWSettings,
    private readonly trainSession: Session,
    private readonly evalSession: Session,
    private readonly options: StepOptions,
  ) {
    for (const [name, { data, shape }] of options.frozen ?? []) this.frozenFeeds[name] = floatTensor(data, shape);
  }

  static async create(
    spec: Trainable,
    shape: BatchShape,
    adamw: AdamWSettings,
    state: TrainerState,
    settings: SessionSettings = {},
    options: StepOptions = {},
  ) {
    const trainSession = await createSession(encodeModel(buildTrainingStep(spec, shape, adamw)), settings);
    const evalSession = await createSession(encodeModel(buildEvaluation(spec, shape)), {
      intraOpThreads: settings.intraOpThreads,
    });
    const runner = new StepRunner(spec, shape, adamw, trainSession, evalSession, options);
    const { total } = parameterLayout(spec);
    const sources = {
      [names.parameters]: state.parameters,
      [names.moments]: state.moments,
      [names.variances]: state.variances,
    };
    for (const input of stateInputs) {
      if (sources[input].length !== total)
        throw new Error(`training state ${input} has ${sources[input].length} values, the model ${total}`);
      runner.buffers[0][input] = floatTensor(Float32Array.from(sources[input]), [total]);
      runner.buffers[1][input] = floatTensor(new Float32Array(total), [total]);
    }
    return runner;
  }

  private batchFeeds(batch: Batch): Feeds {
    const dims = [this.shape.batch, this.shape.time];
    return { [names.inputIds]: int64Tensor(batch.inputs, dims), [names.targets]: int64Tensor(batch.targets, dims) };
  }

  /** One optimizer step (steps count from 1); returns the loss before the update and the gradient norm. */
  async step(batch: Batch, step: number, learningRate: number): Promise<{ loss: number; gradNorm: number }> {
    const scalars = stepScalarValues(this.adamw, step, learningRate);
    const from = this.buffers[this.current];
    const to = this.buffers[1 - this.current];
    const feeds: Feeds = {
      ...this.frozenFeeds,
      ...from,
      ...this.batchFeeds(batch),
      [names.learningRate]: scalarTensor(scalars.learningRate),
      [names.momentScale]: scalarTensor(scalars.momentScale),
      [names.varianceScale]: scalarTensor(scalars.varianceScale),
    };
    if (this.trainSession.inputNames.includes(names.dropoutSeed))
      feeds[names.dropoutSeed] = int64Tensor(BigInt64Array.of(this.options.dropoutSeed?.(step) ?? BigInt(step)), []);
    const fetches: Record<string, Tensor | null> = { [names.loss]: null, [names.gradNorm]: null };
    for (const input of stateInputs) fetches[names.next(input)] = to[input];
    const out = await this.trainSession.run(feeds, fetches);
    this.current = 1 - this.current;
    return { loss: (out[names.loss].data as Float32Array)[0], gradNorm: (out[names.gradNorm].data as Float32Array)[0] };
  }

  async validationLoss(batches: Batch[]): Promise<number> {
    let sum = 0;
    for (const batch of batches) {
      const feeds: Feeds = {
        ...this.frozenFeeds,
        ...this.batchFeeds(batch),
        [names.parameters]: this.buffers[this.current][names.parameters],
      };
      const out = await this.evalSession.run(feeds);
      sum += (out[names.loss].data as Float32Array)[0];
    }
    return sum / batches.length;
  }

  /** The current state (views, not copies: valid until the next step). */
  state(): TrainerState {
    const data = (input: string) => this.buffers[this.current][input].data as Float32Array;
    return { parameters: data(names.parameters), moments: data(names.moments), variances: data(names.variances) };
  }

  /** Named weights (views into the current parameter vector). */
  parameters(): Map<string, Float32Array> {
    return unpackParameters(this.spec, this.state().parameters);
  }

  async dispose(): Promise<void> {
    await this.trainSession.release();
    await this.evalSession.release();
  }
}

/**
 * Checkpoint tensors of the trained parameters only, in Hugging Face names (PEFT's for a LoRA adapter): `NAME`,
 * `adam_m/NAME`, `adam_v/NAME` (views, no copy).
 */
export function stateToTensors(config: Trainable, state: TrainerState): Tensors {
  const out: Tensors = new Map();
  const { slots } = parameterLayout(config);
  for (const [prefix, flat] of [
    ['', state.parameters],
    ['adam_m/', state.moments],
    ['adam_v/', state.variances],
  ] as const) {
    for (const s of slots)
      out.set(prefix + s.name, { shape: s.shape, data: flat.subarray(s.offset, s.offset + s.size) });
  }
  return out;
}

export function stateFromTensors(config: Trainable, tensors: Tensors): TrainerState {
  const pack = (prefix: string) =>
    packParameters(
      config,
      new Map(
        parameterLayout(config).slots.map((s) => {
          const t = tensors.get(prefix + s.name);
          if (!t) throw new Error(`checkpoint is missing ${prefix + s.name}`);
          return [s.name, t.data];
        }),
      ),
    );
  return { parameters: pack(''), moments: pack('adam_m/'), variances: pack('adam_v/') };
}

export function freshState(config: Trainable, weights: Map<string, Float32Array>): TrainerState {
  const parameters = packParameters(config, weights);
  return { parameters, moments: new Float32Array(parameters.length), variances: new Float32Array(parameters.length) };
}
