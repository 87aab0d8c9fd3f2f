// Tests that the command line loses nothing and compares like with like: train refuses to overwrite a model
// without --force, a failed run leaves no folder, a missing or code-less workspace fails early and clearly,
// evaluating a shipped model leaves its card alone, several models are evaluated on the same files (said in
// --json), train's validation loss is eval's, and a time-budgeted run's progress ends at 100%.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readModelCard } from '../../server/src/modelFolder/modelCard';
import { runCli } from './run';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-cli-'));
const workspace = path.join(root, 'workspace');
const dataDir = path.join(root, 'data');
const env = { MODELWRIGHT_DATA_DIR: dataDir };
const small = ['--preset', 'tiny', '--batch-size', '4', '--context', '32', '--threads', '1', '--eval-every', '5'];
const shipped = path.resolve(__dirname, '../../models/default');
const trained = path.join(root, 'trained');
let trainOutput = '';

function writeWorkspace(): void {
  const source = path.resolve(__dirname, '../../server/src');
  for (const file of [
    'engine/graph.ts',
    'engine/model.ts',
    'train/dataset.ts',
    'eval/editSimilarity.ts',
    'util/lru.ts',
  ]) {
    if (!fs.existsSync(path.join(source, file))) continue;
    fs.mkdirSync(path.dirname(path.join(workspace, file)), { recursive: true });
    fs.copyFileSync(path.join(source, file), path.join(workspace, file));
  }
}

const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

writeWorkspace();

test('train writes a model; training into it again refuses without --force and leaves it intact', () => {
  const first = runCli(['train', '--workspace', workspace, '--out', trained, '--steps', '10', ...small], env);
  assert.equal(first.status, 0, first.stderr);
  trainOutput = first.stderr;
  assert.ok(!fs.existsSync(path.join(trained, '.incomplete')), 'a finished run is not marked incomplete');
  const before = sha(path.join(trained, 'onnx', 'model.onnx'));
  const again = runCli(['train', '--workspace', workspace, '--out', trained, '--steps', '2', ...small], env);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /already holds a trained model: give --resume .* --force/);
  assert.equal(sha(path.join(trained, 'onnx', 'model.onnx')), before);
  assert.equal(readModelCard(trained)?.training?.steps, 10);
});

test('--force replaces an existing model folder', () => {
  const out = path.join(root, 'replaced');
  assert.equal(runCli(['train', '--workspace', workspace, '--out', out, '--steps', '3', ...small], env).status, 0);
  fs.writeFileSync(path.join(out, 'stale.txt'), 'from before');
  const forced = runCli(['train', '--workspace', workspace, '--out', out, '--steps', '2', '--force', ...small], env);
  assert.equal(forced.status, 0, forced.stderr);
  assert.equal(readModelCard(out)?.training?.steps, 2);
  assert.ok(!fs.existsSync(path.join(out, 'stale.txt')));
});

test('a workspace without code fails before a tokenizer is trained and leaves no folder', () => {
  const prose = path.join(root, 'prose');
  fs.mkdirSync(prose);
  fs.writeFileSync(path.join(prose, 'README.md'), '# Notes\n\nNothing to compile here.\n');
  fs.writeFileSync(path.join(prose, 'data.json'), '{"a": 1}\n');
  const out = path.join(root, 'from-prose');
  const result = runCli(['train', '--workspace', prose, '--out', out, '--steps', '3', ...small], env);
  assert.equal(result.status, 1);
  assert.match(result.stderr, /no code to train on/);
  assert.doesNotMatch(result.stderr, /tokenizer/);
  assert.ok(!fs.existsSync(out), 'the failed run left its folder behind');
});

test('a missing workspace is one clear line, not ENOENT', () => {
  const result = runCli([
    'train',
    '--workspace',
    path.join(root, 'nope'),
    '--out',
    path.join(root, 'x'),
    '--steps',
    '2',
  ]);
  assert.equal(result.status, 1);
  assert.match(result.stderr, /workspace .*nope does not exist/);
  assert.doesNotMatch(result.stderr, /ENOENT|scandir/);
  assert.ok(!fs.existsSync(path.join(root, 'x')));
  const evaluation = runCli(['eval', trained, '--workspace', path.join(root, 'nope')], env);
  assert.equal(evaluation.status, 1);
  assert.match(evaluation.stderr, /workspace .*nope does not exist/);
});

