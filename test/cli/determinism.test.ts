// Tests the reproducibility the help and README promise: two runs with the same options and --threads 1 write
// bit-identical models; with several threads onnxruntime may sum in another order, so two runs agree within
// float rounding (measured here: they can differ in the last bits), not necessarily bit for bit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodeSafetensors } from '../../server/src/modelFolder/safetensors';
import { runCli } from './run';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-determinism-'));
const workspace = path.join(root, 'workspace');
const source = path.resolve(__dirname, '../../server/src');
for (const file of ['engine/graph.ts', 'engine/model.ts', 'train/dataset.ts']) {
  fs.mkdirSync(path.dirname(path.join(workspace, file)), { recursive: true });
  fs.copyFileSync(path.join(source, file), path.join(workspace, file));
}
const options = ['--preset', 'tiny', '--steps', '4', '--batch-size', '16', '--context', '64', '--seed', '5'];

function train(name: string, threads: string[]): string {
  const out = path.join(root, name);
  const result = runCli(['train', '--workspace', workspace, '--out', out, ...options, ...threads]);
  assert.equal(result.status, 0, result.stderr);
  return out;
}

const checkpoint = (dir: string) =>
  decodeSafetensors(fs.readFileSync(path.join(dir, 'checkpoint', 'state.safetensors'))).tensors;

test('with --threads 1 two runs write bit-identical models', () => {
  const a = train('one-a', ['--threads', '1']);
  const b = train('one-b', ['--threads', '1']);
  assert.ok(
    fs.readFileSync(path.join(a, 'onnx', 'model.onnx')).equals(fs.readFileSync(path.join(b, 'onnx', 'model.onnx'))),
  );
});

test('with several threads two runs agree within float rounding', () => {
  const a = checkpoint(train('many-a', ['--threads', '2']));
  const b = checkpoint(train('many-b', ['--threads', '2']));
  let worst = 0;
  for (const [name, tensor] of a) {
    const other = b.get(name)!.data;
    for (let i = 0; i < tensor.data.length; i++) {
      const scale = Math.max(1e-3, Math.abs(tensor.data[i]));
      worst = Math.max(worst, Math.abs(tensor.data[i] - other[i]) / scale);
    }
  }
  console.log(`largest relative difference between two 2-thread runs: ${worst.toExponential(2)}`);
  assert.ok(worst < 1e-3, `the runs differ by ${worst} (relative)`);
});

test.after(() => fs.rmSync(root, { recursive: true, force: true }));
