// Tests for `modelwright deploy --export triton`: the repository layout, a config.pbtxt that parses and whose
// inputs and outputs (names, data types, dims with -1 for dynamic ones) agree with the ONNX graph as onnxruntime
// loads it, the unchanged model.onnx, and the text-format writer/parser on their own.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../../server/src/cli';
import { PbEnum, type PbMessage, parsePbtxt, writePbtxt } from '../../server/src/deploy/pbtxt';
import { exportTriton } from '../../server/src/deploy/tritonExport';
import { readModelCard, writeModelCard } from '../../server/src/modelFolder/modelCard';
import { createSession } from '../../server/src/runtime/onnxSession';
import { type ModelFolder, makeModelFolder } from '../helpers/makeModelFolder';

const ortToTriton: Record<string, string> = {
  float32: 'TYPE_FP32',
  int64: 'TYPE_INT64',
  float16: 'TYPE_FP16',
  bool: 'TYPE_BOOL',
};

/** The input or output blocks of a parsed config as plain {name, data_type, dims}. */
function blocks(config: PbMessage, field: 'input' | 'output'): { name: string; dataType: string; dims: number[] }[] {
  const raw = config[field];
  const list = Array.isArray(raw) ? raw : [raw];
  return list.map((block) => {
    const b = block as PbMessage;
    const dims = Array.isArray(b.dims) ? b.dims : [b.dims];
    return { name: b.name as string, dataType: String(b.data_type), dims: dims as number[] };
  });
}

describe('Triton export', () => {
  let folder: ModelFolder;
  let out: string;

  before(async () => {
    folder = await makeModelFolder({ seed: 51 });
    out = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-triton-'));
  });
  after(() => {
    folder?.remove();
    fs.rmSync(out, { recursive: true, force: true });
  });

  test('writes <name>/config.pbtxt and <name>/1/model.onnx, and the config agrees with the ONNX graph', async () => {
    const result = exportTriton(folder.dir, out, { name: 'coder' });
    assert.equal(result.configFile, path.join(out, 'coder', 'config.pbtxt'));
    assert.equal(result.modelFile, path.join(out, 'coder', '1', 'model.onnx'));
    assert.deepEqual(fs.readFileSync(result.modelFile), fs.readFileSync(path.join(folder.dir, 'onnx', 'model.onnx')));
    assert.deepEqual(fs.readdirSync(path.join(out, 'coder')).sort(), ['1', 'config.pbtxt']);

    const config = parsePbtxt(fs.readFileSync(result.configFile, 'utf8'));
    assert.equal(config.name, 'coder');
    assert.equal(config.platform, 'onnxruntime_onnx');
    assert.equal(config.max_batch_size, 0);

    // The reference: what onnxruntime reads from the exported file.
    const session = await createSession(result.modelFile, { intraOpThreads: 1 });
    try {
      for (const [field, metadata] of [
        ['input', session.inputMetadata],
        ['output', session.outputMetadata],
      ] as const) {
        const expected = metadata.map((m) => {
          assert.ok(m.isTensor);
          return {
            name: m.name,
            dataType: ortToTriton[m.type],
            dims: m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)),
          };
        });
        assert.deepEqual(blocks(config, field), expected, field);
      }
    } finally {
      await session.release();
    }
    const { heads, embedding, layers, vocabSize } = folder.config;
    const inputs = blocks(config, 'input');
    assert.deepEqual(inputs[0], { name: 'input_ids', dataType: 'TYPE_INT64', dims: [-1, -1] });
    assert.deepEqual(
      inputs.find((i) => i.name === `past_key_values.${layers - 1}.value`),
      {
        name: `past_key_values.${layers - 1}.value`,
        dataType: 'TYPE_FP32',
        dims: [-1, heads, -1, embedding / heads],
      },
    );
    assert.deepEqual(blocks(config, 'output')[0], { name: 'logits', dataType: 'TYPE_FP32', dims: [-1, -1, vocabSize] });
  });

  test('the deploy command writes the repository and records it in the model card', async () => {
    writeModelCard(folder.dir, {
      name: 'm',
      kind: 'causal-lm',
      createdAt: new Date().toISOString(),
      parameters: 1,
      hyperparameters: {},
      curve: [],
      evaluations: [],
    });
    const target = path.join(out, 'repo');
    const writes: string[] = [];
    const write = process.stdout.write;
    process.stdout.write = ((chunk: string) => (writes.push(chunk), true)) as typeof process.stdout.write;
    let code: number;
    try {
      code = await main(['deploy', folder.dir, '--export', 'triton', target]);
    } finally {
      process.stdout.write = write;
    }
    assert.equal(code, 0);
    const name = path.basename(folder.dir);
    assert.ok(fs.existsSync(path.join(target, name, 'config.pbtxt')));
    assert.ok(fs.existsSync(path.join(target, name, '1', 'model.onnx')));
    assert.match(writes.join(''), /wrote Triton model/);
    assert.ok(readModelCard(folder.dir)?.deployedAt?.[`triton:${path.resolve(target)}`]);
  });

  test('refuses folders without a model and names that would leave the repository', () => {
    assert.throws(() => exportTriton(out, path.join(out, 'x')), /missing/);
    assert.throws(() => exportTriton(folder.dir, out, { name: '../escape' }), /invalid model name/);
  });

  test('the text format round-trips, with comments, repeated fields and enums', () => {
    const message: PbMessage = {
      name: 'a "quoted" name',
      max_batch_size: 0,
      input: [
        { name: 'x', data_type: new PbEnum('TYPE_INT64'), dims: [-1, 3] },
        { name: 'y', data_type: new PbEnum('TYPE_FP32'), dims: [2] },
      ],
      optimization: { enabled: true },
    };
    const parsed = parsePbtxt(`# a comment\n${writePbtxt(message)}`);
    assert.equal(parsed.name, message.name);
    assert.deepEqual(blocks(parsed, 'input'), [
      { name: 'x', dataType: 'TYPE_INT64', dims: [-1, 3] },
      { name: 'y', dataType: 'TYPE_FP32', dims: [2] },
    ]);
    assert.deepEqual(parsed.optimization, { enabled: true });
    const repeated = parsePbtxt('output { name: "a" dims: 1 dims: 2 }\noutput { name: "b" dims: [ 4 ] }');
    assert.deepEqual(blocks(repeated, 'output'), [
      { name: 'a', dataType: 'undefined', dims: [1, 2] },
      { name: 'b', dataType: 'undefined', dims: [4] },
    ]);
    assert.throws(() => parsePbtxt('name: "unterminated'), /unexpected/);
  });
});
