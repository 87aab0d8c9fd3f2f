// Next-line completion quality as the editor produces it: at sampled line starts of held-out files, with the
// rest of the file after the line present, through the completion pipeline (stop rules, filters) with no
// workspace context or with the context the workspace index gives (the held-out files are kept out of the
// index). Reported beside a character n-gram baseline trained on the same training files, with the ratios and
// the latency of the model's answers.
import * as path from 'node:path';
import { type CompletionModel, CompletionPipeline } from './completionPipeline';
import { sampleCompletions } from '../eval/completionSamples';
import { editSimilarity } from '../eval/editSimilarity';
import { readModelCard, trainedWithFillInTheMiddle } from '../modelFolder/modelCard';
import { defaultSettings } from '../protocol';
import { loadLanguageModel } from '../runtime/languageModel';
import { findFimTokens } from '../tokenizer/fimFormats';
import { percentile } from '../util/statistics';
import { collectCorpus, isCodeFile } from '../workspace/corpus';
import { languageIdOf } from '../workspace/languageIds';
import { CharacterNgramModel } from '../context/characterNgram';
import { WorkspaceContext } from '../context/workspaceContext';
import { WorkspaceIndex } from '../context/workspaceIndex';

export type ContextMode = 'none' | 'workspace';

export interface ContextEvaluationOptions {
  context: ContextMode;
  /** Workspace-relative paths of the files evaluated (held out of the index and of the baseline's training). */
  heldOut: readonly string[];
  samples?: number;
  seed?: number;
  maxTokens?: number;
  threads?: number;
  /** Characters of the baseline's n-grams (default 8). */
  ngramOrder?: number;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface LineScores {
  exactMatch: number;
  editSimilarity: number;
}

export interface ContextEvaluationResult {
  context: ContextMode;
  samples: number;
  heldOutFiles: number;
  trainingFiles: number;
  model: LineScores;
  ngram: LineScores;
  /** model ÷ n-gram (Infinity when the n-gram scored 0 and the model did not). */
  ratio: LineScores;
  latencyMs: { p50: number; p95: number };
  /** Mean prompt tokens of workspace context per sample. */
  meanContextTokens: number;
}

/** The held-out files as the model card of a model trained on this workspace lists them (its validation split). */
export function heldOutFromCard(modelDir: string, workspace: string): string[] | undefined {
  const card = readModelCard(modelDir);
  if (!card?.data || path.resolve(workspace) !== card.data.workspace) return undefined;
  return card.data.files.filter((f) => f.split === 'validation').map((f) => f.path);
}

export async function evaluateWithContext(
  modelDir: string,
  workspace: string,
  options: ContextEvaluationOptions,
): Promise<ContextEvaluationResult> {
  const root = path.resolve(workspace);
  const corpus = await collectCorpus(root);
  const heldOut = new Set(options.heldOut);
  const code = corpus.files.filter((f) => isCodeFile(f.path));
  const evaluated = code.filter((f) => heldOut.has(f.path));
  const training = code.filter((f) => !heldOut.has(f.path));
  if (evaluated.length === 0) throw new Error(`none of the held-out files is a code file of ${root}`);

  const ngram = new CharacterNgramModel(options.ngramOrder ?? 8).train(training.map((f) => f.text));
  const index = new WorkspaceIndex();
  if (options.context === 'workspace') for (const f of training) index.setFile(path.join(root, f.path), f.path, f.text);
  const workspaceContext = new WorkspaceContext(index);

  const languageModel = await loadLanguageModel(modelDir, { intraOpThreads: options.threads ?? 1 });
  try {
    const card = readModelCard(modelDir);
    const fim = !!findFimTokens((t) => languageModel.tokenizer.tokenId(t)) && trainedWithFillInTheMiddle(card);
    const model: CompletionModel = { key: modelDir, languageModel, fillInTheMiddle: fim };
    const pipeline = new CompletionPipeline({ reuseKvCache: false });
    const settings = {
      ...defaultSettings.completion,
      maxTokens: options.maxTokens ?? 48,
      maxLines: 1,
      debounceMs: 0,
      confidenceThreshold: 0,
      maxSuggestions: 1,
    };
    const samples = sampleCompletions(evaluated, options.samples ?? 100, options.seed ?? 0);
    const texts = new Map(evaluated.map((f) => [f.path, f.text]));
    const totals = { model: { exactMatch: 0, editSimilarity: 0 }, ngram: { exactMatch: 0, editSimilarity: 0 } };
    const latencies: number[] = [];
    let contextTokens = 0;
    for (const [i, sample] of samples.entries()) {
      if (options.signal?.aborted) throw new Error('evaluation cancelled');
      options.onProgress?.(i, samples.length);
      const text = texts.get(sample.path)!;
      const lineEnd = text.indexOf('\n', sample.prefix.length);
      const suffix = lineEnd < 0 ? '' : text.slice(lineEnd);
      const key = path.join(root, sample.path);
      const started = performance.now();
      const outcome = await pipeline.complete(model, {
        uri: `eval:${i}:${sample.path}`,
        text: sample.prefix + suffix,
        offset: sample.prefix.length,
        languageId: languageIdOf(sample.path),
        invoked: true,
        settings,
        signal: options.signal ?? new AbortController().signal,
        workspaceContext:
          options.context === 'workspace'
            ? {
                snippets: workspaceContext.snippetsFor({
                  key,
                  text: sample.prefix + suffix,
                  offset: sample.prefix.length,
                }),
                path: sample.path,
              }
            : undefined,
      });
      latencies.push(performance.now() - started);
      contextTokens += outcome.contextTokens ?? 0;
      const line = outcome.text.split('\n')[0].trimEnd();
      const baseline = ngram.completeLine(sample.prefix).trimEnd();
      for (const [scores, guess] of [
        [totals.model, line],
        [totals.ngram, baseline],
      ] as const) {
        if (guess === sample.expected) scores.exactMatch++;
        scores.editSimilarity += editSimilarity(guess, sample.expected);
      }
    }
    const n = Math.max(1, samples.length);
    const mean = (s: LineScores): LineScores => ({
      exactMatch: s.exactMatch / n,
      editSimilarity: s.editSimilarity / n,
    });
    const modelScores = mean(totals.model);
    const ngramScores = mean(totals.ngram);
    const divide = (a: number, b: number) => (b > 0 ? a / b : a > 0 ? Number.POSITIVE_INFINITY : 0);
    return {
      context: options.context,
      samples: samples.length,
      heldOutFiles: evaluated.length,
      trainingFiles: training.length,
      model: modelScores,
      ngram: ngramScores,
      ratio: {
        exactMatch: divide(modelScores.exactMatch, ngramScores.exactMatch),
        editSimilarity: divide(modelScores.editSimilarity, ngramScores.editSimilarity),
      },
      latencyMs: { p50: percentile(latencies, 0.5) || 0, p95: percentile(latencies, 0.95) || 0 },
      meanContextTokens: contextTokens / n,
    };
  } finally {
    await languageModel.dispose();
  }
}
