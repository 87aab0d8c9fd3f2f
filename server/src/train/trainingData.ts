// Data preparation: the workspace's files split by file into training and validation, the tokenizer (trained on
// the training files, copied from the base model, or kept from the run being resumed), both splits as token
// streams (half the training files as fill-in-the-middle examples by default), and the snapshot of what was trained
// on that goes into the model card.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type GptConfig, type PresetName, presets } from '../engine/model';
import { readFolderConfig } from '../modelFolder/config';
import type { DataSnapshot } from '../modelFolder/modelCard';
import { loadTokenizer } from '../runtime/tokenizer';
import { specialTokens } from '../tokenizer/specialTokens';
import { writeTokenizerFiles } from '../tokenizer/tokenizerFiles';
import {
  type CorpusFile,
  collectCorpus,
  describeCorpus,
  type ExcludedFile,
  requireCode,
  splitByFile,
} from '../workspace/corpus';
import { findFimTokens } from '../tokenizer/fimFormats';
import { trainBpe } from './bpeTrainer';
import { concatenateDocuments } from './dataset';
import { DEFAULT_FIM_RATE, encodeWithFim } from './fim';
import type { TrainOptions } from './trainOptions';

export interface TrainingData {
  /** The model's architecture; its vocabulary size is the tokenizer's. */
  config: GptConfig;
  endOfTextId: number;
  trainTokens: Int32Array;
  validationTokens: Int32Array;
  /** The held-out files, for the final held-out loss. */
  validationFiles: CorpusFile[];
  /** What was trained on, fill-in-the-middle examples included (`fim`). */
  snapshot: DataSnapshot;
}

export interface DataChoices {
  /** Splits the files into training and validation. */
  seed: number;
  /** The architecture of a new model trained from scratch. */
  preset: PresetName;
  /** The architecture of the run being resumed, whose tokenizer is already in the output folder. */
  resumedConfig?: GptConfig;
}

export async function prepareData(
  options: TrainOptions,
  choices: DataChoices,
  progress: (message: string) => void,
): Promise<TrainingData> {
  progress('reading the workspace');
  const corpus = await collectCorpus(options.workspace, { allow: options.allow });
  requireCode(corpus);
  progress(describeCorpus(corpus));
  const split = splitByFile(corpus.files, { seed: choices.seed, validationFraction: options.validationFraction });

  fs.mkdirSync(options.out, { recursive: true });
  const config = choices.resumedConfig ?? prepareTokenizer(options, choices.preset, split.train, progress);

  progress('tokenizing');
  const tokenizer = await loadTokenizer(options.out);
  try {
    const endOfTextId = tokenizer.eosTokenId ?? specialTokens.endOfText;
    const encode = (text: string) => tokenizer.encode(text);
    const fimRate = options.fimRate ?? DEFAULT_FIM_RATE;
    const fimTokens = fimRate > 0 ? findFimTokens((token) => tokenizer.tokenId(token)) : undefined;
    if (fimRate > 0 && !fimTokens)
      progress('the tokenizer has no fill-in-the-middle tokens: training left to right only');
    // Validation stays left to right, so its loss is the held-out loss `eval` reports.
    const trained = fimTokens
      ? encodeWithFim(
          split.train.map((file) => file.text),
          encode,
          fimTokens,
          { rate: fimRate, spmRate: 0.5, seed: choices.seed },
        )
      : { documents: split.train.map((file) => encode(file.text)), fimDocuments: 0 };
    if (fimTokens)
      progress(`${trained.fimDocuments} of ${split.train.length} training files as fill-in-the-middle examples`);
    const trainTokens = concatenateDocuments(trained.documents, endOfTextId);
    const validationTokens = concatenateDocuments(
      split.validation.map((file) => encode(file.text)),
      endOfTextId,
    );
    const fim = { rate: fimTokens ? fimRate : 0, format: fimTokens?.format.family, documents: trained.fimDocuments };
    const snapshot = { ...dataSnapshot(options.workspace, split, corpus.excluded, trainTokens, validationTokens), fim };
    return { config, endOfTextId, trainTokens, validationTokens, validationFiles: split.validation, snapshot };
  } finally {
    tokenizer.dispose();
  }
}

/**
 * A new run's architecture, with its tokenizer files written to the output folder: a fine-tuned model keeps the
 * base model's architecture and tokenizer; a model trained from scratch takes the preset's architecture and a
 * tokenizer trained on the training files.
 */
function prepareTokenizer(
  options: TrainOptions,
  preset: PresetName,
  trainFiles: CorpusFile[],
  progress: (message: string) => void,
): GptConfig {
  if (options.base) {
    const base = readFolderConfig(options.base);
    for (const file of ['tokenizer.json', 'tokenizer_config.json'])
      fs.copyFileSync(path.join(options.base, file), path.join(options.out, file));
    const { vocabSize, contextLength, layers, heads, embedding } = base;
    return { vocabSize, contextLength, layers, heads, embedding };
  }
  const config: GptConfig = { ...presets[preset] };
  progress(`training a ${config.vocabSize}-token tokenizer`);
  const trained = trainBpe(
    trainFiles.map((file) => file.text),
    { vocabSize: config.vocabSize },
  );
  config.vocabSize = trained.vocab.length; // a small corpus may run out of merges before the preset's size
  writeTokenizerFiles(options.out, trained, { modelMaxLength: config.contextLength });
  return config;
}

function dataSnapshot(
  workspace: string,
  split: { train: CorpusFile[]; validation: CorpusFile[] },
  excluded: ExcludedFile[],
  trainTokens: Int32Array,
  validationTokens: Int32Array,
): DataSnapshot {
  const entry = (side: 'train' | 'validation') => (file: CorpusFile) => ({
    path: file.path,
    sha256: file.sha256,
    bytes: file.bytes,
    split: side,
  });
  return {
    workspace: path.resolve(workspace),
    files: [...split.train.map(entry('train')), ...split.validation.map(entry('validation'))].sort((a, b) =>
      a.path.localeCompare(b.path),
    ),
    excluded,
    trainTokens: trainTokens.length,
    validationTokens: validationTokens.length,
  };
}
