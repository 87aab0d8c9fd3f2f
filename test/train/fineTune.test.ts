// End-to-end tests of `modelwright train --base` on tiny random Llama-family bases (made by PyTorch): LoRA and full
// fine-tuning lower the loss; the output folder has the base's layout, model.safetensors, a PEFT adapter and a card
// that records the base (a pull's manifest too, for a base with only its ONNX graph); it generates the same greedy
// tokens in our runtime and in transformers.js; PyTorch reads its weights (and the base with the adapter applied as
// PEFT does) to our logits; a LoRA run with dropout killed with SIGKILL resumes to bit-identical files; GPT-2 bases
// train whole as before.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { type ModelCard, readModelCard } from '../../server/src/modelFolder/modelCard';
import { readSafetensorsFile } from '../../server/src/modelFolder/safetensors';
import { readPeftAdapter } from '../../server/src/train/peftAdapter';
import { generate } from '../../server/src/runtime/generate';
import { loadLanguageModel } from '../../server/src/runtime/languageModel';
import { type FamilyModel, PYTHON, makeFamilyModel } from '../helpers/familyModels';
import { makeModelFolder } from '../helpers/makeModelFolder';
import { transformersGreedy } from '../convert/convertHarness';

const cli = path.resolve(__dirname, '../../bin/modelwright.js');
const checkScript = path.resolve(__dirname, '../../scripts/checkFineTunedExport.py');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-finetune-'));
const workspace = path.join(root, 'workspace');
const LOGITS_TOLERANCE = 1e-4;
const common = ['--batch-size', '4', '--context', '32', '--threads', '1', '--seed', '3', '--eval-every', '4'];

let llama: FamilyModel;
let qwen: FamilyModel;
const loraOut = path.join(root, 'lora');
const fullOut = path.join(root, 'full');

function writeWorkspace(): void {
  const source = path.resolve(__dirname, '../../server/src');
  for (const file of ['engine/graph.ts', 'engine/autodiff.ts', 'train/dataset.ts', 'eval/editSimilarity.ts']) {
    fs.mkdirSync(path.dirname(path.join(workspace, file)), { recursive: true });
    fs.copyFileSync(path.join(source, file), path.join(workspace, file));
  }
}

function train(args: string[]) {
  const result = spawnSync(process.execPath, [cli, 'train', '--workspace', workspace, ...args], { encoding: 'utf8' });
  assert.equal(result.status, 0, `modelwright train ${args.join(' ')} failed:\n${result.stderr}`);
  return result;
}

/** The training loss fell: the last three curve points average clearly below the first step's loss. */
function assertLossFell(card: ModelCard): void {
  const first = card.curve[0].loss;
  const last = card.curve.slice(-3).map((p) => p.loss);
  const mean = last.reduce((a, b) => a + b, 0) / last.length;
  assert.ok(mean < first - 0.3, `loss did not fall: ${first} → ${last.join(', ')}`);
}

const checkpointNames = (out: string) => [
  ...readSafetensorsFile(path.join(out, 'checkpoint', 'state.safetensors')).tensors.keys(),
];

before(async () => {
  writeWorkspace();
  [llama, qwen] = await Promise.all([
    makeFamilyModel({ family: 'llama', parentDir: root }),
    makeFamilyModel({ family: 'qwen2', parentDir: root }),
  ]);
});

after(() => fs.rmSync(root, { recursive: true, force: true }));

test('LoRA on a llama base lowers the loss and writes the base layout, safetensors, PEFT adapter and card', () => {
  train([
    '--base',
    llama.dir,
    '--out',
    loraOut,
    '--steps',
    '24',
    '--learning-rate',
    '1e-2',
    '--dtype',
    'q8',
    ...common,
  ]);
  for (const file of [
    'config.json',
    'generation_config.json',
    'tokenizer.json',
    'tokenizer_config.json',
    'onnx/model.onnx',
    'onnx/model_quantized.onnx',
    'model.safetensors',
    'adapter/adapter_config.json',
    'adapter/adapter_model.safetensors',
  ])
    assert.ok(fs.existsSync(path.join(loraOut, file)), `${file} is missing`);
  assert.deepEqual(
    JSON.parse(fs.readFileSync(path.join(loraOut, 'config.json'), 'utf8')),
    JSON.parse(fs.readFileSync(path.join(llama.dir, 'config.json'), 'utf8')),
  );
  const card = readModelCard(loraOut)!;
  assertLossFell(card);
  assert.equal(card.hyperparameters.method, 'lora');
  assert.equal(card.hyperparameters['lora.rank'], 8);
  assert.equal(card.hyperparameters['lora.targetModules'], 'q_proj,k_proj,v_proj,o_proj');
  assert.equal(card.base?.folder, path.resolve(llama.dir));
  assert.match(card.base?.weights[0].sha256 ?? '', /^[0-9a-f]{64}$/);
  assert.ok(card.data && card.data.files.length > 0 && card.data.fim, 'the card lacks the data snapshot');
  // The checkpoint holds the adapter and its AdamW moments only: A and B of q, k, v, o in 2 layers, three times.
  const names = checkpointNames(loraOut);
  assert.equal(names.length, 3 * 2 * 4 * 2);
  assert.ok(
    names.every((n) => n.includes('lora_')),
    `the checkpoint holds base weights: ${names}`,
  );
  const adapter = JSON.parse(fs.readFileSync(path.join(loraOut, 'adapter', 'adapter_config.json'), 'utf8'));
  assert.equal(adapter.peft_type, 'LORA');
  assert.equal(adapter.r, 8);
  assert.equal(adapter.lora_alpha, 16);
  const read = readPeftAdapter(path.join(loraOut, 'adapter'));
  assert.deepEqual(read.settings, {
    rank: 8,
    alpha: 16,
    dropout: 0,
    targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
  });
  assert.equal(read.weights.size, 16);
  assert.deepEqual(read.weights.get('base_model.model.model.layers.1.self_attn.o_proj.lora_B.weight')?.shape, [64, 8]);
});

