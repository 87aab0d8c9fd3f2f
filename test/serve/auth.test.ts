// Tests for the service's security: loopback by default, non-loopback binds refused without an API key, Bearer
// auth with the key (missing or wrong key 401, health probes open), key files, and model names that cannot
// escape the models folder (also through symlinks).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bearerChecker, isLoopbackHost, readApiKeyFile } from '../../server/src/serve/auth';
import { startServer } from '../../server/src/serve/httpServer';
import { isValidModelName } from '../../server/src/protocol';
import { nameForFolder, resolveModelDir } from '../../server/src/serve/modelNames';
import { type ModelFolder, makeModelFolder } from '../helpers/makeModelFolder';
import { request } from './harness';

const KEY = 'test-key-0123456789abcdef';

describe('service security', () => {
  let folder: ModelFolder;
  let scratch: string;

  before(async () => {
    folder = await makeModelFolder({ seed: 41 });
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-auth-'));
  });
  after(() => {
    folder?.remove();
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  test('loopback names and addresses', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1'])
      assert.ok(isLoopbackHost(host), host);
    for (const host of ['0.0.0.0', '::', '192.168.1.10', '10.0.0.1', 'example.com', '128.0.0.1'])
      assert.ok(!isLoopbackHost(host), host);
  });

  test('binding a non-loopback address without an API key is refused before anything listens', async () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.10']) {
      await assert.rejects(startServer({ models: [folder.dir], host }), /API key/);
    }
    await assert.rejects(startServer({ models: [folder.dir], apiKey: 'short' }), /at least 16/);
  });

  test('with an API key: missing or wrong keys get 401, the right one passes, health probes stay open', async () => {
    const server = await startServer({ models: [{ name: 'm', dir: folder.dir }], apiKey: KEY });
    try {
      const body = { model: 'm', prompt: 'x', max_tokens: 2 };
      const missing = await request(`${server.url}/v1/completions`, { body });
      assert.equal(missing.status, 401);
      assert.equal(missing.body.error.type, 'authentication_error');
      assert.equal(missing.headers.get('www-authenticate'), 'Bearer');
      for (const authorization of [
        `Bearer ${KEY}x`,
        `Bearer ${KEY.slice(0, -1)}`,
        KEY,
        `Basic ${KEY}`,
        'Bearer',
        `Bearer ${KEY} extra`,
      ]) {
        const wrong = await request(`${server.url}/v1/completions`, { body, headers: { authorization } });
        assert.equal(wrong.status, 401, authorization);
      }
      for (const route of ['/v1/models', '/v2/models/m', '/metrics']) {
        assert.equal((await request(`${server.url}${route}`)).status, 401, route);
        assert.equal(
          (await request(`${server.url}${route}`, { headers: { authorization: `Bearer ${KEY}` } })).status,
          200,
          route,
        );
      }
      const ok = await request(`${server.url}/v1/completions`, { body, headers: { authorization: `bearer ${KEY}` } });
      assert.equal(ok.status, 200);
      assert.equal((await request(`${server.url}/v2/health/live`)).status, 200);
      assert.equal((await request(`${server.url}/v2/health/ready`)).status, 200);
      // Unauthenticated bodies are not even parsed: a broken body still gets 401, not 400.
      assert.equal((await request(`${server.url}/v1/completions`, { raw: '{broken' })).status, 401);
    } finally {
      await server.close();
    }
  });

  test('bearer checks compare digests (any length of given key is handled)', () => {
    const check = bearerChecker(KEY);
    assert.ok(check(`Bearer ${KEY}`));
    assert.ok(!check(undefined));
    assert.ok(!check(''));
    assert.ok(!check(`Bearer ${'x'.repeat(10_000)}`));
  });

  test('API key files: trimmed, too-short keys refused, readable-by-others warned about', () => {
    const file = path.join(scratch, 'key');
    fs.writeFileSync(file, `${KEY}\n`, { mode: 0o600 });
    const warnings: string[] = [];
    assert.equal(
      readApiKeyFile(file, (w) => warnings.push(w)),
      KEY,
    );
    assert.equal(warnings.length, 0);
    fs.chmodSync(file, 0o644);
    readApiKeyFile(file, (w) => warnings.push(w));
    assert.match(warnings[0], /chmod 600/);
    fs.writeFileSync(file, 'short\n');
    assert.throws(() => readApiKeyFile(file), /at least 16/);
  });

  test('model names cannot leave the models folder', () => {
    for (const name of ['default', 'my-model_2', 'v1.2']) assert.ok(isValidModelName(name), name);
    for (const name of ['', '..', '../x', 'a/b', 'a\\b', '.hidden', 'a..b', '/etc', 'x'.repeat(101), 'a b', 'ünï']) {
      assert.ok(!isValidModelName(name), JSON.stringify(name));
    }
    const models = path.join(scratch, 'models');
    fs.mkdirSync(path.join(models, 'good'), { recursive: true });
    fs.mkdirSync(path.join(scratch, 'secret'));
    fs.symlinkSync(path.join(scratch, 'secret'), path.join(models, 'escape'));
    assert.equal(resolveModelDir(models, 'good'), fs.realpathSync(path.join(models, 'good')));
    assert.throws(() => resolveModelDir(models, '../secret'), /invalid model name/);
    assert.throws(() => resolveModelDir(models, 'escape'), /outside/);
    assert.throws(() => resolveModelDir(models, 'missing'), /not found/);
    assert.equal(nameForFolder('/x/models/default'), 'default');
    assert.ok(isValidModelName(nameForFolder('/tmp/..weird name!')));
  });

  test('models given by name are looked up inside modelsDirectory only', async () => {
    const models = path.join(scratch, 'served');
    fs.mkdirSync(models);
    fs.symlinkSync(folder.dir, path.join(models, 'linked')); // a symlink out of the folder is refused too
    await assert.rejects(startServer({ models: ['linked'], modelsDirectory: models }), /outside/);
    fs.cpSync(folder.dir, path.join(models, 'copy'), { recursive: true });
    const server = await startServer({ models: ['copy'], modelsDirectory: models });
    try {
      assert.deepEqual(
        (await request(`${server.url}/v1/models`)).body.data.map((m: { id: string }) => m.id),
        ['copy'],
      );
      await assert.rejects(server.reload('../copy'), /invalid model name/);
      assert.equal((await server.reload('copy')).version, 2);
    } finally {
      await server.close();
    }
  });
});
