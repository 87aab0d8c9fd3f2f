// Integration tests of remote roles through the spawned language server: completions and explanations from our own
// HTTP service on loopback (a parrot model that writes "y", while the local one writes "x"), the API key sent as a
// Bearer token to the endpoint and nowhere else, and an endpoint that is down or too slow: the local model answers,
// the status and one log line say why, and a retry after the back-off brings the endpoint back.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { Explain, type ServerStatus } from '../../server/src/protocol';
import { type RunningServer, startServer } from '../../server/src/serve/httpServer';
import { RemoteClient } from '../../server/src/serve/remoteClient';
import { ServerHarness, modelDirectories, waitFor } from './serverHarness';
import { makeParrotModel } from './testModels';

const KEY = 'remote-role-key-0123456789abcdef';
const DOCUMENT = 'file:///work/remote.ts';

/** A proxy in front of the HTTP service that records each request's path and Authorization header. */
function recordingProxy(target: () => string) {
  const seen: { path: string; authorization?: string }[] = [];
  const server = http.createServer((request, response) => {
    seen.push({ path: request.url ?? '', authorization: request.headers.authorization });
    const upstream = http.request(
      `${target()}${request.url}`,
      { method: request.method, headers: request.headers },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  return { server, seen };
}

function listen(server: http.Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function close(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

describe('remote roles', { timeout: 240_000 }, () => {
  let dirs: ReturnType<typeof modelDirectories>;
  let service: RunningServer;
  let proxy: ReturnType<typeof recordingProxy>;
  let proxyPort: number;
  let lsp: ServerHarness;

  const remoteSettings = (url: string, timeoutMs?: number) => ({
    completion: { confidenceThreshold: 0, maxTokens: 6 },
    explanation: { maxTokens: 8 },
    remote: {
      completion: { url, model: 'yankee', timeoutMs },
      explanation: { url, model: 'yankee', timeoutMs },
    },
  });
  const remoteStatus = (role: 'completion' | 'explanation', state: string) => (s: ServerStatus) =>
    s.remote?.[role]?.state === state;
  /** The first status from index `since` on in which the role's endpoint is in `state`. */
  const statusSince = (since: number, role: 'completion' | 'explanation', state: string) =>
    waitFor(() => lsp.statuses.slice(since).find(remoteStatus(role, state)), `the ${role} endpoint ${state}`);

  before(async () => {
    dirs = modelDirectories();
    await makeParrotModel(path.join(dirs.bundled, 'default'), { character: 'x' });
    const yankee = path.join(dirs.root, 'yankee');
    await makeParrotModel(yankee, { character: 'y' });
    // The same model with a chat template, for /v1/chat/completions.
    const chat = path.join(dirs.root, 'yankee-chat');
    fs.cpSync(yankee, chat, { recursive: true });
    const config = path.join(chat, 'tokenizer_config.json');
    const template =
      '{% for message in messages %}{{ message.role }}: {{ message.content }}\n{% endfor %}' +
      '{% if add_generation_prompt %}assistant: {% endif %}';
    fs.writeFileSync(
      config,
      JSON.stringify({ ...JSON.parse(fs.readFileSync(config, 'utf8')), chat_template: template }),
    );
    service = await startServer({
      models: [
        { name: 'yankee', dir: yankee },
        { name: 'yankee-chat', dir: chat },
      ],
      apiKey: KEY,
    });
    proxy = recordingProxy(() => service.url);
    proxyPort = await listen(proxy.server);
    lsp = await ServerHarness.start({
      modelsDirectory: dirs.models,
      bundledModelsDirectory: dirs.bundled,
      initializationOptions: {
        modelsDirectory: dirs.models,
        bundledModelsDirectory: dirs.bundled,
        trusted: true,
        remoteKeys: { completion: KEY, explanation: KEY },
      },
      env: { MODELWRIGHT_REMOTE_BACKOFF_MS: '300' },
    });
    await lsp.waitForStatus((s) => s.health === 'ready');
    lsp.open(DOCUMENT, 'function area(width: number) {\n  return \n}\n');
  });
  after(async () => {
    await lsp?.stop();
    if (proxy) await close(proxy.server);
    await service?.close();
    dirs?.remove();
  });

  test('without a remote endpoint the local model completes', async () => {
    await lsp.configure(() => ({ completion: { confidenceThreshold: 0, maxTokens: 6 } }));
    assert.equal((await lsp.complete(DOCUMENT, 1, 9)).items[0]?.insertText, 'xxxxxx');
  });

  test('completions come from the remote endpoint, with the key as a Bearer token', async () => {
    await lsp.configure(() => remoteSettings(`http://127.0.0.1:${proxyPort}`));
    const result = await lsp.complete(DOCUMENT, 1, 9);
    assert.equal(result.items[0]?.insertText, 'yyyyyy');
    await lsp.waitForStatus(remoteStatus('completion', 'up'));
    const calls = proxy.seen.filter((c) => c.path === '/v1/completions');
    assert.ok(calls.length > 0);
    for (const call of calls) assert.equal(call.authorization, `Bearer ${KEY}`);
  });

  test('an Open Inference Protocol endpoint completes, decoded with the local tokenizer', async () => {
    await lsp.configure(() => ({
      ...remoteSettings(''),
      remote: {
        completion: {
          url: `http://127.0.0.1:${proxyPort}`,
          protocol: 'oip',
          model: 'yankee',
          modelDir: path.join(dirs.root, 'yankee'),
        },
      },
    }));
    lsp.change(DOCUMENT, 'function area(width: number) {\n  return \n}\n');
    assert.equal((await lsp.complete(DOCUMENT, 1, 9)).items[0]?.insertText, 'yyyyyy');
    assert.ok(proxy.seen.some((c) => c.path === '/v2/models/yankee/infer' && c.authorization === `Bearer ${KEY}`));
  });

  test('the client chats over /v1/chat/completions, streamed or not', async () => {
    const client = new RemoteClient({ url: service.url, protocol: 'openai', model: 'yankee-chat', apiKey: KEY });
    const messages = [{ role: 'user' as const, content: 'What does area do?' }];
    const pieces: string[] = [];
    const streamed = await client.chat(messages, { maxTokens: 5, onText: (t) => pieces.push(t) });
    assert.equal(streamed.text, 'yyyyy');
    assert.equal(pieces.join(''), 'yyyyy');
    assert.equal((await client.chat(messages, { maxTokens: 3 })).text, 'yyy');
  });

  test('explanations come from the remote endpoint, streamed chunks adding up to the result', async () => {
    await lsp.configure(() => remoteSettings(`http://127.0.0.1:${proxyPort}`));
    const chunks: string[] = [];
    const partialResultToken = 'remote-explain-1';
    lsp.connection.onProgress(Explain.chunkType, partialResultToken, (chunk) => {
      chunks.push(chunk.text);
    });
    const result = await lsp.connection.sendRequest(Explain.type, {
      textDocument: { uri: DOCUMENT },
      range: { start: { line: 0, character: 0 }, end: { line: 2, character: 1 } },
      partialResultToken,
    });
    assert.match(result.model, /^yankee @ http:\/\/127\.0\.0\.1:/);
    assert.match(result.text, /\*\*Explanation\*\* \(yankee @ /);
    assert.match(result.text, /yyyy/);
    await lsp.roundTrip();
    assert.equal(chunks.join(''), result.text);
    const chats = proxy.seen.filter((c) => c.path.startsWith('/v1/chat/') || c.path === '/v1/completions');
    for (const call of chats) assert.equal(call.authorization, `Bearer ${KEY}`);
  });

  test('an endpoint that is down: the local model answers, the status and one log line say so', async () => {
    const closed = http.createServer();
    const port = await listen(closed);
    await close(closed);
    await lsp.configure(() => remoteSettings(`http://127.0.0.1:${port}`));
    const since = lsp.logs.length;
    const statusesBefore = lsp.statuses.length;
    for (let i = 0; i < 4; i++) {
      lsp.change(DOCUMENT, `function area(width: number) {\n  return ${'w'.slice(0, i % 2)}\n}\n`);
      const result = await lsp.complete(DOCUMENT, 1, 9 + (i % 2));
      assert.match(String(result.items[0]?.insertText), /^x+$/);
    }
    const down = lsp.statuses.slice(statusesBefore).find(remoteStatus('completion', 'down'));
    assert.ok(down, `a status says the endpoint is down: ${JSON.stringify(lsp.statuses.slice(statusesBefore))}`);
    assert.match(down.remote!.completion!.error ?? '', /connection refused/);
    assert.ok(down.remote!.completion!.retryAt);
    const warnings = lsp.logs
      .slice(since)
      .filter((l) => /remote completion endpoint .*connection refused/.test(l.message));
    assert.equal(warnings.length, 1, JSON.stringify(lsp.logs.slice(since)));

    // The endpoint comes up on that port: a retry after the back-off finds it, and completions are remote again.
    const revived = recordingProxy(() => service.url);
    await listen(revived.server, port);
    try {
      await statusSince(lsp.statuses.indexOf(down), 'completion', 'up');
      await lsp.waitForLog(/remote completion endpoint .* answers again/);
      lsp.change(DOCUMENT, 'function area(width: number) {\n  return \n}\n');
      assert.equal((await lsp.complete(DOCUMENT, 1, 9)).items[0]?.insertText, 'yyyyyy');
    } finally {
      await close(revived.server);
    }
  });

  test('an endpoint that does not answer in time: the local model completes and explains', async () => {
    const hanging = http.createServer(() => {
      // never answers
    });
    const port = await listen(hanging);
    try {
      const since = lsp.statuses.length;
      await lsp.configure(() => remoteSettings(`http://127.0.0.1:${port}`, 300));
      lsp.change(DOCUMENT, 'function area(width: number) {\n  return \n}\n');
      assert.equal((await lsp.complete(DOCUMENT, 1, 9)).items[0]?.insertText, 'xxxxxx');
      const status = await statusSince(since, 'completion', 'down');
      assert.match(status.remote!.completion!.error ?? '', /no answer within 300 ms/);

      const chunks: string[] = [];
      const partialResultToken = 'remote-explain-timeout';
      lsp.connection.onProgress(Explain.chunkType, partialResultToken, (chunk) => {
        chunks.push(chunk.text);
      });
      const result = await lsp.connection.sendRequest(Explain.type, {
        textDocument: { uri: DOCUMENT },
        range: { start: { line: 0, character: 0 }, end: { line: 2, character: 1 } },
        partialResultToken,
      });
      assert.equal(result.model, 'default');
      await lsp.roundTrip();
      assert.equal(chunks.join(''), result.text, 'nothing of the failed remote attempt was streamed');
      assert.doesNotMatch(result.text, /yankee/);
      assert.match((await statusSince(since, 'explanation', 'down')).remote!.explanation!.error ?? '', /300 ms/);
    } finally {
      await close(hanging);
    }
  });

  test('the key appears in no log, status or error output of the language server', async () => {
    await lsp.roundTrip();
    for (const entry of lsp.logs) assert.ok(!entry.message.includes(KEY), entry.message);
    assert.ok(!JSON.stringify(lsp.statuses).includes(KEY));
    assert.ok(!lsp.errorOutput.includes(KEY));
  });
});
