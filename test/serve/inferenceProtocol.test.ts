// The Open Inference Protocol routes checked against the KServe/Triton REST specification field by field (Triton's
// own client cannot be installed here): server and model metadata, health and readiness, the versions routes,
// infer requests and responses with `parameters`, BYTES tensors for text, the generate extension, and error bodies.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generate } from '../../server/src/runtime/generate';
import { type LanguageModel, loadLanguageModel } from '../../server/src/runtime/languageModel';
import { type RunningServer, startServer } from '../../server/src/serve/httpServer';
import { type ModelFolder, makeModelFolder } from '../helpers/makeModelFolder';
import { request } from './harness';

const PROMPT = 'export function countOfTotal(count: number, total: number): number {\n';
const DATATYPES = [
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
  'BYTES',
];

/** $metadata_tensor: {name: $string, datatype: $string, shape: [$number, ...]} with -1 for variable dimensions. */
function assertMetadataTensor(tensor: unknown, where: string): void {
  const t = tensor as Record<string, unknown>;
  assert.deepEqual(Object.keys(t).sort(), ['datatype', 'name', 'shape'], where);
  assert.equal(typeof t.name, 'string', where);
  assert.ok(DATATYPES.includes(t.datatype as string), `${where}: datatype ${t.datatype}`);
  assert.ok(Array.isArray(t.shape) && t.shape.every((d) => Number.isInteger(d) && d >= -1), `${where}: shape`);
}

/** $response_output: {name, shape, datatype, parameters #optional, data} with as many values as the shape holds. */
function assertResponseOutput(output: unknown, where: string): void {
  const o = output as Record<string, unknown>;
  for (const key of ['name', 'shape', 'datatype', 'data']) assert.ok(key in o, `${where}: ${key}`);
  assert.ok(
    Object.keys(o).every((k) => ['name', 'shape', 'datatype', 'parameters', 'data'].includes(k)),
    where,
  );
  assert.ok(DATATYPES.includes(o.datatype as string), where);
  const count = (o.shape as number[]).reduce((a, b) => a * b, 1);
  assert.equal((o.data as unknown[]).flat(Infinity).length, count, `${where}: data length`);
}

/** An error body: exactly {"error": $string}, with a status of 400 or above. */
function assertErrorBody(response: { status: number; body: unknown }, status: number, where: string): void {
  assert.equal(response.status, status, `${where}: ${JSON.stringify(response.body)}`);
  assert.deepEqual(Object.keys(response.body as object), ['error'], where);
  assert.equal(typeof (response.body as { error: unknown }).error, 'string', where);
}

