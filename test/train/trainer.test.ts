// End-to-end tests of `modelwright train`: a model folder with card and checkpoint comes out; a run killed with
// SIGKILL (marked incomplete meanwhile) and resumed, or stopped with Ctrl-C (SIGINT) and resumed, ends with
// exactly the weights of an uninterrupted run with --threads 1; and the folder works with `eval` and `complete`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readModelCard } from '../../server/src/modelFolder/modelCard';

const cli = path.resolve(__dirname, '../../bin/modelwright.js');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-trainer-'));
const workspace = path.join(root, 'workspace');
const common = [
  '--preset',
  'tiny',
  '--steps',
  '14',
  '--batch-size',
  '4',
  '--context',
  '32',
  '--eval-every',
  '5',
  '--threads',
  '1',
  '--seed',
  '3',
];

function writeWorkspace(): void {
  const source = path.resolve(__dirname, '../../server/src');
  for (const file of [
    'engine/graph.ts',
    'engine/autodiff.ts',
    'engine/model.ts',
    'train/dataset.ts',
    'eval/editSimilarity.ts',
  ]) {
    fs.mkdirSync(path.dirname(path.join(workspace, file)), { recursive: true });
    fs.copyFileSync(path.join(source, file), path.join(workspace, file));
  }
  fs.writeFileSync(path.join(workspace, '.env'), 'API_TOKEN=do-not-train-on-me\n');
}

function run(args: string[]) {
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  assert.equal(result.status, 0, `modelwright ${args.join(' ')} failed:\n${result.stderr}`);
  return result;
}

/** Starts a training run and resolves once its checkpoint has reached `step`. */
async function startAndWaitForStep(out: string, step: number): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [cli, 'train', '--workspace', workspace, '--out', out, ...common, '--checkpoint-seconds', '0'],
    { stdio: 'ignore' },
  );
  const checkpoint = path.join(out, 'checkpoint', 'state.safetensors');
  for (let i = 0; i < 600; i++) {
    await new Promise((r) => setTimeout(r, 100));
    if (!fs.existsSync(checkpoint)) continue;
    const header = fs.readFileSync(checkpoint);
    const length = Number(header.readBigUInt64LE(0));
    const metadata = JSON.parse(header.subarray(8, 8 + length).toString()).__metadata__;
    if (JSON.parse(metadata.run).step >= step) return child;
  }
  child.kill('SIGKILL');
  throw new Error('training never reached the step');
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
const weights = (dir: string) => fs.readFileSync(path.join(dir, 'onnx', 'model.onnx'));

writeWorkspace();
const reference = path.join(root, 'uninterrupted');

test('train writes a model folder with its card, checkpoint and exclusions', () => {
  run(['train', '--workspace', workspace, '--out', reference, ...common]);
  for (const file of [
    'config.json',
    'generation_config.json',
    'tokenizer.json',
    'tokenizer_config.json',
    'onnx/model.onnx',
    'modelwright.json',
    'checkpoint/state.safetensors',
  ]) {
    assert.ok(fs.existsSync(path.join(reference, file)), `${file} is missing`);
  }
  const card = readModelCard(reference)!;
  assert.equal(card.training?.steps, 14);
  assert.equal(card.training?.finished, true);
  assert.ok(
    card.curve.some((p) => p.valLoss !== undefined),
    'the curve records validation loss',
  );
  assert.ok(
    card.data!.files.some((f) => f.split === 'validation') && card.data!.files.some((f) => f.split === 'train'),
  );
  assert.deepEqual(card.data!.excluded.find((e) => e.path === '.env')?.reason, 'secret file name');
  assert.ok(!card.data!.files.some((f) => f.path === '.env'));
});

