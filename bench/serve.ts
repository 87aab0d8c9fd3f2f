// `npm run bench:serve`: a bounded load test of `modelwright serve` on 127.0.0.1 — 1, 8 and 32 concurrent clients
// each sending a fixed number of /v1/completions requests — with dynamic batching on and off side by side
// (two server processes, runs interleaved, medians of the repeats). Prints throughput, p50/p95 latency, errors.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { type GptConfig, initialParameters, presets } from '../server/src/engine/model';
import { readFolderConfig } from '../server/src/modelFolder/config';
import { writeModelFiles } from '../server/src/train/export';
import { bpeEncoderFromTokenizerJson } from '../server/src/tokenizer/bpeEncoder';
import { trainBpe } from '../server/src/train/bpeTrainer';
import { writeTokenizerFiles } from '../server/src/tokenizer/tokenizerFiles';
import { median, percentile } from '../server/src/util/statistics';

const root = path.resolve(__dirname, '..');
const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    clients: { type: 'string', default: '1,8,32' },
    /** Requests per run for each client count (same order as --clients). */
    requests: { type: 'string', default: '32,96,192' },
    repeats: { type: 'string', default: '4' },
    'max-tokens': { type: 'string', default: '32' },
    /** Prompt lengths in characters, MIN-MAX (the start of a source file up to a line boundary). */
    'prompt-chars': { type: 'string', default: '200-600' },
    /** 0 (greedy) is what the editor's inline completions use. */
    temperature: { type: 'string', default: '0' },
    'max-batch-size': { type: 'string', default: '32' },
    threads: { type: 'string', default: '1' },
    /**
     * repeat: the 64 prompts in turn; typing: each client edits its own file, each request the file up to a cursor
     * TYPED characters further on (from 200 characters, wrapping at --prompt-chars' maximum).
     */
    workload: { type: 'string', default: 'repeat' },
    typed: { type: 'string', default: '8' },
    /** The servers' --prompt-cache (positions of recent prompts kept; 0: off); absent: the server's default. */
    'prompt-cache': { type: 'string' },
    /** Seconds one run may take before its remaining requests are abandoned (counted as errors). */
    'run-limit': { type: 'string', default: '120' },
  },
});
const clientCounts = values.clients.split(',').map(Number);
const requestCounts = values.requests.split(',').map(Number);
if (
  clientCounts.length !== requestCounts.length ||
  [...clientCounts, ...requestCounts].some((n) => !(Number.isInteger(n) && n > 0) || n > 1000)
) {
  throw new Error('--clients and --requests need the same number of positive integers (at most 1000)');
}
const repeats = Number(values.repeats);
if (values.workload !== 'repeat' && values.workload !== 'typing') throw new Error('--workload is repeat or typing');
const typing = values.workload === 'typing';
const typedPerRequest = Number(values.typed);
const maxTokens = Number(values['max-tokens']);
const runLimitMs = Number(values['run-limit']) * 1000;
const [minChars, maxChars] = values['prompt-chars'].split('-').map(Number);
if (!(minChars > 0 && maxChars >= minChars)) throw new Error('--prompt-chars needs MIN-MAX, e.g. 200-600');

interface RunResult {
  batching: boolean;
  clients: number;
  requests: number;
  seconds: number;
  errors: number;
  tokens: number;
  latencies: number[];
}

/** The model folder: --model, else the shipped models/default, else a random-weight model of the default's size. */
async function benchModel(): Promise<{ dir: string; description: string }> {
  if (values.model) return { dir: path.resolve(values.model), description: values.model };
  const shipped = path.join(root, 'models', 'default');
  if (fs.existsSync(path.join(shipped, 'onnx', 'model.onnx'))) {
    // A snapshot, so that retraining the default while the benchmark runs cannot change or remove it.
    const copy = path.join(os.tmpdir(), 'modelwright-bench-serve-default');
    fs.rmSync(copy, { recursive: true, force: true });
    fs.cpSync(shipped, copy, { recursive: true, filter: (source) => !source.includes(`${path.sep}checkpoint`) });
    return { dir: copy, description: 'models/default (trained; a snapshot)' };
  }
  const dir = path.join(os.tmpdir(), 'modelwright-bench-serve-default-random');
  if (!fs.existsSync(path.join(dir, 'onnx', 'model.onnx'))) {
    process.stderr.write(
      'models/default is absent: making a random-weight model of its size (tokenizer trained on this repository)\n',
    );
    const trained = trainBpe(sourceTexts(), { vocabSize: presets.default.vocabSize, minFrequency: 2 });
    const config: GptConfig = { ...presets.default, vocabSize: trained.vocab.length };
    fs.mkdirSync(dir, { recursive: true });
    const eos = trained.specialTokens.find((t) => t.content === '<|endoftext|>')?.id ?? 0;
    writeTokenizerFiles(dir, trained, { modelMaxLength: config.contextLength });
    writeModelFiles(dir, config, initialParameters(config, 1234), eos);
  }
  return { dir, description: `random weights, default preset size (${dir})` };
}

