// Fine-tuning a base: what is trained (a LoRA adapter, the Llama family's default and GPT-2's on request, or every
// weight), the trained weights a run starts from, the frozen weights a LoRA step takes as inputs, and the export: the
// base's layout (GPT-2's as the trainer writes it) with the adapter merged, model.safetensors in Hugging Face names,
// the config and tokenizer files, the adapter in PEFT format in adapter/, and the model card with the base.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Architecture } from '../engine/architecture';
import { buildInference } from '../engine/inferenceGraph';
import {
  type LoraArchitecture,
  type LoraSettings,
  defaultLora,
  initialLoraParameters,
  isLoraArchitecture,
  loraFamilies,
  loraFamilyOf,
  mergeLora,
} from '../engine/lora';
import { writeModelFile } from '../engine/onnxFile';
import { quantizeModel } from '../engine/quantize';
import { type GptConfig, initialParameters } from '../engine/model';
import { type Trainable, type TrainingSpec, frozenInputShapes, trainedParameterShapes } from '../engine/trainingGraph';
import { METADATA_FILES, ONNX_FILE, writeConfigFiles } from '../modelFolder/config';
import { type ModelCard, writeModelCard } from '../modelFolder/modelCard';
import { type Tensors, encodeSafetensors } from '../modelFolder/safetensors';
import { SAFETENSORS_FILE } from '../modelFolder/weights';
import { writeFileAtomic } from '../util/atomicFile';
import { type BaseModel, baseRecord, readBaseModel } from './baseModel';
import { type FinishedRun, INCOMPLETE_MARKER } from './finalExport';
import { writePeftAdapter } from './peftAdapter';
import type { StepOptions } from './trainStep';
import type { TrainOptions } from './trainOptions';

export type FineTuneMethod = 'lora' | 'full';
export const FINE_TUNE_METHODS: readonly FineTuneMethod[] = ['lora', 'full'];
export type ExportDtype = 'fp32' | 'q8';

export const ADAPTER_DIR = 'adapter';
export const QUANTIZED_ONNX_FILE = path.join('onnx', 'model_quantized.onnx');

/** The options that choose what a fine-tuning run trains (TrainOptions has them under these names). */
export interface FineTuneOptions {
  method?: FineTuneMethod;
  loraRank?: number;
  loraAlpha?: number;
  loraDropout?: number;
  /** The adapted layers: Llama's short (q, k, v, o, gate, up, down) or full (q_proj…) names; GPT-2's c_attn… */
  loraTargets?: string[];
}

/** The names --lora-targets takes for a family's layers besides PEFT's own (the Llama family's q for q_proj…). */
const shortTargetNames: Record<LoraArchitecture['family'], Record<string, string>> = {
  llama: { q: 'q_proj', k: 'k_proj', v: 'v_proj', o: 'o_proj', gate: 'gate_proj', up: 'up_proj', down: 'down_proj' },
  gpt2: {},
};

/** The LoRA target modules for --lora-targets' names, checked against the base's family. */
export function loraTargetModules(architecture: LoraArchitecture, names: string[]): string[] {
  const short = shortTargetNames[architecture.family];
  const { modules } = loraFamilies[architecture.family];
  const offered = Object.keys(short).length > 0 ? Object.keys(short) : modules;
  return names.map((name) => {
    const module = short[name] ?? name;
    if (!modules.includes(module))
      throw new Error(
        `--lora-targets: "${name}" is not a layer LoRA adapts in ${architecture.family} models: ` +
          `give some of ${offered.join(', ')}`,
      );
    return module;
  });
}

/** What a run trains and from what: the pieces of the trainer that differ between its kinds of run. */
export interface TrainingPlan {
  trained: Trainable;
  /** The trained weights at step 0 (read only for a new run). */
  initialWeights: () => Map<string, Float32Array>;
  stepOptions: StepOptions;
  /** The export of a fine-tuned model; a model trained from scratch or a GPT-2 base trained whole use the trainer's. */
  exportModel?: (finishedRun: FinishedRun, card: FineTunedExport['card']) => void;
}

