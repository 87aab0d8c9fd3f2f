// `npm run bench:train -- --family llama`: LoRA fine-tuning tokens/s of the engine against the same LoRA in plain
// PyTorch (bench/torchLora.py), step by step in turn on a SmolLM2-135M-shaped model at context 512: the same random
// base weights, token windows and AdamW settings. Prints both rates, CPU time per step, peak RSS and
// `finetune-speed-ratio: R`; with --profile, onnxruntime's kernel time per op type and per op and shapes.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import type { LlamaConfig } from '../server/src/engine/llama';
import { type LoraSettings, initialLoraParameters } from '../server/src/engine/lora';
import { encodeModel } from '../server/src/engine/onnx';
import { defaultAdamW, stepScalarValues } from '../server/src/engine/optimizer';
import { gaussian, uniform } from '../server/src/engine/random';
import {
  type TrainingSpec,
  buildTrainingStep,
  frozenInputShapes,
  names,
  packParameters,
} from '../server/src/engine/trainingGraph';
import { type Feeds, createSession, floatTensor, int64Tensor, scalarTensor } from '../server/src/runtime/onnxSession';
import { median } from '../server/src/util/statistics';

/** SmolLM2-135M's shape (hidden 576, 30 layers, 9 heads, 3 kv heads, intermediate 1536, vocab 49152, tied). */
const smolLm2: LlamaConfig = {
  vocabSize: 49152,
  contextLength: 2048,
  layers: 30,
  heads: 9,
  kvHeads: 3,
  headDim: 64,
  embedding: 576,
  intermediate: 1536,
  normEpsilon: 1e-5,
  ropeTheta: 100000,
  qkvBias: false,
  tiedHead: true,
};

const hfConfig = (c: LlamaConfig) => ({
  model_type: 'llama',
  hidden_size: c.embedding,
  intermediate_size: c.intermediate,
  num_hidden_layers: c.layers,
  num_attention_heads: c.heads,
  num_key_value_heads: c.kvHeads,
  head_dim: c.headDim,
  max_position_embeddings: c.contextLength,
  rms_norm_eps: c.normEpsilon,
  rope_theta: c.ropeTheta,
  rope_scaling: null,
  tie_word_embeddings: c.tiedHead,
  vocab_size: c.vocabSize,
});

/** Kernel time per op type, and per op and input shapes (the layers' nodes summed), over the runs after the untimed. */
function printProfile(dir: string, untimed: number): void {
  const file = fs.readdirSync(dir).find((f) => f.startsWith('profile') && f.endsWith('.json'));
  if (!file) return;
  type Event = {
    cat?: string;
    name: string;
    ts: number;
    dur: number;
    args?: { op_name?: string; input_type_shape?: Record<string, number[]>[] };
  };
  const events: Event[] = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
  const timed = events
    .filter((e) => e.name === 'model_run')
    .sort((a, b) => a.ts - b.ts)
    .slice(untimed);
  const from = timed[0]?.ts ?? 0;
  const byOp = new Map<string, number>();
  const byShape = new Map<string, number>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.ts < from) continue;
    const op = e.args?.op_name ?? '?';
    byOp.set(op, (byOp.get(op) ?? 0) + e.dur);
    const shapes = (e.args?.input_type_shape ?? []).map((s) => `[${Object.values(s)[0]}]`).join(' ');
    const key = `${op} ${shapes}`;
    byShape.set(key, (byShape.get(key) ?? 0) + e.dur);
  }
  const total = [...byOp.values()].reduce((a, b) => a + b, 0);
  const runMs = timed.reduce((a, e) => a + e.dur, 0) / timed.length / 1000;
  const row = (name: string, us: number) =>
    `  ${name.slice(0, 64).padEnd(64)} ${(us / timed.length / 1000).toFixed(1).padStart(8)} ms/step ${((100 * us) / total).toFixed(1).padStart(5)}%`;
  console.log(`profile over ${timed.length} runs of ${runMs.toFixed(0)} ms (profiling slows each step): kernel time`);
  for (const [op, us] of [...byOp].sort((a, b) => b[1] - a[1]).slice(0, 14)) console.log(row(op, us));
  console.log('costliest op and input shapes (summed over the layers):');
  for (const [key, us] of [...byShape].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(row(key, us));
}

