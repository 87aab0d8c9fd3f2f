// Tests `modelwright complete` as the editor's pipeline: its stop rules end a completion (--max-lines, the
// end of a block) and say which fired, and piped output (or NO_COLOR) carries no ANSI escape codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { usesAnsi } from '../../server/src/cli/options';
import { runCli } from './run';

const model = path.resolve(__dirname, '../../models/default');
const prompt = 'export function clamp(value: number, low: number, high: number): number {\n';

test('piped output has no escape codes', () => {
  const result = runCli(['complete', '--model', model, '--prompt', prompt, '--greedy', '--max-tokens', '16']);
  assert.equal(result.status, 0, result.stderr);
  assert.ok(result.stdout.startsWith(prompt));
  assert.ok(!result.stdout.includes('\x1b'), JSON.stringify(result.stdout));
});

test('NO_COLOR or a pipe turns escape codes off; a TTY without NO_COLOR has them', () => {
  assert.equal(usesAnsi({ isTTY: true }, {}), true);
  assert.equal(usesAnsi({ isTTY: true }, { NO_COLOR: '1' }), false);
  assert.equal(usesAnsi({ isTTY: false }, {}), false);
});

test('stop rules apply: --max-lines bounds the completion and the rule that fired is reported', () => {
  for (const sampling of [['--greedy'], ['--temperature', '0.8', '--seed', '4']]) {
    const result = runCli([
      'complete',
      '--model',
      model,
      '--prompt',
      prompt,
      '--max-lines',
      '2',
      '--max-tokens',
      '64',
      '--json',
      ...sampling,
    ]);
    assert.equal(result.status, 0, result.stderr);
    const completion = JSON.parse(result.stdout);
    assert.ok(completion.text.split('\n').length <= 2, `${sampling}: ${JSON.stringify(completion.text)}`);
    assert.ok(['maxLines', 'endOfBlock', 'dedent', 'repeatsSuffix', 'eos', 'length'].includes(completion.stop));
    assert.ok(completion.promptTokens > 0 && completion.generatedTokens > 0);
  }
});

test('sampling with a seed is reproducible', () => {
  const args = ['complete', '--model', model, '--prompt', prompt, '--temperature', '1', '--seed', '7', '--json'];
  assert.equal(runCli(args).stdout, runCli(args).stdout);
});
