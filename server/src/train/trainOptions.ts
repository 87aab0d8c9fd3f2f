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
  /** Replace an existing output folder (without it, a run refuses to start in a folder that holds files). */
  force?: boolean;
  seed?: number;
  batchSize?: number;
  /** Training window; defaults to the model's context length. */
  contextLength?: number;
  learningRate?: number;
  warmupSteps?: number;
  evalEvery?: number;
  checkpointSeconds?: number;
  threads?: number;
  /** Share of training files turned into fill-in-the-middle examples (default 0.5; 0 trains left to right only). */
  fimRate?: number;
  /** Expected share of the workspace's files held out for validation (default 0.1). */
  validationFraction?: number;
  /** Gitignore-style patterns of files to train on even when a heuristic (secret name, minified…) excludes them. */
  allow?: string[];
  /** Fine-tuning a base: 'lora' trains an adapter (the Llama family's default), 'full' every weight (GPT-2's). */
  method?: 'lora' | 'full';
  loraRank?: number;
  /** The adapter's scale is alpha / rank (default alpha: twice the rank). */
  loraAlpha?: number;
  loraDropout?: number;
  /** The adapted layers: Llama's q, k, v, o (default), gate, up, down; GPT-2's c_attn (default), c_proj, c_fc. */
  loraTargets?: string[];
  /** q8 also writes onnx/model_quantized.onnx (int8 weights) beside the float32 graph. */
  dtype?: 'fp32' | 'q8';
}