/** bench/torchLora.py in --interleaved mode: it sets up, prints `ready`, then runs one step per line it reads. */
class TorchStepper {
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly lines: AsyncIterator<string>,
    private readonly stderr: string[],
  ) {}

  static async start(specFile: string, threads: number): Promise<TorchStepper> {
    const child = spawn(
      '/usr/bin/python3',
      [path.join(__dirname, 'torchLora.py'), '--spec', specFile, '--threads', String(threads), '--interleaved'],
      { env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE', PYTHONDONTWRITEBYTECODE: '1' } },
    );
    const stderr: string[] = [];
    child.stderr.on('data', (chunk) => stderr.push(String(chunk)));
    const stepper = new TorchStepper(
      child,
      readline.createInterface({ input: child.stdout })[Symbol.asyncIterator](),
      stderr,
    );
    await stepper.next('ready');
    return stepper;
  }

  private async next(what: string): Promise<string> {
    const { value, done } = await this.lines.next();
    if (done) throw new Error(`PyTorch ended before ${what}:\n${this.stderr.join('')}`);
    return value;
  }

  async step(s: number): Promise<void> {
    this.child.stdin.write(`${s}\n`);
    await this.next(`step ${s}`);
  }

  /** Ends the steps and returns PyTorch's summary (rates, losses, peak RSS). */
  async finish() {
    this.child.stdin.end();
    return JSON.parse(await this.next('its summary'));
  }
}

const peakRssMB = () => Number(fs.readFileSync('/proc/self/status', 'utf8').match(/VmHWM:\s+(\d+)/)![1]) / 1024;