/** TypeScript sources of this repository (server and client), for prompts and the fallback tokenizer. */
function sourceTexts(): string[] {
  const texts: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory() && entry.name !== 'node_modules' && entry.name !== 'out') walk(full);
      else if (entry.isFile() && entry.name.endsWith('.ts')) texts.push(fs.readFileSync(full, 'utf8'));
    }
  };
  for (const dir of ['server/src', 'client/src']) if (fs.existsSync(path.join(root, dir))) walk(path.join(root, dir));
  return texts;
}

/** 64 code prompts of minChars–maxChars characters: file text up to a line boundary, as an editor would send. */
function prompts(): string[] {
  const out: string[] = [];
  const texts = sourceTexts();
  for (let i = 0; out.length < 64 && i < texts.length * 8; i++) {
    const lines = texts[i % texts.length].split('\n');
    const start = (Math.floor(i / texts.length) * 17) % Math.max(1, lines.length);
    let prompt = '';
    const target = minChars + ((i * 37) % (maxChars - minChars + 1));
    for (let l = start; l < lines.length && prompt.length < target; l++) prompt += `${lines[l]}\n`;
    if (prompt.length >= minChars) out.push(prompt.slice(0, maxChars));
  }
  if (out.length === 0) throw new Error('no source files found for prompts');
  return out;
}

/** The `typed`-th request of a client editing `text`: the text up to a cursor that moves on as it types. */
function typedPrompt(text: string, typed: number): string {
  const room = Math.max(1, Math.min(text.length, maxChars) - minChars);
  return text.slice(0, minChars + ((typed * typedPerRequest) % room));
}

interface Server {
  child: ChildProcess;
  url: string;
}

function startServe(modelDir: string, batching: boolean): Promise<Server> {
  const args = [
    '--import',
    'tsx',
    path.join(root, 'server/src/cli.ts'),
    'serve',
    '--model',
    `bench=${modelDir}`,
    '--port',
    '0',
    '--host',
    '127.0.0.1',
  ];
  args.push(
    '--queue',
    '1024',
    '--threads',
    values.threads,
    '--max-batch-size',
    values['max-batch-size'],
    '--timeout',
    '300',
  );
  if (!batching) args.push('--no-batching');
  if (values['prompt-cache'] !== undefined) args.push('--prompt-cache', values['prompt-cache']);
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    let stdout = '';
    child.stdout!.on('data', (d) => {
      stdout += d;
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
      if (match) resolve({ child, url: match[1] });
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
  });
}

async function stopServe(server: Server): Promise<void> {
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  server.child.kill('SIGKILL');
}

