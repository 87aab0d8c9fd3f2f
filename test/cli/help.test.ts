// Tests the command line's help as a user meets it: per-command help with descriptions and defaults on stdout
// and exit 0 (--help and -h), --version, a suggestion for a mistyped command, the budget shown as required
// (one of --minutes and --steps), complete's sampling options, and the reproducibility guarantee stated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCli } from './run';

test('train --help and -h print the options with descriptions and defaults on stdout and exit 0', () => {
  for (const flag of ['--help', '-h']) {
    const result = runCli(['train', flag]);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr, '');
    assert.match(result.stdout, /\(--minutes N \| --steps N/, 'the budget is shown as required, one of two');
    assert.match(result.stdout, /--batch-size <n>\s+sequences per step \(default: 16\)/);
    assert.match(result.stdout, /--force/);
  }
});

test('help states the reproducibility guarantee: bit-identical with --threads 1 only', () => {
  const help = runCli(['train', '--help']).stdout.replace(/\s+/g, ' ');
  assert.match(help, /with --threads 1 the same options give bit-identical weights/);
  assert.match(help, /within float rounding/);
});

test('--version prints the package version; no arguments print the help', () => {
  const version = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../package.json'), 'utf8')).version;
  const result = runCli(['--version']);
  assert.equal(result.status, 0);
  assert.equal(result.stdout.trim(), version);
  const bare = runCli([]);
  assert.equal(bare.status, 0);
  for (const command of ['train', 'eval', 'complete', 'serve', 'deploy', 'pull', 'convert', 'lsp'])
    assert.match(bare.stdout, new RegExp(`\\n  ${command} `), `${command} is listed`);
});

test('a mistyped command says it is unknown and suggests the right one, exit 2', () => {
  const result = runCli(['trian']);
  assert.equal(result.status, 2);
  assert.match(result.stderr, /unknown command 'trian'/);
  assert.match(result.stderr, /Did you mean train\?/);
  const option = runCli(['train', '--workspace', '.', '--out', 'x', '--step', '3']);
  assert.equal(option.status, 2);
  assert.match(option.stderr, /Did you mean --steps\?/);
});

test('complete --help documents the sampling options and their defaults', () => {
  const result = runCli(['complete', '--help']);
  assert.equal(result.status, 0);
  assert.match(result.stdout, /--temperature <x>.*\(default: 0\.7\)/s);
  assert.match(result.stdout, /--top-p <x>.*\(default: 0\.95\)/s);
  assert.match(result.stdout, /--seed <n>/);
  assert.match(result.stdout, /--greedy/);
});

test('usage errors exit 2 with the reason; a bad number names the option', () => {
  const missing = runCli(['train', '--workspace', '.', '--out', 'nowhere']);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /give a budget: --minutes N or --steps N/);
  const bad = runCli(['train', '--workspace', '.', '--out', 'nowhere', '--steps', 'many']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--steps <n>.*not a number/);
  assert.ok(!fs.existsSync('nowhere'));
});

test('pull and lsp keep their own help and checks', () => {
  const pull = runCli(['pull', '--help']);
  assert.equal(pull.status, 0);
  assert.match(pull.stdout, /usage: modelwright pull REPO_ID/);
  const lsp = runCli(['lsp']);
  assert.equal(lsp.status, 2);
  assert.match(lsp.stderr, /lsp needs a transport/);
});
