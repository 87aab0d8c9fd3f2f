// The pretrained-shape row of `npm run bench:complete`: a Qwen2.5-0.5B-shaped model with random weights
// (bench/randomModels.ts) in int8 and fp32, run by this project's runtime and by
// transformers.js from the same folder and ONNX file, side by side: prefill time, ms per generated token, and the
// first-line latency of typing with cache reuse (the runtime only). Medians; other processes on the machine skew them.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CONVERTED_FILES, type ConversionDtype } from '../server/src/convert/convertFolder';
import { generate } from '../server/src/runtime/generate';
import { loadLanguageModel } from '../server/src/runtime/languageModel';
import { median } from '../server/src/util/statistics';
import { randomModelFolder, shapes } from './randomModels';

export interface PretrainedOptions {
  dtypes: ConversionDtype[];
  prefillTokens: number;
  decodeTokens: number;
  threads: number;
  /** Generations per side, taken in turns. */
  rounds: number;
}

const goals = { speedRatio: 1.5, int8MsPerToken: 40 };

interface Figures {
  prefillMs: number;
  msPerToken: number;
}

/** A fixed prompt of `length` ids spread over the vocabulary. */
function promptOf(length: number): number[] {
  return Array.from({ length }, (_, i) => 1000 + ((i * 7919) % 100000));
}

/** Prefill and median decode step of one greedy generation, from the times each token arrives. */
function figuresOf(start: number, arrivals: number[]): Figures {
  const steps = arrivals.slice(1).map((t, i) => t - arrivals[i]);
  return { prefillMs: arrivals[0] - start, msPerToken: median(steps) };
}

type Generation = (prompt: number[], tokens: number) => Promise<Figures>;

/** This project's runtime: greedy generation timed by the tokens' arrival, and typing with cache reuse. */
async function runtimeSide(dir: string, options: PretrainedOptions) {
  const model = await loadLanguageModel(dir, { intraOpThreads: options.threads });
  const generation: Generation = async (prompt, tokens) => {
    const arrivals: number[] = [];
    const start = performance.now();
    await generate(model, prompt, { maxTokens: tokens, onToken: () => arrivals.push(performance.now()) });
    return figuresOf(start, arrivals);
  };
  /** Typing at the end of a document: each keystroke adds a token; the first line (8 tokens) reuses the cache. */
  const typing = async (prompt: number[]): Promise<number> => {
    let typed = prompt.slice(0, prompt.length - 16);
    let { cache } = await generate(model, typed, { maxTokens: 8 });
    const latencies: number[] = [];
    for (let key = 0; key < 8; key++) {
      typed = [...typed, 2000 + key];
      const keyStart = performance.now();
      const result = await generate(model, typed, { maxTokens: 8, cache });
      latencies.push(performance.now() - keyStart);
      cache = result.cache;
    }
    return median(latencies);
  };
  return { generation, typing, dispose: () => model.dispose() };
}

/** transformers.js (AutoModelForCausalLM) on the same folder and ONNX file, timed by its streamer. */
async function transformersSide(dir: string, dtype: ConversionDtype, options: PretrainedOptions) {
  const transformers = await import('@huggingface/transformers');
  transformers.env.allowRemoteModels = false;
  const external = fs.existsSync(path.join(dir, `${CONVERTED_FILES[dtype]}_data`));
  const model = await transformers.AutoModelForCausalLM.from_pretrained(dir, {
    local_files_only: true,
    dtype: dtype === 'q8' ? 'q8' : 'fp32',
    use_external_data_format: external,
    session_options: { intraOpNumThreads: options.threads, interOpNumThreads: 1 },
  } as never);
  const generation: Generation = async (prompt, tokens) => {
    const ids = new transformers.Tensor('int64', BigInt64Array.from(prompt, BigInt), [1, prompt.length]);
    const mask = new transformers.Tensor('int64', new BigInt64Array(prompt.length).fill(1n), [1, prompt.length]);
    const arrivals: number[] = [];
    let calls = 0; // the streamer sees the prompt once, then every generated token
    const streamer = { put: () => void (calls++ > 0 && arrivals.push(performance.now())), end: () => {} };
    const start = performance.now();
    await model.generate({
      input_ids: ids,
      attention_mask: mask,
      max_new_tokens: tokens,
      min_new_tokens: tokens,
      do_sample: false,
      streamer,
    } as never);
    return figuresOf(start, arrivals);
  };
  return { generation, dispose: () => model.dispose() };
}

/** Both sides in turns (A B B A …), so that load from other processes falls on both alike; medians. */
async function sideBySide(dir: string, dtype: ConversionDtype, options: PretrainedOptions) {
  const ours = await runtimeSide(dir, options);
  const theirs = await transformersSide(dir, dtype, options);
  try {
    const prompt = promptOf(options.prefillTokens);
    const runs: { ours: Figures[]; theirs: Figures[] } = { ours: [], theirs: [] };
    for (let round = 0; round < options.rounds; round++) {
      const order = round % 2 ? (['theirs', 'ours'] as const) : (['ours', 'theirs'] as const);
      for (const side of order)
        runs[side].push(await (side === 'ours' ? ours : theirs).generation(prompt, options.decodeTokens + 1));
    }
    const summary = (figures: Figures[]) => ({
      prefillMs: median(figures.map((f) => f.prefillMs)),
      msPerToken: median(figures.map((f) => f.msPerToken)),
    });
    return { ours: { ...summary(runs.ours), typingMs: await ours.typing(prompt) }, theirs: summary(runs.theirs) };
  } finally {
    await ours.dispose();
    await theirs.dispose();
  }
}

export async function pretrainedRow(options: PretrainedOptions): Promise<void> {
  console.log(
    `\npretrained shape: ${shapes['qwen2.5-0.5b'].description}, random weights; ` +
      `${options.prefillTokens}-token prefill, ${options.decodeTokens} greedy tokens (median step), ` +
      `${options.threads} threads, ${options.rounds} rounds in turns; ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(2)}`,
  );
  for (const dtype of options.dtypes) {
    const dir = randomModelFolder('qwen2.5-0.5b', dtype);
    const { ours, theirs } = await sideBySide(dir, dtype, options);
    const ratio = theirs.msPerToken / ours.msPerToken;
    const name = dtype === 'q8' ? 'int8' : 'fp32';
    console.log(
      `  ${name}: runtime prefill ${(ours.prefillMs / 1000).toFixed(2)} s, ${ours.msPerToken.toFixed(1)} ms/token, ` +
        `first line while typing (cache reuse, 8 tokens) ${ours.typingMs.toFixed(0)} ms | transformers.js prefill ` +
        `${(theirs.prefillMs / 1000).toFixed(2)} s, ${theirs.msPerToken.toFixed(1)} ms/token`,
    );
    console.log(`  pretrained-speed-ratio (${name}, tokens/s vs transformers.js): ${ratio.toFixed(2)}`);
    console.log(`  pretrained-prefill-ratio (${name}): ${(theirs.prefillMs / ours.prefillMs).toFixed(2)}`);
    const goal =
      dtype === 'q8'
        ? `goals: ≥ ${goals.speedRatio}× transformers.js (${ratio >= goals.speedRatio ? 'met' : 'not met'}), ` +
          `≤ ${goals.int8MsPerToken} ms/token (${ours.msPerToken <= goals.int8MsPerToken ? 'met' : 'not met'})`
        : `goal: ≥ ${goals.speedRatio}× transformers.js (${ratio >= goals.speedRatio ? 'met' : 'not met'})`;
    console.log(`  ${goal}`);
  }
}
