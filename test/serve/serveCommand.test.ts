// Tests for `modelwright serve` as a process: it prints its URL, serves, and on SIGTERM finishes the stream in
// flight before exiting 0; it refuses a non-loopback host without --api-key-file and accepts one with it; with
// --role it serves a deployment role and follows deploys and rollbacks made by another process, the OIP version
// routes numbering the deployment's versions.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gatedDeployCommand } from '../../server/src/cli/gatedDeploy';
import { writeModelCard } from '../../server/src/modelFolder/modelCard';
import { type ModelFolder, makeModelFolder } from '../helpers/makeModelFolder';
import { writeSourcesWorkspace } from '../server/testModels';
import { request, sseData } from './harness';

const CLI = path.resolve(__dirname, '../../server/src/cli.ts');

/** Starts the CLI; resolves with the URL it prints (or rejects with its stderr if it exits first). */
function serve(args: string[]): {
  child: ChildProcess;
  url: Promise<string>;
  exit: Promise<number | null>;
  stderr: () => string;
} {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = new Promise<string>((resolve, reject) => {
    let stdout = '';
    child.stdout!.on('data', (d) => {
      stdout += d;
      const match = /listening on (\S+)/.exec(stdout);
      if (match) resolve(match[1]);
    });
    void exit.then((code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
  });
  url.catch(() => undefined); // tests that expect an early exit await `exit` instead

  return { child, url, exit, stderr: () => stderr };
}

describe('modelwright serve', () => {
  let folder: ModelFolder;
  let scratch: string;

  before(async () => {
    folder = await makeModelFolder({ seed: 71, config: { contextLength: 256, layers: 2, heads: 2, embedding: 64 } });
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-cli-'));
  });
  after(() => {
    folder?.remove();
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  test('serves, and on SIGTERM finishes the stream in flight, then exits 0', async () => {
    const server = serve(['--model', `coder=${folder.dir}`, '--port', '0']);
    try {
      const url = await server.url;
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal((await request(`${url}/v1/models`)).body.data[0].id, 'coder');
      const response = await fetch(`${url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'coder',
          prompt: 'export function',
          max_tokens: 200,
          ignore_eos: true,
          stream: true,
          stream_options: { include_usage: true },
        }),
      });
      const reader = response.body!.getReader();
      let text = new TextDecoder().decode((await reader.read()).value);
      server.child.kill('SIGTERM');
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read())
        text += new TextDecoder().decode(chunk.value);
      const events = sseData(text);
      assert.equal(events.at(-1), '[DONE]');
      const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
      assert.equal(chunks.find((c) => c.choices?.[0]?.finish_reason)?.choices[0].finish_reason, 'length');
      assert.equal(chunks.at(-1).usage.completion_tokens, 200, 'the stream in flight was finished, not cut');
      assert.equal(await server.exit, 0);
      assert.match(server.stderr(), /SIGTERM: finishing requests in flight/);
      await assert.rejects(fetch(`${url}/v2/health/live`));
    } finally {
      server.child.kill('SIGKILL');
    }
  });

  test('a non-loopback host needs --api-key-file', async () => {
    const refused = serve(['--model', folder.dir, '--host', '0.0.0.0', '--port', '0']);
    await assert.rejects(refused.url, /API key/);
    assert.equal(await refused.exit, 1);

    // With a key file the bind is allowed; the test still talks to it over loopback only, and with the key.
    const keyFile = path.join(scratch, 'key');
    fs.writeFileSync(keyFile, 'cli-key-0123456789abcdef\n', { mode: 0o600 });
    const server = serve(['--model', folder.dir, '--host', '127.0.0.1', '--port', '0', '--api-key-file', keyFile]);
    try {
      const url = await server.url;
      assert.equal((await request(`${url}/v1/models`)).status, 401);
      assert.equal(
        (await request(`${url}/v1/models`, { headers: { authorization: 'Bearer cli-key-0123456789abcdef' } })).status,
        200,
      );
      server.child.kill('SIGINT');
      assert.equal(await server.exit, 0);
    } finally {
      server.child.kill('SIGKILL');
    }
  });

  test('usage errors exit 2', async () => {
    const missing = serve([]);
    assert.equal(await missing.exit, 2);
    assert.match(missing.stderr(), /serve needs --model MODELDIR or --role ROLE/);
  });

  test('--role serves the deployed version and follows deploys and rollbacks', async () => {
    const models = path.join(scratch, 'models');
    const workspace = writeSourcesWorkspace(path.join(scratch, 'role-workspace'));
    for (const [name, seed] of [
      ['first', 3],
      ['second', 4],
    ] as const) {
      const made = await makeModelFolder({ seed, config: { contextLength: 64, embedding: 32 }, parentDir: scratch });
      fs.mkdirSync(models, { recursive: true });
      fs.renameSync(made.dir, path.join(models, name));
      const card = { name, kind: 'causal-lm' as const, createdAt: new Date().toISOString(), parameters: 0 };
      writeModelCard(path.join(models, name), { ...card, hyperparameters: {}, curve: [], evaluations: [] });
    }
    const silent = { stdout: { write: () => true }, stderr: { write: () => true } };
    const deploy = (options: Record<string, unknown>) =>
      gatedDeployCommand({ role: 'service', models, evalWorkspace: workspace, force: true, ...options }, silent);

    const nothing = serve(['--role', 'service', '--models', models, '--port', '0']);
    assert.equal(await nothing.exit, 1);
    assert.match(nothing.stderr(), /nothing is deployed as service/);

    assert.equal(await deploy({ model: path.join(models, 'first') }), 0);
    const server = serve(['--role', 'service', '--models', models, '--port', '0']);
    try {
      const url = await server.url;
      const versions = async () => (await request(`${url}/v2/models/service`)).body.versions;
      const waitFor = async (expected: string[]) => {
        for (let i = 0; i < 200 && JSON.stringify(await versions()) !== JSON.stringify(expected); i++)
          await new Promise((resolve) => setTimeout(resolve, 50));
        assert.deepEqual(await versions(), expected, server.stderr());
      };
      assert.deepEqual(await versions(), ['1']);

      assert.equal(await deploy({ model: path.join(models, 'second') }), 0);
      await waitFor(['2']);
      assert.equal((await request(`${url}/v2/models/service/versions/2`)).status, 200);
      assert.equal((await request(`${url}/v2/models/service/versions/1`)).status, 404);
      assert.match(server.stderr(), /service version 2 \("second"\) now serves/);

      assert.equal(await deploy({ rollback: true }), 0);
      await waitFor(['3']);
      assert.match(server.stderr(), /service version 3 \("first"\) now serves/);
      const completion = await request(`${url}/v1/completions`, {
        body: { model: 'service', prompt: 'a', max_tokens: 2 },
      });
      assert.equal(completion.status, 200);
    } finally {
      server.child.kill('SIGTERM');
      await server.exit;
    }
  });
});
