// Tests for the graph the runtime decodes with (decodingGraph.ts): without the present outputs and with
// num_logits_to_keep it gives the file's own logits and new keys and values, for graphs with weights inline and
// in external data; graphs without new-position outputs are left alone; the batched decoder still declares and
// returns the present outputs to raw-tensor callers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tensor } from 'onnxruntime-node';
import { buildInference } from '../../server/src/engine/inferenceGraph';
import { initialParameters } from '../../server/src/engine/model';
import { writeModelFile } from '../../server/src/engine/onnxFile';
import { readArchitecture } from '../../server/src/modelFolder/config';
import { BatchedDecoder } from '../../server/src/runtime/batchedDecoder';
import { decodingGraph } from '../../server/src/runtime/decodingGraph';
import { type Feeds, createSession } from '../../server/src/runtime/onnxSession';
import { type ModelFolder, makeModelFolder } from '../helpers/makeModelFolder';
import { maxDifference } from '../helpers/compare';

describe('decoding graph', () => {
  let folder: ModelFolder;
  const onnxPath = () => path.join(folder.dir, 'onnx', 'model.onnx');

  before(async () => {
    folder = await makeModelFolder({ seed: 4, weightScale: 6 });
  });
  after(() => folder?.remove());

  /** Feeds for 5 new tokens after 3 cached positions of random keys and values, the middle one masked. */
  function feeds(layers: number, heads: number, headDim: number): Feeds {
    const past = 3;
    const out: Feeds = {
      input_ids: new Tensor('int64', BigInt64Array.from([5n, 9n, 2n, 7n, 11n]), [1, 5]),
      attention_mask: new Tensor('int64', BigInt64Array.from([1n, 0n, 1n, 1n, 1n, 1n, 1n, 1n]), [1, 8]),
      position_ids: new Tensor('int64', BigInt64Array.from([2n, 3n, 4n, 5n, 6n]), [1, 5]),
    };
    let seed = 1;
    for (let i = 0; i < layers; i++)
      for (const kind of ['key', 'value']) {
        const data = Float32Array.from(
          { length: heads * past * headDim },
          () => (seed = (seed * 48271) % 2147483647) / 2147483647 - 0.5,
        );
        out[`past_key_values.${i}.${kind}`] = new Tensor('float32', data, [1, heads, past, headDim]);
      }
    return out;
  }

  async function compare(file: string, externalDataFolder?: string): Promise<void> {
    const decoding = decodingGraph(file);
    assert.ok(decoding, 'the engine graph has new-position outputs');
    assert.equal(decoding.externalData, externalDataFolder !== undefined);
    const { layers, heads, embedding } = folder.config;
    assert.deepEqual(
      decoding.removed.map((o) => o.name),
      Array.from({ length: layers }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat(),
    );
    const full = await createSession(file, { intraOpThreads: 1 });
    const trimmed = await createSession(decoding.bytes, { intraOpThreads: 1, externalDataFolder });
    try {
      assert.ok(!trimmed.outputNames.some((name) => name.startsWith('present.')));
      assert.ok(trimmed.inputNames.includes('num_logits_to_keep'));
      const given = feeds(layers, heads, embedding / heads);
      const fresh = full.outputNames.filter((name) => name.startsWith('new_key_values.'));
      const expected = await full.run(given);
      for (const [keep, positions] of [
        [0n, 5],
        [1n, 1],
        [2n, 2],
      ] as const) {
        const got = await trimmed.run({
          ...given,
          num_logits_to_keep: new Tensor('int64', BigInt64Array.of(keep), []),
        });
        const vocab = folder.config.vocabSize;
        assert.deepEqual(got.logits.dims, [1, positions, vocab]);
        const want = (expected.logits.data as Float32Array).slice((5 - positions) * vocab);
        assert.ok(maxDifference(got.logits.data as Float32Array, want) < 1e-4, `keep ${keep}`);
        for (const name of fresh)
          assert.ok(maxDifference(got[name].data as Float32Array, expected[name].data as Float32Array) < 1e-5, name);
      }
    } finally {
      await Promise.all([full.release(), trimmed.release()]);
    }
  }

  test('gives the file’s logits and new keys and values without the present outputs', async () => {
    await compare(onnxPath());
  });

  test('finds weights in external data next to the file', async () => {
    const dir = path.join(folder.dir, 'external');
    const weights = initialParameters(folder.config, 4);
    writeModelFile(path.join(dir, 'model.onnx'), buildInference(readArchitecture(folder.dir), weights), {
      externalDataThreshold: 1024,
    });
    assert.ok(fs.existsSync(path.join(dir, 'model.onnx_data')));
    await compare(path.join(dir, 'model.onnx'), dir);
  });

  test('leaves graphs without new-position outputs alone', async () => {
    const weights = initialParameters(folder.config, 4);
    const model = buildInference(readArchitecture(folder.dir), weights);
    model.outputs = model.outputs.filter((o) => !o.name.startsWith('new_key_values.'));
    const file = path.join(folder.dir, 'plain', 'model.onnx');
    writeModelFile(file, model);
    assert.equal(decodingGraph(file), undefined);
  });

  test('the batched decoder still declares and returns the present outputs', async () => {
    const decoder = await BatchedDecoder.load(folder.dir, { intraOpThreads: 1 });
    try {
      const { layers, heads, embedding } = folder.config;
      assert.deepEqual(
        decoder.outputs.map((o) => o.name),
        ['logits', ...Array.from({ length: layers }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat()],
      );
      assert.ok(!decoder.inputs.some((i) => i.name === 'num_logits_to_keep'));
      const given = feeds(layers, heads, embedding / heads);
      const inputs = Object.entries(given).map(([name, t]) => ({
        name,
        datatype: t.type === 'int64' ? ('INT64' as const) : ('FP32' as const),
        shape: t.dims.map(Number),
        data: t.data as Float32Array | BigInt64Array,
      }));
      const results = await decoder.runTensors(inputs);
      assert.deepEqual(results.find((r) => r.name === 'present.0.key')?.shape, [1, heads, 8, embedding / heads]);
      assert.deepEqual(results.find((r) => r.name === 'logits')?.shape, [1, 5, folder.config.vocabSize]);
    } finally {
      await decoder.dispose();
    }
  });
});
