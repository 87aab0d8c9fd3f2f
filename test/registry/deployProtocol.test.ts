// Tests of deploy gates, versions and rollback through the spawned language server: modelwright/checkDeploy shows
// the table, modelwright/gatedDeploy refuses a worse model with the table in the error's data, every deploy is a
// version (modelwright/listDeployments), modelwright/rollback serves the previous one, and deleting a model that
// a version names needs confirm; a text classifier is listed with its kind and validation metrics; the HTTP
// service follows the service role with the deployment's version numbers in its OIP routes; a deploy made by
// another process (`modelwright deploy` in a terminal) serves in the running server too.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LSPErrorCodes } from 'vscode-languageserver-protocol';
import { trainClassifier } from '../../server/src/classify/trainClassifier';
import { gatedDeployCommand } from '../../server/src/cli/gatedDeploy';
import {
  CheckDeploy,
  DeleteModel,
  GatedDeploy,
  ListDeployments,
  ListModels,
  RollbackDeployment,
  StartService,
  StopService,
} from '../../server/src/protocol';
import { commitMessages, writeCommitCsv } from '../classify/syntheticData';
import { makeModelFolder } from '../helpers/makeModelFolder';
import { ServerHarness, modelDirectories } from '../server/serverHarness';
import { makeParrotModel, makeTrainedModel, writeSourcesWorkspace } from '../server/testModels';

describe('deploy gate over LSP', { timeout: 300_000 }, () => {
  let dirs: ReturnType<typeof modelDirectories>;
  let server: ServerHarness;
  let workspace: string;

  before(async () => {
    dirs = modelDirectories();
    await makeParrotModel(path.join(dirs.bundled, 'default'), { character: 'x' });
    await makeTrainedModel(path.join(dirs.models, 'trained'));
    const untrained = await makeModelFolder({ config: { contextLength: 128, embedding: 64 }, parentDir: dirs.models });
    fs.renameSync(untrained.dir, path.join(dirs.models, 'untrained'));
    workspace = writeSourcesWorkspace(path.join(path.dirname(dirs.models), 'workspace'));
    const csv = path.join(workspace, 'commits.csv');
    writeCommitCsv(csv, commitMessages(300));
    await trainClassifier({ data: csv, text: 'message', label: 'label', out: path.join(dirs.models, 'commits') });
    server = await ServerHarness.start({ modelsDirectory: dirs.models, bundledModelsDirectory: dirs.bundled });
    await server.waitForStatus((s) => s.health === 'ready');
  });
  after(async () => {
    await server?.stop();
    dirs?.remove();
  });

  test('gate, versions, rollback and the delete question', async () => {
    const c = server.connection;
    const role = 'explanation' as const;
    const first = await c.sendRequest(GatedDeploy.type, { name: 'untrained', role, evalWorkspace: workspace });
    assert.equal(first.version.version, 1);

    const check = await c.sendRequest(CheckDeploy.type, { name: 'trained', role, evalWorkspace: workspace });
    assert.equal(check.serving, 'untrained');
    assert.equal(check.pass, true);
    assert.ok(check.rows[0].candidate < check.rows[0].serving!, 'the trained model has the lower held-out loss');
    const second = await c.sendRequest(GatedDeploy.type, { name: 'trained', role, evalWorkspace: workspace });
    assert.equal(second.version.version, 2);
    assert.equal((await c.sendRequest(ListModels.type, {})).active.explanation, 'trained');

    const refused = await c.sendRequest(GatedDeploy.type, { name: 'untrained', role, evalWorkspace: workspace }).then(
      () => assert.fail('a worse model must be refused'),
      (e: { code: number; data?: GatedDeploy.ErrorData }) => e,
    );
    assert.equal(refused.code, LSPErrorCodes.RequestFailed);
    assert.equal(refused.data?.gate.pass, false);
    assert.equal(refused.data?.gate.rows[0].pass, false);

    const { histories } = await c.sendRequest(ListDeployments.type, {});
    const history = histories.find((h) => h.role === role)!;
    assert.deepEqual(
      history.versions.map((v) => v.model),
      ['untrained', 'trained'],
    );
    assert.equal(history.current, 2);

    const back = await c.sendRequest(RollbackDeployment.type, { role });
    assert.equal(back.version.rollbackOf, 1);
    assert.equal((await c.sendRequest(ListModels.type, {})).active.explanation, 'untrained');

    const asked = await c.sendRequest(DeleteModel.type, { name: 'trained' }).then(
      () => assert.fail('deleting a model a version names asks first'),
      (e: { message: string }) => e,
    );
    assert.match(asked.message, /explanation version 2; send confirm: true/);
    await c.sendRequest(DeleteModel.type, { name: 'trained', confirm: true });
    assert.ok(!fs.existsSync(path.join(dirs.models, 'trained')));
  });

  test('a text classifier is listed with its kind and validation metrics', async () => {
    const list = await server.connection.sendRequest(ListModels.type, {});
    const classifier = list.models.find((m) => m.name === 'commits')!;
    assert.equal(classifier.kind, 'text-classification');
    assert.ok(classifier.classification!.macroF1 > 0.8, `macro-F1 ${classifier.classification?.macroF1}`);
    assert.equal(classifier.classification!.confusion.length, 4);
  });

  test('the HTTP service numbers its OIP versions after the service role and follows its deploys', async () => {
    const c = server.connection;
    const deploy = () => c.sendRequest(GatedDeploy.type, { name: 'commits', role: 'service', force: 'test' });
    assert.equal((await deploy()).version.version, 1);
    assert.equal((await deploy()).version.version, 2);
    const { url } = await c.sendRequest(StartService.type, { models: ['commits'] });
    try {
      const versions = async () => ((await (await fetch(`${url}/v2/models/commits`)).json()) as any).versions;
      const waitFor = async (expected: string[]) => {
        for (let i = 0; i < 200 && JSON.stringify(await versions()) !== JSON.stringify(expected); i++)
          await new Promise((resolve) => setTimeout(resolve, 50));
        assert.deepEqual(await versions(), expected);
      };
      assert.deepEqual(await versions(), ['2'], "the service starts on the role's current version number");
      assert.equal((await deploy()).version.version, 3);
      await waitFor(['3']);
      await c.sendRequest(RollbackDeployment.type, { role: 'service' });
      await waitFor(['4']);
    } finally {
      await c.sendRequest(StopService.type, {});
    }
  });

  test('a deploy by another process serves in the running server', async () => {
    const silent = { stdout: { write: () => true }, stderr: { write: () => true } };
    const code = await gatedDeployCommand(
      {
        model: path.join(dirs.models, 'untrained'),
        role: 'completion',
        models: dirs.models,
        force: true,
        samples: 2,
      },
      silent,
    );
    assert.equal(code, 0);
    let active: string | undefined;
    for (let i = 0; i < 200 && active !== 'untrained'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      active = (await server.connection.sendRequest(ListModels.type, {})).active.completion;
    }
    assert.equal(active, 'untrained', 'the running server swapped in the version committed elsewhere');
  });
});
