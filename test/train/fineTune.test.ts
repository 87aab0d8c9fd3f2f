// End-to-end tests of `modelwright train --base` on tiny random Llama-family bases (made by PyTorch): LoRA and full
// fine-tuning lower the loss; the output folder has the base's layout, model.safetensors, a PEFT adapter and a card
// that records the base (a pull's manifest too, for a base with only its ONNX graph); it generates the same greedy
// tokens in our runtime and in transformers.js; PyTorch reads its weights (and the base with the adapter applied as
// PEFT does) to our logits; a LoRA run with dropout killed with SIGKILL resumes to bit-identical files; GPT-2 bases
// train whole by default, as before, and with --method lora the same checks hold on GPT-2's layout (fan_in_fan_out).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { type ModelCard, readModelCard } from '../../server/src/modelFolder/modelCard';
import { parameterShapes } from '../../server/src/engine/model';
import { readSafetensorsFile } from '../../server/src/modelFolder/safetensors';
import { readPeftAdapter } from '../../server/src/train/peftAdapter';
import { generate } from '../../server/src/runtime/generate';
import { loadLanguageModel } from '../../server/src/runtime/languageModel';
import { type FamilyModel, PYTHON, makeFamilyModel } from '../helpers/familyModels';
import { type ModelFolder, makeModelFolder } from '../helpers/makeModelFolder';
import { transformersGreedy } from '../convert/convertHarness';

const cli = path.resolve(__dirname, '../../bin/modelwright.js');
const checkScript = path.resolve(__dirname, '../../scripts/checkFineTunedExport.py');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-finetune-'));
const workspace = path.join(root, 'workspace');
const LOGITS_TOLERANCE = 1e-4;
const common = ['--batch-size', '4', '--context', '32', '--threads', '1', '--seed', '3', '--eval-every', '4'];

let llama: FamilyModel;
let qwen: FamilyModel;
/** A GPT-2 base in our layout (onnx/model.onnx only), its weights scaled up so that LoRA has something to move. */
let gpt2: ModelFolder;
const loraOut = path.join(root, 'lora');
const fullOut = path.join(root, 'full');
const gpt2LoraOut = path.join(root, 'gpt2-lora');

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

/**
 * The validation loss fell from its first measurement to its last. It is measured on fixed windows, so it moves
 * with the weights only; the training batches' losses move with their content too, and the workspace is made of
 * this repository's own files, which change with every commit.
 */
function assertLossFell(card: ModelCard): void {
  const measured = card.curve.flatMap((p) => (p.valLoss === undefined ? [] : [p.valLoss]));
  assert.ok(measured.length >= 2, `the validation loss was measured ${measured.length} times`);
  assert.ok(measured.at(-1)! < measured[0] - 0.1, `validation loss did not fall: ${measured.join(' → ')}`);
}

const checkpointNames = (out: string) => [
  ...readSafetensorsFile(path.join(out, 'checkpoint', 'state.safetensors')).tensors.keys(),
];