export async function llamaLoraBench(options: {
  steps: number;
  untimed: number;
  threads: number;
  batch: number;
  /** Profile the engine's timed steps with onnxruntime and print the kernel time per op type and per node. */
  profile?: boolean;
}) {
  const { steps, untimed, threads, batch } = options;
  const time = 512;
  const lora: LoraSettings = {
    rank: 8,
    alpha: 16,
    dropout: 0,
    targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
  };
  const spec: TrainingSpec = { architecture: { family: 'llama', config: smolLm2 }, lora };
  const learningRate = 1e-4;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-bench-lora-'));
  try {
    // Base weights: N(0, 0.02) matrices, unit norms, in one file in Hugging Face order for PyTorch to map.
    const shapes = frozenInputShapes(spec);
    const count = shapes.reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0);
    const weights = new Float32Array(count);
    const random = gaussian(7);
    const feeds: Feeds = {};
    let offset = 0;
    for (const [name, shape] of shapes) {
      const size = shape.reduce((a, b) => a * b, 1);
      const view = weights.subarray(offset, offset + size);
      if (name.endsWith('norm.weight')) view.fill(1);
      else for (let i = 0; i < size; i++) view[i] = 0.02 * random();
      feeds[name] = floatTensor(view, shape);
      offset += size;
    }
    fs.writeFileSync(path.join(work, 'weights.f32'), weights);
    // Token windows of time + 1: inputs are the first `time`, targets the last `time`.
    const draw = uniform(11);
    const windows = Int32Array.from({ length: steps * batch * (time + 1) }, () =>
      Math.floor(draw() * smolLm2.vocabSize),
    );
    fs.writeFileSync(path.join(work, 'tokens.i32'), windows);

    const specFile = path.join(work, 'spec.json');
    fs.writeFileSync(
      specFile,
      JSON.stringify({
        config: hfConfig(smolLm2),
        shapes,
        weights: path.join(work, 'weights.f32'),
        weightCount: count,
        tokens: path.join(work, 'tokens.i32'),
        steps,
        untimed,
        batch,
        time,
        rank: lora.rank,
        alpha: lora.alpha,
        targetModules: lora.targetModules,
        lr: learningRate,
        adamw: defaultAdamW,
      }),
    );
    // PyTorch waits in its own process and runs step s when asked, right after ours: on a machine shared with other
    // work, both then run under the same load, so the ratio compares the engines rather than the moments.
    const pytorch = await TorchStepper.start(specFile, threads);

    const session = await createSession(encodeModel(buildTrainingStep(spec, { batch, time }, defaultAdamW)), {
      intraOpThreads: threads,
      profileFilePrefix: options.profile ? path.join(work, 'profile') : undefined,
    });
    const flat = packParameters(spec, initialLoraParameters(spec.architecture, lora, 1));
    let state: Record<'p' | 'm' | 'v', Float32Array> = {
      p: flat,
      m: new Float32Array(flat.length),
      v: new Float32Array(flat.length),
    };
    const stepMs: number[] = [];
    const cpuMs: number[] = [];
    const losses: number[] = [];
    for (let s = 0; s < steps; s++) {
      const inputs = new BigInt64Array(batch * time);
      const targets = new BigInt64Array(batch * time);
      for (let r = 0; r < batch; r++) {
        const at = (s * batch + r) * (time + 1);
        for (let t = 0; t < time; t++) {
          inputs[r * time + t] = BigInt(windows[at + t]);
          targets[r * time + t] = BigInt(windows[at + t + 1]);
        }
      }
      const scalars = stepScalarValues(defaultAdamW, s + 1, learningRate);
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      const out = await session.run({
        ...feeds,
        [names.inputIds]: int64Tensor(inputs, [batch, time]),
        [names.targets]: int64Tensor(targets, [batch, time]),
        [names.parameters]: floatTensor(state.p, [flat.length]),
        [names.moments]: floatTensor(state.m, [flat.length]),
        [names.variances]: floatTensor(state.v, [flat.length]),
        [names.learningRate]: scalarTensor(scalars.learningRate),
        [names.momentScale]: scalarTensor(scalars.momentScale),
        [names.varianceScale]: scalarTensor(scalars.varianceScale),
      });
      if (s >= untimed) {
        stepMs.push(performance.now() - t0);
        const cpu = process.cpuUsage(cpu0);
        cpuMs.push((cpu.user + cpu.system) / 1000);
      }
      const data = (n: string) => out[names.next(n)].data as Float32Array;
      state = { p: data(names.parameters), m: data(names.moments), v: data(names.variances) };
      losses.push((out[names.loss].data as Float32Array)[0]);
      await pytorch.step(s);
    }
    await session.release();
    if (options.profile) printProfile(work, untimed);
    const ours = {
      tokensPerSecond: (batch * time) / (median(stepMs) / 1000),
      stepMs: median(stepMs),
      cpuMs: median(cpuMs),
      rss: peakRssMB(),
    };

    const torch = await pytorch.finish();

    console.log(
      `LoRA r=${lora.rank} on ${lora.targetModules.join(',')}; SmolLM2-135M shape; ${steps} steps of ${batch}×${time} tokens (${untimed} untimed), ${threads} threads`,
    );
    const rows = [
      ['', 'modelwright (onnxruntime)', `pytorch ${torch.torch}`],
      ['tokens/s (median step)', ours.tokensPerSecond.toFixed(0), Number(torch.tokensPerSecond).toFixed(0)],
      ['step ms (median)', ours.stepMs.toFixed(0), Number(torch.stepMsMedian).toFixed(0)],
      // CPU time of the process per step: the work done, less sensitive to other load (spinning threads count).
      ['cpu ms per step (median)', ours.cpuMs.toFixed(0), Number(torch.cpuMsMedian).toFixed(0)],
      ['peak RSS MB', ours.rss.toFixed(0), Number(torch.peakRssMB).toFixed(0)],
      [
        'loss first → last',
        `${losses[0].toFixed(4)} → ${losses.at(-1)!.toFixed(4)}`,
        `${torch.losses[0].toFixed(4)} → ${torch.losses.at(-1).toFixed(4)}`,
      ],
    ];
    for (const [a, ...rest] of rows) console.log(`${a.padEnd(24)} ${rest.map((c) => c.padStart(28)).join(' ')}`);
    console.log(`BLAS: ${torch.blas}`);
    console.log(`finetune-speed-ratio: ${(ours.tokensPerSecond / torch.tokensPerSecond).toFixed(2)}`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