test('full fine-tuning of a qwen2 base lowers the loss and trains every weight', () => {
  train([
    '--base',
    qwen.dir,
    '--out',
    fullOut,
    '--method',
    'full',
    '--steps',
    '16',
    '--learning-rate',
    '1e-3',
    ...common,
  ]);
  const card = readModelCard(fullOut)!;
  assertLossFell(card);
  assert.equal(card.hyperparameters.method, 'full');
  assert.ok(!fs.existsSync(path.join(fullOut, 'adapter')), 'full fine-tuning wrote an adapter');
  const weights = readSafetensorsFile(path.join(fullOut, 'model.safetensors')).tensors;
  assert.ok(checkpointNames(fullOut).includes('adam_m/model.embed_tokens.weight'));
  const base = readSafetensorsFile(path.join(qwen.dir, 'model.safetensors')).tensors;
  assert.deepEqual([...weights.keys()].sort(), [...base.keys()].sort());
  const changed = [...weights].filter(([n, t]) => t.data.some((v, i) => v !== base.get(n)!.data[i]));
  assert.equal(changed.length, weights.size, 'some weights did not change');
});

test('a pulled base with only onnx/model.onnx trains from its initializers; the card records the pull', () => {
  // Our LoRA export as a "pulled" folder: its graph's initializers carry Hugging Face names.
  const pulled = path.join(root, 'pulled-onnx-only');
  fs.cpSync(loraOut, pulled, { recursive: true });
  for (const extra of ['model.safetensors', 'adapter', 'checkpoint', 'modelwright.json', 'onnx/model_quantized.onnx'])
    fs.rmSync(path.join(pulled, extra), { recursive: true, force: true });
  const manifest = {
    format: 1,
    repo: 'example/tiny-llama',
    revision: 'main',
    commit: 'c0ffee'.padEnd(40, '0'),
    files: [
      {
        path: 'onnx/model.onnx',
        size: fs.statSync(path.join(pulled, 'onnx/model.onnx')).size,
        sha256: 'ab'.repeat(32),
      },
    ],
  };
  fs.writeFileSync(path.join(pulled, '.pull.json'), JSON.stringify(manifest));
  const out = path.join(root, 'from-onnx');
  train(['--base', pulled, '--out', out, '--steps', '4', '--lora-rank', '2', ...common]);
  const card = readModelCard(out)!;
  assert.deepEqual(card.base, {
    folder: path.resolve(pulled),
    repo: manifest.repo,
    revision: 'main',
    commit: manifest.commit,
    weights: [{ path: 'onnx/model.onnx', sha256: 'ab'.repeat(32) }],
  });
  const adapter = JSON.parse(fs.readFileSync(path.join(out, 'adapter', 'adapter_config.json'), 'utf8'));
  assert.equal(adapter.base_model_name_or_path, manifest.repo);
  assert.equal(adapter.revision, manifest.commit);
});

test('a GPT-2 base is still fine-tuned whole, and LoRA on it is refused with the way out', async () => {
  const gpt2 = await makeModelFolder({ parentDir: root });
  const out = path.join(root, 'gpt2-full');
  train(['--base', gpt2.dir, '--out', out, '--steps', '3', ...common]);
  const card = readModelCard(out)!;
  assert.equal(card.parent, path.resolve(gpt2.dir));
  assert.equal(card.base, undefined, 'GPT-2 fine-tuning writes the card it always did');
  assert.ok(checkpointNames(out).includes('transformer.wte.weight'));
  const refused = spawnSync(
    process.execPath,
    [cli, 'train', '--workspace', workspace, '--base', gpt2.dir, '--out', path.join(root, 'gpt2-lora')].concat([
      '--method',
      'lora',
      '--steps',
      '2',
      ...common,
    ]),
    { encoding: 'utf8' },
  );
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /LoRA is available for Llama-family bases.*--method full/);
});

