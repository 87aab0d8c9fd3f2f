// ONNX external data: a tiny Qwen2 model converted with a forced small threshold keeps its weights in
// onnx/model.onnx_data (4 KiB-aligned, location/offset/length in the graph) and must give the single-file graph's
// logits in onnxruntime, read back with readInitializers, and generate the same greedy tokens with the project's
// runtime and with transformers.js. Also: the writer on its own (alignment, stale data files, no temp files left).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { convertFolder } from '../../server/src/convert/convertFolder';
import { EXTERNAL_DATA_ALIGNMENT, type ModelDescription, readInitializers } from '../../server/src/engine/onnx';
import { writeModelFile } from '../../server/src/engine/onnxFile';
import { generate } from '../../server/src/runtime/generate';
import { loadLanguageModel } from '../../server/src/runtime/languageModel';
import { type FamilyModel, makeFamilyModel } from '../helpers/familyModels';
import { fullLogits, safetensorsOnlyCopy, transformersGreedy } from './convertHarness';

/** The external_data entries of each initializer of a graph file, by name (absent: stored inline). */
function externalEntries(file: string): Map<string, Record<string, string> | undefined> {
  const model = onnx.ModelProto.decode(fs.readFileSync(file));
  const out = new Map<string, Record<string, string> | undefined>();
  for (const t of model.graph?.initializer ?? []) {
    const external = t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL;
    if (external) assert.ok(!t.rawData?.length, `${t.name} has both inline and external data`);
    out.set(
      t.name ?? '',
      external ? Object.fromEntries((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? ''])) : undefined,
    );
  }
  return out;
}

