// The options of one training run, as `modelwright train` and the training worker pass them. A resumed run
// stores them in its checkpoint, and options given again on resuming override the stored ones.
import type { PresetName } from '../engine/model';

export interface TrainOptions {
  workspace: string;
  out: string;
  /** Train from scratch with this architecture (and a new tokenizer). */
  preset?: PresetName;
  /** Fine-tune this model folder instead: keeps its tokenizer and architecture. */
  base?: string;
  minutes?: number;
  steps?: number;
  resume?: boolean;
  seed?: number;
  batchSize?: number;
  /** Training window; defaults to the model's context length. */
  contextLength?: number;
  learningRate?: number;
  warmupSteps?: number;
  evalEvery?: number;
  checkpointSeconds?: number;
  threads?: number;
}