/** `requests` completions from `clients` concurrent clients, each sending its next request when the last returns. */
async function run(
  server: Server,
  batching: boolean,
  clients: number,
  requests: number,
  promptTexts: string[],
  seed: number,
): Promise<RunResult> {
  const latencies: number[] = [];
  let errors = 0;
  let tokens = 0;
  let next = 0;
  const deadline = AbortSignal.timeout(runLimitMs);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let typed = 0; next < requests; typed++) {
        const index = next++;
        const body = {
          model: 'bench',
          prompt: typing
            ? typedPrompt(promptTexts[(client + seed) % promptTexts.length], typed)
            : promptTexts[(index + seed) % promptTexts.length],
          max_tokens: maxTokens,
          temperature: Number(values.temperature),
          top_p: 0.95,
          seed: index + seed,
          ignore_eos: true,
        };
        const start = performance.now();
        try {
          const response = await fetch(`${server.url}/v1/completions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(body),
            signal: deadline,
          });
          const json = (await response.json()) as { usage?: { completion_tokens: number } };
          if (response.status !== 200) errors++;
          else {
            latencies.push(performance.now() - start);
            tokens += json.usage?.completion_tokens ?? 0;
          }
        } catch {
          errors++;
        }
      }
    }),
  );
  return { batching, clients, requests, seconds: (performance.now() - started) / 1000, errors, tokens, latencies };
}

/** "N–M tokens, median K" for the prompts, with the model's tokenizer. */
function promptTokens(modelDir: string, texts: string[]): string {
  const tokenizer = JSON.parse(fs.readFileSync(path.join(modelDir, 'tokenizer.json'), 'utf8'));
  const encoder = bpeEncoderFromTokenizerJson(tokenizer);
  const counts = texts.map((t) => encoder.encode(t).length).sort((a, b) => a - b);
  return `${counts[0]}–${counts.at(-1)} tokens, median ${counts[counts.length >> 1]}`;
}

async function main(): Promise<void> {
  const model = await benchModel();
  const config = readFolderConfig(model.dir);
  const promptTexts = prompts();
  process.stdout.write(
    `model: ${model.description}: ${config.layers} layers, ${config.heads} heads, ${config.embedding} wide, vocab ${config.vocabSize}, context ${config.contextLength}\n` +
      (typing
        ? `workload: typing: each client edits one of ${promptTexts.length} files of this repository, each request the file up to a cursor ${typedPerRequest} characters further on (${minChars}–${maxChars} characters), ${maxTokens} new tokens each `
        : `workload: ${promptTexts.length} code prompts of ${minChars}–${maxChars} characters (${promptTokens(model.dir, promptTexts)}) from this repository, ${maxTokens} new tokens each `) +
      `(temperature ${values.temperature}${Number(values.temperature) > 0 ? ', top_p 0.95' : ': greedy, as inline completions'}, ignore_eos), server --threads ${values.threads}, --max-batch-size ${values['max-batch-size']}, --prompt-cache ${values['prompt-cache'] ?? 'default'} (the prompts repeat across requests); ` +
      `${repeats} repeats, medians shown; CPU: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, load average ${os.loadavg()[0].toFixed(1)}\n`,
  );
  const servers = new Map<boolean, Server>();
  try {
    for (const batching of [true, false]) servers.set(batching, await startServe(model.dir, batching));
    // Warm-up: sessions, JIT, connection pools.
    for (const [batching, server] of servers) await run(server, batching, 8, 16, promptTexts, 1000);

    const results: RunResult[] = [];
    for (let repeat = 0; repeat < repeats; repeat++) {
      for (let level = 0; level < clientCounts.length; level++) {
        // Alternate which mode goes first, and let the machine settle between runs, so that neither mode
        // inherits the other's leftovers (garbage collection, caches) more often.
        for (const batching of repeat % 2 === 0 ? [true, false] : [false, true]) {
          await new Promise((resolve) => setTimeout(resolve, 500));
          const result = await run(
            servers.get(batching)!,
            batching,
            clientCounts[level],
            requestCounts[level],
            promptTexts,
            repeat * 101,
          );
          results.push(result);
          process.stderr.write(
            `  repeat ${repeat + 1}, batching ${batching ? 'on ' : 'off'}, ${String(result.clients).padStart(2)} clients: ${(result.requests / result.seconds).toFixed(1)} req/s, errors ${result.errors}\n`,
          );
        }
      }
    }

    const rows: string[][] = [['batching', 'clients', 'requests', 'req/s', 'tokens/s', 'p50 ms', 'p95 ms', 'errors']];
    const summary = new Map<string, { throughput: number; p95: number; errors: number }>();
    for (let level = 0; level < clientCounts.length; level++) {
      for (const batching of [true, false]) {
        const runs = results.filter((r) => r.batching === batching && r.clients === clientCounts[level]);
        const throughput = median(runs.map((r) => (r.requests - r.errors) / r.seconds));
        const tokensPerSecond = median(runs.map((r) => r.tokens / r.seconds));
        const p50 = median(runs.map((r) => percentile(r.latencies, 0.5)));
        const p95 = median(runs.map((r) => percentile(r.latencies, 0.95)));
        const errors = runs.reduce((n, r) => n + r.errors, 0);
        summary.set(`${batching}:${clientCounts[level]}`, { throughput, p95, errors });
        rows.push([
          batching ? 'on' : 'off',
          String(clientCounts[level]),
          String(requestCounts[level]),
          throughput.toFixed(1),
          tokensPerSecond.toFixed(0),
          p50.toFixed(1),
          p95.toFixed(1),
          String(errors),
        ]);
      }
    }
    const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    for (const row of rows) process.stdout.write(`${row.map((cell, c) => cell.padStart(widths[c])).join('  ')}\n`);

    const most = Math.max(...clientCounts);
    const least = Math.min(...clientCounts);
    const on = summary.get(`true:${most}`)!;
    const off = summary.get(`false:${most}`)!;
    const single = summary.get(`true:${least}`)!;
    const ratio = on.p95 / single.p95;
    const gain = on.throughput / off.throughput;
    const mark = (ok: boolean) => (ok ? 'met' : 'NOT met');
    process.stdout.write(
      `goals (batching on): errors at ${most} clients ${on.errors} (goal 0: ${mark(on.errors === 0)}); ` +
        `p95 at ${most} clients / p95 at ${least} = ${ratio.toFixed(2)} (goal ≤ 4: ${mark(ratio <= 4)}); ` +
        `throughput at ${most} clients on/off = ${gain.toFixed(2)}× (goal > 1: ${mark(gain > 1)})\n`,
    );
  } finally {
    await Promise.all([...servers.values()].map(stopServe));
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:serve: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
