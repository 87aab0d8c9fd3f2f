// What Train Model offers: fine-tuning the downloaded pretrained models first (LoRA for the Llama family, every
// weight as a choice for small ones), then the workspace's own and shipped models, training from scratch with a
// preset, and a text classifier per labelled CSV/JSONL file; the columns of such a file, the time budgets, and the
// new model's name (suggested and validated). Pure.
import { isValidModelName, type ModelSummary, modelNameRule } from '../../server/src/protocol';

export type ChoiceGroup = 'fine-tune' | 'scratch' | 'classifier';

export interface TrainingChoice {
  label: string;
  description: string;
  detail: string;
  group: ChoiceGroup;
  /** From scratch with this preset, fine-tuning `base` (a model name) by `method`, or a classifier on `data`. */
  preset?: string;
  base?: string;
  method?: 'lora' | 'full';
  /** A labelled file, relative to the workspace folder. */
  data?: string;
}

/** The headings the quick pick shows above each group. */
export const groupTitles: Record<ChoiceGroup, string> = {
  'fine-tune': 'Fine-tune a model',
  scratch: 'Train from scratch',
  classifier: 'Text classifier',
};

/** config.json model types of the Llama family (LoRA by default, or every weight); GPT-2 fine-tunes every weight by
 * default, or a LoRA adapter on c_attn. */
export const llamaModelTypes: readonly string[] = ['llama', 'qwen2', 'mistral', 'starcoder2'];
/** Full fine-tuning is offered beside LoRA up to this many parameters (memory: weights, gradients, 2 moments). */
export const FULL_FINE_TUNE_MAX_PARAMETERS = 150e6;

/** A model Train Model can start from. */
export interface FineTuneBase {
  name: string;
  /** config.json's model_type (gpt2 for the project's own models). */
  modelType: string;
  parameters?: number;
  /** Downloaded from the hub: a pretrained model. */
  pulled: boolean;
}

/** The presets of the training engine (server/src/engine/model.ts), as offered to users. */
export const presetChoices: readonly TrainingChoice[] = [
  {
    label: 'tiny',
    preset: 'tiny',
    group: 'scratch',
    description: '≈1.1M parameters, from scratch',
    detail: 'Fastest: a first model in a minute or two.',
  },
  {
    label: 'default',
    preset: 'default',
    group: 'scratch',
    description: '≈1.9M parameters, from scratch',
    detail: 'The size of the shipped model.',
  },
  {
    label: 'small',
    preset: 'small',
    group: 'scratch',
    description: '≈6.9M parameters, from scratch',
    detail: 'Better completions; needs a larger workspace and longer training.',
  },
];

/** A language model of a family the trainer fine-tunes (the project's own models are GPT-2). */
export const canFineTune = (m: ModelSummary) =>
  m.kind === 'causal-lm' &&
  (m.modelType === undefined || m.modelType === 'gpt2' || llamaModelTypes.includes(m.modelType));

/**
 * The models to offer as bases, in order: downloaded pretrained models of a family the trainer fine-tunes (smallest
 * first), then the active completion model and the shipped ones.
 */
export function fineTuneBases(models: readonly ModelSummary[], active: string | undefined): FineTuneBase[] {
  const pulled = models
    .filter((m) => m.origin !== undefined && canFineTune(m))
    .sort((a, b) => (a.parameters ?? Infinity) - (b.parameters ?? Infinity) || a.name.localeCompare(b.name));
  const local = models.filter((m) => m.origin === undefined && canFineTune(m) && (m.name === active || m.bundled));
  local.sort((a, b) => Number(b.name === active) - Number(a.name === active));
  return [...pulled, ...local].map(asFineTuneBase);
}

/** A listed model as a base (whether or not the trainer can fine-tune its family: see `canFineTune`). */
export function asFineTuneBase(m: ModelSummary): FineTuneBase {
  return { name: m.name, modelType: m.modelType ?? 'gpt2', parameters: m.parameters, pulled: m.origin !== undefined };
}

