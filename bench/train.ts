// `npm run bench:train`: our ONNX training engine against PyTorch on CPU, side by side in one run, on the same
// model (4 layers, 4 heads, d 128, context 128, vocab 512, batch 16, AdamW), the same token windows and the same
// learning-rate schedule. Prints tokens/s of each, the ratio and validation loss; last line `train-speed-ratio: R`.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { GptConfig, initialParameters } from '../server/src/engine/model';
import { defaultAdamW, learningRateAt } from '../server/src/engine/optimizer';
import { loadTokenizer } from '../server/src/runtime/tokenizer';
import { specialTokens, trainBpe, writeTokenizerFiles } from '../server/src/train/bpe';
import { collectCorpus, splitByFile } from '../server/src/train/corpus';
import { Batch, concatenateDocuments, trainingBatch, validationBatches } from '../server/src/train/dataset';
import { StepRunner, freshState } from '../server/src/train/trainStep';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '150' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    corpus: { type: 'string', default: path.resolve(__dirname, '..') },
    untimed: { type: 'string', default: '3' },
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
    execFileSync('bash', ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive ${install}`], { stdio: 'inherit' });
  } else {
    console.error(`the benchmark compares against Debian's PyTorch; install it with: sudo ${install}`);
    process.exit(1);
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
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
    await writeTokenizerFiles(work, trainBpe(split.train.map((f) => f.text), { vocabSize: config.vocabSize }), { modelMaxLength: time });
    const tokenizer = await loadTokenizer(work);
    const stream = (files: typeof split.train) => concatenateDocuments(files.map((f) => tokenizer.encode(f.text)), tokenizer.eosTokenId ?? specialTokens.endOfText);
    const trainStream = stream(split.train);
    const validation = validationBatches(stream(split.validation), batchSize, time, 8);
    const batches = Array.from({ length: steps }, (_, s) => trainingBatch(trainStream, batchSize, time, seed, s));
    const dataFile = path.join(work, 'batches.bin');
    writeBatches(dataFile, batches, validation);
    console.log(`corpus: ${corpus.files.length} files, ${trainStream.length} training tokens; ${steps} steps of ${batchSize}×${time} tokens, ${threads} threads`);

    const runner = await StepRunner.create(config, { batch: batchSize, time }, defaultAdamW, freshState(config, initialParameters(config, seed)), threads);
    const stepMs: number[] = [];
    let loss = NaN;
    for (let s = 0; s < steps; s++) {
      const t0 = performance.now();
      loss = (await runner.step(batches[s], s + 1, learningRateAt(schedule, s))).loss;
      if (s >= untimed) stepMs.push(performance.now() - t0);
    }
    const ours = { tokensPerSecond: (batchSize * time) / (median(stepMs) / 1000), stepMsMedian: median(stepMs), valLoss: await runner.validationLoss(validation), finalTrainLoss: loss };
    await runner.dispose();

    const torchRun = spawnSync(
      python,
      [path.join(__dirname, 'torchTrain.py'), '--data', dataFile, '--threads', String(threads), '--layers', '4', '--heads', '4', '--embd', '128', '--lr', '1e-3', '--warmup', '10', '--min-lr-ratio', '0.1', '--untimed', String(untimed)],
      { encoding: 'utf8', env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' } },
    );
    if (torchRun.status !== 0) throw new Error(`PyTorch run failed:\n${torchRun.stderr}`);
    const torch = JSON.parse(torchRun.stdout.trim().split('\n').at(-1)!);

    const rows: [string, string, string][] = [
      ['', 'modelwright (onnxruntime)', `pytorch ${torch.torch}`],
      ['tokens/s (median step)', ours.tokensPerSecond.toFixed(0), Number(torch.tokensPerSecond).toFixed(0)],
      ['step ms (median)', ours.stepMsMedian.toFixed(1), Number(torch.stepMsMedian).toFixed(1)],
      [`train loss at step ${steps}`, ours.finalTrainLoss.toFixed(4), Number(torch.finalTrainLoss).toFixed(4)],
      [`validation loss at step ${steps}`, ours.valLoss.toFixed(4), Number(torch.valLoss).toFixed(4)],
    ];
    for (const [a, b, c] of rows) console.log(`${a.padEnd(28)} ${b.padStart(26)} ${c.padStart(26)}`);
    console.log(`train-speed-ratio: ${(ours.tokensPerSecond / torch.tokensPerSecond).toFixed(2)}`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
