// Evaluates a causal language model folder on a workspace: validation loss and perplexity over held-out files,
// next-line completion at sampled cursor positions (exact match and edit similarity of the first generated
// line), and completion latency p50/p95. On the model's own training workspace only its held-out files are used.
import * as path from 'node:path';
import { type Evaluation, readModelCard, updateModelCard } from '../modelFolder/modelCard';
import { generate } from '../runtime/generate';
import { type LanguageModel, loadLanguageModel } from '../runtime/languageModel';
import { logSoftmax } from '../runtime/sampling';
import { collectCorpus } from '../workspace/corpus';
import { concatenateDocuments } from '../train/dataset';
import { sampleCompletions } from './completionSamples';
import { percentile } from '../util/statistics';
import { editSimilarity } from './editSimilarity';

export interface EvaluateOptions {
  samples?: number;
  seed?: number;
  maxTokens?: number;
  /** Windows of the model's context used for the loss (at most). */
  lossWindows?: number;
  threads?: number;
  /** Append the result to the model card (default true). */
  record?: boolean;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, message: string) => void;
}

export type EvaluationResult = Omit<Evaluation, 'at' | 'workspace'> & { heldOutFiles: number };

export async function evaluateModel(
  modelDir: string,
  workspace: string,
  options: EvaluateOptions = {},
): Promise<EvaluationResult> {
  const corpus = await collectCorpus(workspace);
  const card = readModelCard(modelDir);
  const trainedHere = card?.data && path.resolve(workspace) === card.data.workspace;
  const heldOut = trainedHere
    ? new Set(card.data!.files.filter((f) => f.split === 'validation').map((f) => f.path))
    : undefined;
  const files = heldOut ? corpus.files.filter((f) => heldOut.has(f.path)) : corpus.files;
  if (files.length === 0)
    throw new Error(`no ${heldOut ? 'held-out ' : ''}source files to evaluate on in ${workspace}`);

  const model = await loadLanguageModel(modelDir, { intraOpThreads: options.threads ?? 1 });
  try {
    const report = options.onProgress ?? (() => {});
    const valLoss = await heldOutLoss(
      model,
      files.map((f) => f.text),
      options.lossWindows ?? 16,
    );
    const samples = sampleCompletions(files, options.samples ?? 100, options.seed ?? 0);
    let exact = 0;
    let similarity = 0;
    const latencies: number[] = [];
    for (const [i, sample] of samples.entries()) {
      if (options.signal?.aborted) throw new Error('evaluation cancelled');
      report(i, samples.length, `completion ${i + 1}/${samples.length}`);
      const started = performance.now();
      const result = await generate(model, sample.prefix, {
        maxTokens: options.maxTokens ?? 48,
        temperature: 0,
        stop: ['\n'],
      });
      latencies.push(performance.now() - started);
      const line = result.text.split('\n')[0].trimEnd();
      if (line === sample.expected) exact++;
      similarity += editSimilarity(line, sample.expected);
    }
    const count = Math.max(1, samples.length);
    const result: EvaluationResult = {
      valLoss,
      perplexity: Math.exp(valLoss),
      exactMatch: exact / count,
      editSimilarity: similarity / count,
      latencyMs: { p50: percentile(latencies, 0.5) || 0, p95: percentile(latencies, 0.95) || 0 },
      samples: samples.length,
      heldOutFiles: files.length,
    };
    if (card && options.record !== false) {
      const { heldOutFiles: _, ...evaluation } = result;
      updateModelCard(modelDir, (c) =>
        c.evaluations.push({ at: new Date().toISOString(), workspace: path.resolve(workspace), ...evaluation }),
      );
    }
    return result;
  } finally {
    await model.dispose();
  }
}

/** Mean next-token cross-entropy over non-overlapping context windows of the held-out text. */
async function heldOutLoss(model: LanguageModel, texts: string[], maxWindows: number): Promise<number> {
  const eos = model.config.eosTokenId;
  const stream = concatenateDocuments(
    texts.map((t) => model.tokenizer.encode(t)),
    eos,
  );
  const window = model.config.contextLength;
  const vocab = model.config.vocabSize;
  const logProbs = new Float32Array(vocab);
  let total = 0;
  let count = 0;
  for (let start = 0; start + 1 < stream.length && count / window < maxWindows; start += window) {
    const tokens = stream.subarray(start, Math.min(start + window + 1, stream.length));
    const logits = await model.run(tokens.subarray(0, tokens.length - 1), model.newCache(), { allPositions: true });
    for (let t = 0; t + 1 < tokens.length; t++) {
      logSoftmax(logits.subarray(t * vocab, (t + 1) * vocab), logProbs);
      total -= logProbs[tokens[t + 1]];
      count++;
    }
  }
  return total / Math.max(1, count);
}
