// What one epoch of a training configuration costs on this workspace and this machine, before it starts: the
// training files' tokens (counted with the base's tokenizer), and the seconds per optimizer step — timed on probe
// steps of the very configuration (same graphs, threads and window), or estimated from the parameter count when
// even a one-sequence probe step would take too long.
import { type Architecture, parameterShapesOf } from '../engine/architecture';
import { type GptConfig, type PresetName, presets } from '../engine/model';
import { defaultAdamW } from '../engine/optimizer';
import { trainedParameterShapes } from '../engine/trainingGraph';
import { readArchitecture } from '../modelFolder/config';
import type { EstimateTraining } from '../protocol';
import { loadTokenizer } from '../runtime/tokenizer';
import { concatenateDocuments, trainingBatch } from '../train/dataset';
import { fineTuneSpec, planTraining } from '../train/fineTune';
import { freshState, StepRunner } from '../train/trainStep';
import { median } from '../util/statistics';
import { collectCorpus, requireCode, splitByFile } from '../workspace/corpus';

export interface EstimateJob {
  workspace: string;
  /** From scratch with this preset, or fine-tuning this model folder. */
  preset?: PresetName;
  base?: string;
  method?: 'lora' | 'full';
  /** A tokenizer folder to count a from-scratch run's tokens with (its own tokenizer does not exist yet). */
  tokenizerDir?: string;
  threads: number;
}

/** The trainer's defaults for a run the editor starts (train/trainer.ts): sequences per step, a base's window. */
export const runShape = { batchSize: 16, fineTuneWindow: 512, splitSeed: 0 } as const;

/**
 * Training FLOP/s of this engine with one onnxruntime thread on this kind of machine, used only when a probe step
 * would be too slow to time. Probe steps measured (2 cores shared with other work): GPT-2 tiny 50, small 24 at one
 * sequence per step (the trainer's own run: 40); a 0.1M-parameter Llama 8–12 (too small to be compute-bound).
 */
export const calibratedFlopsPerSecond = 25e9;
/** A probe is run when one sequence's step is predicted to take at most this long... */
const PROBE_LIMIT_SECONDS = 5;
/** ...with as many sequences (up to the batch) as fit in this time. */
const PROBE_TARGET_SECONDS = 3;
/** Steps timed at most (after a warm-up step); the estimate is their median. */
const PROBE_STEPS = 5;
/** Text tokenized to count tokens; beyond it the count is extrapolated by bytes. */
const MAX_TOKENIZED_BYTES = 4 * 1024 * 1024;

/** Multiply-adds ×2 of one training step: forward, and backward with (full) or without (LoRA) weight gradients. */
export function trainingStepFlops(
  architecture: Architecture,
  shape: { batch: number; time: number },
  lora: boolean,
): number {
  const shapes = parameterShapesOf(architecture);
  const size = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
  const config = architecture.config;
  let matmul = 0;
  let tiedHead = true;
  for (const [name, dims] of shapes) {
    if (name.startsWith('lm_head')) tiedHead = false;
    if (/(wte|wpe|embed_tokens)\.weight$/.test(name) || dims.length < 2) continue;
    matmul += size(dims);
  }
  if (tiedHead) matmul += config.vocabSize * config.embedding;
  const attentionWidth = 'headDim' in config ? config.heads * config.headDim : config.embedding;
  const forwardPerToken = 2 * matmul + 4 * config.layers * shape.time * attentionWidth;
  return shape.batch * shape.time * forwardPerToken * (lora ? 2 : 3);
}

