// Integration tests, through the spawned server, of what Train Model… runs besides a plain training: the estimate of
// a LoRA fine-tune of a downloaded Llama-family model (workspace tokens, a timed probe step), that fine-tune with the
// same progress figures as any training and its gain over the base at the end, the columns of a labelled CSV, and a
// text classifier trained from it in the worker and listed with the models.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EstimateTraining, ListModels, PreviewLabelledData, TrainModel } from '../../server/src/protocol';
import { makeFamilyModel } from '../helpers/familyModels';
import { commitMessages, writeCommitCsv } from '../classify/syntheticData';
import { ServerHarness, failure, modelDirectories } from './serverHarness';
import { makeParrotModel, writeSourcesWorkspace } from './testModels';

describe('Train Model… choices through the server', { timeout: 300_000 }, () => {
  let dirs: ReturnType<typeof modelDirectories>;
  let server: ServerHarness;
  let workspace: string;

  before(async () => {
    dirs = modelDirectories();
    await makeParrotModel(path.join(dirs.bundled, 'default'));
    // A downloaded pretrained model: a tiny random Llama with the pull manifest a download writes.
    const llama = await makeFamilyModel({ family: 'llama', parentDir: dirs.root });
    const smol = path.join(dirs.models, 'smol');
    fs.renameSync(llama.dir, smol);
    fs.writeFileSync(
      path.join(smol, '.pull.json'),
      JSON.stringify({ repo: 'test/smol', revision: 'main', commit: 'a'.repeat(40), files: [] }),
    );
    workspace = writeSourcesWorkspace(path.join(dirs.root, 'workspace'));
    fs.mkdirSync(path.join(workspace, 'data'));
    writeCommitCsv(path.join(workspace, 'data', 'commits.csv'), commitMessages(300, 5));
    server = await ServerHarness.start({
      modelsDirectory: dirs.models,
      bundledModelsDirectory: dirs.bundled,
      workspaceFolder: workspace,
    });
    await server.waitForStatus((s) => s.health === 'ready');
  });
  after(async () => {
    await server?.stop();
    dirs?.remove();
  });

  test('the pulled model is listed as a pretrained Llama-family model', async () => {
    const { models } = await server.connection.sendRequest(ListModels.type, {});
    const smol = models.find((m) => m.name === 'smol');
    assert.equal(smol?.modelType, 'llama');
    assert.equal(smol?.origin?.repo, 'test/smol');
  });

  test('estimates a LoRA fine-tune: the tokens of the training files and a timed probe step', async () => {
    const lora = await server.connection.sendRequest(EstimateTraining.type, {
      workspaceFolder: workspace,
      base: 'smol',
      method: 'lora',
    });
    assert.equal(lora.source, 'measured');
    assert.ok(lora.probeSteps! >= 1 && lora.probeBatch! >= 1 && lora.probeBatch! <= lora.batchSize);
    assert.equal(lora.tokenizer, 'base');
    assert.ok(lora.trainFiles >= 1 && lora.trainBytes > 0);
    assert.ok(lora.trainTokens > lora.trainFiles && lora.trainTokens < lora.trainBytes, `${lora.trainTokens} tokens`);
    assert.ok(lora.secondsPerStep > 0 && Number.isFinite(lora.secondsPerStep));
    assert.ok(lora.trainedParameters > 0 && lora.trainedParameters < lora.parameters / 4, 'an adapter is small');
    assert.equal(lora.batchSize, 16);
    const full = await server.connection.sendRequest(EstimateTraining.type, {
      workspaceFolder: workspace,
      base: 'smol',
      method: 'full',
    });
    assert.equal(full.trainedParameters, full.parameters);
    assert.equal(full.trainTokens, lora.trainTokens);
    const scratch = await server.connection.sendRequest(EstimateTraining.type, {
      workspaceFolder: workspace,
      preset: 'tiny',
    });
    assert.equal(scratch.tokenizer, 'approximate');
    assert.equal(scratch.contextLength, 256);
    const refused = await failure(
      server.connection.sendRequest(EstimateTraining.type, { workspaceFolder: workspace, method: 'lora' }),
    );
    assert.match(refused.message, /method applies to fine-tuning/);
  });

  test('fine-tunes with LoRA: the same progress figures as any training, then the gain over the base', async () => {
    const workDoneToken = 'lora-1';
    server.watchProgress(workDoneToken);
    const result = await server.connection.sendRequest(TrainModel.type, {
      workspaceFolder: workspace,
      name: 'tuned',
      base: 'smol',
      method: 'lora',
      steps: 52,
      compareSamples: 4,
      workDoneToken,
    });
    assert.equal(result.finished, true);
    assert.equal(result.steps, 52);
    assert.ok(fs.existsSync(path.join(dirs.models, 'tuned', 'adapter', 'adapter_config.json')), 'a PEFT adapter');

    const figures = server.trainingFigures.filter((f) => f.name === 'tuned');
    const stepping = figures.filter((f) => f.phase === 'training');
    assert.ok(stepping.length >= 3, `${stepping.length} training figures`);
    assert.ok(stepping.every((f) => Number.isFinite(f.loss) && f.totalSteps === 52));
    assert.ok(
      stepping.some((f) => f.step === 50 && Number.isFinite(f.valLoss)),
      'the validation loss of step 50 reaches the client',
    );
    assert.ok(figures.some((f) => f.phase === 'saving' && /comparing with the base/.test(f.message)));
    assert.equal(figures.filter((f) => f.phase === 'done').length, 1, 'done once, after the comparison');
    const done = figures.at(-1)!;
    assert.equal(done.phase, 'done');

    const comparison = result.comparison;
    assert.ok(comparison, 'the result compares with the base');
    assert.deepEqual(done.comparison, comparison);
    assert.equal(comparison.base.name, 'smol');
    assert.equal(comparison.trained.name, 'tuned');
    assert.equal(comparison.samples, 4);
    assert.equal(comparison.files, result.heldOutFiles);
    for (const side of [comparison.base, comparison.trained]) {
      assert.ok(side.valLoss > 0 && Number.isFinite(side.valLoss));
      assert.ok(side.exactMatch >= 0 && side.exactMatch <= 1 && side.editSimilarity >= 0);
    }
    // The new model's figure is the trainer's held-out loss on the same files; a random base predicts far worse.
    assert.ok(Math.abs(comparison.trained.valLoss - result.valLoss) < 1e-3);
    assert.ok(comparison.trained.valLoss < comparison.base.valLoss, 'fine-tuning lowered the held-out loss');
    const { models } = await server.connection.sendRequest(ListModels.type, {});
    assert.equal(models.find((m) => m.name === 'tuned')?.metrics?.samples, 4, 'recorded in the new model card');
  });

  test('reads the columns of a labelled CSV from its first rows', async () => {
    const preview = await server.connection.sendRequest(PreviewLabelledData.type, {
      workspaceFolder: workspace,
      file: 'data/commits.csv',
    });
    assert.equal(preview.format, 'csv');
    assert.equal(preview.rows, 200);
    assert.deepEqual(
      preview.columns.map((c) => c.name),
      ['message', 'label'],
    );
    const label = preview.columns[1];
    assert.equal(label.distinct, 4);
    assert.equal(label.samples.length, 3);
    assert.ok(preview.columns[0].meanLength > label.meanLength);
    const outside = await failure(
      server.connection.sendRequest(PreviewLabelledData.type, { workspaceFolder: workspace, file: '../x.csv' }),
    );
    assert.match(outside.message, /is not inside/);
  });

  test('trains a text classifier in the worker, with progress per epoch, and lists it', async () => {
    const result = await server.connection.sendRequest(TrainModel.type, {
      workspaceFolder: workspace,
      name: 'commit-kind',
      classifier: { data: 'data/commits.csv', text: 'message', label: 'label' },
      steps: 12,
    });
    assert.equal(result.finished, true);
    assert.ok(result.steps >= 1 && result.steps <= 12);
    assert.ok(Number.isFinite(result.loss) && Number.isFinite(result.valLoss));
    assert.deepEqual(result.classification?.labels, ['docs', 'feature', 'fix', 'test']);
    assert.ok(result.classification!.accuracy > result.classification!.majorityAccuracy, 'it learned something');
    const figures = server.trainingFigures.filter((f) => f.name === 'commit-kind');
    const epochs = figures.filter((f) => f.phase === 'training');
    assert.ok(epochs.length >= 1);
    assert.ok(epochs.every((f) => f.unit === 'epoch' && f.totalSteps === 12 && Number.isFinite(f.valLoss)));
    assert.equal(figures.at(-1)?.phase, 'done');
    const { models } = await server.connection.sendRequest(ListModels.type, {});
    const listed = models.find((m) => m.name === 'commit-kind');
    assert.equal(listed?.kind, 'text-classification');

    const again = await failure(
      server.connection.sendRequest(TrainModel.type, {
        workspaceFolder: workspace,
        name: 'commit-kind',
        classifier: { data: 'data/commits.csv', text: 'message', label: 'label' },
      }),
    );
    assert.match(again.message, /a model named "commit-kind" exists/);
    const withBase = await failure(
      server.connection.sendRequest(TrainModel.type, {
        workspaceFolder: workspace,
        name: 'c2',
        base: 'smol',
        classifier: { data: 'data/commits.csv', text: 'message', label: 'label' },
      }),
    );
    assert.match(withBase.message, /give neither preset nor base/);
    const noColumn = await failure(
      server.connection.sendRequest(TrainModel.type, {
        workspaceFolder: workspace,
        name: 'c3',
        classifier: { data: 'data/commits.csv', text: 'message', label: '' },
      } as never),
    );
    assert.match(noColumn.message, /classifier.label must name a column/);
  });
});
