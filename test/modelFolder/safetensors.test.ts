// safetensors read a tensor at a time: F32, BF16 and F16 files decode to the same float32 values as the in-memory
// decoder, metadata survives, and truncated or foreign files fail naming the file instead of returning garbage.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  type Tensors,
  decodeSafetensors,
  encodeSafetensors,
  readSafetensorsFile,
} from '../../server/src/modelFolder/safetensors';

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-safetensors-'));
after(() => fs.rmSync(workDir, { recursive: true, force: true }));

function sample(): Tensors {
  const tensors: Tensors = new Map();
  tensors.set('model.embed_tokens.weight', { shape: [3, 5], data: Float32Array.from({ length: 15 }, (_, i) => i / 7) });
  tensors.set('model.norm.weight', { shape: [5], data: Float32Array.from([1, -2, 0.5, 1e-3, 3e4]) });
  tensors.set('empty', { shape: [0], data: new Float32Array(0) });
  return tensors;
}

/** A safetensors file of one tensor in a 16-bit dtype, written byte by byte as PyTorch lays it out. */
function halfFile(dtype: 'BF16' | 'F16', halves: number[]): Buffer {
  let json = JSON.stringify({ x: { dtype, shape: [halves.length], data_offsets: [0, 2 * halves.length] } });
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const out = Buffer.alloc(8 + json.length + 2 * halves.length);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  out.write(json, 8);
  halves.forEach((h, i) => out.writeUInt16LE(h, 8 + json.length + 2 * i));
  return out;
}

test('reading a file tensor by tensor gives what the in-memory decoder gives, with metadata', () => {
  const file = path.join(workDir, 'model.safetensors');
  fs.writeFileSync(file, encodeSafetensors(sample(), { format: 'pt' }));
  const fromFile = readSafetensorsFile(file);
  assert.deepEqual(fromFile, decodeSafetensors(fs.readFileSync(file)));
  assert.deepEqual(fromFile.metadata, { format: 'pt' });
  assert.deepEqual([...fromFile.tensors.keys()], [...sample().keys()]);
  assert.deepEqual(fromFile.tensors.get('model.norm.weight')!.data, sample().get('model.norm.weight')!.data);
});

test('BF16 and F16 tensors decode to float32', () => {
  // 1.0, -2.0, 0.5 in bfloat16 (the top halves of float32) and in IEEE half precision.
  const bf16 = path.join(workDir, 'bf16.safetensors');
  fs.writeFileSync(bf16, halfFile('BF16', [0x3f80, 0xc000, 0x3f00]));
  assert.deepEqual([...readSafetensorsFile(bf16).tensors.get('x')!.data], [1, -2, 0.5]);
  const f16 = path.join(workDir, 'f16.safetensors');
  fs.writeFileSync(f16, halfFile('F16', [0x3c00, 0xc000, 0x3800]));
  assert.deepEqual([...readSafetensorsFile(f16).tensors.get('x')!.data], [1, -2, 0.5]);
});

test('a truncated or foreign file fails with the file name', () => {
  const whole = encodeSafetensors(sample());
  const truncated = path.join(workDir, 'truncated.safetensors');
  fs.writeFileSync(truncated, whole.subarray(0, whole.length - 8));
  assert.throws(() => readSafetensorsFile(truncated), /truncated\.safetensors: tensor .* lies outside the file/);
  const foreign = path.join(workDir, 'foreign.safetensors');
  fs.writeFileSync(foreign, Buffer.from('<html>404 not found</html>'));
  assert.throws(() => readSafetensorsFile(foreign), /foreign\.safetensors: not a safetensors file/);
  const tiny = path.join(workDir, 'tiny.safetensors');
  fs.writeFileSync(tiny, Buffer.from([1, 2]));
  assert.throws(() => readSafetensorsFile(tiny), /tiny\.safetensors: not a safetensors file/);
});
