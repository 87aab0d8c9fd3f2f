// Tests for the language server's threads per model: the setting wins; otherwise one thread for small models and
// up to four, as many as there are cores, for large ones, judged by the bytes of the ONNX file that loads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LARGE_MODEL_BYTES, inferenceThreads, weightBytes } from '../../server/src/registry/inferenceThreads';

test('the setting wins; otherwise small models get one thread and large ones up to four', () => {
  assert.equal(inferenceThreads(3, 10, 8), 3);
  assert.equal(inferenceThreads(0, LARGE_MODEL_BYTES - 1, 8), 1);
  assert.equal(inferenceThreads(0, LARGE_MODEL_BYTES, 2), 2);
  assert.equal(inferenceThreads(0, LARGE_MODEL_BYTES, 16), 4);
  assert.equal(inferenceThreads(0, LARGE_MODEL_BYTES, 1), 1);
});

test('the weights are the ONNX file that loads first, with its external data', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-threads-'));
  try {
    assert.equal(weightBytes(dir), 0);
    fs.mkdirSync(path.join(dir, 'onnx'));
    fs.writeFileSync(path.join(dir, 'onnx', 'model_quantized.onnx'), Buffer.alloc(30));
    assert.equal(weightBytes(dir), 30);
    fs.writeFileSync(path.join(dir, 'onnx', 'model.onnx'), Buffer.alloc(10));
    fs.writeFileSync(path.join(dir, 'onnx', 'model.onnx_data'), Buffer.alloc(100));
    assert.equal(weightBytes(dir), 110, 'model.onnx loads before model_quantized.onnx');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
