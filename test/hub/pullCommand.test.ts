// Tests for runPull, the `modelwright pull` command: argument errors (exit 2), a pull that prints its folder
// on stdout and progress on stderr (a line at a time, or one line rewritten on a TTY), one-line failures.
import { describe, type TestContext, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EXIT_CANCELLED, EXIT_USAGE, parsePullArgs, type PullIo, runPull } from '../../server/src/hub/pullCommand';
import { HubServer } from '../helpers/hubServer';

const REPO = 'acme/cli-model';

interface Captured {
  io: PullIo;
  stdout: () => string;
  stderr: () => string;
  writes: string[];
}

function capture(env: NodeJS.ProcessEnv, tty = false, signal?: AbortSignal): Captured {
  let stdout = '';
  const writes: string[] = [];
  const io: PullIo = {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => writes.push(text), isTTY: tty, columns: 200 },
    env,
    signal,
    plainIntervalMs: 0,
  };
  return { io, stdout: () => stdout, stderr: () => writes.join(''), writes };
}

async function hubWithModel(t: TestContext): Promise<{ hub: HubServer; scratch: string }> {
  const hub = await HubServer.start();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-pullcmd-'));
  t.after(async () => {
    await hub.close();
    fs.rmSync(scratch, { recursive: true, force: true });
  });
  hub.addRepo(REPO, {
    files: {
      'config.json': '{"model_type":"gpt2"}',
      'tokenizer.json': '{}',
      'onnx/model_q4.onnx': Buffer.alloc(50_000, 3),
      'onnx/model.onnx': Buffer.alloc(90_000, 4),
    },
  });
  return { hub, scratch };
}

describe('runPull', () => {
  test('parses REPO_ID, --revision, --dtype, --out (also --flag=value)', () => {
    assert.deepEqual(parsePullArgs(['a/b', '--revision', 'v1', '--dtype=q8', '-o', 'dir']), {
      repo: 'a/b',
      revision: 'v1',
      dtype: 'q8',
      out: 'dir',
    });
    assert.equal(parsePullArgs(['--help']), 'help');
    assert.deepEqual(parsePullArgs([]), { error: 'missing REPO_ID (owner/name)' });
    assert.match((parsePullArgs(['a/b', '--dtype', 'fp8']) as { error: string }).error, /fp32, q8, q4/);
    assert.match((parsePullArgs(['a/b', '--revision']) as { error: string }).error, /needs a value/);
    assert.match((parsePullArgs(['a/b', '--force']) as { error: string }).error, /unknown option --force/);
    assert.match((parsePullArgs(['a/b', 'c/d']) as { error: string }).error, /one REPO_ID/);
  });

  test('usage errors exit 2 with one line and the usage; --help prints the usage', async () => {
    const bad = capture({});
    assert.equal(await runPull(['--dtype', 'q2', 'a/b'], bad.io), EXIT_USAGE);
    assert.match(bad.stderr(), /^modelwright pull: --dtype must be one of fp32, q8, q4, not q2\nusage: /);
    const invalid = capture({ HF_HUB_OFFLINE: '1' });
    assert.equal(await runPull(['not a repo'], invalid.io), EXIT_USAGE);
    assert.match(invalid.stderr(), /is not a hub model id/);
    const help = capture({});
    assert.equal(await runPull(['-h'], help.io), 0);
    assert.match(help.stdout(), /^usage: modelwright pull REPO_ID/);
  });

  test('pulls into --out, prints the folder on stdout and progress lines on stderr', async (t) => {
    const { hub, scratch } = await hubWithModel(t);
    const out = path.join(scratch, 'q4');
    const run = capture({ HF_ENDPOINT: hub.url });
    assert.equal(await runPull([REPO, '--dtype', 'q4', '--out', out], run.io), 0, run.stderr());
    assert.equal(run.stdout(), `${path.resolve(out)}\n`);
    assert.ok(fs.existsSync(path.join(out, 'onnx/model_q4.onnx')));
    assert.ok(!fs.existsSync(path.join(out, 'onnx/model.onnx')));
    const lines = run.stderr().trimEnd().split('\n');
    assert.ok(lines.length >= 2);
    assert.match(lines[0], /^[\d.]+ k?B \/ [\d.]+ kB {2}\d+% {2}.+\/s {2}ETA \S+ {2}\[\d\/3\]/);
    assert.match(lines.at(-1)!, new RegExp(`^pulled ${REPO}@[0-9a-f]{12} \\(q4, onnx\\): 3 files`));
    assert.ok(!run.stderr().includes('\r'));
  });

  test('on a TTY the progress line is rewritten in place; the default folder is in the models cache', async (t) => {
    const { hub, scratch } = await hubWithModel(t);
    const run = capture({ HF_ENDPOINT: hub.url, XDG_CACHE_HOME: scratch }, true);
    assert.equal(await runPull([REPO], run.io), 0, run.stderr());
    const folder = path.join(scratch, 'modelwright', 'models', 'acme--cli-model');
    assert.equal(run.stdout(), `${folder}\n`);
    const progress = run.writes.filter((w) => w.startsWith('\r') && w.length > 4);
    assert.ok(progress.length >= 1);
    for (const w of progress) assert.ok(!w.includes('\n') && w.endsWith('\x1b[K'), JSON.stringify(w));
    assert.ok(run.writes.includes('\r\x1b[K'), 'the line is cleared before the summary');
  });

  test('failures are one line and exit 1; offline on a missing folder says what to do', async (t) => {
    const { hub, scratch } = await hubWithModel(t);
    const missing = capture({ HF_ENDPOINT: hub.url });
    assert.equal(await runPull(['acme/nope', '--out', path.join(scratch, 'x')], missing.io), 1);
    assert.equal(missing.stderr().split('\n').length, 2);
    assert.match(missing.stderr(), /^modelwright pull: no model acme\/nope on http:\/\/127\.0\.0\.1:\d+ \(HTTP 404\)/);

    hub.clearRequests();
    const offline = capture({ HF_ENDPOINT: hub.url, HF_HUB_OFFLINE: '1' });
    assert.equal(await runPull([REPO, '--out', path.join(scratch, 'y')], offline.io), 1);
    assert.match(
      offline.stderr(),
      /offline mode \(HF_HUB_OFFLINE\) is on .*no complete pull.*pull it once with the network/,
    );
    assert.equal(hub.requests.length, 0);
  });

  test('a cancelled pull exits 130', async (t) => {
    const { hub, scratch } = await hubWithModel(t);
    const run = capture({ HF_ENDPOINT: hub.url }, false, AbortSignal.abort());
    assert.equal(await runPull([REPO, '--out', path.join(scratch, 'z')], run.io), EXIT_CANCELLED);
    assert.match(run.stderr(), /cancelled/);
  });
});
