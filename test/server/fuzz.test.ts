// A bounded, seeded fuzz test: 1,000 malformed or random messages to the language server over stdio (broken
// framing, wrong types, huge values, unknown methods) and 1,000 to the HTTP service (broken HTTP, random bodies
// on every route), each then answering a valid request correctly; no crash, and no 500 from the HTTP service.
// Same seed, same messages: a failure can be replayed (FUZZ_SEED=n to try others).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { uniform } from '../../server/src/engine/random';
import { makeModelFolder, type ModelFolder } from '../helpers/makeModelFolder';
import { pool, request } from '../serve/harness';
import { ServerHarness, modelDirectories, repository } from './serverHarness';
import { makeParrotModel } from './testModels';

const SEED = Number(process.env.FUZZ_SEED ?? 20261202);
const MESSAGES = Number(process.env.FUZZ_MESSAGES ?? 1000);

/** Random values of every JSON kind, some of them huge or deeply nested. */
class Fuzzer {
  private readonly random: () => number;

  constructor(seed: number) {
    this.random = uniform(seed);
  }

  int(n: number): number {
    return Math.floor(this.random() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  chance(p: number): boolean {
    return this.random() < p;
  }

  string(): string {
    switch (this.int(6)) {
      case 0:
        return '';
      case 1:
        return 'x'.repeat(this.pick([1, 100, 10_000, 200_000]));
      case 2:
        return String.fromCharCode(...Array.from({ length: 1 + this.int(20) }, () => this.int(0xd800)));
      case 3:
        return this.pick(['\u0000', '\ud800', '../../etc/passwd', '<|endoftext|>', '{{ 7*7 }}', '%s%n', 'file:///']);
      default:
        return `s${this.int(1000)}`;
    }
  }

  number(): number {
    return this.pick([
      0,
      -1,
      1,
      0.5,
      -0.0,
      2 ** 31,
      2 ** 53 + 1,
      1e308,
      -1e308,
      Number.MAX_SAFE_INTEGER,
      this.int(100),
    ]);
  }

  value(depth = 0): unknown {
    const kind = this.int(depth > 3 ? 4 : 7);
    switch (kind) {
      case 0:
        return null;
      case 1:
        return this.chance(0.5);
      case 2:
        return this.number();
      case 3:
        return this.string();
      case 4:
        return Array.from({ length: this.int(5) }, () => this.value(depth + 1));
      case 5: {
        const object: Record<string, unknown> = {};
        for (let i = this.int(5); i > 0; i--) object[this.pick(FIELD_NAMES)] = this.value(depth + 1);
        return object;
      }
      default:
        return this.deep();
    }
  }

  /** A placeholder that `json` turns into an array nested up to thousands of levels deep. */
  deep(): unknown {
    return `__deep_${this.pick([10, 1000, 5000])}__`;
  }

  /** A copy of `template` with a few fields replaced, removed or added. */
  mutate(template: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = structuredClone(template);
    for (let i = 1 + this.int(3); i > 0; i--) {
      const keys = Object.keys(out);
      const key = this.chance(0.7) && keys.length ? this.pick(keys) : this.pick(FIELD_NAMES);
      if (this.chance(0.2)) delete out[key];
      else out[key] = this.value();
    }
    return out;
  }
}

/** JSON text of a value, with deep() placeholders expanded (JSON.stringify itself would overflow the stack). */
function json(value: unknown): string {
  return JSON.stringify(value).replace(
    /"__deep_(\d+)__"/g,
    (_, n) => `${'['.repeat(Number(n))}1${']'.repeat(Number(n))}`,
  );
}

const FIELD_NAMES = [
  'textDocument',
  'uri',
  'position',
  'line',
  'character',
  'context',
  'triggerKind',
  'range',
  'start',
  'end',
  'text',
  'name',
  'role',
  'model',
  'prompt',
  'max_tokens',
  'temperature',
  'top_p',
  'n',
  'stop',
  'seed',
  'stream',
  'echo',
  'logprobs',
  'suffix',
  'messages',
  'content',
  'inputs',
  'outputs',
  'shape',
  'datatype',
  'data',
  'parameters',
  'id',
  'tokens',
  'logit_bias',
  'stream_options',
  'include_usage',
  'settings',
  'contentChanges',
  'version',
  'foo',
];

/** LSP methods the fuzzer calls; those that train, deploy, delete, download or exit are left out. */
const LSP_METHODS = [
  'textDocument/inlineCompletion',
  'textDocument/hover',
  'textDocument/codeAction',
  'textDocument/didOpen',
  'textDocument/didChange',
  'textDocument/didClose',
  'workspace/didChangeConfiguration',
  '$/cancelRequest',
  '$/setTrace',
  'initialize',
  'modelwright/listModels',
  'modelwright/modelCard',
  'modelwright/explain',
  'modelwright/status',
  'modelwright/checkDeploy',
  'modelwright/listDeployments',
  'fuzz/unknownMethod',
  '',
];

/** One framed message, its body from `body`, or a piece of broken framing. */
function lspMessage(f: Fuzzer, index: number): string {
  const frame = (body: string) => `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const resync = '\r\n\r\n'; // ends any header block a broken frame left open
  switch (f.int(10)) {
    case 0:
      return 'Content-Type: application/json\r\n\r\n'; // no Content-Length
    case 1:
      return `Content-Length: ${f.pick(['abc', '-5', '1.5', ''])}\r\n\r\n`;
    case 2:
      return `${f.string().replace(/\r\n\r\n/g, '')}${resync}`; // garbage where a header belongs
    case 3:
      return frame(f.pick(['{', '{"jsonrpc": "2.0", "method": ', 'null', '[]', '42', '"x"', '{}', '\u0000']));
    case 4: {
      // A shorter Content-Length than the body: the rest is garbage before the next header.
      const body = JSON.stringify({ jsonrpc: '2.0', id: `fuzz-${index}`, method: 'modelwright/listModels' });
      return `Content-Length: ${body.length - 5}\r\n\r\n${body}${resync}`;
    }
    case 5:
      return frame(json({ jsonrpc: f.pick(['1.0', 2, null]), id: index, method: f.pick(LSP_METHODS) }));
    case 6:
      return frame(
        json({
          jsonrpc: '2.0',
          id: f.pick([{ a: 1 }, [1], 1.5, true]),
          method: f.pick(LSP_METHODS),
          params: f.value(),
        }),
      );
    default: {
      const method = f.pick(LSP_METHODS);
      const params = f.chance(0.5) ? f.mutate(lspTemplate(method)) : f.value();
      const message: Record<string, unknown> = { jsonrpc: '2.0', method, params };
      if (f.chance(0.7)) message.id = `fuzz-${index}`;
      return frame(json(message));
    }
  }
}

/** Roughly valid params for a method, for the fuzzer to mutate (so that it gets past the first checks). */
function lspTemplate(method: string): Record<string, unknown> {
  const textDocument = { uri: 'file:///tmp/fuzz.ts', languageId: 'typescript', version: 1, text: 'const a = 1;\n' };
  const position = { line: 0, character: 5 };
  switch (method) {
    case 'textDocument/didOpen':
      return { textDocument };
    case 'textDocument/didChange':
      return { textDocument: { uri: textDocument.uri, version: 2 }, contentChanges: [{ text: 'let b = ' }] };
    case 'textDocument/inlineCompletion':
      return { textDocument, position, context: { triggerKind: 1 } };
    case 'modelwright/explain':
      return { textDocument, range: { start: position, end: { line: 0, character: 9 } } };
    default:
      return { textDocument, position, name: 'default' };
  }
}

describe('fuzz', { timeout: 600_000 }, () => {
  describe('language server over stdio', () => {
    let dirs: ReturnType<typeof modelDirectories>;
    let server: ServerHarness;
    let rawWrite: (data: string) => void;

    before(async () => {
      dirs = modelDirectories();
      await makeParrotModel(path.join(dirs.bundled, 'default'));
      server = await ServerHarness.start({
        modelsDirectory: dirs.models,
        bundledModelsDirectory: dirs.bundled,
        workspaceFolder: dirs.root,
        env: { HF_ENDPOINT: 'http://127.0.0.1:9' },
      });
      await server.waitForStatus((s) => s.health === 'ready');
      rawWrite = joinHeaderWrites(server);
    });
    after(async () => {
      await server?.stop();
      dirs?.remove();
    });

    test(`${MESSAGES} malformed or random messages, then a correct completion`, async () => {
      const f = new Fuzzer(SEED);
      const uri = 'file:///tmp/after-fuzz.ts';
      for (let i = 0; i < MESSAGES; i++) {
        const message = lspMessage(f, i);
        rawWrite(message);
        // Every 50 messages, wait until the server has read everything so far (and check that it is alive).
        if (i % 50 === 49) {
          await roundTrip(server, rawWrite);
          assert.ok(server.alive, `the server exited after message ${i}: ${server.errorOutput.slice(-2000)}`);
        }
      }
      await roundTrip(server, rawWrite);
      assert.ok(server.alive, `crashed: ${server.errorOutput.slice(-2000)}`);
      server.open(uri, 'const total = ');
      const completion = await server.complete(uri, 0, 'const total = '.length);
      assert.equal(completion.items.length, 1, 'a completion after the fuzzing');
      assert.match(String(completion.items[0].insertText), /^x+/);
    });
  });

  describe('HTTP service', () => {
    let folder: ModelFolder;
    let child: ChildProcess;
    let url: string;
    let stderr = '';
    let exitCode: number | null | undefined;

    before(async () => {
      folder = await makeModelFolder({ seed: 91, weightScale: 10, config: { contextLength: 128 } });
      child = spawn(
        process.execPath,
        [path.join(repository, 'server', 'out', 'cli.js'), 'serve', '--model', `m=${folder.dir}`, '--port', '0'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child.stderr!.on('data', (d) => (stderr += d));
      child.on('exit', (code) => (exitCode = code));
      url = await new Promise<string>((resolve, reject) => {
        let stdout = '';
        child.stdout!.on('data', (d) => {
          stdout += d;
          const match = /listening on (\S+)/.exec(stdout);
          if (match) resolve(match[1]);
        });
        child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
      });
    });
    after(() => {
      child?.kill('SIGTERM');
      folder?.remove();
    });

    test(`${MESSAGES} malformed or random requests, never a 500, then a correct completion`, async (t) => {
      const f = new Fuzzer(SEED + 1);
      const { port } = new URL(url);
      const requests = Array.from({ length: MESSAGES }, (_, i) => httpMessage(f, i));
      const statuses = new Map<number, number>();
      const serverErrors: string[] = [];
      await pool(requests.length, 4, async (i) => {
        const message = requests[i];
        let status: number;
        if (message.raw !== undefined) status = await rawExchange(Number(port), message.raw);
        else {
          const response = await fetch(`${url}${message.path}`, {
            method: message.method,
            headers: message.headers,
            body: message.body,
          }).catch(() => undefined);
          status = response?.status ?? 0;
          const text = response ? await response.text().catch(() => '') : '';
          if (status >= 500 && status !== 503 && status !== 504)
            serverErrors.push(
              `${message.method} ${message.path} ${String(message.body).slice(0, 200)} → ${status} ${text}`,
            );
        }
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      });
      t.diagnostic(`statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort((x, y) => x[0] - y[0])))}`);
      assert.equal(exitCode, undefined, `the server exited: ${stderr.slice(-2000)}`);
      assert.deepEqual(serverErrors, [], 'no internal errors');
      // Most of the random bodies are refused; some valid ones pass.
      assert.ok((statuses.get(400) ?? 0) > MESSAGES / 4, `statuses ${JSON.stringify([...statuses])}`);

      const completion = await request(`${url}/v1/completions`, {
        body: { model: 'm', prompt: 'let x', max_tokens: 4, temperature: 0 },
      });
      assert.equal(completion.status, 200);
      assert.equal(completion.body.usage.completion_tokens, 4);
      assert.equal((await request(`${url}/v2/health/ready`)).status, 200);
    });
  });
});

/**
 * The client connection writes a message's header and body in two writes with an `await` between them, so raw
 * fuzz bytes could land between the two. This holds each header back until its body, and returns the writer for
 * raw bytes, which waits while a header is held.
 */
function joinHeaderWrites(server: ServerHarness): (data: string) => void {
  const stdin = server.child.stdin!;
  const write = stdin.write.bind(stdin) as (
    data: string | Uint8Array,
    callback?: (error?: Error | null) => void,
  ) => boolean;
  let header: string | undefined;
  let queued: string[] = [];
  stdin.write = ((data: string | Uint8Array, ...rest: unknown[]) => {
    const callback = rest.find((r): r is (error?: Error | null) => void => typeof r === 'function');
    if (header === undefined && typeof data === 'string' && /^Content-Length: \d+\r\n\r\n$/.test(data)) {
      header = data;
      if (callback) setImmediate(callback);
      return true;
    }
    const joined = header === undefined ? data : Buffer.concat([Buffer.from(header, 'ascii'), Buffer.from(data)]);
    header = undefined;
    const result = write(joined, callback);
    for (const raw of queued) write(raw);
    queued = [];
    return result;
  }) as typeof stdin.write;
  return (data) => {
    if (header === undefined) write(data);
    else queued.push(data);
  };
}

/**
 * A request answered after everything sent before it. After a framing error the JSON-RPC reader of
 * vscode-languageserver stops reading the data it already has until more arrives, so while waiting this sends
 * harmless notifications (each a new chunk of input) until the answer comes.
 */
async function roundTrip(server: ServerHarness, rawWrite: (data: string) => void): Promise<void> {
  let answered = false;
  const answer = server.roundTrip().then(() => {
    answered = true;
  });
  const nudge = JSON.stringify({ jsonrpc: '2.0', method: '$/setTrace', params: { value: 'off' } });
  for (let i = 0; i < 10_000 && !answered && server.alive; i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    if (!answered) rawWrite(`Content-Length: ${nudge.length}\r\n\r\n${nudge}`);
  }
  await answer;
}

interface HttpMessage {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** Bytes written to a raw socket instead of an HTTP request. */
  raw?: string;
}

const ROUTES: [string, string, Record<string, unknown>][] = [
  ['POST', '/v1/completions', { model: 'm', prompt: 'let x = ', max_tokens: 4, temperature: 0 }],
  ['POST', '/v1/completions', { prompt: [[1, 2, 3]], max_tokens: 1, logprobs: 1, echo: true }],
  [
    'POST',
    '/v1/completions',
    { prompt: 'a', suffix: 'b', max_tokens: 2, stream: true, stream_options: { include_usage: true } },
  ],
  ['POST', '/v1/chat/completions', { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }],
  ['POST', '/tokenize', { prompt: 'hello' }],
  ['POST', '/detokenize', { tokens: [1, 2, 3] }],
  [
    'POST',
    '/v2/models/m/infer',
    { inputs: [{ name: 'text_input', datatype: 'BYTES', shape: [1], data: ['x'] }], parameters: { max_tokens: 2 } },
  ],
  ['POST', '/v2/models/m/infer', { inputs: [{ name: 'input_ids', datatype: 'INT64', shape: [1, 2], data: [1, 2] }] }],
  ['POST', '/v2/models/m/generate', { text_input: 'x', parameters: { max_tokens: 2 } }],
  ['GET', '/v1/models', {}],
  ['GET', '/v2/models/m', {}],
  ['GET', '/metrics', {}],
];

function httpMessage(f: Fuzzer, index: number): HttpMessage {
  if (f.chance(0.15)) {
    const body = JSON.stringify({ prompt: 'x', max_tokens: 1 });
    return {
      method: 'RAW',
      path: '',
      raw: f.pick([
        'GARBAGE\r\n\r\n',
        `POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 500\r\ncontent-type: application/json\r\n\r\n${body}`,
        `POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\ncontent-type: application/json\r\n\r\n${body}`,
        `POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\ncontent-type: application/json\r\n\r\nzz\r\n${body}\r\n`,
        `GET /${'a'.repeat(100_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
        `GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n${'X-A: b\r\n'.repeat(5000)}\r\n`,
        `POST /v1/completions HTTP/9.9\r\n\r\n`,
        '\u0000\u0001\u0002\r\n\r\n',
      ]),
    };
  }
  const [method, path, template] = f.pick(ROUTES);
  const kind = f.int(6);
  const headers: Record<string, string> = {
    'content-type':
      kind === 5 ? f.pick(['text/plain', 'application/xml', 'application/json; charset=latin1']) : 'application/json',
  };
  if (method === 'GET')
    return {
      method: f.chance(0.8) ? 'GET' : f.pick(['DELETE', 'PUT', 'PATCH']),
      path: f.chance(0.9) ? path : `/${f.string().slice(0, 50)}`,
      headers,
    };
  let body: string;
  if (kind === 0) body = json(f.value());
  else if (kind === 1)
    body = f.pick(['{', '', '{"prompt": "x",}', 'null', '[]', '{"a": 1e999}', '{"__proto__": {"x": 1}}']);
  else body = json(f.mutate(template));
  void index;
  return { method, path, headers, body };
}

/** Writes raw bytes to the server and waits for it to answer or close; the status of its answer (0: none). */
function rawExchange(port: number, raw: string): Promise<number> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    const done = () => {
      clearTimeout(failsafe);
      socket.destroy();
      resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(received)?.[1] ?? 0));
    };
    // Not a timing assertion: a request the server is still waiting to complete is simply abandoned.
    const failsafe = setTimeout(done, 5000);
    socket.on('data', (d) => (received += d));
    socket.on('error', done);
    socket.on('close', done);
    socket.write(raw, () => socket.end());
  });
}
