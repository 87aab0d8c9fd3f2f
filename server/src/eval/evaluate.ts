// Evaluates causal language model folders on a workspace: held-out loss (per token, and in bits per byte so
// that models with different tokenizers compare), next-line completion at sampled cursor positions (exact match
// and edit similarity of the first generated line), and completion latency p50/p95. Several models evaluated
// together use the same files: those none of them was trained on.
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { type Evaluation, type ModelCard, readModelCard } from '../modelFolder/modelCard';
import { generate } from '../runtime/generate';
import { loadLanguageModel } from '../runtime/languageModel';
import { defaultLossBytes, heldOutLoss } from '../train/heldOutLoss';
import { percentile } from '../util/statistics';
import { type CorpusFile, collectCorpus } from '../workspace/corpus';
import { withoutLastSpace } from '../runtime/completionText';
import { sampleCompletions } from './completionSamples';
import { type BaselineScores, previousLineBaseline } from './baseline';
import { editSimilarity } from './editSimilarity';
import { recordEvaluation } from './evaluationRecord';

export interface EvaluateOptions {
  samples?: number;
  seed?: number;
  maxTokens?: number;
  /** Bytes of held-out text (whole files) the loss is measured on, at most. */
  lossBytes?: number;
  threads?: number;
  /** Record the result (default true): in the model card, or under the user's data folder when `readOnly`. */
  record?: boolean;
  /** The folder must not be written to (a shipped or read-only model): evaluations are kept elsewhere. */
  readOnly?: boolean;
  /** Evaluate on these files; by default this model's held-out files on its own workspace, all files elsewhere. */
  files?: EvaluationFiles;
  /** Keep the first this many completions (expected and generated line) in the result. */
  examples?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, message: string) => void;
}

/** The files of an evaluation and, in words, how they were chosen. */
export interface EvaluationFiles {
  files: CorpusFile[];
  description: string;
  /** True when the files are ones the models held out from training; false when they are the whole workspace. */
  heldOut: boolean;
}

export type EvaluationResult = Omit<Evaluation, 'at' | 'workspace'> & {
  /** The number of files the evaluation used (held out from training where the model was trained here). */
  heldOutFiles: number;
  /** How the files were chosen. */
  filesDescription: string;
  /** Where the evaluation was recorded, if it was. */
  recordedIn?: string;
  /** The part of the files the loss was measured on (whole files). */
  lossFiles: number;
  lossBytes: number;
  /** Next-line scores of predicting the previous line again, on the same cursor positions. */
  baseline: BaselineScores;
  /** The first completions: where (file and the line before the cursor), the real line and the model's. */
  examples: { path: string; before: string; expected: string; generated: string }[];
};

/**
 * The files to evaluate a set of models on: on a workspace some of them were trained on, the files every one of
 * those held out (so no model is scored on text it trained on); all files otherwise, or with `heldOutOf`, the
 * files that model held out.
 */
export async function chooseEvaluationFiles(
  workspace: string,
  modelDirs: readonly string[],
  heldOutOf?: string,
): Promise<EvaluationFiles> {
  const corpus = await collectCorpus(workspace);
  const root = path.resolve(workspace);
  const trainedHere = (heldOutOf ? [heldOutOf] : modelDirs)
    .map((dir) => ({ dir, card: readCardSafely(dir) }))
    .filter((m): m is { dir: string; card: ModelCard } => m.card?.data?.workspace === root);
  if (heldOutOf && trainedHere.length === 0)
    throw new Error(`${heldOutOf} was not trained on ${root}: it has no held-out files there`);
  let files = corpus.files;
  let description = `all ${files.length} files of ${root}`;
  if (trainedHere.length > 0) {
    const heldOutSets = trainedHere.map(
      ({ card }) => new Set(card.data!.files.filter((f) => f.split === 'validation').map((f) => f.path)),
    );
    files = corpus.files.filter((file) => heldOutSets.every((set) => set.has(file.path)));
    const whose = trainedHere.map(({ dir }) => dir).join(', ');
    description =
      trainedHere.length === 1
        ? `the ${files.length} files ${whose} held out from training`
        : `the ${files.length} files all of ${whose} held out from training`;
  }
  if (files.length === 0) throw new Error(`no files to evaluate on: ${description}`);
  return { files, description, heldOut: trainedHere.length > 0 };
}