before(async () => {
  writeWorkspace();
  [llama, qwen, gpt2] = await Promise.all([
    makeFamilyModel({ family: 'llama', parentDir: root }),
    makeFamilyModel({ family: 'qwen2', parentDir: root }),
    makeModelFolder({ parentDir: root, weightScale: 10 }),
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

/** A `modelwright train` that must fail: its stderr. */
function refusedTrain(args: string[]): string {
  const result = spawnSync(process.execPath, [cli, 'train', '--workspace', workspace, ...args], { encoding: 'utf8' });
  assert.notEqual(result.status, 0, `modelwright train ${args.join(' ')} succeeded`);
  return result.stderr;
}

test('a GPT-2 base is still fine-tuned whole by default; LoRA settings need --method lora and GPT-2 layers', () => {
  const out = path.join(root, 'gpt2-full');
  train(['--base', gpt2.dir, '--out', out, '--steps', '3', ...common]);
  const card = readModelCard(out)!;
  assert.equal(card.parent, path.resolve(gpt2.dir));
  assert.equal(card.base, undefined, 'GPT-2 fine-tuning writes the card it always did');
  assert.ok(checkpointNames(out).includes('transformer.wte.weight'));
  assert.ok(!fs.existsSync(path.join(out, 'adapter')) && !fs.existsSync(path.join(out, 'model.safetensors')));
  const refused = path.join(root, 'gpt2-refused');
  assert.match(
    refusedTrain(['--base', gpt2.dir, '--out', refused, '--steps', '2', '--lora-rank', '4', ...common]),
    /--lora-rank: only for --method lora.*the default for gpt2 bases/,
  );
  const llamaTargets = ['--method', 'lora', '--lora-targets', 'q,v', '--steps', '2'];
  assert.match(
    refusedTrain(['--base', gpt2.dir, '--out', refused, ...llamaTargets, ...common]),
    /"q" is not a layer LoRA adapts in gpt2 models: give some of c_attn, c_proj, c_fc/,
  );
  assert.ok(!fs.existsSync(refused), 'a refused run left its folder');
});

/** The GPT-2 LoRA run: every layer PEFT's GPT-2 convention names, with dropout (the resume test repeats it). */
const gpt2Lora = () => [
  ...['--base', gpt2.dir, '--method', 'lora', '--lora-targets', 'c_attn,c_proj,c_fc', '--lora-dropout', '0.1'],
  ...['--steps', '120', '--learning-rate', '1e-2', ...common, '--eval-every', '8', '--checkpoint-seconds', '0'],
];

test('LoRA on a GPT-2 base lowers the loss and writes the GPT-2 layout, merged safetensors, PEFT adapter and card', async () => {
  train(['--out', gpt2LoraOut, ...gpt2Lora()]);
  for (const file of ['generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model.onnx'])
    assert.ok(fs.existsSync(path.join(gpt2LoraOut, file)), `${file} is missing`);
  // The layout the trainer writes for GPT-2 (the base is one of ours, so its config is that too).
  assert.deepEqual(
    JSON.parse(fs.readFileSync(path.join(gpt2LoraOut, 'config.json'), 'utf8')),
    JSON.parse(fs.readFileSync(path.join(gpt2.dir, 'config.json'), 'utf8')),
  );
  const weights = readSafetensorsFile(path.join(gpt2LoraOut, 'model.safetensors')).tensors;
  assert.deepEqual(
    [...weights].map(([n, t]) => `${n} [${t.shape}]`),
    parameterShapes(gpt2.config).map(([n, shape]) => `${n} [${shape}]`),
    'model.safetensors holds the merged weights in Hugging Face GPT-2 names, Conv1D weights [in, out]',
  );
  const card = readModelCard(gpt2LoraOut)!;
  assertLossFell(card);
  assert.equal(card.parent, path.resolve(gpt2.dir));
  assert.equal(card.base?.folder, path.resolve(gpt2.dir));
  assert.deepEqual(
    card.base?.weights.map((w) => w.path),
    ['onnx/model.onnx'],
  );
  const h = card.hyperparameters;
  assert.deepEqual(
    [h.method, h.modelType, h['lora.rank'], h['lora.alpha'], h['lora.dropout'], h['lora.targetModules']],
    ['lora', 'gpt2', 8, 16, 0.1, 'c_attn,c_proj,c_fc'],
  );
  // A and B of c_attn, attn.c_proj, c_fc and mlp.c_proj in 2 layers: the adapter and its moments, nothing else.
  const names = checkpointNames(gpt2LoraOut);
  assert.equal(names.length, 3 * 2 * 4 * 2);
  assert.ok(
    names.every((n) => n.includes('.lora_')),
    `the checkpoint holds base weights: ${names}`,
  );
  const config = JSON.parse(fs.readFileSync(path.join(gpt2LoraOut, 'adapter', 'adapter_config.json'), 'utf8'));
  assert.deepEqual(
    [config.peft_type, config.fan_in_fan_out, config.target_modules, config.base_model_name_or_path],
    ['LORA', true, ['c_attn', 'c_proj', 'c_fc'], path.resolve(gpt2.dir)],
  );
  const adapter = readPeftAdapter(path.join(gpt2LoraOut, 'adapter'));
  assert.equal(adapter.base.fanInFanOut, true);
  assert.equal(
    h.trainedParameters,
    [...adapter.weights.values()].reduce((n, t) => n + t.data.length, 0),
  );
  const shape = (layer: string, matrix: 'A' | 'B') =>
    adapter.weights.get(`base_model.model.transformer.h.1.${layer}.lora_${matrix}.weight`)?.shape;
  assert.deepEqual(
    [shape('attn.c_attn', 'A'), shape('attn.c_attn', 'B'), shape('mlp.c_proj', 'A'), shape('mlp.c_proj', 'B')],
    [
      [8, 32],
      [96, 8],
      [8, 128],
      [32, 8],
    ],
  );
  // Our runtime loads the folder, and transformers.js generates the same greedy tokens from it.
  const ids = [5, 17, 42, 7, 99];
  const model = await loadLanguageModel(gpt2LoraOut, { intraOpThreads: 1 });
  let ours: number[];
  try {
    ours = (await generate(model, ids, { maxTokens: 8, temperature: 0 })).generatedIds;
  } finally {
    await model.dispose();
  }
  assert.ok(ours.length > 0);
  assert.deepEqual(ours, await transformersGreedy(gpt2LoraOut, 'fp32', ids, ours.length));
});

/** Logits [positions][vocab] of an exported graph (Llama-family or GPT-2) for one sequence, with an empty KV cache. */
async function onnxLogits(dir: string, ids: number[]): Promise<Float32Array[]> {
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const session = await ort.InferenceSession.create(path.join(dir, 'onnx', 'model.onnx'), { intraOpNumThreads: 1 });
  try {
    const n = ids.length;
    const heads = config.num_attention_heads ?? config.n_head;
    const headDim = config.head_dim ?? (config.hidden_size ?? config.n_embd) / heads;
    const kvHeads = config.num_key_value_heads ?? heads;
    const empty = new ort.Tensor('float32', new Float32Array(0), [1, kvHeads, 0, headDim]);
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
      const peftMerged = maxDifference(ours, torch.peft_merged);
      assert.ok(peftMerged <= LOGITS_TOLERANCE, `the adapter merged as PEFT does differs by ${peftMerged}`);
      const unchanged = maxDifference(await onnxLogits(base, ids), torch.peft);
      assert.ok(unchanged > 1e-3, `the adapter changes nothing (${unchanged}): the test would pass vacuously`);
    }
  }
});

test('GPT-2: PyTorch reads the merged weights to our logits; base + PEFT adapter, run or merged, equals them', async () => {
  const ids = [5, 17, 42, 7, 99, 3];
  // The base has only onnx/model.onnx: the script reads its initializers (Hugging Face names, as the trainer does).
  const args = [checkScript, '--out', gpt2LoraOut, '--base', gpt2.dir, '--tokens', ids.join(',')];
  const torch = JSON.parse(
    execFileSync(PYTHON, args, { encoding: 'utf8', env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' } }),
  );
  const ours = await onnxLogits(gpt2LoraOut, ids);
  for (const [label, theirs] of [
    ["PyTorch's logits of model.safetensors", torch.merged],
    ['base + PEFT adapter (lora_B(lora_A(x)) beside each Conv1D)', torch.peft],
    ['base with the adapter merged as PEFT merges it (fan_in_fan_out: (B·A)ᵀ)', torch.peft_merged],
  ]) {
    const difference = maxDifference(ours, theirs);
    assert.ok(difference <= LOGITS_TOLERANCE, `${label} differs from the merged export by ${difference}`);
  }
  const unchanged = maxDifference(await onnxLogits(gpt2.dir, ids), torch.peft);
  assert.ok(unchanged > 1e-3, `the adapter changes nothing (${unchanged}): the test would pass vacuously`);
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

test('a GPT-2 LoRA run with dropout killed with SIGKILL resumes to bit-identical files', async () => {
  const out = path.join(root, 'gpt2-killed');
  const child = await startAndWaitForStep(['--out', out, ...gpt2Lora()], out, 5);
  child.kill('SIGKILL');
  await new Promise((resolve) => child.on('exit', resolve));
  assert.ok(fs.existsSync(path.join(out, '.incomplete')), 'the run ended before it was killed');
  train(['--out', out, '--resume']);
  for (const file of ['model.safetensors', 'adapter/adapter_model.safetensors', 'onnx/model.onnx']) {
    const same = fs.readFileSync(path.join(out, file)).equals(fs.readFileSync(path.join(gpt2LoraOut, file)));
    assert.ok(same, `${file} differs from the uninterrupted run`);
  }
});
