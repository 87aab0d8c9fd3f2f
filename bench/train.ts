// `npm run bench:train`: our ONNX training engine against PyTorch on CPU, side by side in one run, on the same
// model (4 layers, 4 heads, d 128, context 128, vocab 512, batch 16, AdamW), the same token windows and the same
// learning-rate schedule. Prints tokens/s of each, the ratios and validation loss; last line `train-speed-ratio: R`,
// R against the faster of the two PyTorch runs.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { type GptConfig, initialParameters } from '../server/src/engine/model';
import { defaultAdamW, learningRateAt } from '../server/src/engine/optimizer';
import { loadTokenizer } from '../server/src/runtime/tokenizer';
import { specialTokens } from '../server/src/tokenizer/specialTokens';
import { trainBpe } from '../server/src/train/bpeTrainer';
import { writeTokenizerFiles } from '../server/src/tokenizer/tokenizerFiles';
import { collectCorpus, splitByFile } from '../server/src/workspace/corpus';
import { type Batch, concatenateDocuments, trainingBatch, validationBatches } from '../server/src/train/dataset';
import { StepRunner, freshState } from '../server/src/train/trainStep';
import { median } from '../server/src/util/statistics';
import { llamaLoraBench } from './trainLlama';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '150' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    corpus: { type: 'string', default: path.resolve(__dirname, '..') },
    untimed: { type: 'string', default: '3' },
    profile: { type: 'boolean', default: false },
    family: { type: 'string', default: 'gpt2' },
    batch: { type: 'string', default: '1' },
  },
});
const steps = Number(values.steps);
const threads = Number(values.threads);
const untimed = Number(values.untimed);
const config: GptConfig = { vocabSize: 512, contextLength: 128, layers: 4, heads: 4, embedding: 128 };
const batchSize = 16;
const time = 128;
const seed = 1234;
const schedule = { learningRate: 1e-3, warmupSteps: 10, totalSteps: steps, minLearningRateRatio: 0.1 };
const python = '/usr/bin/python3';

