// Integration tests of training and evaluation through the spawned server: completions keep answering while a model
// trains in the child process, work-done progress and TrainingProgress figures, cancellation from the progress UI (the
// model is still exported), bad parameters, one training at a time, and evaluating and deploying the result.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCodes, LSPErrorCodes, WorkDoneProgressCancelNotification } from 'vscode-languageserver-protocol';
import { DeployModel, EvaluateModel, ListModels, TrainModel } from '../../server/src/protocol';
import { ServerHarness, failure, modelDirectories, waitFor } from './serverHarness';
import { makeParrotModel, writeSourcesWorkspace } from './testModels';

describe('training and evaluation', { timeout: 180_000 }, () => {
  let dirs: ReturnType<typeof modelDirectories>;
  let server: ServerHarness;
  let workspace: string;

  before(async () => {
    dirs = modelDirectories();
    await makeParrotModel(path.join(dirs.bundled, 'default'));
    await makeParrotModel(path.join(dirs.models, 'existing'));
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
    let completions = 0;
    let answeredWhileStepping = 0;
    for (let i = 0; !finished && i < 2000; i++) {
      server.change(uri, `let during${i} = `);
      const result = await server.complete(uri, 0, `let during${i} = `.length);
      assert.equal(result.items.length, 1);
      completions++;
      // Answered while the last figures the trainer sent said it was stepping.
      if (server.trainingFigures.filter((f) => f.name === 'fresh').at(-1)?.phase === 'training')
        answeredWhileStepping++;
    }
    const result = await training;
    assert.equal(result.finished, true);
    assert.equal(result.steps, 60);
    assert.ok(Number.isFinite(result.loss) && result.tokensPerSecond > 0);
    assert.ok(fs.existsSync(path.join(dirs.models, 'fresh', 'onnx', 'model.onnx')));
    assert.ok(completions >= 5, `${completions} completions during training`);
    // How fast they are while the trainer runs is measured by `npm run bench:complete`, not asserted here.
    assert.ok(
      answeredWhileStepping >= 5,
      `${answeredWhileStepping} completions answered while the trainer was stepping`,
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
    await waitFor(
      () => server.trainingFigures.some((f) => f.name === 'stopped' && f.phase === 'training' && f.step >= 3),
      'three training steps',
      60_000,
    );
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
    assert.match((await train({ name: 'existing' })).message, /a model named "existing" exists/);
    assert.match((await train({ name: 'default' })).message, /bundled model/);
    assert.equal((await train({ base: 'ghost' })).code, ErrorCodes.InvalidParams);
    assert.match((await train({ base: 'default', method: 'half' })).message, /method must be lora or full/);
    assert.match((await train({ preset: 'tiny', method: 'lora' })).message, /method applies to fine-tuning/);
    assert.match((await train({ base: 'default', compareSamples: 0.5 })).message, /compareSamples must be a positive/);
  });

  test('evaluates the trained model and deploys it', async () => {
    const trained = await server.connection.sendRequest(TrainModel.type, {
      workspaceFolder: workspace,
      name: 'evaluated',
      base: 'default',
      steps: 5,
    });
    assert.equal(trained.finished, true);
    const metrics = await server.connection.sendRequest(EvaluateModel.type, {
      name: 'evaluated',
      workspaceFolder: workspace,
      samples: 4,
    });
    assert.ok(metrics.perplexity > 1 && metrics.valLoss > 0);
    assert.equal(metrics.samples, 4);
    assert.ok(metrics.latencyMs.p50 > 0);
    const list = await server.connection.sendRequest(ListModels.type, {});
    assert.equal(list.models.find((m) => m.name === 'evaluated')?.metrics?.samples, 4, 'recorded in the model card');
    const deployed = await server.connection.sendRequest(DeployModel.type, { name: 'evaluated', role: 'completion' });
    assert.equal(deployed.active.completion, 'evaluated');
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
