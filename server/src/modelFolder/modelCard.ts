// The model card, `modelwright.json` in every model folder: what the model is, what it was trained on
// (file hashes and what was excluded and why), how (hyperparameters, curve), how well (evaluations),
// where it came from (parent model) and when it was created and deployed. Kind-independent.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Evaluation, ModelKind } from '../protocol';
import { writeFileAtomic } from '../util/atomicFile';

export interface DataSnapshot {
  workspace: string;
  files: { path: string; sha256: string; bytes: number; split: 'train' | 'validation' }[];
  excluded: { path: string; reason: string }[];
  trainTokens: number;
  validationTokens: number;
  /** Fill-in-the-middle training: the share of training files made FIM examples, their token spelling, count. */
  fim?: { rate: number; format: string | undefined; documents: number };
}

export interface CurvePoint {
  step: number;
  loss: number;
  valLoss?: number;
  learningRate?: number;
  tokensPerSecond?: number;
  elapsedSeconds?: number;
}

export type { Evaluation, ModelKind };

/** The base model a fine-tuned model started from: its hub origin when pulled, and the hashes of its weights. */
export interface BaseRecord {
  folder: string;
  repo?: string;
  revision?: string;
  commit?: string;
  weights: { path: string; sha256: string }[];
}

export interface ModelCard {
  name: string;
  kind: ModelKind;
  createdAt: string;
  deployedAt?: Record<string, string>;
  parent?: string;
  /** Fine-tuned models: where the base came from. */
  base?: BaseRecord;
  preset?: string;
  parameters: number;
  hyperparameters: Record<string, number | string | boolean>;
  data?: DataSnapshot;
  curve: CurvePoint[];
  evaluations: Evaluation[];
  training?: { steps: number; elapsedSeconds: number; finished: boolean; tokensPerSecond: number };
  license?: string;
  notes?: string;
}

export const CARD_FILE = 'modelwright.json';

/**
 * Whether a model was trained with fill-in-the-middle examples, so completions should prompt it with the suffix: a
 * model we trained says so in its card (data.fim, or `fim`/`fimRate` hyperparameters of older cards); a folder
 * without our card is a pretrained model (a hub pull), whose tokenizer's FIM tokens are taken to mean it was trained
 * with them (Qwen2.5-Coder, StarCoder, DeepSeek-Coder).
 */
export function trainedWithFillInTheMiddle(card: ModelCard | undefined): boolean {
  if (!card) return true;
  const h = card.hyperparameters ?? {};
  return (card.data?.fim?.rate ?? 0) > 0 || h.fim === true || (typeof h.fimRate === 'number' && h.fimRate > 0);
}

export function readModelCard(modelDir: string): ModelCard | undefined {
  const file = path.join(modelDir, CARD_FILE);
  if (!fs.existsSync(file)) return undefined;
  return JSON.parse(fs.readFileSync(file, 'utf8')) as ModelCard;
}

export function writeModelCard(modelDir: string, card: ModelCard): void {
  writeFileAtomic(path.join(modelDir, CARD_FILE), JSON.stringify(card, null, 2) + '\n');
}

export function updateModelCard(modelDir: string, update: (card: ModelCard) => void): ModelCard {
  const card = readModelCard(modelDir);
  if (!card) throw new Error(`${modelDir} has no ${CARD_FILE}`);
  update(card);
  writeModelCard(modelDir, card);
  return card;
}
