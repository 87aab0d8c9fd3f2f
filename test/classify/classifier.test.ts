// Tests of text classifiers trained from a labelled file: on generated commit messages the classifier reaches
// macro-F1 ≥ 0.85 on its validation rows (the majority class alone scores about 0.13), transformers.js's
// text-classification pipeline loads the folder and returns our labels and scores, and `modelwright eval` reports
// the same confusion matrix as JSON; balanced class weights are scikit-learn's and train a classifier as good.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadClassifier } from '../../server/src/classify/classifier';
import { balancedClassWeights } from '../../server/src/classify/trainClassifier';
import { evalClassifierCommand, trainClassifierCommand } from '../../server/src/cli/classifyCommands';
import type { ClassifierMetrics } from '../../server/src/protocol';
import { commitLabels, commitMessages, writeCommitCsv, writeCommitJsonl } from './syntheticData';

let root: string;
let modelDir: string;
let csv: string;
let trainOutput = '';

const io = () => {
  const out = { stdout: '', stderr: '' };
  return {
    out,
    io: { stdout: { write: (s: string) => (out.stdout += s) }, stderr: { write: (s: string) => (out.stderr += s) } },
  };
};

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-classify-'));
  csv = path.join(root, 'commits.csv');
  writeCommitCsv(csv, commitMessages(600));
  modelDir = path.join(root, 'commit-classifier');
  const { out, io: streams } = io();
  const code = await trainClassifierCommand(
    { data: csv, text: 'message', label: 'label', out: modelDir, seed: 1 },
    streams,
  );
  assert.equal(code, 0, out.stderr);
  trainOutput = out.stdout;
});

after(() => fs.rmSync(root, { recursive: true, force: true }));

describe('text classifier', () => {
  test('reaches macro-F1 well above the majority class on held-out rows', () => {
    const card = JSON.parse(fs.readFileSync(path.join(modelDir, 'modelwright.json'), 'utf8'));
    const metrics: ClassifierMetrics = card.classification.validation;
    assert.equal(card.kind, 'text-classification');
    assert.deepEqual(metrics.labels, [...commitLabels]);
    assert.ok(metrics.macroF1 >= 0.85, `macro-F1 ${metrics.macroF1}`);
    assert.ok(metrics.accuracy > metrics.majorityAccuracy + 0.3, `accuracy ${metrics.accuracy}`);
    assert.match(trainOutput, /classes: fix \d+ \(\d+%\), feature/);
    assert.match(trainOutput, /macro-F1 0\.\d{3}/);
    const config = JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8'));
    assert.deepEqual(config.architectures, ['BertForSequenceClassification']);
    assert.deepEqual(Object.values(config.id2label), [...commitLabels]);
  });

  test("transformers.js's text-classification pipeline returns our labels and scores", async () => {
    const { pipeline, env } = await import('@huggingface/transformers');
    env.allowRemoteModels = false;
    const texts = ['fix crash in the parser #512', 'add support for the cli #120', 'typo in guide of the router #300'];
    const classify = await pipeline('text-classification', modelDir, { local_files_only: true });
    const theirs = (await classify(texts, { top_k: null })) as unknown as { label: string; score: number }[][];
    const ours = await loadClassifier(modelDir);
    try {
      const predictions = await ours.classify(texts);
      predictions.forEach((prediction, i) => {
        assert.equal(theirs[i][0].label, prediction.label, texts[i]);
        for (const { label, score } of theirs[i]) {
          const mine = prediction.scores[ours.labels.indexOf(label)];
          assert.ok(Math.abs(mine - score) < 1e-4, `${texts[i]} ${label}: ${mine} vs ${score}`);
        }
      });
      assert.deepEqual(
        predictions.map((p) => p.label),
        ['fix', 'feature', 'docs'],
      );
    } finally {
      await ours.dispose();
    }
  });

  test('eval --json reports accuracy, macro-F1, per-class figures and a confusion matrix', async () => {
    const jsonl = path.join(root, 'more.jsonl');
    writeCommitJsonl(jsonl, commitMessages(200, 99));
    const { out, io: streams } = io();
    const code = await evalClassifierCommand(
      { model: modelDir, data: jsonl, text: 'message', label: 'label', json: true },
      streams,
    );
    assert.equal(code, 0, out.stderr);
    const metrics: ClassifierMetrics = JSON.parse(out.stdout);
    const total = metrics.confusion.flat().reduce((a, b) => a + b, 0);
    assert.equal(total, metrics.samples);
    assert.equal(metrics.perClass.length, 4);
    assert.ok(metrics.macroF1 > 0.75, `macro-F1 ${metrics.macroF1}`);
  });

  test('balanced class weights n/(k·n_c) weigh the loss and train a classifier as good', async () => {
    assert.deepEqual(balancedClassWeights([0, 0, 0, 1], 3), Float32Array.of(4 / 6, 2, 0));
    const dir = path.join(root, 'balanced');
    const { out, io: streams } = io();
    const options = { data: csv, text: 'message', label: 'label', out: dir, seed: 1, classWeights: 'balanced' };
    assert.equal(await trainClassifierCommand(options, streams), 0, out.stderr);
    const card = JSON.parse(fs.readFileSync(path.join(dir, 'modelwright.json'), 'utf8'));
    assert.equal(card.hyperparameters.classWeights, 'balanced');
    const metrics: ClassifierMetrics = card.classification.validation;
    assert.ok(metrics.macroF1 >= 0.85, `macro-F1 ${metrics.macroF1}`);
  });
});
