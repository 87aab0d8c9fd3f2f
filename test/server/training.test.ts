// Integration tests of training and evaluation through the spawned server: completions keep answering while a model
// trains in the child process, work-done progress and TrainingProgress figures, cancellation from the progress UI (the
// model is still exported), bad parameters, one training at a time, and evaluating and deploying the result.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCodes, LSPErrorCodes, WorkDoneProgressCancelNotification } from 'vscode-languageserver-protocol';
import { DeployModel, EvaluateModel, ListModels, TrainModel } from '../../server/src/protocol';
import { ServerHarness, delay, modelDirectories } from './serverHarness';
import { makeParrotModel, writeSourcesWorkspace } from './testModels';

const failure = async (promise: Promise<unknown>) => {
  try {
    await promise;
    return { code: 0, message: '' };
  } catch (e) {
    return e as { code: number; message: string };
  }
};

describe('training and evaluation', { timeout: 180_000 }, () => {
  let dirs: ReturnType<typeof modelDirectories>;
  let server: ServerHarness;
  let workspace: string;

  before(async () => {
    dirs = modelDirectories();
    await makeParrotModel(path.join(dirs.bundled, 'default'));
    workspace = writeSourcesWorkspace(path.join(dirs.root, 'workspace'));
    server = await ServerHarness.start({
      modelsDirectory: dirs.models,
      bundledModelsDirectory: dirs.bundled,
      workspaceFolder: workspace,
      settings: () => ({ completion: { confidenceThreshold: 0, maxTokens: 16 } }),
    });
    await server.waitForStatus((s) => s.health === 'ready');
  });
  after(async () => {
    await server?.stop();
    dirs?.remove();
  });

  test('trains in the background while completions keep answering, with progress', async () => {
    const workDoneToken = 'train-1';
    server.watchProgress(workDoneToken);
    const training = server.connection.sendRequest(TrainModel.type, {
      workspaceFolder: workspace,
      name: 'fresh',
      base: 'default',
      steps: 60,
      workDoneToken,
    });
    let finished = false;
    void training.finally(() => (finished = true));

    const uri = 'file:///work/during.ts';
    server.open(uri, 'let during = ');
    const latencies: number[] = [];
    let sawTraining = false;
    for (let i = 0; !finished && i < 400; i++) {
      server.change(uri, `let during${i} = `);
      const started = performance.now();
      const result = await server.complete(uri, 0, `let during${i} = `.length);
      latencies.push(performance.now() - started);
      assert.equal(result.items.length, 1);
      sawTraining ||= server.trainingFigures.some((f) => f.phase === 'training');
      await delay(20);
    }
    const result = await training;
    assert.equal(result.finished, true);
    assert.equal(result.steps, 60);
    assert.ok(Number.isFinite(result.loss) && result.tokensPerSecond > 0);
    assert.ok(fs.existsSync(path.join(dirs.models, 'fresh', 'onnx', 'model.onnx')));
    assert.ok(sawTraining, 'completions were answered while the trainer was stepping');
    assert.ok(latencies.length >= 5, `${latencies.length} completions during training`);
    const sorted = [...latencies].sort((a, b) => a - b);
    assert.ok(
      sorted[Math.floor(sorted.length / 2)] < 250,
      `median completion latency during training ${sorted[Math.floor(sorted.length / 2)]} ms`,
    );

    const progress = server.progress.get(workDoneToken) as {
      kind: string;
      message?: string;
      percentage?: number;
      cancellable?: boolean;
    }[];
    assert.equal(progress[0].kind, 'begin');
    assert.equal(progress[0].cancellable, true);
    assert.ok(
      progress.some(
        (p) =>
          p.kind === 'report' &&
          /^step \d+\/60 · loss \d+\.\d+ · \d+ tok\/s$/.test(p.message ?? '') &&
          p.percentage! > 0,
      ),
    );
    assert.equal(progress.at(-1)!.kind, 'end');
    const phases = server.trainingFigures.filter((f) => f.name === 'fresh').map((f) => f.phase);
    assert.equal(phases[0], 'preparing');
    assert.equal(phases.at(-1), 'done');
    const list = await server.connection.sendRequest(ListModels.type, {});
    assert.equal(list.models.find((m) => m.name === 'fresh')?.status, 'idle');
  });

  test('cancelling the progress stops training cleanly; the model is exported', async () => {
    const workDoneToken = 'train-2';
    server.watchProgress(workDoneToken);
    const training = server.connection.sendRequest(TrainModel.type, {
      workspaceFolder: workspace,
      name: 'stopped',
      base: 'default',
      steps: 100_000,
      workDoneToken,
    });
    while (!server.trainingFigures.some((f) => f.name === 'stopped' && f.phase === 'training' && f.step >= 3))
      await delay(20);
    const second = await failure(
      server.connection.sendRequest(TrainModel.type, {
        workspaceFolder: workspace,
        name: 'another',
        base: 'default',
        steps: 5,
      }),
    );
    assert.equal(second.code, LSPErrorCodes.RequestFailed);
    assert.match(second.message, /"stopped" is training; one training runs at a time/);
    await server.connection.sendNotification(WorkDoneProgressCancelNotification.type, { token: workDoneToken });
    const result = await training;
    assert.equal(result.finished, false);
    assert.ok(result.steps >= 3 && result.steps < 100_000);
    assert.ok(fs.existsSync(path.join(dirs.models, 'stopped', 'onnx', 'model.onnx')));
    assert.ok(fs.existsSync(path.join(dirs.models, 'stopped', 'checkpoint', 'state.safetensors')));
    await server.waitForStatus(
      (s) => s.training?.name === 'stopped' && s.training.phase === 'done' && s.training.message === 'stopped',
    );
  });

  test('refuses bad parameters clearly', async () => {
    const train = (params: object) =>
      failure(
        server.connection.sendRequest(TrainModel.type, {
          workspaceFolder: workspace,
          name: 'x1',
          steps: 5,
          ...params,
        } as never),
      );
    assert.match((await train({ preset: 'enormous' })).message, /unknown preset "enormous"/);
    assert.match((await train({ steps: -1 })).message, /steps must be a positive number/);
    assert.match((await train({ name: '../escape' })).message, /name must be a model name/);
    assert.match((await train({ workspaceFolder: '/no/such/folder' })).message, /is not a folder/);
    assert.match((await train({ name: 'fresh' })).message, /a model named "fresh" exists/);
    assert.match((await train({ name: 'default' })).message, /bundled model/);
    assert.equal((await train({ base: 'ghost' })).code, ErrorCodes.InvalidParams);
  });

  test('evaluates the trained model and deploys it', async () => {
    const metrics = await server.connection.sendRequest(EvaluateModel.type, {
      name: 'fresh',
      workspaceFolder: workspace,
      samples: 4,
    });
    assert.ok(metrics.perplexity > 1 && metrics.valLoss > 0);
    assert.equal(metrics.samples, 4);
    assert.ok(metrics.latencyMs.p50 > 0);
    const list = await server.connection.sendRequest(ListModels.type, {});
    assert.equal(list.models.find((m) => m.name === 'fresh')?.metrics?.samples, 4, 'recorded in the model card');
    const deployed = await server.connection.sendRequest(DeployModel.type, { name: 'fresh', role: 'completion' });
    assert.equal(deployed.active.completion, 'fresh');
    server.open('file:///work/after.ts', 'export function ');
    await server.complete('file:///work/after.ts', 0, 16);
  });

  test('an untrusted workspace cannot train', async () => {
    const untrusted = await ServerHarness.start({
      modelsDirectory: dirs.models,
      bundledModelsDirectory: dirs.bundled,
      trusted: false,
    });
    try {
      const refused = await failure(
        untrusted.connection.sendRequest(TrainModel.type, { workspaceFolder: workspace, name: 'nope', steps: 5 }),
      );
      assert.match(refused.message, /untrusted workspace: training is disabled/);
    } finally {
      await untrusted.stop();
    }
  });
});
