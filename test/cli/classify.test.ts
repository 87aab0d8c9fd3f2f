// `modelwright train --task classify` and `modelwright eval --data` through the built command: a classifier trained
// on generated labelled rows scores well above the majority class on its validation rows, --json gives the
// figures, and options of the other task are refused with exit code 2.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from './run';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-cli-classify-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** Commit messages whose kind shows in their words, with numbers so no two rows are the same. */
function writeData(file: string): void {
  const phrases: Record<string, string[]> = {
    fix: ['fix crash in', 'repair null check of', 'fix off-by-one in'],
    feat: ['add option to', 'implement export of', 'support streaming in'],
    docs: ['document the', 'fix typo in readme of', 'explain usage of'],
  };
  const subjects = ['parser', 'server', 'cli', 'tokenizer', 'cache'];
  const rows = ['message,kind'];
  let i = 0;
  for (let round = 0; round < 20; round++)
    for (const [kind, list] of Object.entries(phrases))
      for (const phrase of list) rows.push(`"${phrase} ${subjects[i % subjects.length]} #${i++}",${kind}`);
  fs.writeFileSync(file, `${rows.join('\n')}\n`);
}

test('train --task classify writes a classifier that eval --data scores above the majority class', () => {
  const data = path.join(root, 'commits.csv');
  writeData(data);
  const out = path.join(root, 'classifier');
  const columns = ['--data', data, '--text', 'message', '--label', 'kind'];
  const trained = runCli(['train', '--task', 'classify', ...columns, '--out', out, '--epochs', '8', '--threads', '1']);
  assert.equal(trained.status, 0, trained.stderr);
  assert.match(trained.stdout, /classes: /);
  assert.ok(fs.existsSync(path.join(out, 'onnx', 'model.onnx')));
  const evaluated = runCli(['eval', out, ...columns, '--validation', '--json']);
  assert.equal(evaluated.status, 0, evaluated.stderr);
  const metrics = JSON.parse(evaluated.stdout);
  assert.ok(metrics.macroF1 > 0.8, `macro-F1 ${metrics.macroF1}`);
  assert.ok(metrics.accuracy > 0.34 + 0.3, 'well above the majority class (a third of the rows)');
});

test('options of the other task are usage errors', () => {
  const data = path.join(root, 'commits.csv');
  const mixed = runCli([
    'train',
    '--task',
    'classify',
    '--workspace',
    root,
    '--data',
    data,
    '--out',
    path.join(root, 'x'),
  ]);
  assert.equal(mixed.status, 2);
  assert.match(mixed.stderr, /--workspace, .* do not apply/);
  const noWorkspace = runCli(['train', '--out', path.join(root, 'y'), '--steps', '1']);
  assert.equal(noWorkspace.status, 2);
  assert.match(noWorkspace.stderr, /--workspace/);
  const badTask = runCli(['train', '--task', 'translate', '--out', path.join(root, 'z')]);
  assert.equal(badTask.status, 2);
  assert.match(badTask.stderr, /language-model or classify/);
  const evalBoth = runCli(['eval', path.join(root, 'classifier'), '--data', data, '--workspace', root]);
  assert.equal(evalBoth.status, 2);
});