/**
 * From scratch (the preset's GPT-2), fine-tuning a GPT-2 base (every weight, as before, or a LoRA adapter) or a
 * Llama-family base (a LoRA adapter or every weight); LoRA's frozen base weights are fed once as inputs.
 */
export function planTraining(options: TrainOptions, config: GptConfig, seed: number): TrainingPlan {
  if (!options.base) return { trained: config, initialWeights: () => initialParameters(config, seed), stepOptions: {} };
  const base = readBaseModel(options.base);
  const spec = fineTuneSpec(base.architecture, options);
  const { lora } = spec;
  if (!lora && base.architecture.family === 'gpt2') {
    return { trained: base.architecture.config, initialWeights: base.loadWeights, stepOptions: {} };
  }
  // LoRA keeps the base weights for the whole run (inputs of every step, then the merge); full training reads
  // them only to start from.
  const baseWeights = lora ? base.loadWeights() : undefined;
  return {
    trained: spec,
    initialWeights: () => (lora ? initialLoraParameters(spec.architecture, lora, seed) : base.loadWeights()),
    stepOptions: {
      frozen: baseWeights && frozenWeights(spec, baseWeights),
      dropoutSeed: (step) => dropoutSeedAt(seed, step),
    },
    exportModel: (finishedRun, card) =>
      exportFineTuned({ finishedRun, base, baseWeights, spec, dtype: options.dtype, card }),
  };
}

/**
 * What a run on this base trains: a LoRA adapter (the Llama family's default; GPT-2's with --method lora) or every
 * weight (GPT-2's default, and the only way for other families).
 */
export function fineTuneSpec(architecture: Architecture, options: FineTuneOptions): TrainingSpec {
  const method = options.method ?? (architecture.family === 'llama' ? 'lora' : 'full');
  if (method === 'full') {
    const given = loraOptionNames.filter(([key]) => options[key] !== undefined).map(([, flag]) => flag);
    if (given.length) {
      const why = options.method ? '--method full' : `the default for ${architecture.family} bases`;
      throw new Error(`${given.join(', ')}: only for --method lora, and this run trains every weight (${why})`);
    }
    return { architecture };
  }
  if (!isLoraArchitecture(architecture))
    throw new Error(
      `LoRA is available for Llama-family and GPT-2 bases, not ${architecture.family}: use --method full`,
    );
  const rank = options.loraRank ?? defaultLora.rank;
  const lora: LoraSettings = {
    rank,
    alpha: options.loraAlpha ?? 2 * rank,
    dropout: options.loraDropout ?? defaultLora.dropout,
    targetModules: options.loraTargets
      ? loraTargetModules(architecture, options.loraTargets)
      : [...loraFamilies[architecture.family].defaultTargets],
  };
  if (!(lora.dropout >= 0 && lora.dropout < 1)) throw new Error(`--lora-dropout ${lora.dropout} is not in [0, 1)`);
  return { architecture, lora };
}

const loraOptionNames: [keyof FineTuneOptions, string][] = [
  ['loraRank', '--lora-rank'],
  ['loraAlpha', '--lora-alpha'],
  ['loraDropout', '--lora-dropout'],
  ['loraTargets', '--lora-targets'],
];

/** The base weights a LoRA step takes as inputs, by input name (none for full training): views, no copies. */
export function frozenWeights(
  spec: TrainingSpec,
  weights: Map<string, Float32Array>,
): Map<string, { data: Float32Array; shape: number[] }> {
  return new Map(frozenInputShapes(spec).map(([name, shape]) => [name, { data: weights.get(name)!, shape }]));
}

/** The seed of LoRA dropout's masks at a step: a function of the run's seed and the step, so a resumed run redraws them. */
export function dropoutSeedAt(seed: number, step: number): bigint {
  return BigInt(seed) * 1_000_003n + BigInt(step);
}

/** The model's weights after training: the adapter merged into the base, or the trained weights themselves. */
export function exportedWeights(
  spec: TrainingSpec,
  baseWeights: Map<string, Float32Array> | undefined,
  trained: Map<string, Float32Array>,
): Map<string, Float32Array> {
  if (!spec.lora) return trained;
  if (!baseWeights) throw new Error('merging a LoRA adapter needs the base weights');
  return mergeLora(spec.architecture, spec.lora, baseWeights, trained);
}