/** A short digest of the files' paths and contents: two evaluations with the same digest used the same text. */
export function filesDigest(files: readonly CorpusFile[]): string {
  const hash = createHash('sha256');
  for (const file of [...files].sort((a, b) => (a.path < b.path ? -1 : 1)))
    hash.update(`${file.path}\0${file.sha256}\n`);
  return hash.digest('hex').slice(0, 12);
}

export async function evaluateModel(
  modelDir: string,
  workspace: string,
  options: EvaluateOptions = {},
): Promise<EvaluationResult> {
  const chosen = options.files ?? (await chooseEvaluationFiles(workspace, [modelDir]));
  const files = chosen.files;
  const model = await loadLanguageModel(modelDir, { intraOpThreads: options.threads ?? 1 });
  try {
    const report = options.onProgress ?? (() => {});
    report(0, 1, 'held-out loss');
    const loss = await heldOutLoss(model, files, {
      maxBytes: options.lossBytes ?? defaultLossBytes,
      signal: options.signal,
    });
    const samples = sampleCompletions(files, options.samples ?? 100, options.seed ?? 0);
    let exact = 0;
    let similarity = 0;
    const latencies: number[] = [];
    const examples: EvaluationResult['examples'] = [];
    for (const [i, sample] of samples.entries()) {
      if (options.signal?.aborted) throw new Error('evaluation cancelled');
      report(i, samples.length, `completion ${i + 1}/${samples.length}`);
      const started = performance.now();
      // The prompt leaves out the indentation's last space: in training text that space is part of the next
      // word's token, so a prompt ending in it tokenizes unlike anything the model saw.
      const result = await generate(model, withoutLastSpace(sample.prefix), {
        maxTokens: options.maxTokens ?? 48,
        temperature: 0,
        stop: ['\n'],
      });
      latencies.push(performance.now() - started);
      const line = result.text.split('\n')[0].trim();
      if (examples.length < (options.examples ?? 0)) {
        const before = sample.prefix.split('\n').slice(-2, -1)[0] ?? '';
        examples.push({ path: sample.path, before, expected: sample.expected, generated: line });
      }
      if (line === sample.expected) exact++;
      similarity += editSimilarity(line, sample.expected);
    }
    const count = Math.max(1, samples.length);
    const evaluation: Omit<Evaluation, 'at' | 'workspace'> = {
      valLoss: loss.loss,
      perplexity: Math.exp(loss.loss),
      bitsPerByte: loss.bitsPerByte,
      exactMatch: exact / count,
      editSimilarity: similarity / count,
      latencyMs: { p50: percentile(latencies, 0.5) || 0, p95: percentile(latencies, 0.95) || 0 },
      samples: samples.length,
      files: files.length,
      filesDigest: filesDigest(files),
    };
    const recordedIn =
      options.record === false
        ? undefined
        : recordEvaluation(
            modelDir,
            { at: new Date().toISOString(), workspace: path.resolve(workspace), ...evaluation },
            { readOnly: options.readOnly },
          );
    return {
      ...evaluation,
      heldOutFiles: files.length,
      filesDescription: chosen.description,
      recordedIn,
      lossFiles: loss.files.length,
      lossBytes: loss.bytes,
      baseline: previousLineBaseline(samples),
      examples,
    };
  } finally {
    await model.dispose();
  }
}

function readCardSafely(dir: string): ModelCard | undefined {
  try {
    return readModelCard(dir);
  } catch {
    return undefined;
  }
}