function ensureTorch(): void {
  const probe = spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' });
  if (probe.status === 0) return;
  const install = 'apt-get install -y python3-torch libopenblas0-pthread';
  if (process.getuid?.() === 0) {
    console.log(`installing PyTorch for the comparison: ${install}`);
    execFileSync('bash', ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive ${install}`], {
      stdio: 'inherit',
    });
  } else {
    console.error(`the benchmark compares against Debian's PyTorch; install it with: sudo ${install}`);
    process.exit(1);
  }
}

/** The windows both trainers see, in the layout bench/torchTrain.py reads. */
function writeBatches(file: string, train: Batch[], validation: Batch[]): void {
  const row = time + 1;
  const header = [steps, batchSize, time, config.vocabSize, validation.length, seed];
  const out = new Int32Array(header.length + (train.length + validation.length) * batchSize * row);
  out.set(header);
  let at = header.length;
  for (const b of [...train, ...validation]) {
    for (let r = 0; r < batchSize; r++) {
      for (let t = 0; t < time; t++) out[at + t] = Number(b.inputs[r * time + t]);
      out[at + time] = Number(b.targets[r * time + time - 1]);
      at += row;
    }
  }
  fs.writeFileSync(file, out);
}

async function main(): Promise<void> {
  ensureTorch();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-bench-'));
  try {
    const corpus = await collectCorpus(values.corpus!);
    const split = splitByFile(corpus.files, { seed });
    writeTokenizerFiles(
      work,
      trainBpe(
        split.train.map((f) => f.text),
        { vocabSize: config.vocabSize },
      ),
      { modelMaxLength: time },
    );
    const tokenizer = await loadTokenizer(work);
    const stream = (files: typeof split.train) =>
      concatenateDocuments(
        files.map((f) => tokenizer.encode(f.text)),
        tokenizer.eosTokenId ?? specialTokens.endOfText,
      );
    const trainStream = stream(split.train);
    const validation = validationBatches(stream(split.validation), batchSize, time, 8);
    const batches = Array.from({ length: steps }, (_, s) => trainingBatch(trainStream, batchSize, time, seed, s));
    const dataFile = path.join(work, 'batches.bin');
    writeBatches(dataFile, batches, validation);
    console.log(
      `corpus: ${corpus.files.length} files, ${trainStream.length} training tokens; ${steps} steps of ${batchSize}×${time} tokens, ${threads} threads, spinning ${process.env.MODELWRIGHT_SPINNING === 'off' ? 'off' : 'on'}`,
    );

    const profilePrefix = values.profile ? path.join(work, 'profile') : undefined;
    const runner = await StepRunner.create(
      config,
      { batch: batchSize, time },
      defaultAdamW,
      freshState(config, initialParameters(config, seed)),
      {
        intraOpThreads: threads,
        // PyTorch's OpenMP pool spin-waits between ops whatever the load, so ours does too, unless told otherwise.
        spinning: process.env.MODELWRIGHT_SPINNING === 'off' ? 'off' : 'on',
        profileFilePrefix: profilePrefix,
      },
    );
    const stepMs: number[] = [];
    let loss = NaN;
    for (let s = 0; s < steps; s++) {
      const t0 = performance.now();
      loss = (await runner.step(batches[s], s + 1, learningRateAt(schedule, s))).loss;
      if (s >= untimed) stepMs.push(performance.now() - t0);
    }
    const ours = {
      tokensPerSecond: (batchSize * time) / (median(stepMs) / 1000),
      stepMsMedian: median(stepMs),
      valLoss: await runner.validationLoss(validation),
      finalTrainLoss: loss,
    };
    await runner.dispose();

    if (profilePrefix) printProfile(work);

    // PyTorch twice: with OpenBLAS as Debian installs it, and with OpenBLAS told which kernels suit this CPU
    // (0.3.21 does not recognise recent Xeons and falls back to SSE3 kernels, several times slower).
    const pytorch = (coretype: string) => {
      const args = [
        path.join(__dirname, 'torchTrain.py'),
        '--data',
        dataFile,
        '--threads',
        String(threads),
        '--layers',
        '4',
        '--heads',
        '4',
        '--embd',
        '128',
      ];
      args.push(
        '--lr',
        '1e-3',
        '--warmup',
        '10',
        '--min-lr-ratio',
        '0.1',
        '--untimed',
        String(untimed),
        '--blas-coretype',
        coretype,
      );
      const env: NodeJS.ProcessEnv = { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' };
      if (coretype === 'none') delete env.OPENBLAS_CORETYPE;
      const result = spawnSync(python, args, { encoding: 'utf8', env });
      if (result.status !== 0) throw new Error(`PyTorch run failed:\n${result.stderr}`);
      return JSON.parse(result.stdout.trim().split('\n').at(-1)!);
    };
    const installed = pytorch('none');
    const forced = pytorch('auto');

    const rows: string[][] = [
      ['', 'modelwright (onnxruntime)', `pytorch ${forced.torch} forced BLAS kernels`, 'pytorch as installed'],
      [
        'tokens/s (median step)',
        ours.tokensPerSecond.toFixed(0),
        Number(forced.tokensPerSecond).toFixed(0),
        Number(installed.tokensPerSecond).toFixed(0),
      ],
      [
        'step ms (median)',
        ours.stepMsMedian.toFixed(1),
        Number(forced.stepMsMedian).toFixed(1),
        Number(installed.stepMsMedian).toFixed(1),
      ],
      [
        `train loss at step ${steps}`,
        ours.finalTrainLoss.toFixed(4),
        Number(forced.finalTrainLoss).toFixed(4),
        Number(installed.finalTrainLoss).toFixed(4),
      ],
      [
        `validation loss at step ${steps}`,
        ours.valLoss.toFixed(4),
        Number(forced.valLoss).toFixed(4),
        Number(installed.valLoss).toFixed(4),
      ],
    ];
    for (const [a, ...rest] of rows) console.log(`${a.padEnd(28)} ${rest.map((c) => c.padStart(28)).join(' ')}`);
    console.log(`BLAS: forced kernels ${forced.blas}; as installed ${installed.blas}`);
    // The headline compares with the faster PyTorch: forcing kernels helps where OpenBLAS misreads the CPU and can
    // hurt where it reads it right (an AVX-512 EPYC runs Cooperlake kernels as installed, Haswell ones when forced).
    const fastest = Math.max(installed.tokensPerSecond, forced.tokensPerSecond);
    console.log(`ratio against PyTorch as installed: ${(ours.tokensPerSecond / installed.tokensPerSecond).toFixed(2)}`);
    console.log(
      `ratio against PyTorch with forced BLAS kernels: ${(ours.tokensPerSecond / forced.tokensPerSecond).toFixed(2)}`,
    );
    console.log(`train-speed-ratio: ${(ours.tokensPerSecond / fastest).toFixed(2)}`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Time per op type over the timed steps, from onnxruntime's profile (written when the session is released). */
function printProfile(dir: string): void {
  const file = fs.readdirSync(dir).find((f) => f.startsWith('profile') && f.endsWith('.json'));
  if (!file) return;
  const events: { cat?: string; name: string; dur: number; args?: { op_name?: string } }[] = JSON.parse(
    fs.readFileSync(path.join(dir, file), 'utf8'),
  );
  const runs = events.filter((e) => e.name === 'model_run');
  const byOp = new Map<string, number>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const op = e.args?.op_name ?? '?';
    byOp.set(op, (byOp.get(op) ?? 0) + e.dur);
  }
  const total = [...byOp.values()].reduce((a, b) => a + b, 0);
  console.log(`profile over ${runs.length} runs (profiling slows each step): kernel time per op type`);
  for (const [op, us] of [...byOp].sort((a, b) => b[1] - a[1]).slice(0, 16)) {
    console.log(
      `  ${op.padEnd(22)} ${(us / runs.length / 1000).toFixed(1).padStart(7)} ms/step ${((100 * us) / total).toFixed(1).padStart(5)}%`,
    );
  }
  console.log(`  ${'all ops'.padEnd(22)} ${(total / runs.length / 1000).toFixed(1).padStart(7)} ms/step`);
}

const run =
  values.family === 'llama'
    ? () =>
        llamaLoraBench({
          steps: Math.min(steps, 8),
          untimed: Math.min(untimed, 2),
          threads,
          batch: Number(values.batch),
          profile: values.profile,
        })
    : main;
run().catch((e) => {
  console.error(e);
  process.exit(1);
});