test('models evaluated together use the same files, say which, and report bits per byte', () => {
  const result = runCli(
    [
      'eval',
      trained,
      shipped,
      '--workspace',
      workspace,
      '--samples',
      '3',
      '--loss-bytes',
      '4000',
      '--json',
      '--no-record',
    ],
    env,
  );
  assert.equal(result.status, 0, result.stderr);
  const [ours, theirs] = result.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  const heldOut = readModelCard(trained)!.data!.files.filter((f) => f.split === 'validation').length;
  assert.equal(ours.heldOutFiles, heldOut);
  assert.equal(theirs.heldOutFiles, heldOut, 'the shipped model is scored on the same held-out files');
  assert.equal(ours.filesDigest, theirs.filesDigest);
  assert.match(ours.filesDescription, /held out from training/);
  for (const figures of [ours, theirs]) assert.ok(figures.bitsPerByte > 0 && figures.bitsPerByte < 20);
  const table = runCli(['eval', trained, shipped, '--workspace', workspace, '--samples', '2', '--no-record'], env);
  assert.match(table.stdout, /bits\/byte/);
  assert.match(table.stdout, new RegExp(`on ${heldOut} files \\(digest ${ours.filesDigest}\\)`));
});

test('--context scores editor-style completions with and without workspace context beside the n-gram baseline', () => {
  const heldOut = readModelCard(trained)!.data!.files.filter((f) => f.split === 'validation').length;
  const figures = (context: string) => {
    const args = ['eval', trained, '--workspace', workspace, '--samples', '4', '--context', context];
    const result = runCli([...args, '--loss-bytes', '2000', '--json', '--no-record'], env);
    assert.equal(result.status, 0, result.stderr);
    return JSON.parse(result.stdout).context;
  };
  for (const mode of ['none', 'workspace']) {
    const context = figures(mode);
    assert.equal(context.context, mode);
    assert.equal(context.heldOutFiles, heldOut, 'the held-out files, kept out of the index');
    assert.ok(context.trainingFiles > 0);
    for (const scores of [context.model, context.ngram]) {
      assert.ok(scores.exactMatch >= 0 && scores.exactMatch <= 1);
      assert.ok(scores.editSimilarity >= 0 && scores.editSimilarity <= 1);
    }
    if (mode === 'none') assert.equal(context.meanContextTokens, 0);
  }
  const table = runCli(['eval', trained, '--workspace', workspace, '--samples', '2', '--context', 'workspace'], env);
  assert.equal(table.status, 0, table.stderr);
  assert.match(table.stdout, /8-gram EM .* EM ratio/);
  const wrong = runCli(['eval', trained, '--workspace', workspace, '--context', 'everything'], env);
  assert.equal(wrong.status, 2);
  assert.match(wrong.stderr, /expected 'none' or 'workspace'/);
});

test("the validation loss train prints is eval's for the same files", () => {
  const printed = Number(/validation loss (\d+\.\d+) \(/.exec(trainOutput)?.[1]);
  const result = runCli(['eval', trained, '--workspace', workspace, '--samples', '1', '--json', '--no-record'], env);
  const evaluated = JSON.parse(result.stdout).valLoss;
  assert.equal(evaluated.toFixed(4), printed.toFixed(4));
  assert.ok(Math.abs(readModelCard(trained)!.curve.at(-1)!.valLoss! - evaluated) < 1e-6);
});

test("evaluating a shipped model records the result under the user's data folder, not in its card", () => {
  const card = path.join(shipped, 'modelwright.json');
  const before = sha(card);
  const result = runCli(['eval', shipped, '--workspace', workspace, '--samples', '2', '--loss-bytes', '2000'], env);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(sha(card), before, "the shipped model's card changed");
  const [log] = fs.readdirSync(path.join(dataDir, 'evaluations'));
  const recorded = JSON.parse(fs.readFileSync(path.join(dataDir, 'evaluations', log), 'utf8'));
  assert.equal(recorded.model, shipped);
  assert.equal(recorded.evaluations.length, 1);
  assert.equal(recorded.evaluations[0].workspace, workspace);
});

test('a time-budgeted run shows a settled total and ends its progress at 100%', () => {
  const out = path.join(root, 'timed');
  const result = runCli(['train', '--workspace', workspace, '--out', out, '--minutes', '0.05', ...small], env);
  assert.equal(result.status, 0, result.stderr);
  const lines = result.stderr.split('\n').filter((line) => /^\d+% step/.test(line));
  assert.ok(lines.length > 0);
  assert.match(lines.at(-1)!, /^100% step \d+\/\d+ /);
  assert.ok(!lines.some((line) => /step \d+\/0\b/.test(line)), 'a total of 0 steps was shown');
  const card = readModelCard(out)!;
  assert.ok(Number(card.hyperparameters.totalSteps) >= card.training!.steps);
  assert.equal(
    card.hyperparameters.warmupSteps,
    Math.min(100, Math.floor(Number(card.hyperparameters.totalSteps) / 10)),
  );
});

test.after(() => fs.rmSync(root, { recursive: true, force: true }));
