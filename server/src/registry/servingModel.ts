// Loading a model folder into a serving model: a language model (checked to run and to match its tokenizer, with
// fill-in-the-middle when trained for it) or a chat model; its disposal; and the signature of the files that
// decide whether a folder loads (a folder that failed is not retried until the signature changes).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type ChatModel, loadChatModel } from '../runtime/chatModel';
import { type LanguageModel, loadLanguageModel } from '../runtime/languageModel';
import { checkTokenizerMatches } from '../runtime/modelChecks';
import { type ModelCard, readModelCard, trainedWithFillInTheMiddle } from '../modelFolder/modelCard';
import type { ModelEntry } from './modelCatalog';
import { findFimTokens } from '../tokenizer/fimFormats';

interface ServingModelBase {
  readonly name: string;
  readonly dir: string;
  readonly bundled: boolean;
  /** Unique per load: a reloaded folder gets a new key (caches keyed by it never mix models). */
  readonly key: string;
  readonly card: ModelCard | undefined;
}

export interface LanguageServingModel extends ServingModelBase {
  readonly flavor: 'language';
  readonly languageModel: LanguageModel;
  readonly fillInTheMiddle: boolean;
}

export interface ChatServingModel extends ServingModelBase {
  readonly flavor: 'chat';
  readonly chatModel: ChatModel;
}

export type ServingModel = LanguageServingModel | ChatServingModel;
export type Flavor = ServingModel['flavor'];

/** Loads a folder as a language model (with a check that tokenizer and model belong together) or a chat model. */
export async function loadServingModel(
  entry: ModelEntry,
  flavor: Flavor,
  key: string,
  threads: number,
): Promise<ServingModel> {
  let card: ModelCard | undefined;
  try {
    card = readModelCard(entry.dir);
  } catch {
    card = undefined; // an unreadable card does not stop serving
  }
  const base = { name: entry.name, dir: entry.dir, bundled: entry.bundled, key, card };
  if (flavor === 'chat') return { ...base, flavor, chatModel: await loadChatModel(entry.dir, { threads }) };

  const languageModel = await loadLanguageModel(entry.dir, { intraOpThreads: threads });
  try {
    checkTokenizerMatches(languageModel.modelDir, languageModel.tokenizer.vocabSize, languageModel.config);
    // One step proves the graph runs with this config (a wrong head count or context fails here, not mid-request).
    await languageModel.run([languageModel.config.eosTokenId], languageModel.newCache());
  } catch (e) {
    await languageModel.dispose();
    throw e;
  }
  const tokenizer = languageModel.tokenizer;
  const hasFimTokens = findFimTokens((token) => tokenizer.tokenId(token)) !== undefined;
  return { ...base, flavor, languageModel, fillInTheMiddle: hasFimTokens && trainedWithFillInTheMiddle(card) };
}

/** Releases a serving model's sessions and tokenizer; never throws. */
export async function disposeModel(model: ServingModel): Promise<void> {
  try {
    if (model.flavor === 'chat') await model.chatModel.dispose();
    else {
      await model.languageModel.dispose();
      model.languageModel.tokenizer.dispose();
    }
  } catch {
    // disposing twice or a failing release must not take the server down
  }
}

/** Sizes and modification times of the files that decide whether a folder loads. */
export function folderSignature(dir: string): string {
  const files = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt'];
  try {
    for (const f of fs.readdirSync(path.join(dir, 'onnx'))) files.push(path.join('onnx', f));
  } catch {
    // no onnx folder: its absence is part of the signature
  }
  return files
    .map((f) => {
      try {
        const stat = fs.statSync(path.join(dir, f));
        return `${f}:${stat.size}:${stat.mtimeMs}`;
      } catch {
        return `${f}:-`;
      }
    })
    .join('|');
}
