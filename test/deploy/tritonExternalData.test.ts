// A model whose weights live in ONNX external data (graphs over 2 GB, and hub exports) exports to a Triton
// repository with its data file beside model.onnx, loads there in onnxruntime with the source's logits, and an
// external data location that points outside the model folder is refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { convertFolder } from '../../server/src/convert/convertFolder';
import { exportTriton } from '../../server/src/deploy/tritonExport';
import { type FamilyModel, makeFamilyModel } from '../helpers/familyModels';

let family: FamilyModel;
let workDir: string;
let modelDir: string;

before(async () => {
  family = await makeFamilyModel({ family: 'qwen2', seed: 9 });
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-triton-data-'));
  modelDir = path.join(workDir, 'coder');
  fs.mkdirSync(modelDir);
  for (const file of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'])
    fs.copyFileSync(path.join(family.dir, file), path.join(modelDir, file));
  const converted = convertFolder(modelDir, { externalDataThreshold: 1024 });
  assert.ok(converted.externalDataFile, 'the conversion wrote external data');
});

after(() => {
  family?.remove();
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
});

async function logitsOf(file: string): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(file);
  const past = Object.fromEntries(
    session.inputNames
      .filter((name) => name.startsWith('past_key_values'))
      .map((name) => [
        name,
        new ort.Tensor('float32', new Float32Array(0), [
          1,
          family.config.num_key_value_heads,
          0,
          family.config.hidden_size / family.config.num_attention_heads,
        ]),
      ]),
  );
  const ids = [3n, 14n, 15n, 9n];
  const results = await session.run({
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids), [1, 4]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(4).fill(1n), [1, 4]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from([0n, 1n, 2n, 3n]), [1, 4]),
    ...past,
  });
  await session.release();
  return results.logits.data as Float32Array;
}

test('the external data file is copied beside model.onnx and the exported model runs with the same logits', async () => {
  const repository = path.join(workDir, 'repository');
  const result = exportTriton(modelDir, repository, { name: 'coder' });
  assert.deepEqual(result.externalDataFiles, [path.join(repository, 'coder', '1', 'model.onnx_data')]);
  assert.deepEqual(
    fs.readFileSync(result.externalDataFiles[0]),
    fs.readFileSync(path.join(modelDir, 'onnx', 'model.onnx_data')),
  );
  assert.deepEqual(fs.readdirSync(path.join(repository, 'coder', '1')).sort(), ['model.onnx', 'model.onnx_data']);
  const expected = await logitsOf(path.join(modelDir, 'onnx', 'model.onnx'));
  assert.deepEqual(await logitsOf(result.modelFile), expected);
});

test('an external data location outside the model folder is refused, and nothing is exported', () => {
  const evil = path.join(workDir, 'evil');
  fs.mkdirSync(path.join(evil, 'onnx'), { recursive: true });
  const graphFile = path.join(modelDir, 'onnx', 'model.onnx');
  const model = onnx.ModelProto.decode(fs.readFileSync(graphFile));
  const tensor = model.graph!.initializer!.find((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL)!;
  for (const entry of tensor.externalData!) if (entry.key === 'location') entry.value = '../../secrets.bin';
  fs.writeFileSync(path.join(evil, 'onnx', 'model.onnx'), onnx.ModelProto.encode(model).finish());
  const repository = path.join(workDir, 'evil-repository');
  assert.throws(() => exportTriton(evil, repository, { name: 'evil' }), /outside the model's folder/);
  assert.equal(fs.existsSync(path.join(repository, 'evil')), false);
});