export async function estimateTraining(job: EstimateJob, signal?: AbortSignal): Promise<EstimateTraining.Result> {
  const corpus = await collectCorpus(job.workspace);
  requireCode(corpus);
  const { train } = splitByFile(corpus.files, { seed: runShape.splitSeed });
  const trainBytes = train.reduce((n, f) => n + f.bytes, 0);

  const tokenizerDir = job.base ?? job.tokenizerDir;
  let trainTokens = 0;
  const documents: number[][] = [];
  if (tokenizerDir) {
    const tokenizer = await loadTokenizer(tokenizerDir);
    try {
      let tokenizedBytes = 0;
      let tokens = 0;
      for (const file of train) {
        if (tokenizedBytes >= MAX_TOKENIZED_BYTES) break;
        const ids = tokenizer.encode(file.text);
        tokens += ids.length + 1; // the end-of-text token after each file
        tokenizedBytes += file.bytes;
        if (documents.length < 64) documents.push(ids);
      }
      trainTokens = Math.round(tokenizedBytes > 0 ? (tokens * trainBytes) / tokenizedBytes : 0);
    } finally {
      tokenizer.dispose();
    }
  } else {
    trainTokens = Math.round(trainBytes / 3.5); // no tokenizer to count with: a byte-level BPE's usual ratio on code
  }

  const preset: GptConfig = presets[job.preset ?? 'tiny'];
  const architecture: Architecture = job.base ? readArchitecture(job.base) : { family: 'gpt2', config: preset };
  const spec = job.base ? fineTuneSpec(architecture, { method: job.method }) : { architecture };
  const count = (shapes: [string, number[]][]) => shapes.reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0);
  const parameters = count(parameterShapesOf(architecture));
  const trainedParameters = count(trainedParameterShapes(spec));
  const batchSize = runShape.batchSize;
  const time = job.base
    ? Math.min(runShape.fineTuneWindow, architecture.config.contextLength)
    : architecture.config.contextLength;
  const lora = 'lora' in spec && spec.lora !== undefined;
  const flopsPerSequence = trainingStepFlops(architecture, { batch: 1, time }, lora);
  const predictedPerSequence = flopsPerSequence / calibratedFlopsPerSecond;
  const result: EstimateTraining.Result = {
    trainFiles: train.length,
    trainBytes,
    trainTokens,
    tokenizer: job.base ? 'base' : 'approximate',
    parameters,
    trainedParameters,
    batchSize,
    contextLength: time,
    secondsPerStep: predictedPerSequence * batchSize,
    source: 'estimated',
  };
  if (predictedPerSequence > PROBE_LIMIT_SECONDS || signal?.aborted) return result;

  const probeBatch = Math.max(1, Math.min(batchSize, Math.floor(PROBE_TARGET_SECONDS / predictedPerSequence)));
  const probe = await timeProbeSteps(job, preset, { batch: probeBatch, time }, documents, signal);
  if (probe === undefined) return result;
  const secondsPerStep = (probe.seconds * batchSize) / probeBatch;
  return { ...result, secondsPerStep, source: 'measured', probeSteps: probe.steps, probeBatch };
}

/**
 * The median seconds of a few optimizer steps of the run's own configuration, after one that warms the session up:
 * up to PROBE_STEPS of them while they take under twice the probe's target time in all.
 */
async function timeProbeSteps(
  job: EstimateJob,
  preset: GptConfig,
  shape: { batch: number; time: number },
  documents: number[][],
  signal: AbortSignal | undefined,
): Promise<{ seconds: number; steps: number } | undefined> {
  const plan = planTraining(
    { workspace: job.workspace, out: '', base: job.base, method: job.method },
    preset,
    runShape.splitSeed,
  );
  const state = freshState(plan.trained, plan.initialWeights());
  const runner = await StepRunner.create(
    plan.trained,
    shape,
    defaultAdamW,
    state,
    { intraOpThreads: job.threads },
    plan.stepOptions,
  );
  try {
    // Token ids of the base's tokenizer; from scratch, ids below the preset's vocabulary stand in for its own.
    const trained = plan.trained;
    const vocabulary = 'architecture' in trained ? trained.architecture.config.vocabSize : trained.vocabSize;
    const stream = concatenateDocuments(documents.length ? documents : [[0]], 0).map((id) => id % vocabulary);
    const timed: number[] = [];
    for (let step = 1; step <= PROBE_STEPS + 1; step++) {
      if (signal?.aborted) return undefined;
      const batch = trainingBatch(stream, shape.batch, shape.time, runShape.splitSeed, step);
      const started = performance.now();
      await runner.step(batch, step, 1e-5);
      if (step > 1) timed.push((performance.now() - started) / 1000);
      if (timed.reduce((a, b) => a + b, 0) > 2 * PROBE_TARGET_SECONDS) break;
    }
    return { seconds: median(timed), steps: timed.length };
  } finally {
    await runner.dispose();
  }
}
