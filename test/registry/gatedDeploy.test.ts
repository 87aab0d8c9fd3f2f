// Tests of evaluation-gated deploys, versions and rollback through the `modelwright deploy` function: an untrained
// model is refused against a trained one and the trained one accepted against it, --force is recorded, a rollback
// serves the exact previous bytes, and a deploy SIGKILLed at each stage leaves a consistent state.
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { writeModelCard } from '../../server/src/modelFolder/modelCard';
import { gatedDeployCommand } from '../../server/src/cli/gatedDeploy';
import { readActiveModels } from '../../server/src/registry/activeModels';
import { currentVersion, readHistory, sha256File } from '../../server/src/registry/deployments';
import { makeModelFolder } from '../helpers/makeModelFolder';
import { makeTrainedModel, writeSourcesWorkspace } from '../server/testModels';

function capture() {
  const out = { stdout: '', stderr: '' };
  return {
    out,
    io: {
      stdout: { write: (s: string) => (out.stdout += s) },
      stderr: { write: (s: string) => (out.stderr += s) },
    },
  };
}

let root: string;
let models: string;
let workspace: string;

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-deploy-'));
  models = path.join(root, 'models');
  fs.mkdirSync(models);
  workspace = writeSourcesWorkspace(path.join(root, 'workspace'));
  await makeTrainedModel(path.join(models, 'trained'));
  const untrained = await makeModelFolder({ config: { contextLength: 128, embedding: 64 }, parentDir: root, seed: 5 });
  fs.renameSync(untrained.dir, path.join(models, 'untrained'));
  writeModelCard(path.join(models, 'untrained'), {
    name: 'untrained',
    kind: 'causal-lm',
    createdAt: new Date().toISOString(),
    parameters: 0,
    hyperparameters: {},
    curve: [],
    evaluations: [],
  });
});

after(() => fs.rmSync(root, { recursive: true, force: true }));

const deploy = async (model: string, extra: Record<string, unknown> = {}) => {
  const { out, io } = capture();
  const code = await gatedDeployCommand(
    { model: path.join(models, model), role: 'explanation', evalWorkspace: workspace, ...extra },
    io,
  );
  return { code, ...out };
};

describe('gated deploy', () => {
  test('accepts a trained model over an untrained one, refuses the reverse, records --force, rolls back', async () => {
    const first = await deploy('untrained');
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /nothing serving/);

    const better = await deploy('trained');
    assert.equal(better.code, 0, better.stderr);
    assert.match(better.stdout, /serving "untrained"/);
    assert.match(better.stdout, /gate: passed/);

    const worse = await deploy('untrained');
    assert.equal(worse.code, 1, 'the gate refuses a worse model');
    assert.match(worse.stdout, /bitsPerByte ↓ +[\d.]+ +[\d.]+ +worse/);
    assert.match(worse.stderr, /refused "untrained"/);
    let history = readHistory(models, 'explanation');
    assert.equal(currentVersion(history)?.model, 'trained', 'a refused deploy changes nothing');
    assert.equal(history.versions.length, 2);

    const forced = await deploy('untrained', { force: true });
    assert.equal(forced.code, 0, forced.stderr);
    history = readHistory(models, 'explanation');
    assert.equal(currentVersion(history)?.forcedBy, '--force');
    const card = JSON.parse(fs.readFileSync(path.join(models, 'untrained', 'modelwright.json'), 'utf8'));
    assert.equal(card.deployments.at(-1).forcedBy, '--force', 'the card records what forced the deploy');

    const { out, io } = capture();
    assert.equal(await gatedDeployCommand({ rollback: true, role: 'explanation', models }, io), 0, out.stderr);
    history = readHistory(models, 'explanation');
    const current = currentVersion(history)!;
    assert.equal(current.model, 'trained');
    assert.equal(current.rollbackOf, 2);
    const active = readActiveModels({ modelsDirectory: models, trusted: true }, () => true);
    assert.equal(active.explanation, 'trained');
    assert.equal(JSON.parse(fs.readFileSync(path.join(models, 'active.json'), 'utf8')).explanation, 'trained');
  });

  test('a rollback restores the exact bytes of the previous version after the folder was overwritten', async () => {
    const onnx = path.join(models, 'trained', 'onnx', 'model.onnx');
    const before = sha256File(onnx);
    const v1 = await deploy('trained', { role: 'completion', samples: 4, force: true });
    assert.equal(v1.code, 0, v1.stderr);
    // "Retrain in place": new bytes under the same name, deployed by force.
    const replaced = `${onnx}.new`;
    fs.copyFileSync(path.join(models, 'untrained', 'onnx', 'model.onnx'), replaced);
    fs.renameSync(replaced, onnx);
    assert.notEqual(sha256File(onnx), before);
    const v2 = await deploy('trained', { role: 'completion', samples: 4, force: true });
    assert.equal(v2.code, 0, v2.stderr);

    const { out, io } = capture();
    assert.equal(await gatedDeployCommand({ rollback: true, role: 'completion', models }, io), 0, out.stderr);
    assert.equal(sha256File(onnx), before, 'the previous version is served with its exact bytes');
    assert.equal(currentVersion(readHistory(models, 'completion'))?.sha256, before);
  });

  for (const stage of ['snapshotted', 'committed'] as const) {
    test(`SIGKILL at "${stage}" leaves a consistent state`, async () => {
      const role = 'explanation';
      const previous = currentVersion(readHistory(models, role))!;
      const options = { model: path.join(models, 'untrained'), role, evalWorkspace: workspace, force: true };
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', path.join(__dirname, 'deployChild.ts'), JSON.stringify(options), stage],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      await new Promise<void>((resolve, reject) => {
        let seen = '';
        child.stdout.on('data', (d) => {
          seen += d;
          if (seen.includes(`stage ${stage}`)) {
            child.kill('SIGKILL');
            resolve();
          }
        });
        child.on('exit', () => reject(new Error(`the child ended before the stage: ${stderr}`)));
      });
      await new Promise((resolve) => child.once('close', resolve));

      const history = readHistory(models, role);
      const active = readActiveModels({ modelsDirectory: models, trusted: true }, () => true);
      if (stage === 'snapshotted') {
        assert.equal(history.current, previous.version, 'before the commit the previous version still serves');
        assert.equal(active.explanation, previous.model);
      } else {
        assert.equal(currentVersion(history)?.model, 'untrained', 'after the commit the new version serves');
        assert.equal(active.explanation, 'untrained', 'the history wins over an active.json the crash left behind');
      }
      const leftovers = fs.readdirSync(path.join(models, '.deployments')).filter((f) => f.includes('.tmp-'));
      assert.deepEqual(leftovers, [], 'no half-written history');
      // The next deploy works and numbers its version after the last committed one.
      const next = await deploy('trained', { force: true });
      assert.equal(next.code, 0, next.stderr);
      const after = readHistory(models, role);
      assert.equal(after.current, Math.max(...history.versions.map((v) => v.version)) + 1);
    });
  }
});
