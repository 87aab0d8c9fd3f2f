// Tests for the remote-endpoint client against our own server on loopback: OpenAI-compatible completions (plain
// and streamed) and Open Inference Protocol decoding give the local runtime's greedy text; API keys are sent;
// server errors surface as RemoteError with the status.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generate } from '../../server/src/runtime/generate';
import { type LanguageModel, loadLanguageModel } from '../../server/src/runtime/languageModel';
import { type RunningServer, startServer } from '../../server/src/serve/httpServer';
import { RemoteClient, RemoteError } from '../../server/src/serve/remoteClient';
import { type ModelFolder, makeModelFolder } from '../helpers/makeModelFolder';

const PROMPT = 'export function valueOfIndex(value: string, index: number): string {\n';
const KEY = 'remote-key-0123456789abcdef';

describe('remote client', () => {
  let folder: ModelFolder;
  let model: LanguageModel;
  let server: RunningServer;
  let expected: string;

  before(async () => {
    folder = await makeModelFolder({ seed: 61, weightScale: 10 });
    model = await loadLanguageModel(folder.dir, { intraOpThreads: 1 });
    server = await startServer({ models: [{ name: 'coder', dir: folder.dir }], apiKey: KEY });
    expected = (await generate(model, PROMPT, { maxTokens: 10 })).text;
  });
  after(async () => {
    await server?.close();
    await model?.dispose();
    folder?.remove();
  });

  test('OpenAI-compatible endpoint, plain and streamed', async () => {
    const client = new RemoteClient({ url: `${server.url}/v1/`, protocol: 'openai', model: 'coder', apiKey: KEY });
    assert.deepEqual(await client.models(), ['coder']);
    const plain = await client.complete(PROMPT, { maxTokens: 10 });
    assert.equal(plain.text, expected);
    assert.equal(plain.finishReason, 'length');
    assert.equal(plain.completionTokens, 10);
    const pieces: string[] = [];
    const streamed = await client.complete(PROMPT, { maxTokens: 10, onText: (t) => pieces.push(t) });
    assert.equal(streamed.text, expected);
    assert.equal(pieces.join(''), expected);
    assert.ok(pieces.length > 1);
    assert.equal(streamed.completionTokens, 10);
    const stop = expected.slice(2, 4);
    assert.equal(
      (await client.complete(PROMPT, { maxTokens: 10, stop: [stop] })).text,
      expected.slice(0, expected.indexOf(stop)),
    );
  });

  test('Open Inference Protocol endpoint, decoding with the local tokenizer', async () => {
    const client = new RemoteClient({
      url: server.url,
      protocol: 'oip',
      model: 'coder',
      apiKey: KEY,
      modelDir: folder.dir,
    });
    try {
      const pieces: string[] = [];
      const result = await client.complete(PROMPT, { maxTokens: 10, onText: (t) => pieces.push(t) });
      assert.equal(result.text, expected);
      assert.equal(pieces.join(''), expected);
      assert.equal(result.completionTokens, 10);
      const sampled = await client.complete(PROMPT, { maxTokens: 6, temperature: 0.8, seed: 3 });
      assert.equal(sampled.text, (await client.complete(PROMPT, { maxTokens: 6, temperature: 0.8, seed: 3 })).text);
    } finally {
      client.dispose();
    }
  });

  test('errors carry the status: wrong key 401, unknown model 404', async () => {
    const wrongKey = new RemoteClient({ url: server.url, protocol: 'openai', model: 'coder', apiKey: 'x'.repeat(20) });
    await assert.rejects(
      wrongKey.complete(PROMPT),
      (e: unknown) => e instanceof RemoteError && e.status === 401 && /API key/.test(e.message),
    );
    const unknown = new RemoteClient({
      url: server.url,
      protocol: 'oip',
      model: 'nope',
      apiKey: KEY,
      modelDir: folder.dir,
    });
    await assert.rejects(unknown.complete(PROMPT), (e: unknown) => e instanceof RemoteError && e.status === 404);
    unknown.dispose();
    assert.throws(() => new RemoteClient({ url: 'file:///etc/passwd', protocol: 'openai', model: 'x' }), /http/);
    assert.throws(() => new RemoteClient({ url: server.url, protocol: 'oip', model: 'x' }), /modelDir/);
  });
});