/** Logits [positions][vocab] of an exported graph for one sequence, with an empty KV cache. */
async function onnxLogits(dir: string, ids: number[]): Promise<Float32Array[]> {
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const session = await ort.InferenceSession.create(path.join(dir, 'onnx', 'model.onnx'), { intraOpNumThreads: 1 });
  try {
    const n = ids.length;
    const headDim = config.head_dim ?? config.hidden_size / config.num_attention_heads;
    const empty = new ort.Tensor('float32', new Float32Array(0), [1, config.num_key_value_heads, 0, headDim]);
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, n]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]),
      position_ids: new ort.Tensor(
        'int64',
        BigInt64Array.from({ length: n }, (_, i) => BigInt(i)),
        [1, n],
      ),
    };
    for (const name of session.inputNames) if (name.startsWith('past_key_values')) feeds[name] = empty;
    const logits = (await session.run(feeds)).logits.data as Float32Array;
    const v = config.vocab_size;
    return Array.from({ length: n }, (_, i) => logits.subarray(i * v, (i + 1) * v));
  } finally {
    await session.release();
  }
}

function maxDifference(ours: Float32Array[], theirs: number[][]): number {
  let max = 0;
  ours.forEach((row, i) => row.forEach((v, j) => (max = Math.max(max, Math.abs(v - theirs[i][j])))));
  return max;
}

test('PyTorch reads the merged model.safetensors to our logits, and base + PEFT adapter equals the merge', async () => {
  const ids = llama.reference.token_ids;
  for (const [out, base] of [
    [loraOut, llama.dir],
    [fullOut, undefined],
  ] as const) {
    const args = [checkScript, '--out', out, '--tokens', ids.join(','), ...(base ? ['--base', base] : [])];
    const torch = JSON.parse(
      execFileSync(PYTHON, args, { encoding: 'utf8', env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' } }),
    );
    const ours = await onnxLogits(out, ids);
    const merged = maxDifference(ours, torch.merged);
    assert.ok(
      merged <= LOGITS_TOLERANCE,
      `${path.basename(out)}: PyTorch's logits of model.safetensors differ by ${merged}`,
    );
    if (base) {
      const peft = maxDifference(ours, torch.peft);
      assert.ok(peft <= LOGITS_TOLERANCE, `base + PEFT adapter differs from the merged export by ${peft}`);
      const unchanged = maxDifference(await onnxLogits(base, ids), torch.peft);
      assert.ok(unchanged > 1e-3, `the adapter changes nothing (${unchanged}): the test would pass vacuously`);
    }
  }
});

test('the LoRA export generates the same greedy tokens in our runtime and in transformers.js', async () => {
  const ids = llama.reference.token_ids;
  const maxTokens = 12;
  const model = await loadLanguageModel(loraOut, { intraOpThreads: 1 });
  let ours: number[];
  try {
    ours = (await generate(model, ids, { maxTokens, temperature: 0 })).generatedIds;
  } finally {
    await model.dispose();
  }
  const theirs = await transformersGreedy(loraOut, 'fp32', ids, maxTokens);
  assert.deepEqual(ours, theirs);
  assert.ok(ours.length > 0);
});

/** Starts a training run and resolves once its checkpoint has reached `step`. */
async function startAndWaitForStep(args: string[], out: string, step: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [cli, 'train', '--workspace', workspace, ...args], { stdio: 'ignore' });
  const checkpoint = path.join(out, 'checkpoint', 'state.safetensors');
  for (let i = 0; i < 3000; i++) {
    await new Promise((r) => setTimeout(r, 10));
    if (!fs.existsSync(checkpoint)) continue;
    try {
      const header = fs.readFileSync(checkpoint);
      const length = Number(header.readBigUInt64LE(0));
      const metadata = JSON.parse(header.subarray(8, 8 + length).toString()).__metadata__;
      if (JSON.parse(metadata.run).step >= step) return child;
    } catch {
      // read while being replaced: try again
    }
  }
  child.kill('SIGKILL');
  throw new Error('training never reached the step');
}

test('a LoRA run with dropout killed with SIGKILL resumes to bit-identical files', async () => {
  const run = [
    ...['--base', llama.dir, '--steps', '150', '--learning-rate', '1e-2', '--lora-dropout', '0.1'],
    ...['--lora-targets', 'q,v,down', '--lora-rank', '4', ...common, '--checkpoint-seconds', '0'],
  ];
  const reference = path.join(root, 'uninterrupted');
  train(['--out', reference, ...run]);
  const out = path.join(root, 'killed');
  const child = await startAndWaitForStep(['--out', out, ...run], out, 5);
  child.kill('SIGKILL');
  await new Promise((resolve) => child.on('exit', resolve));
  assert.ok(fs.existsSync(path.join(out, '.incomplete')), 'the run ended before it was killed');
  train(['--out', out, '--resume']);
  for (const file of ['model.safetensors', 'adapter/adapter_model.safetensors', 'onnx/model.onnx']) {
    const same = fs.readFileSync(path.join(out, file)).equals(fs.readFileSync(path.join(reference, file)));
    assert.ok(same, `${file} differs from the uninterrupted run`);
  }
  assert.equal(readModelCard(out)?.hyperparameters['lora.targetModules'], 'q_proj,v_proj,down_proj');
});
