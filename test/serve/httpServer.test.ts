// Integration tests of the HTTP service on a loopback port: every OpenAI and Open Inference Protocol route,
// streaming, metrics, malformed/oversized bodies and wrong tensors (400/413, never a crash), unknown models,
// queue-full 429, timeouts, hot reload under load and graceful close. Models are tiny random-weight folders.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { generate } from '../../server/src/runtime/generate';
import { type LanguageModel, loadLanguageModel } from '../../server/src/runtime/languageModel';
import { type RunningServer, startServer } from '../../server/src/serve/httpServer';
import { type ModelFolder, makeModelFolder } from '../helpers/makeModelFolder';
import { waitFor } from '../server/serverHarness';
import { pool, request, sseData } from './harness';

const PROMPT = 'export function countOfTotal(count: number, total: number): number {\n';

describe('HTTP service', () => {
  let folder: ModelFolder;
  let other: ModelFolder;
  let model: LanguageModel;
  let server: RunningServer;
  let url: string;

  before(async () => {
    folder = await makeModelFolder({ seed: 21, weightScale: 10 });
    other = await makeModelFolder({ seed: 22, weightScale: 10 });
    model = await loadLanguageModel(folder.dir, { intraOpThreads: 1 });
    server = await startServer({
      models: [
        { name: 'tiny', dir: folder.dir },
        { name: 'other', dir: other.dir },
      ],
      bodyLimitBytes: 64 * 1024,
    });
    url = server.url;
  });
  after(async () => {
    await server?.close();
    await model?.dispose();
    folder?.remove();
    other?.remove();
  });

  test('binds 127.0.0.1 on a free port by default', () => {
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(server.port, 0);
  });

  test('GET /v1/models and /v1/models/{id}', async () => {
    const list = await request(`${url}/v1/models`);
    assert.equal(list.status, 200);
    assert.equal(list.body.object, 'list');
    assert.deepEqual(
      list.body.data.map((m: { id: string }) => m.id),
      ['tiny', 'other'],
    );
    const one = await request(`${url}/v1/models/tiny`);
    assert.equal(one.body.id, 'tiny');
    assert.equal(one.body.max_model_len, folder.config.contextLength);
    assert.equal((await request(`${url}/v1/models/nope`)).status, 404);
  });

  test('POST /v1/completions: greedy text equals the runtime, with usage counts', async () => {
    const expected = await generate(model, PROMPT, { maxTokens: 10 });
    const response = await request(`${url}/v1/completions`, {
      body: { model: 'tiny', prompt: PROMPT, max_tokens: 10, temperature: 0 },
    });
    assert.equal(response.status, 200);
    const body = response.body;
    assert.equal(body.object, 'text_completion');
    assert.match(body.id, /^cmpl-/);
    assert.equal(body.model, 'tiny');
    assert.equal(body.choices.length, 1);
    assert.equal(body.choices[0].text, expected.text);
    assert.equal(body.choices[0].finish_reason, 'length');
    const promptTokens = model.tokenizer.encode(PROMPT).length;
    assert.deepEqual(body.usage, {
      prompt_tokens: promptTokens,
      completion_tokens: 10,
      total_tokens: promptTokens + 10,
    });
  });

  test('stop sequences, seeds, several prompts and max_tokens 0', async () => {
    const full = (await generate(model, PROMPT, { maxTokens: 10 })).text;
    const stop = full.slice(3, 5);
    const stopped = await request(`${url}/v1/completions`, {
      body: { model: 'tiny', prompt: PROMPT, max_tokens: 10, temperature: 0, stop },
    });
    assert.equal(stopped.body.choices[0].text, full.slice(0, full.indexOf(stop)));
    assert.equal(stopped.body.choices[0].finish_reason, 'stop');

    const sampled = { model: 'tiny', prompt: PROMPT, max_tokens: 8, temperature: 1, top_p: 0.9, seed: 42 };
    const a = await request(`${url}/v1/completions`, { body: sampled });
    const b = await request(`${url}/v1/completions`, { body: sampled });
    assert.equal(a.body.choices[0].text, b.body.choices[0].text);

    const many = await request(`${url}/v1/completions`, {
      body: { model: 'tiny', prompt: [PROMPT, 'for (let i'], max_tokens: 4, temperature: 0 },
    });
    assert.deepEqual(
      many.body.choices.map((c: { index: number }) => c.index),
      [0, 1],
    );
    assert.equal(many.body.choices[0].text, (await generate(model, PROMPT, { maxTokens: 4 })).text);
    assert.equal(many.body.usage.completion_tokens, 8);

    const none = await request(`${url}/v1/completions`, { body: { model: 'tiny', prompt: PROMPT, max_tokens: 0 } });
    assert.equal(none.status, 200);
    assert.equal(none.body.choices[0].text, '');
    assert.equal(none.body.usage.completion_tokens, 0);
  });

  test('without "model" the first model answers; prompts may be token ids', async () => {
    const ids = model.tokenizer.encode(PROMPT);
    const response = await request(`${url}/v1/completions`, { body: { prompt: ids, max_tokens: 5, temperature: 0 } });
    assert.equal(response.status, 200);
    assert.equal(response.body.model, 'tiny');
    assert.equal(response.body.choices[0].text, (await generate(model, PROMPT, { maxTokens: 5 })).text);
  });

  test('stream: true sends server-sent events that add up to the text, then usage and [DONE]', async () => {
    const expected = await generate(model, PROMPT, { maxTokens: 12 });
    const response = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'tiny',
        prompt: PROMPT,
        max_tokens: 12,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    const events = sseData(await response.text());
    assert.equal(events.at(-1), '[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    assert.ok(chunks.length >= 3, 'streams more than one chunk');
    const text = chunks.flatMap((c) => c.choices.map((choice: { text: string }) => choice.text)).join('');
    assert.equal(text, expected.text);
    const finishing = chunks.filter((c) => c.choices[0]?.finish_reason);
    assert.equal(finishing.length, 1);
    assert.equal(finishing[0].choices[0].finish_reason, 'length');
    assert.equal(finishing[0].usage, null, 'include_usage: chunks with choices carry usage: null');
    assert.deepEqual(chunks.at(-1).choices, []); // include_usage: the usage-only chunk
    assert.equal(chunks.at(-1).usage.completion_tokens, 12);
  });

  test('malformed requests get 400 with a message, never a crash', async () => {
    const cases: [unknown, RegExp][] = [
      [{ model: 'tiny', prompt: PROMPT, max_tokens: -1 }, /max_tokens/],
      [{ model: 'tiny', prompt: PROMPT, max_tokens: 1.5 }, /max_tokens/],
      [{ model: 'tiny', prompt: PROMPT, max_tokens: 10_000 }, /context/],
      [{ model: 'tiny', prompt: PROMPT, temperature: 'hot' }, /temperature/],
      [{ model: 'tiny', prompt: PROMPT, top_p: 0 }, /top_p/],
      [{ model: 'tiny', prompt: 42 }, /prompt/],
      [{ model: 'tiny', prompt: [1, 2, 999999] }, /token ids/],
      [{ model: 'tiny', prompt: PROMPT, stop: [1] }, /stop/],
      [{ model: 'tiny', prompt: PROMPT, stream: 'yes' }, /stream/],
      [{ model: 7, prompt: PROMPT }, /model/],
      [[1, 2, 3], /JSON object/],
    ];
    for (const [body, message] of cases) {
      const response = await request(`${url}/v1/completions`, { body });
      assert.equal(response.status, 400, JSON.stringify(body));
      assert.match(response.body.error.message, message);
      assert.equal(response.body.error.type, 'invalid_request_error');
    }
    const broken = await request(`${url}/v1/completions`, { raw: '{"model": "tiny", "prompt": ' });
    assert.equal(broken.status, 400);
    assert.match(broken.body.error.message, /JSON/);
    const empty = await request(`${url}/v1/completions`, { raw: '' });
    assert.equal(empty.status, 400);
    const form = await request(`${url}/v1/completions`, {
      raw: 'prompt=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(form.status, 415);
    assert.ok(form.body.error.message);
    const text = await request(`${url}/v1/completions`, {
      raw: '{"prompt": "x"}',
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(text.status, 400, 'text/plain (what a cross-site form can send) is never parsed as JSON');
    assert.equal((await request(`${url}/v2/health/live`)).status, 200, 'still alive');
  });

  test('an oversized body gets 413', async () => {
    const response = await request(`${url}/v1/completions`, {
      body: { model: 'tiny', prompt: 'x'.repeat(100 * 1024) },
    });
    assert.equal(response.status, 413);
    assert.equal(response.body.error.type, 'payload_too_large');
  });

  test('unknown models get 404, invalid names 400, unknown routes 404', async () => {
    const completion = await request(`${url}/v1/completions`, { body: { model: 'nope', prompt: 'x' } });
    assert.equal(completion.status, 404);
    assert.match(completion.body.error.message, /nope/);
    assert.equal((await request(`${url}/v2/models/nope`)).status, 404);
    assert.equal((await request(`${url}/v2/models/nope/ready`)).status, 404);
    assert.equal((await request(`${url}/v2/models/nope/infer`, { body: { inputs: [] } })).status, 404);
    for (const name of ['..%2F..%2Fetc', '.hidden', 'a%2Fb', '..']) {
      const response = await request(`${url}/v2/models/${name}`);
      assert.ok(response.status === 400 || response.status === 404, `${name}: ${response.status}`);
      assert.ok(response.body.error);
    }
    const traversal = await request(`${url}/v1/completions`, { body: { model: '../tiny', prompt: 'x' } });
    assert.equal(traversal.status, 400);
    const unknown = await request(`${url}/v3/nothing`);
    assert.equal(unknown.status, 404);
    assert.ok(unknown.body.error);
  });

  test('Open Inference Protocol: health, server and model metadata as the graph declares it', async () => {
    assert.deepEqual((await request(`${url}/v2/health/live`)).body, { live: true });
    assert.deepEqual((await request(`${url}/v2/health/ready`)).body, { ready: true });
    assert.equal((await request(`${url}/v2`)).body.name, 'modelwright');
    const ready = await request(`${url}/v2/models/tiny/ready`);
    assert.deepEqual(ready.body, { name: 'tiny', ready: true });
    const meta = (await request(`${url}/v2/models/tiny`)).body;
    assert.equal(meta.name, 'tiny');
    assert.deepEqual(meta.versions, ['1']);
    assert.equal(meta.platform, 'onnxruntime_onnx');
    const { heads, embedding, layers } = folder.config;
    const input = (name: string) => meta.inputs.find((i: { name: string }) => i.name === name);
    assert.deepEqual(input('input_ids'), { name: 'input_ids', datatype: 'INT64', shape: [-1, -1] });
    assert.deepEqual(input('attention_mask'), { name: 'attention_mask', datatype: 'INT64', shape: [-1, -1] });
    assert.deepEqual(input('past_key_values.0.key'), {
      name: 'past_key_values.0.key',
      datatype: 'FP32',
      shape: [-1, heads, -1, embedding / heads],
    });
    assert.equal(meta.inputs.length, 3 + 2 * layers);
    assert.deepEqual(meta.outputs[0], { name: 'logits', datatype: 'FP32', shape: [-1, -1, folder.config.vocabSize] });
    assert.equal(meta.outputs.length, 1 + 2 * layers);
    assert.equal((await request(`${url}/v2/models/tiny/versions/1`)).status, 200);
    assert.equal((await request(`${url}/v2/models/tiny/versions/7`)).status, 404);
  });

  /** A complete, valid infer request for `ids` from an empty cache. */
  const inferBody = (ids: number[]) => {
    const { heads, embedding, layers } = folder.config;
    const n = ids.length;
    const inputs: object[] = [
      { name: 'input_ids', datatype: 'INT64', shape: [1, n], data: ids },
      { name: 'attention_mask', datatype: 'INT64', shape: [1, n], data: ids.map(() => 1) },
      { name: 'position_ids', datatype: 'INT64', shape: [1, n], data: [ids.map((_, i) => i)] }, // nested is fine
    ];
    for (let i = 0; i < layers; i++) {
      for (const kind of ['key', 'value'])
        inputs.push({
          name: `past_key_values.${i}.${kind}`,
          datatype: 'FP32',
          shape: [1, heads, 0, embedding / heads],
          data: [],
        });
    }
    return { id: 'req-1', inputs };
  };

  test('POST /v2/models/{name}/infer returns the ONNX graph outputs', async () => {
    const ids = model.tokenizer.encode(PROMPT).slice(0, 6);
    const expected = await model.run(ids, model.newCache(), { allPositions: true });
    const response = await request(`${url}/v2/models/tiny/infer`, { body: inferBody(ids) });
    assert.equal(response.status, 200, response.text);
    const body = response.body;
    assert.equal(body.model_name, 'tiny');
    assert.equal(body.model_version, '1');
    assert.equal(body.id, 'req-1');
    const logits = body.outputs.find((o: { name: string }) => o.name === 'logits');
    assert.equal(logits.datatype, 'FP32');
    assert.deepEqual(logits.shape, [1, 6, folder.config.vocabSize]);
    assert.equal(logits.data.length, expected.length);
    for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(logits.data[i] - expected[i]) < 1e-4, `logit ${i}`);
    const present = body.outputs.find((o: { name: string }) => o.name === 'present.0.key');
    assert.deepEqual(present.shape, [1, folder.config.heads, 6, folder.config.embedding / folder.config.heads]);

    const onlyLogits = await request(`${url}/v2/models/tiny/infer`, {
      body: { ...inferBody(ids), outputs: [{ name: 'logits' }] },
    });
    assert.deepEqual(
      onlyLogits.body.outputs.map((o: { name: string }) => o.name),
      ['logits'],
    );
  });

  test('infer with wrong tensors gets 400 naming the problem', async () => {
    const ids = [5, 6, 7];
    const mutate = (change: (inputs: any[]) => void) => {
      const body = inferBody(ids) as { inputs: any[] };
      change(body.inputs);
      return body;
    };
    const cases: [unknown, RegExp][] = [
      [mutate((inputs) => (inputs[0].datatype = 'FP32')), /datatype FP32.*INT64/],
      [mutate((inputs) => (inputs[0].shape = [1, 4])), /3 values.*needs 4/],
      [mutate((inputs) => (inputs[0].shape = [3])), /rank 2/],
      [mutate((inputs) => (inputs[3].shape = [1, 99, 0, 8])), /dimension 1 must be/],
      [mutate((inputs) => (inputs[1].shape = [2, 3])), /batch_size/],
      [mutate((inputs) => inputs.splice(1, 1)), /missing input "attention_mask"/],
      [
        mutate((inputs) => inputs.push({ name: 'bogus', datatype: 'INT64', shape: [1], data: [1] })),
        /unknown input "bogus"/,
      ],
      [mutate((inputs) => inputs.push({ ...inputs[0] })), /given twice/],
      [mutate((inputs) => (inputs[0].data = [1, 'two', 3])), /not an integer/],
      [mutate((inputs) => (inputs[0].data = [1, 2.5, 3])), /not an integer/],
      [mutate((inputs) => (inputs[0].shape = [1, -3])), /non-negative integers/],
      [mutate((inputs) => (inputs[0].data = 'abc')), /needs "data"/],
      // A token id out of range: onnxruntime refuses.
      [mutate((inputs) => (inputs[0].data = [1, 2, 1_000_000])), /could not run/],
      [mutate((inputs) => (inputs[2].data = [0, 1, 100_000])), /could not run/], // position beyond the context
      [mutate((inputs) => ((inputs[0].shape = [1, 100_000]), (inputs[0].data = []))), /at most/],
      [{ ...inferBody(ids), outputs: [{ name: 'nope' }] }, /unknown output/],
      [{ inputs: 'x' }, /inputs/],
      [{}, /inputs/],
    ];
    for (const [body, message] of cases) {
      const response = await request(`${url}/v2/models/tiny/infer`, { body });
      assert.equal(response.status, 400, `${message}: ${response.text}`);
      assert.equal(typeof response.body.error, 'string');
      assert.match(response.body.error, message);
    }
    const broken = await request(`${url}/v2/models/tiny/infer`, { raw: '{"inputs": [' });
    assert.equal(broken.status, 400);
    assert.equal(typeof broken.body.error, 'string');
    // Still serving after all that.
    assert.equal((await request(`${url}/v2/models/tiny/infer`, { body: inferBody(ids) })).status, 200);
  });

  test('GET /metrics: Prometheus text with requests, latency, tokens, queue depth', async () => {
    // Its own traffic: a completion on each model (one decode step at least) and a malformed request.
    await request(`${url}/v1/completions`, { body: { model: 'other', prompt: 'x', max_tokens: 3, temperature: 0 } });
    await request(`${url}/v1/completions`, { body: { model: 'tiny', prompt: 'x', max_tokens: 2, temperature: 0 } });
    assert.equal((await request(`${url}/v1/completions`, { body: { model: 'tiny', max_tokens: -1 } })).status, 400);
    const response = await fetch(`${url}/metrics`);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    assert.match(
      text,
      /^modelwright_http_requests_total\{route="\/v1\/completions",method="POST",status="200"\} \d+$/m,
    );
    assert.match(
      text,
      /^modelwright_http_requests_total\{route="\/v1\/completions",method="POST",status="400"\} \d+$/m,
    );
    assert.match(text, /^# TYPE modelwright_http_request_duration_seconds histogram$/m);
    assert.match(
      text,
      /^modelwright_http_request_duration_seconds_bucket\{route="\/v1\/completions",le="\+Inf"\} \d+$/m,
    );
    assert.match(text, /^modelwright_generated_tokens_total\{model="other"\} 3$/m);
    assert.match(text, /^modelwright_generated_tokens_per_second\{model="tiny"\} [\d.]+$/m);
    assert.match(text, /^modelwright_queue_depth\{model="tiny"\} 0$/m);
    assert.match(text, /^modelwright_batch_size_bucket\{model="tiny",le="1"\} \d+$/m);
    for (const line of text.trim().split('\n'))
      assert.match(line, /^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? [-+\d.e]+|\w+(\{[^}]*\})? [+-]?Inf)$/, line);
  });

  test('a Host header that is not a loopback name is refused (DNS rebinding)', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${url}/v1/models`, { headers: { host: 'evil.example:80' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 403);
  });
});

describe('HTTP service limits', () => {
  let folder: ModelFolder;
  let bigger: ModelFolder;

  before(async () => {
    folder = await makeModelFolder({ seed: 31, weightScale: 10 });
    bigger = await makeModelFolder({ seed: 32, config: { contextLength: 256, layers: 2, heads: 2, embedding: 64 } });
  });
  after(() => {
    folder?.remove();
    bigger?.remove();
  });

  test('a full queue answers 429 with a JSON error; the rest succeed', async () => {
    const server = await startServer({ models: [{ name: 'm', dir: bigger.dir }], maxBatchSize: 1, maxQueue: 1 });
    try {
      const body = { model: 'm', prompt: PROMPT, max_tokens: 100, temperature: 0, ignore_eos: true };
      const responses = await Promise.all(
        Array.from({ length: 6 }, () => request(`${server.url}/v1/completions`, { body })),
      );
      const statuses = responses.map((r) => r.status).sort();
      assert.ok(statuses.filter((s) => s === 429).length >= 1, `statuses ${statuses}`);
      assert.ok(statuses.filter((s) => s === 200).length >= 2, `statuses ${statuses}`);
      assert.ok(
        statuses.every((s) => s === 200 || s === 429),
        `statuses ${statuses}`,
      );
      const refused = responses.find((r) => r.status === 429)!;
      assert.equal(refused.body.error.type, 'queue_full');
      assert.match(refused.body.error.message, /queue/);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      assert.match(metrics, /modelwright_rejected_requests_total\{model="m",reason="queue_full"\} [1-9]/);
    } finally {
      await server.close();
    }
  });

  test('a prompt that starts like an earlier one reuses its keys and values, unless the prompt cache is off', async () => {
    const cached = async (promptCachePositions?: number) => {
      const server = await startServer({ models: [{ name: 'm', dir: bigger.dir }], promptCachePositions });
      try {
        const texts: string[] = [];
        for (const prompt of [PROMPT.repeat(3), `${PROMPT.repeat(3)}  const share = count / total;\n`]) {
          const response = await request(`${server.url}/v1/completions`, {
            body: { model: 'm', prompt, max_tokens: 4, temperature: 0 },
          });
          assert.equal(response.status, 200);
          texts.push(response.body.choices[0].text);
        }
        const metrics = await (await fetch(`${server.url}/metrics`)).text();
        const match = /modelwright_prompt_tokens_cached_total\{model="m"\} (\d+)/.exec(metrics);
        return { texts, cachedTokens: Number(match?.[1] ?? 0) };
      } finally {
        await server.close();
      }
    };
    const [on, off] = [await cached(), await cached(0)];
    assert.ok(on.cachedTokens >= 8, `cached ${on.cachedTokens} prompt tokens`);
    assert.equal(off.cachedTokens, 0);
    assert.deepEqual(on.texts, off.texts);
  });

  test('a request over its time limit gets 504 and leaves the batch', async () => {
    const server = await startServer({ models: [{ name: 'm', dir: bigger.dir }], requestTimeoutMs: 1 });
    try {
      const response = await request(`${server.url}/v1/completions`, {
        body: { model: 'm', prompt: PROMPT, max_tokens: 200, ignore_eos: true },
      });
      assert.equal(response.status, 504);
      assert.equal(response.body.error.type, 'timeout');
      const stream = await request(`${server.url}/v1/completions`, {
        body: { model: 'm', prompt: PROMPT, max_tokens: 200, ignore_eos: true, stream: true },
      });
      assert.equal(stream.status, 200);
      const events = sseData(stream.text);
      assert.equal(events.at(-1), '[DONE]');
      assert.equal(JSON.parse(events.at(-2)!).error.type, 'timeout');
      assert.equal(server.status().models[0].active, 0);
    } finally {
      await server.close();
    }
  });

  test('a client that disconnects is removed from the batch', async () => {
    const server = await startServer({ models: [{ name: 'm', dir: bigger.dir }] });
    try {
      const maxTokens = 250;
      const controller = new AbortController();
      const response = await fetch(`${server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', prompt: PROMPT, max_tokens: maxTokens, ignore_eos: true, stream: true }),
        signal: controller.signal,
      });
      const reader = response.body!.getReader();
      const first = await reader.read(); // the first streamed chunk: the request is decoding
      assert.ok(!first.done);
      assert.equal(server.status().models[0].active, 1);
      controller.abort();
      await waitFor(() => server.status().models[0].active === 0, 'the aborted request to leave the batch');
      // This server ran only that request, so the model's generated-token counter is what it decoded.
      const decoded = await generatedTokens(server.url, 'm');
      assert.ok(decoded >= 1 && decoded < maxTokens / 2, `decoded ${decoded} of ${maxTokens} tokens`);
      // It produces nothing more: a later request's tokens are all the counter gains.
      const after = await request(`${server.url}/v1/completions`, {
        body: { model: 'm', prompt: PROMPT, max_tokens: 3, ignore_eos: true },
      });
      assert.equal(after.body.usage.completion_tokens, 3);
      assert.equal(await generatedTokens(server.url, 'm'), decoded + 3);
    } finally {
      await server.close();
    }
  });

  test('hot reload under load: nothing fails, in-flight requests finish on the old version, new ones use the new', async () => {
    const server = await startServer({ models: [{ name: 'm', dir: folder.dir }], maxBatchSize: 2, maxQueue: 200 });
    const log: { version: string; status: number }[] = [];
    const body = { model: 'm', prompt: PROMPT, max_tokens: 40, temperature: 0, ignore_eos: true };
    const fire = async () => {
      const response = await request(`${server.url}/v1/completions`, { body });
      log.push({ version: response.body?.system_fingerprint, status: response.status });
    };
    try {
      // A backlog on version 1 (2 decoding, the rest queued), then a reload while it drains, with more load after.
      const backlog = Array.from({ length: 40 }, fire);
      await waitFor(() => {
        const m = server.status().models[0];
        return m.active === 2 && m.queueDepth > 0;
      }, 'a backlog on version 1');
      const reloaded = server.reload('m', bigger.dir);
      const during = pool(16, 4, fire);
      const { version } = await reloaded;
      const answeredBeforeSwitch = log.length; // responses are logged in the order they arrive
      assert.equal(version, 2);
      await Promise.all([...backlog, during]);
      await pool(8, 4, fire);

      assert.ok(
        log.every((r) => r.status === 200),
        `statuses ${log.map((r) => r.status)}`,
      );
      const oldAfterSwitch = log.slice(answeredBeforeSwitch).filter((r) => r.version === 'm@1');
      assert.ok(oldAfterSwitch.length > 0, 'some requests were in flight on version 1 when version 2 took over');
      assert.ok(log.some((r) => r.version === 'm@2'));
      assert.equal(log.at(-1)!.version, 'm@2');
      await waitFor(() => server.status().retiring === 0, 'the old version to be released');
      assert.equal(server.status().models[0].dir, bigger.dir);
      assert.deepEqual((await request(`${server.url}/v2/models/m`)).body.versions, ['2']);
      // A version that cannot load leaves the served one in place.
      await assert.rejects(server.reload('m', '/nonexistent/model'), /not found/);
      assert.equal((await request(`${server.url}/v1/completions`, { body })).body.system_fingerprint, 'm@2');
    } finally {
      await server.close();
    }
  });

  test('close() finishes streams in flight, refuses new requests, and releases the port', async () => {
    const server = await startServer({ models: [{ name: 'm', dir: bigger.dir }] });
    const response = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'm',
        prompt: PROMPT,
        max_tokens: 120,
        ignore_eos: true,
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    const reader = response.body!.getReader();
    const first = await reader.read();
    assert.ok(!first.done);
    const closing = server.close();
    let rest = new TextDecoder().decode(first.value);
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read())
      rest += new TextDecoder().decode(chunk.value);
    const events = sseData(rest);
    assert.equal(events.at(-1), '[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    assert.equal(chunks.find((c) => c.choices[0]?.finish_reason)?.choices[0].finish_reason, 'length');
    assert.equal(chunks.at(-1).usage.completion_tokens, 120);
    await closing;
    await assert.rejects(fetch(`${server.url}/v2/health/live`));
  });

  test('refuses a second model with the same name and a folder that is not a model', async () => {
    await assert.rejects(startServer({ models: [folder.dir, folder.dir] }), /two models are named/);
    await assert.rejects(startServer({ models: [{ name: 'x', dir: '/nonexistent/model' }] }), /not found/);
    await assert.rejects(startServer({ models: [{ name: '../x', dir: folder.dir }] }), /invalid model name/);
  });
});

/** The model's modelwright_generated_tokens_total, read from GET /metrics. */
async function generatedTokens(url: string, model: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const match = new RegExp(`^modelwright_generated_tokens_total\\{model="${model}"\\} (\\d+)$`, 'm').exec(text);
  assert.ok(match, `no generated-token count for ${model} in\n${text}`);
  return Number(match[1]);
}
