// Tests of serving text classifiers over HTTP: POST /v1/classify answers labels with scores equal to the loaded
// classifier's, OIP v2 metadata and infer work for a classifier (versions in the URL), and after a forced deploy of
// a retrained folder a rollback restores the previous bytes and the running service answers as before.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadClassifier } from '../../server/src/classify/classifier';
import { trainClassifier } from '../../server/src/classify/trainClassifier';
import { sha256File } from '../../server/src/registry/deployments';
import { rollback, versionedDeploy } from '../../server/src/registry/versionedDeploy';
import { type RunningServer, startServer } from '../../server/src/serve/httpServer';
import { commitMessages, writeCommitCsv } from './syntheticData';

let root: string;
let models: string;
let csv: string;
let server: RunningServer;
const texts = ['fix crash in the parser #512', 'add support for the cli #120', 'unit tests for the cache #44'];

const post = async (url: string, body: unknown) => {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
};

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-classify-serve-'));
  models = path.join(root, 'models');
  fs.mkdirSync(models);
  csv = path.join(root, 'commits.csv');
  writeCommitCsv(csv, commitMessages(400, 3));
  await trainClassifier({ data: csv, text: 'message', label: 'label', out: path.join(models, 'commits'), seed: 1 });
  // A second, weaker version of the same classifier (one epoch): its scores differ.
  await trainClassifier({
    data: csv,
    text: 'message',
    label: 'label',
    out: path.join(root, 'retrained'),
    epochs: 1,
    seed: 2,
  });
  server = await startServer({ models: [{ name: 'commits', dir: path.join(models, 'commits') }], port: 0 });
});

after(async () => {
  await server?.close();
  fs.rmSync(root, { recursive: true, force: true });
});

const classify = async () => {
  const { status, body } = await post(`${server.url}/v1/classify`, { model: 'commits', input: texts });
  assert.equal(status, 200, JSON.stringify(body));
  return body as { model_version: string; data: { label: string; score: number; scores: Record<string, number> }[] };
};

describe('classifier service', () => {
  test('POST /v1/classify and OIP infer answer labels with scores', async () => {
    const answer = await classify();
    const direct = await loadClassifier(path.join(models, 'commits'));
    const expected = await direct.classify(texts);
    await direct.dispose();
    assert.deepEqual(
      answer.data.map((d) => d.label),
      expected.map((p) => p.label),
    );
    answer.data.forEach((d, i) => assert.ok(Math.abs(d.score - expected[i].score) < 1e-6));
    assert.deepEqual(
      answer.data.slice(0, 2).map((d) => d.label),
      ['fix', 'feature'],
    );
    for (const d of answer.data) {
      const total = Object.values(d.scores).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(total - 1) < 1e-5);
      assert.equal(d.score, Math.max(...Object.values(d.scores)));
    }
    const metadata = await (await fetch(`${server.url}/v2/models/commits`)).json();
    assert.deepEqual(metadata.versions, ['1']);
    assert.deepEqual(
      metadata.inputs.map((i: { name: string }) => i.name),
      ['text_input'],
    );
    const infer = await post(`${server.url}/v2/models/commits/versions/1/infer`, {
      id: 'r1',
      inputs: [{ name: 'text_input', datatype: 'BYTES', shape: [3], data: texts }],
    });
    assert.equal(infer.status, 200, JSON.stringify(infer.body));
    assert.equal(infer.body.id, 'r1');
    assert.deepEqual(
      infer.body.outputs[0].data,
      expected.map((p) => p.label),
    );
    assert.deepEqual(infer.body.outputs[2].shape, [3, 4]);
    const wrongVersion = await post(`${server.url}/v2/models/commits/versions/9/infer`, { inputs: [] });
    assert.equal(wrongVersion.status, 404);
    const bad = await post(`${server.url}/v1/classify`, { model: 'commits', input: [1, 2] });
    assert.equal(bad.status, 400);
  });

  test('a rollback restores the previous bytes and the running service follows', async () => {
    const dir = path.join(models, 'commits');
    const reload = async (_role: string, model: { name: string; dir: string }) => {
      await server.reload(model.name, model.dir);
    };
    const v1 = await versionedDeploy({ modelsDirectory: models, role: 'service', candidate: { name: 'commits', dir } });
    assert.ok(v1.version && v1.report.pass);
    const before = await classify();
    const originalBytes = sha256File(path.join(dir, 'onnx', 'model.onnx'));

    // Retrained in place: the folder now holds the weaker classifier, which the gate refuses unless forced.
    fs.rmSync(dir, { recursive: true });
    fs.renameSync(path.join(root, 'retrained'), dir);
    const refused = await versionedDeploy({
      modelsDirectory: models,
      role: 'service',
      candidate: { name: 'commits', dir },
    });
    assert.equal(refused.version, undefined, 'the gate refuses the weaker classifier');
    assert.equal(refused.report.rows[0].metric, 'macroF1');
    const forced = await versionedDeploy({
      modelsDirectory: models,
      role: 'service',
      candidate: { name: 'commits', dir },
      force: 'test',
      activate: reload,
    });
    assert.equal(forced.version?.forcedBy, 'test');
    const weaker = await classify();
    assert.notDeepEqual(
      weaker.data.map((d) => d.score),
      before.data.map((d) => d.score),
    );

    const restored = await rollback({ modelsDirectory: models, role: 'service', activate: reload });
    assert.equal(restored.rollbackOf, 1);
    assert.equal(sha256File(path.join(dir, 'onnx', 'model.onnx')), originalBytes);
    const after = await classify();
    assert.equal(after.model_version, '3', 'the service serves the restored files as its next version');
    after.data.forEach((d, i) => assert.ok(Math.abs(d.score - before.data[i].score) < 1e-6));
  });
});