describe('Open Inference Protocol v2 against the REST specification', () => {
  let folder: ModelFolder;
  let model: LanguageModel;
  let server: RunningServer;
  let url: string;

  before(async () => {
    folder = await makeModelFolder({ seed: 51, weightScale: 10, config: { contextLength: 128 } });
    model = await loadLanguageModel(folder.dir, { intraOpThreads: 1 });
    server = await startServer({ models: [{ name: 'tiny', dir: folder.dir }] });
    url = server.url;
  });
  after(async () => {
    await server?.close();
    await model?.dispose();
    folder?.remove();
  });

  /** A valid infer request for `ids` from an empty cache, built from the model metadata alone. */
  const inferBody = async (ids: number[], extra: object = {}) => {
    const meta = (await request(`${url}/v2/models/tiny`)).body;
    const n = ids.length;
    const inputs = meta.inputs.map((spec: { name: string; datatype: string; shape: number[] }) => {
      if (spec.name === 'input_ids') return { name: spec.name, datatype: spec.datatype, shape: [1, n], data: ids };
      if (spec.name === 'attention_mask')
        return { name: spec.name, datatype: spec.datatype, shape: [1, n], data: ids.map(() => 1) };
      if (spec.name === 'position_ids')
        return { name: spec.name, datatype: spec.datatype, shape: [1, n], data: ids.map((_, i) => i) };
      const shape = spec.shape.map((d, axis) => (axis === 0 ? 1 : Math.max(d, 0)));
      return { name: spec.name, datatype: spec.datatype, shape, data: [] };
    });
    return { id: 'request-7', inputs, outputs: [{ name: 'logits' }], ...extra };
  };

  test('server metadata, liveness and readiness', async () => {
    const server = await request(`${url}/v2`);
    assert.equal(server.status, 200);
    assert.deepEqual(Object.keys(server.body).sort(), ['extensions', 'name', 'version']);
    assert.equal(typeof server.body.name, 'string');
    assert.equal(typeof server.body.version, 'string');
    assert.ok(server.body.extensions.every((e: unknown) => typeof e === 'string'));
    assert.ok(server.body.extensions.includes('generate'));
    const live = await request(`${url}/v2/health/live`);
    assert.equal(live.status, 200);
    assert.equal(live.body.live, true);
    const ready = await request(`${url}/v2/health/ready`);
    assert.equal(ready.status, 200);
    assert.equal(ready.body.ready, true);
  });

  test('model metadata and readiness, with and without /versions/{v}', async () => {
    for (const base of [`${url}/v2/models/tiny`, `${url}/v2/models/tiny/versions/1`]) {
      const meta = await request(base);
      assert.equal(meta.status, 200, base);
      assert.deepEqual(Object.keys(meta.body).sort(), ['inputs', 'name', 'outputs', 'platform', 'versions']);
      assert.equal(meta.body.name, 'tiny');
      assert.deepEqual(meta.body.versions, ['1']);
      assert.equal(meta.body.platform, 'onnxruntime_onnx');
      meta.body.inputs.forEach((t: unknown, i: number) => assertMetadataTensor(t, `inputs[${i}]`));
      meta.body.outputs.forEach((t: unknown, i: number) => assertMetadataTensor(t, `outputs[${i}]`));
      const ready = await request(`${base}/ready`);
      assert.equal(ready.status, 200);
      assert.deepEqual(ready.body, { name: 'tiny', ready: true });
    }
    assertErrorBody(await request(`${url}/v2/models/tiny/versions/2`), 404, 'unknown version');
    assertErrorBody(await request(`${url}/v2/models/tiny/versions/2/ready`), 404, 'unknown version ready');
    assertErrorBody(await request(`${url}/v2/models/nope`), 404, 'unknown model');
    assertErrorBody(await request(`${url}/v2/models/nope/ready`), 404, 'unknown model ready');
  });

  test('infer: response fields, id echoed, parameters accepted, versions route gives the same result', async () => {
    const ids = model.tokenizer.encode(PROMPT).slice(0, 5);
    const expected = await model.run(ids, model.newCache(), { allPositions: true });
    const body = await inferBody(ids, {
      parameters: { priority: 1, trace: 'on', binary_data_output: false },
    });
    body.inputs[0].parameters = { note: 'ids' };
    body.outputs[0] = { name: 'logits', parameters: { binary_data: false } } as never;
    for (const path of ['/v2/models/tiny/infer', '/v2/models/tiny/versions/1/infer']) {
      const response = await request(`${url}${path}`, { body });
      assert.equal(response.status, 200, `${path}: ${response.text}`);
      const r = response.body;
      assert.ok(
        Object.keys(r).every((k) => ['model_name', 'model_version', 'id', 'parameters', 'outputs'].includes(k)),
      );
      assert.equal(r.model_name, 'tiny');
      assert.equal(r.model_version, '1');
      assert.equal(r.id, 'request-7');
      assert.deepEqual(
        r.outputs.map((o: { name: string }) => o.name),
        ['logits'],
      );
      r.outputs.forEach((o: unknown, i: number) => assertResponseOutput(o, `outputs[${i}]`));
      const logits = r.outputs[0];
      assert.equal(logits.datatype, 'FP32');
      assert.deepEqual(logits.shape, [1, 5, folder.config.vocabSize]);
      for (let i = 0; i < expected.length; i += 97) assert.ok(Math.abs(logits.data[i] - expected[i]) < 1e-4);
    }
    // Without "id" the response has none; without "outputs" every output comes back.
    const { id: _, outputs: __, ...bare } = await inferBody(ids);
    const all = await request(`${url}/v2/models/tiny/infer`, { body: bare });
    assert.equal(all.status, 200);
    assert.equal('id' in all.body, false);
    const meta = (await request(`${url}/v2/models/tiny`)).body;
    assert.deepEqual(
      all.body.outputs.map((o: { name: string }) => o.name),
      meta.outputs.map((o: { name: string }) => o.name),
    );
  });

  test('BYTES tensors carry text: text_input in, text_output out, equal to the runtime', async () => {
    const expected = await generate(model, PROMPT, { maxTokens: 6 });
    const response = await request(`${url}/v2/models/tiny/infer`, {
      body: {
        id: 'text-1',
        parameters: { max_tokens: 6, temperature: 0 },
        inputs: [{ name: 'text_input', datatype: 'BYTES', shape: [1], data: [PROMPT] }],
      },
    });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.body.id, 'text-1');
    assert.equal(response.body.model_name, 'tiny');
    const [output] = response.body.outputs;
    assertResponseOutput(output, 'text_output');
    assert.deepEqual(output, { name: 'text_output', datatype: 'BYTES', shape: [1], data: [expected.text] });
    assert.equal(response.body.parameters.completion_tokens, 6);

    const two = await request(`${url}/v2/models/tiny/infer`, {
      body: { inputs: [{ name: 'text_input', datatype: 'BYTES', shape: [2, 1], data: [[PROMPT], ['let x']] }] },
    });
    assert.equal(two.status, 200, two.text);
    assert.deepEqual(two.body.outputs[0].shape, [2]);
    assert.equal(two.body.outputs[0].data[0], (await generate(model, PROMPT, { maxTokens: 16 })).text);

    const generated = await request(`${url}/v2/models/tiny/generate`, {
      body: { id: 'g', text_input: PROMPT, parameters: { max_tokens: 6, temperature: 0 } },
    });
    assert.equal(generated.status, 200, generated.text);
    assert.equal(generated.body.text_output, expected.text);
    assert.equal(generated.body.model_name, 'tiny');
    assert.equal(generated.body.model_version, '1');
    assert.equal(generated.body.id, 'g');
    const versioned = await request(`${url}/v2/models/tiny/versions/1/generate`, { body: { text_input: 'x' } });
    assert.equal(versioned.status, 200);
  });

  test('error bodies are {"error": string} for every malformed request', async () => {
    const ids = [5, 6, 7];
    const valid = await inferBody(ids);
    const cases: [string, unknown][] = [
      ['parameters not an object', { ...valid, parameters: [1] }],
      ['parameter value an object', { ...valid, parameters: { a: { b: 1 } } }],
      [
        'input parameters not an object',
        { ...valid, inputs: [{ ...valid.inputs[0], parameters: 'x' }, ...valid.inputs.slice(1)] },
      ],
      [
        'binary input data',
        { ...valid, inputs: [{ ...valid.inputs[0], parameters: { binary_data_size: 24 } }, ...valid.inputs.slice(1)] },
      ],
      ['binary output asked for', { ...valid, outputs: [{ name: 'logits', parameters: { binary_data: true } }] }],
      [
        'BYTES for an INT64 input',
        {
          ...valid,
          inputs: [{ ...valid.inputs[0], datatype: 'BYTES', data: ['a', 'b', 'c'] }, ...valid.inputs.slice(1)],
        },
      ],
      ['text_input not BYTES', { inputs: [{ name: 'text_input', datatype: 'INT64', shape: [1], data: [1] }] }],
      ['text_input not strings', { inputs: [{ name: 'text_input', datatype: 'BYTES', shape: [1], data: [1] }] }],
      ['text_input shape mismatch', { inputs: [{ name: 'text_input', datatype: 'BYTES', shape: [2], data: ['a'] }] }],
      [
        'text max_tokens out of range',
        {
          parameters: { max_tokens: 100_000 },
          inputs: [{ name: 'text_input', datatype: 'BYTES', shape: [1], data: ['a'] }],
        },
      ],
      [
        'text temperature wrong type',
        {
          parameters: { temperature: 'hot' },
          inputs: [{ name: 'text_input', datatype: 'BYTES', shape: [1], data: ['a'] }],
        },
      ],
      ['id not a string', { ...valid, id: 7 }],
      ['no inputs', { outputs: [] }],
    ];
    for (const [what, body] of cases)
      assertErrorBody(await request(`${url}/v2/models/tiny/infer`, { body }), 400, what);
    assertErrorBody(await request(`${url}/v2/models/tiny/infer`, { raw: '{"inputs": [' }), 400, 'broken JSON');
    assertErrorBody(
      await request(`${url}/v2/models/tiny/generate`, { body: { text_input: 5 } }),
      400,
      'generate text_input',
    );
    assertErrorBody(
      await request(`${url}/v2/models/tiny/generate`, { body: { text_input: 'x', parameters: { top_p: 7 } } }),
      400,
      'generate top_p',
    );
    assertErrorBody(await request(`${url}/v2/models/nope/infer`, { body: valid }), 404, 'unknown model');
    assertErrorBody(await request(`${url}/v2/models/tiny/versions/9/infer`, { body: valid }), 404, 'unknown version');
    assertErrorBody(await request(`${url}/v2/nothing`), 404, 'unknown route');
    // Still answering.
    assert.equal((await request(`${url}/v2/models/tiny/infer`, { body: valid })).status, 200);
  });
});
