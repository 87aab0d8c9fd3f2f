// The child process that trains, evaluates or converts a model for the language server, so that their CPU work and
// memory never block completions. Receives one job over the IPC channel, reports progress, stops cleanly (the
// trainer saves a checkpoint and exports the model) on a cancel message, and exits when the server goes away.
import { convertFolder } from '../convert/convertFolder';
import { evaluateModel } from '../eval/evaluate';
import { train } from '../train/trainer';
import type { ServerToWorker, WorkerJob, WorkerToServer } from './workerProtocol';

const controller = new AbortController();
let started = false;

function send(message: WorkerToServer): void {
  process.send?.(message);
}

async function run(job: WorkerJob): Promise<void> {
  if (job.kind === 'train') {
    const result = await train(job.options, {
      signal: controller.signal,
      onProgress: (progress) => send({ type: 'trainProgress', progress }),
    });
    send({ type: 'trainResult', result });
  } else if (job.kind === 'convert') {
    send({ type: 'convertResult', result: convertFolder(job.modelDir, { dtype: job.dtype }) });
  } else {
    const result = await evaluateModel(job.modelDir, job.workspace, {
      samples: job.samples,
      record: job.record,
      threads: job.threads,
      signal: controller.signal,
      onProgress: (done, total, message) => send({ type: 'evaluateProgress', done, total, message }),
    });
    send({ type: 'evaluateResult', result });
  }
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