export interface FineTunedExport {
  finishedRun: FinishedRun;
  base: BaseModel;
  /** The base weights (LoRA: the adapter is merged into them). */
  baseWeights?: Map<string, Float32Array>;
  spec: TrainingSpec;
  dtype?: ExportDtype;
  /** The card as the GPT-2 export writes it; the fields of a fine-tuned model are set over it. */
  card: (run: ReturnType<FinishedRun['runState']>, finished: FinishedRun) => ModelCard;
}

/** Writes the output folder of a fine-tuned model (see the top of this file). */
export function exportFineTuned({ finishedRun, base, baseWeights, spec, dtype, card }: FineTunedExport): void {
  const out = finishedRun.runState().options.out;
  const weights = exportedWeights(spec, baseWeights, finishedRun.parameters);
  if (spec.architecture.family === 'gpt2') {
    // The GPT-2 layout the trainer writes (the base's tokenizer files were copied when the run began).
    writeConfigFiles(out, spec.architecture.config, finishedRun.endOfTextId);
  } else {
    for (const file of METADATA_FILES) {
      const from = path.join(base.dir, file);
      if (fs.existsSync(from)) writeFileAtomic(path.join(out, file), fs.readFileSync(from));
    }
  }
  const model = buildInference(spec.architecture, weights);
  writeModelFile(path.join(out, ONNX_FILE), model);
  if (dtype === 'q8') writeModelFile(path.join(out, QUANTIZED_ONNX_FILE), quantizeModel(model).model);
  const tensors: Tensors = new Map();
  for (const [name, shape] of trainedParameterShapes({ architecture: spec.architecture }))
    tensors.set(name, { shape, data: weights.get(name)! });
  writeFileAtomic(path.join(out, SAFETENSORS_FILE), encodeSafetensors(tensors, { format: 'pt' }));

  const record = baseRecord(base.dir);
  if (spec.lora) {
    const adapter: Tensors = new Map();
    for (const [name, shape] of trainedParameterShapes(spec))
      adapter.set(name, { shape, data: finishedRun.parameters.get(name)! });
    writePeftAdapter(
      path.join(out, ADAPTER_DIR),
      spec.lora,
      {
        nameOrPath: record.repo ?? record.folder,
        revision: record.commit ?? record.revision,
        fanInFanOut: loraFamilyOf(spec.architecture).layout === 'inOut',
      },
      adapter,
    );
  }
  const run = finishedRun.runState();
  const generic = card(run, finishedRun);
  const parameterCount = [...tensors.values()].reduce((n, t) => n + t.data.length, 0);
  const { config } = spec.architecture;
  writeModelCard(out, {
    ...generic,
    parent: path.resolve(base.dir),
    base: record,
    parameters: parameterCount,
    hyperparameters: {
      ...Object.fromEntries(
        Object.entries(generic.hyperparameters).filter(
          ([key]) => !['vocabSize', 'layers', 'heads', 'embedding'].includes(key),
        ),
      ),
      modelType: readModelType(base.dir),
      vocabSize: config.vocabSize,
      layers: config.layers,
      ...(spec.architecture.family === 'gpt2' ? { heads: config.heads } : {}),
      embedding: config.embedding,
      method: spec.lora ? 'lora' : 'full',
      trainedParameters: trainedParameterShapes(spec).reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0),
      ...(spec.lora
        ? {
            'lora.rank': spec.lora.rank,
            'lora.alpha': spec.lora.alpha,
            'lora.dropout': spec.lora.dropout,
            'lora.targetModules': spec.lora.targetModules.join(','),
          }
        : {}),
      ...(dtype ? { dtype } : {}),
    },
  });
  fs.rmSync(path.join(out, INCOMPLETE_MARKER), { force: true });
}

function readModelType(dir: string): string {
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as { model_type?: string };
  return config.model_type ?? 'unknown';
}
