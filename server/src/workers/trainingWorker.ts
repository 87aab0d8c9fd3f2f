// The child process that trains, estimates, evaluates or converts a model for the language server, so that their CPU
// work and memory never block completions. Receives one job over the IPC channel, reports progress, stops cleanly (the
// trainer saves a checkpoint and exports the model) on a cancel message, and exits when the server goes away.
import { trainClassifier } from '../classify/trainClassifier';
import { convertFolder } from '../convert/convertFolder';
import { chooseEvaluationFiles, type EvaluationResult, evaluateModel } from '../eval/evaluate';
import type { HeldOutFigures, TrainingComparison } from '../protocol';
import { train } from '../train/trainer';
import { estimateTraining } from './trainingEstimate';
import type { ClassifierJobResult, CompareJob, ServerToWorker, WorkerJob, WorkerToServer } from './workerProtocol';

const controller = new AbortController();
let started = false;

function send(message: WorkerToServer): void {
  process.send?.(message);
}

const evaluateProgress = (done: number, total: number, message: string) =>
  send({ type: 'evaluateProgress', done, total, message });

async function run(job: WorkerJob): Promise<void> {
  if (job.kind === 'train') {
    const result = await train(job.options, {
      signal: controller.signal,
      onProgress: (progress) => send({ type: 'trainProgress', progress }),
    });
    const comparison =
      job.compare && result.finished && !controller.signal.aborted
        ? await compareWithBase(job.options.workspace, job.options.out, job.compare, job.options.threads ?? 1)
        : undefined;
    send({ type: 'trainResult', result: { ...result, comparison } });
  } else if (job.kind === 'estimate') {
    send({ type: 'estimateResult', result: await estimateTraining(job, controller.signal) });
  } else if (job.kind === 'trainClassifier') {
    let loss = Number.NaN;
    const { data, ...result } = await trainClassifier({
      ...job.options,
      signal: controller.signal,
      onProgress: (progress) => {
        if (progress.loss !== undefined) loss = progress.loss;
        send({ type: 'classifierProgress', progress });
      },
    });
    const summary: ClassifierJobResult = { ...result, loss, data: { ...data, rows: data.rows.length } };
    send({ type: 'classifierResult', result: summary });
  } else if (job.kind === 'convert') {
    send({ type: 'convertResult', result: convertFolder(job.modelDir, { dtype: job.dtype }) });
  } else {
    const result = await evaluateModel(job.modelDir, job.workspace, {
      samples: job.samples,
      record: job.record,
      threads: job.threads,
      signal: controller.signal,
      onProgress: evaluateProgress,
    });
    send({ type: 'evaluateResult', result });
  }
}

/**
 * The fine-tuned model against its base on the files the new model held out (and the base too, when it was trained
 * on this workspace): held-out loss, bits per byte and next-line completions. The new model's figures are recorded
 * in its card; the base's folder is left alone. Undefined, with the reason logged, when there are no such files.
 */
async function compareWithBase(
  workspace: string,
  out: string,
  compare: CompareJob,
  threads: number,
): Promise<TrainingComparison | undefined> {
  let chosen: Awaited<ReturnType<typeof chooseEvaluationFiles>>;
  try {
    chosen = await chooseEvaluationFiles(workspace, [compare.base, out]);
  } catch (e) {
    console.error(`no comparison with the base: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
  const evaluate = (dir: string, who: string, record: boolean) =>
    evaluateModel(dir, workspace, {
      files: chosen,
      samples: compare.samples,
      record,
      threads,
      signal: controller.signal,
      onProgress: (done, total, message) => evaluateProgress(done, total, `${who}: ${message}`),
    });
  const base = await evaluate(compare.base, `base ${compare.baseName}`, false);
  const trained = await evaluate(out, compare.name, true);
  const figures = (name: string, e: EvaluationResult): HeldOutFigures => ({
    name,
    valLoss: e.valLoss,
    bitsPerByte: e.bitsPerByte,
    exactMatch: e.exactMatch,
    editSimilarity: e.editSimilarity,
  });
  return {
    base: figures(compare.baseName, base),
    trained: figures(compare.name, trained),
    files: chosen.files.length,
    filesDescription: chosen.description,
    samples: trained.samples,
  };
}

process.on('message', (message: ServerToWorker) => {
  if (message.type === 'cancel') {
    controller.abort();
  } else if (message.type === 'start' && !started) {
    started = true;
    run(message.job)
      .catch((e: unknown) => send({ type: 'error', message: e instanceof Error ? e.message : String(e) }))
      .finally(() => process.disconnect?.());
  }
});
// The server died or closed the channel: nothing can receive the result any more.
process.on('disconnect', () => process.exit(0));
