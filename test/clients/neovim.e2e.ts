// A real LSP client: headless Neovim 0.7 (Debian's `neovim`, installed with apt-get when missing) starts the
// built server over stdio, opens a real source file of this repository, and gets an inline completion, a hover
// explanation, the "Explain with Modelwright" code action and a modelwright/explain result (neovim.harness.lua).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeTrainedModel } from '../server/testModels';

const repository = path.resolve(__dirname, '..', '..');
const realFile = path.join(repository, 'server', 'src', 'completion', 'completionPipeline.ts');

/** Makes sure `nvim` (0.7 or newer) is on PATH, installing Debian's package when running as root. */
function ensureNeovim(): string {
  const version = () => spawnSync('nvim', ['--version'], { encoding: 'utf8' }).stdout?.split('\n')[0];
  if (!version()) {
    if (process.getuid?.() !== 0) throw new Error('nvim is missing; install it with: sudo apt-get install -y neovim');
    console.log('# installing neovim with apt-get');
    const install = () =>
      spawnSync('apt-get', ['install', '-y', '-q', 'neovim'], {
        stdio: 'inherit',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    if (install().status !== 0) {
      execFileSync('apt-get', ['update', '-q'], { stdio: 'inherit' });
      if (install().status !== 0) throw new Error('apt-get install neovim failed');
    }
  }
  const found = version();
  const match = /NVIM v(\d+)\.(\d+)/.exec(found ?? '');
  if (!match || Number(match[1]) * 100 + Number(match[2]) < 7)
    throw new Error(`Neovim 0.7 or newer is needed, found ${found}`);
  return found!;
}

describe('Neovim as a real LSP client', { timeout: 180_000 }, () => {
  let root: string;
  const records = new Map<string, Record<string, any>>();

  before(async () => {
    ensureNeovim();
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-neovim-'));
    const models = path.join(root, 'models');
    const bundled = path.join(root, 'bundled');
    fs.mkdirSync(models);
    await makeTrainedModel(path.join(bundled, 'default'));
    const lines = fs.readFileSync(realFile, 'utf8').split('\n');
    const line = lines.findIndex((l) => l.startsWith('    const context = completionContext('));
    const hoverLine = lines.findIndex((l) => l.startsWith('export class CompletionPipeline'));
    assert.ok(line > 0 && hoverLine > 0, 'landmarks in the real file');
    const output = path.join(root, 'results.jsonl');
    const run = spawnSync(
      'nvim',
      ['--headless', '-u', 'NONE', '-i', 'NONE', '-n', '-c', `luafile ${path.join(__dirname, 'neovim.harness.lua')}`],
      {
        encoding: 'utf8',
        timeout: 180_000,
        env: {
          ...process.env,
          MW_NODE: process.execPath,
          MW_SERVER: path.join(repository, 'server', 'out', 'server.js'),
          MW_ROOT: repository,
          MW_FILE: realFile,
          MW_MODELS: models,
          MW_BUNDLED: bundled,
          MW_OUT: output,
          MW_LINE: String(line + 1),
          MW_HOVER_LINE: String(hoverLine + 1), // one line was inserted above it
          MW_HOVER_CHARACTER: '14',
        },
      },
    );
    const text = fs.existsSync(output) ? fs.readFileSync(output, 'utf8') : '';
    for (const row of text.split('\n').filter(Boolean)) {
      const record = JSON.parse(row);
      records.set(record.kind, record);
    }
    if (run.status !== 0 || records.has('failure')) {
      throw new Error(
        `nvim exited with ${run.status ?? run.signal}: ${records.get('failure')?.message ?? ''}\n${run.stdout}\n${run.stderr}\n${text}`,
      );
    }
  });
  after(() => {
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  test('attaches and sees the server become ready with its capabilities', () => {
    const status = records.get('status')!;
    assert.equal(status.ready, true);
    assert.ok(status.capabilities.inlineCompletionProvider !== undefined);
    assert.equal(status.capabilities.hoverProvider, true);
  });

  test('gets an inline completion at the cursor', (t) => {
    const { response, error, ms } = records.get('inlineCompletion')!;
    assert.equal(error ?? null, null);
    assert.equal(response.err ?? null, null, JSON.stringify(response.err));
    const items = response.result.items;
    // One suggestion, or up to three alternatives when the model is unsure (completion.maxSuggestions).
    assert.ok(items.length >= 1 && items.length <= 3, JSON.stringify(response.result));
    for (const item of items) {
      assert.ok(typeof item.insertText === 'string' && item.insertText.trim().length > 0);
      assert.deepEqual(item.range.start, item.range.end);
      assert.equal(item.command?.command, 'modelwright.completionAccepted', 'acceptance is recorded locally');
    }
    assert.equal(new Set(items.map((item: { insertText: string }) => item.insertText)).size, items.length);
    t.diagnostic(`suggestion ${JSON.stringify(items[0].insertText)} in ${ms.toFixed(1)} ms (round trip in Neovim)`);
  });

  test('gets a hover explanation grounded in the workspace', () => {
    const { response } = records.get('hover')!;
    assert.equal(response.err ?? null, null, JSON.stringify(response.err));
    const value: string = response.result.contents.value;
    assert.equal(response.result.contents.kind, 'markdown');
    assert.match(value, /completionPipeline\.ts, line \d+/);
    assert.match(value, /Where its names come from|No definitions or usages/);
    assert.match(value, /bits per token under default/);
  });

  test('gets the code action and a modelwright/explain result', () => {
    const actions = records.get('codeAction')!.response.result;
    assert.equal(actions[0].title, 'Explain with Modelwright');
    assert.equal(actions[0].command.command, 'modelwright.explain');
    const explanation = records.get('explain')!.response.result;
    assert.equal(explanation.model, 'default');
    assert.ok(explanation.text.length > 50);
    assert.ok(explanation.lines.length >= 1);
  });
});
