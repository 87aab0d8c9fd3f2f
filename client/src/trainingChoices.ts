// What Train Model offers: fine-tune an existing model (what most users want: a workspace is small) or train
// from scratch with a preset, the time budgets, and the new model's name (suggested and validated). Pure.
import { isValidModelName, modelNameRule } from '../../server/src/protocol';

export interface TrainingChoice {
  label: string;
  description: string;
  detail: string;
  /** From scratch with this preset, or fine-tuning `base` (a model name). */
  preset?: string;
  base?: string;
}

/** The presets of the training engine (server/src/engine/model.ts), as offered to users. */
export const presetChoices: readonly TrainingChoice[] = [
  {
    label: 'tiny',
    preset: 'tiny',
    description: '≈1.1M parameters, from scratch',
    detail: 'Fastest: a first model in a minute or two.',
  },
  {
    label: 'default',
    preset: 'default',
    description: '≈1.9M parameters, from scratch',
    detail: 'The size of the shipped model.',
  },
  {
    label: 'small',
    preset: 'small',
    description: '≈6.9M parameters, from scratch',
    detail: 'Better completions; needs a larger workspace and longer training.',
  },
];

/** Fine-tuning choices first (one per base model offered), then the presets. */
export function trainingChoices(baseModels: readonly string[]): TrainingChoice[] {
  const fineTune = baseModels.map((base, i) => ({
    label: `Fine-tune ${base}`,
    base,
    description: i === 0 ? 'recommended' : '',
    detail: `Keeps ${base}'s tokenizer and continues training it on this workspace.`,
  }));
  return [...fineTune, ...presetChoices];
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