/** "135M", "1.1M", "420k" parameters. */
export function formatParameters(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e8 ? 0 : 1)}M`;
  return `${Math.round(n / 1e3)}k`;
}

/** The choices for one base: LoRA (and full training when small) for the Llama family; full training, then LoRA, for
 * GPT-2; full training for the rest. */
export function fineTuneChoices(base: FineTuneBase): TrainingChoice[] {
  const size = base.parameters ? `${formatParameters(base.parameters)} parameters · ` : '';
  const what = `${size}${base.modelType}${base.pulled ? ' · pretrained' : ''}`;
  const keeps = `Keeps ${base.name}'s tokenizer and architecture and continues training it on this workspace`;
  const small = base.parameters === undefined || base.parameters <= FULL_FINE_TUNE_MAX_PARAMETERS;
  const lora = (layers?: string): TrainingChoice => ({
    label: `Fine-tune ${base.name} with LoRA`,
    base: base.name,
    method: 'lora',
    group: 'fine-tune',
    description: what,
    detail: `${keeps}: a small adapter on its attention layers${layers ? ` ${layers}` : ''}, merged into the new model.`,
  });
  if (!llamaModelTypes.includes(base.modelType)) {
    const full: TrainingChoice = {
      label: `Fine-tune ${base.name}`,
      base: base.name,
      method: 'full',
      group: 'fine-tune',
      description: what,
      detail: `${keeps}: every weight${small ? '' : ' (a large model: slow, and it needs much memory)'}.`,
    };
    if (base.modelType !== 'gpt2') return [full];
    return [full, lora('(c_attn)')];
  }
  if (!small) return [lora()];
  return [
    lora(),
    {
      label: `Fine-tune ${base.name}, every weight`,
      base: base.name,
      method: 'full',
      group: 'fine-tune',
      description: what,
      detail: `${keeps}: all its weights (slower than LoRA, and more memory).`,
    },
  ];
}

/** A text classifier per labelled file of the workspace (paths relative to the folder). */
export function classifierChoices(dataFiles: readonly string[]): TrainingChoice[] {
  return dataFiles.map((file) => ({
    label: `Train a text classifier from ${file}`,
    data: file,
    group: 'classifier',
    description: '',
    detail: 'Pick its text and label columns next; a validation split measures accuracy and macro-F1.',
  }));
}

/** Every choice in order: fine-tuning first (the first one recommended), the presets, then the classifiers. */
export function trainingChoices(bases: readonly FineTuneBase[], dataFiles: readonly string[] = []): TrainingChoice[] {
  const fineTune = bases.flatMap(fineTuneChoices);
  if (fineTune[0]) fineTune[0] = { ...fineTune[0], description: `recommended · ${fineTune[0].description}` };
  return [...fineTune, ...presetChoices, ...classifierChoices(dataFiles)];
}

/** Files a classifier can train on, by name. */
export const labelledFilePattern = '**/*.{csv,jsonl,ndjson}';

/** A column of a labelled file, as modelwright/previewLabelledData describes it. */
export interface ColumnFacts {
  name: string;
  samples: string[];
  distinct: number;
  meanLength: number;
}

export interface ColumnChoice {
  label: string;
  description: string;
  detail: string;
  column: string;
}

/**
 * The columns offered as the text (longest values first) or as the label (columns with 2 or more distinct values,
 * fewest first; never the text column), each with its first values.
 */
export function columnChoices(columns: readonly ColumnFacts[], role: 'text' | 'label', text?: string): ColumnChoice[] {
  const candidates =
    role === 'text'
      ? [...columns].sort((a, b) => b.meanLength - a.meanLength)
      : columns.filter((c) => c.name !== text && c.distinct >= 2).sort((a, b) => a.distinct - b.distinct);
  return candidates.map((c) => ({
    label: c.name,
    column: c.name,
    description:
      role === 'text'
        ? `${Math.round(c.meanLength)} characters on average`
        : `${c.distinct} distinct value${c.distinct === 1 ? '' : 's'}`,
    detail: c.samples.join(' · '),
  }));
}

export const minuteChoices: readonly number[] = [1, 5, 15, 30, 60];

/** Accepts a budget typed by the user: a positive number of minutes (fractions allowed), at most a day. */
export function parseMinutes(text: string): number | undefined {
  const n = Number(text.trim());
  return Number.isFinite(n) && n > 0 && n <= 24 * 60 ? n : undefined;
}

/** Why a model name is not accepted (the protocol's rule), or undefined when it is (it becomes a folder name). */
export function validateModelName(name: string, existing: readonly string[]): string | undefined {
  if (!isValidModelName(name)) return `Use ${modelNameRule.description}.`;
  if (existing.includes(name)) return `A model named "${name}" exists; choose another name.`;
  return undefined;
}

/** A free name like "myproject-1128-1405" (from the folder name and the time), suffixed "-2", "-3"… if taken. */
export function suggestModelName(folderName: string, now: Date, existing: readonly string[]): string {
  const stem =
    folderName
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/\.{2,}/g, '.') // the rule forbids ".."
      .replace(/^[^a-z0-9]+|-+$/g, '')
      .slice(0, 40) || 'model';
  const pad = (x: number) => String(x).padStart(2, '0');
  const base = `${stem}-${pad(now.getMonth() + 1)}${pad(now.getDate())}-${pad(now.getHours())}${pad(now.getMinutes())}`;
  let name = base;
  for (let i = 2; existing.includes(name); i++) name = `${base}-${i}`;
  return name;
}