describe('a qwen2 model converted with external data', () => {
  let folder: FamilyModel;
  let single: string;
  let external: string;
  const THRESHOLD = 1024;

  before(async () => {
    folder = await makeFamilyModel({ family: 'qwen2', seed: 5 });
    single = safetensorsOnlyCopy(folder, 'single');
    external = safetensorsOnlyCopy(folder, 'external');
    const one = convertFolder(single);
    assert.equal(one.externalDataFile, undefined, 'a small model is one file by default');
    const two = convertFolder(external, { externalDataThreshold: THRESHOLD });
    assert.equal(two.externalDataFile, path.join('onnx', 'model.onnx_data'));
    assert.equal(
      two.bytes,
      ['model.onnx', 'model.onnx_data'].reduce((sum, f) => sum + fs.statSync(path.join(external, 'onnx', f)).size, 0),
      'the reported bytes are both files',
    );
  });
  after(() => {
    for (const dir of [single, external]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
    folder?.remove();
  });

  test('large initializers are in model.onnx_data at 4 KiB-aligned offsets, small ones inline', () => {
    const graph = path.join(external, 'onnx', 'model.onnx');
    const dataFile = path.join(external, 'onnx', 'model.onnx_data');
    const weights = readInitializers(path.join(single, 'onnx', 'model.onnx'));
    const entries = externalEntries(graph);
    let end = 0;
    let count = 0;
    for (const [name, entry] of entries) {
      const floats = weights.get(name);
      if (!entry) {
        if (floats) assert.ok(floats.data.byteLength < THRESHOLD, `${name} is large but inline`);
        continue;
      }
      count++;
      assert.equal(entry.location, 'model.onnx_data');
      const offset = Number(entry.offset);
      const length = Number(entry.length);
      assert.equal(offset % EXTERNAL_DATA_ALIGNMENT, 0, `${name} at ${offset}`);
      assert.ok(offset >= end, `${name} overlaps the tensor before it`);
      assert.ok(length >= THRESHOLD);
      if (floats) assert.equal(length, floats.data.byteLength, name);
      end = offset + length;
    }
    assert.ok(count >= 10, `only ${count} tensors are external`);
    assert.equal(fs.statSync(dataFile).size, end, 'the data file ends with its last tensor');
    assert.ok(fs.statSync(graph).size < 64 * 1024, 'the graph file holds no weights');
    assert.deepEqual(
      fs.readdirSync(path.join(external, 'onnx')).sort(),
      ['model.onnx', 'model.onnx_data'],
      'no temp files are left',
    );
  });

  test('readInitializers reads the external weights back, equal to the single-file ones', () => {
    const file = path.join(external, 'onnx', 'model.onnx');
    const fromExternal = readInitializers(file);
    const fromSingle = readInitializers(fs.readFileSync(path.join(single, 'onnx', 'model.onnx')));
    assert.deepEqual([...fromExternal.keys()].sort(), [...fromSingle.keys()].sort());
    for (const [name, t] of fromSingle) {
      assert.deepEqual(fromExternal.get(name)?.dims, t.dims, name);
      assert.deepEqual(fromExternal.get(name)?.data, t.data, name);
    }
    assert.ok(fromSingle.has('model.embed_tokens.weight'));
    // From bytes, the folder of the data file must be given.
    assert.throws(() => readInitializers(fs.readFileSync(file)), /external data \(model\.onnx_data\)/);
    assert.equal(readInitializers(fs.readFileSync(file), path.dirname(file)).size, fromSingle.size);
  });

  test('onnxruntime loads the folder and gives the single-file logits', async () => {
    const { config, reference } = folder;
    const ours = await fullLogits(path.join(external, 'onnx', 'model.onnx'), config, reference.token_ids);
    const theirs = await fullLogits(path.join(single, 'onnx', 'model.onnx'), config, reference.token_ids);
    ours.forEach((row, p) => assert.deepEqual(row, theirs[p], `position ${p}`));
    reference.full.positions.forEach((position, i) => {
      const difference = Math.max(...ours[position].map((v, j) => Math.abs(v - reference.full.logits[i][j])));
      assert.ok(difference <= 1e-4, `position ${position}: PyTorch's logits differ by ${difference}`);
    });
  });

  test("the project's runtime and transformers.js generate PyTorch's greedy tokens from it", async () => {
    const { greedy, token_ids: ids } = folder.reference;
    const model = await loadLanguageModel(external, { intraOpThreads: 1 });
    try {
      assert.equal(model.onnxFile, path.join('onnx', 'model.onnx'));
      const result = await generate(model, ids, { maxTokens: greedy.max_new_tokens, temperature: 0 });
      assert.deepEqual(result.generatedIds, greedy.tokens);
    } finally {
      await model.dispose();
    }
    assert.deepEqual(await transformersGreedy(external, 'fp32', ids, greedy.max_new_tokens), greedy.tokens);
  });
});

describe('writeModelFile', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-external-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** y = x · w1 + w2 with 1×n row vectors (sizes chosen so the offsets need padding). */
  const model = (n: number): ModelDescription => ({
    name: 'sum',
    nodes: [
      { op: 'Mul', inputs: ['x', 'w1'], outputs: ['p'], attributes: {} },
      { op: 'Add', inputs: ['p', 'w2'], outputs: ['y'], attributes: {} },
    ],
    inputs: [{ name: 'x', type: 'float32', shape: [1, n] }],
    outputs: [{ name: 'y', type: 'float32', shape: [1, n] }],
    initializers: [
      { name: 'w1', tensor: { type: 'float32', dims: [1, n], data: Float32Array.from({ length: n }, (_, i) => i) } },
      { name: 'w2', tensor: { type: 'float32', dims: [1, n], data: new Float32Array(n).fill(0.5) } },
      { name: 'tiny', tensor: { type: 'float32', dims: [1], data: new Float32Array([3]) } },
    ],
    opset: 20,
  });

  test('pads between tensors, keeps small ones inline and onnxruntime reads the result', async () => {
    const file = path.join(dir, 'a', 'model.onnx');
    const written = writeModelFile(file, model(1500), { externalDataThreshold: 16 });
    assert.equal(written.externalDataFile, `${file}_data`);
    assert.equal(written.externalDataBytes, 8192 + 6000);
    const entries = externalEntries(file);
    assert.deepEqual(entries.get('w1'), { location: 'model.onnx_data', offset: '0', length: '6000' });
    assert.deepEqual(entries.get('w2'), { location: 'model.onnx_data', offset: '8192', length: '6000' });
    assert.equal(entries.get('tiny'), undefined);
    const session = await ort.InferenceSession.create(file);
    try {
      const x = new ort.Tensor('float32', new Float32Array(1500).fill(2), [1, 1500]);
      const y = (await session.run({ x })).y.data as Float32Array;
      assert.equal(y[0], 0.5);
      assert.equal(y[1499], 2 * 1499 + 0.5);
    } finally {
      await session.release();
    }
    assert.deepEqual(readInitializers(file).get('w1')?.data, model(1500).initializers[0].tensor.data);
  });

  test('a rewrite without external data removes the stale data file; no threshold means one file', () => {
    const file = path.join(dir, 'b', 'model.onnx');
    writeModelFile(file, model(2000), { externalDataThreshold: 1024 });
    assert.ok(fs.existsSync(`${file}_data`));
    const written = writeModelFile(file, model(2000));
    assert.equal(written.externalDataFile, undefined);
    assert.equal(written.externalDataBytes, 0);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['model.onnx']);
    assert.equal(readInitializers(file).get('w2')?.data.length, 2000);
  });
});
