// Writes and reads a LoRA adapter in the PEFT format (adapter_config.json + adapter_model.safetensors, PEFT's
// parameter names), so an adapter trained here can be applied to its base with the usual Python tools, or trained
// further on a cluster.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LoraSettings } from '../engine/lora';
import { readSafetensorsFile, encodeSafetensors, type Tensors } from '../modelFolder/safetensors';
import { writeFileAtomic } from '../util/atomicFile';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

/** The fields of PEFT's LoraConfig that describe what was trained (PEFT fills the rest with its defaults). */
export interface PeftAdapterConfig {
  peft_type: 'LORA';
  task_type: 'CAUSAL_LM';
  base_model_name_or_path: string;
  revision: string | null;
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  target_modules: string[];
  bias: 'none';
  /** True for GPT-2's Conv1D weights, stored [in, out]: PEFT then transposes B·A when it merges. */
  fan_in_fan_out: boolean;
  inference_mode: true;
  init_lora_weights: true;
  use_rslora: false;
  use_dora: false;
  modules_to_save: null;
  layers_to_transform: null;
  layers_pattern: null;
  rank_pattern: Record<string, never>;
  alpha_pattern: Record<string, never>;
}

export interface AdapterBase {
  /** The base's hub repo id when it was pulled, else its folder. */
  nameOrPath: string;
  revision?: string;
  /** The base's weights are stored [in, out] (GPT-2's Conv1D) rather than nn.Linear's [out, in]. */
  fanInFanOut?: boolean;
}

export function peftAdapterConfig(settings: LoraSettings, base: AdapterBase): PeftAdapterConfig {
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: base.nameOrPath,
    revision: base.revision ?? null,
    r: settings.rank,
    lora_alpha: settings.alpha,
    lora_dropout: settings.dropout,
    target_modules: [...settings.targetModules],
    bias: 'none',
    fan_in_fan_out: base.fanInFanOut ?? false,
    inference_mode: true,
    init_lora_weights: true,
    use_rslora: false,
    use_dora: false,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
  };
}

/** Writes the adapter into `dir` (weights first, config last: a folder with a config has its weights). */
export function writePeftAdapter(dir: string, settings: LoraSettings, base: AdapterBase, weights: Tensors): void {
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(path.join(dir, ADAPTER_WEIGHTS_FILE), encodeSafetensors(weights, { format: 'pt' }));
  writeFileAtomic(
    path.join(dir, ADAPTER_CONFIG_FILE),
    `${JSON.stringify(peftAdapterConfig(settings, base), null, 2)}\n`,
  );
}

/** Reads an adapter written by writePeftAdapter (or by PEFT, for float weights): its settings and weights. */
export function readPeftAdapter(dir: string): { settings: LoraSettings; base: AdapterBase; weights: Tensors } {
  const config = JSON.parse(fs.readFileSync(path.join(dir, ADAPTER_CONFIG_FILE), 'utf8')) as Partial<PeftAdapterConfig>;
  if (config.peft_type !== 'LORA') throw new Error(`${dir}: not a LoRA adapter (peft_type ${config.peft_type})`);
  if (typeof config.r !== 'number' || typeof config.lora_alpha !== 'number' || !Array.isArray(config.target_modules))
    throw new Error(`${dir}: ${ADAPTER_CONFIG_FILE} lacks r, lora_alpha or target_modules`);
  return {
    settings: {
      rank: config.r,
      alpha: config.lora_alpha,
      dropout: config.lora_dropout ?? 0,
      targetModules: config.target_modules,
    },
    base: {
      nameOrPath: config.base_model_name_or_path ?? '',
      revision: config.revision ?? undefined,
      fanInFanOut: config.fan_in_fan_out ?? false,
    },
    weights: readSafetensorsFile(path.join(dir, ADAPTER_WEIGHTS_FILE)).tensors,
  };
}