test('a run killed with SIGKILL resumes to exactly the uninterrupted weights', async () => {
  const out = path.join(root, 'killed');
  const child = await startAndWaitForStep(out, 6);
  child.kill('SIGKILL');
  await exited(child);
  assert.ok(!fs.existsSync(path.join(out, 'onnx', 'model.onnx')), 'a killed run exports nothing');
  assert.ok(fs.existsSync(path.join(out, '.incomplete')), 'a killed run is marked incomplete');
  const refused = spawnSync(process.execPath, [cli, 'eval', out, '--workspace', workspace], { encoding: 'utf8' });
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /unfinished training run/);
  run(['train', '--workspace', workspace, '--out', out, '--resume']);
  assert.equal(readModelCard(out)?.training?.steps, 14);
  assert.ok(weights(out).equals(weights(reference)), 'resumed weights differ from the uninterrupted run');
});

test('Ctrl-C saves a usable model and a checkpoint; resuming finishes the run', async () => {
  const out = path.join(root, 'interrupted');
  const child = await startAndWaitForStep(out, 4);
  child.kill('SIGINT');
  assert.equal(await exited(child), 0);
  const card = readModelCard(out)!;
  assert.equal(card.training?.finished, false);
  assert.ok(card.training!.steps < 14);
  run(['train', '--workspace', workspace, '--out', out, '--resume']);
  assert.ok(weights(out).equals(weights(reference)), 'resumed weights differ from the uninterrupted run');
});

test('a time budget plans the schedule from the measured speed and the run follows it', () => {
  const out = path.join(root, 'timed');
  run([
    'train',
    '--workspace',
    workspace,
    '--out',
    out,
    '--preset',
    'tiny',
    '--minutes',
    '0.05',
    '--batch-size',
    '4',
    '--context',
    '32',
    '--threads',
    '1',
  ]);
  const card = readModelCard(out)!;
  assert.ok(card.training!.steps > 3, `only ${card.training!.steps} steps`);
  assert.ok(Number(card.hyperparameters.totalSteps) >= card.training!.steps, 'the schedule covers the run');
  assert.equal(card.training?.finished, true);
});

test('eval --json reports the documented fields on held-out files only', () => {
  const result = run(['eval', reference, '--workspace', workspace, '--samples', '5', '--json']);
  const metrics = JSON.parse(result.stdout);
  assert.deepEqual(Object.keys(metrics).sort(), [
    'baseline',
    'bitsPerByte',
    'editSimilarity',
    'exactMatch',
    'filesDescription',
    'filesDigest',
    'heldOutFiles',
    'latencyMs',
    'lossBytes',
    'lossFiles',
    'model',
    'perplexity',
    'samples',
    'valLoss',
  ]);
  const heldOut = readModelCard(reference)!.data!.files.filter((f) => f.split === 'validation').length;
  assert.equal(metrics.heldOutFiles, heldOut, 'on its own workspace a model is evaluated on its held-out files');
  assert.ok(
    metrics.valLoss > 0 && Math.abs(metrics.perplexity - Math.exp(metrics.valLoss)) < 1e-6 * metrics.perplexity,
  );
  assert.ok(metrics.latencyMs.p50 > 0 && metrics.latencyMs.p95 >= metrics.latencyMs.p50);
  assert.ok(metrics.samples > 0 && metrics.samples <= 5);
  const evaluation = readModelCard(reference)!.evaluations.at(-1)!;
  assert.equal(evaluation.valLoss, metrics.valLoss, 'the evaluation is recorded in the model card');
});

test('complete --json reports the completion and its token counts, and cuts a long prompt from the left', () => {
  const result = run([
    'complete',
    '--model',
    reference,
    '--prompt',
    'export function ',
    '--greedy',
    '--max-tokens',
    '5',
    '--json',
  ]);
  const completion = JSON.parse(result.stdout);
  assert.equal(typeof completion.text, 'string');
  assert.ok(completion.generatedTokens >= 1 && completion.generatedTokens <= 5);
  const long = 'const value = 1;\n'.repeat(200);
  const cut = JSON.parse(
    run(['complete', '--model', reference, '--prompt', long, '--greedy', '--max-tokens', '4', '--json']).stdout,
  );
  const context = JSON.parse(fs.readFileSync(path.join(reference, 'config.json'), 'utf8')).n_positions;
  assert.ok(cut.promptTokens + 4 <= context, `${cut.promptTokens} prompt tokens exceed the context of ${context}`);
});

test.after(() => fs.rmSync(root, { recursive: true, force: true }));
