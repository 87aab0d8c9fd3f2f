// `npm run bench:complete`: server-side latency of textDocument/inlineCompletion over many cursor positions of a real
// file, with and without KV-cache reuse (two servers taking turns), and their memory; `--compare context` pits
// workspace context (this repository indexed) against none instead, both reusing the cache. Uses models/default, or trains
// a small model on this repository for a minute first (kept in .tmp/bench-complete-model for later runs). Then the
// rows per model size while typing (bench/typing.ts; `--typing-only`, `--skip-typing`, `--sizes a,b`) and the
// pretrained-shape row (bench/pretrained.ts; `--pretrained-only` runs just that row, `--skip-pretrained` skips it).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { train } from '../server/src/train/trainer';
import { percentile } from '../server/src/util/statistics';
import type { ConversionDtype } from '../server/src/convert/convertFolder';
import { BenchServer, type CursorCase, type Sample, type Variant, repository, serverScript } from './lspServer';
import { pretrainedRow } from './pretrained';
import { type SizeName, sizeNames, typingRows } from './typing';

const goals = { p50: 25, p95: 60, rssMegabytes: 250 };

const { values } = parseArgs({
  options: {
    file: { type: 'string', default: 'server/src/train/trainer.ts' },
    positions: { type: 'string', default: '200' },
    model: { type: 'string' },
    retrain: { type: 'boolean', default: false },
    /** Use the model trained on this repository even when models/default exists. */
    'repository-model': { type: 'boolean', default: false },
    'pretrained-only': { type: 'boolean', default: false },
    'skip-pretrained': { type: 'boolean', default: false },
    'typing-only': { type: 'boolean', default: false },
    'skip-typing': { type: 'boolean', default: false },
    /** Comma-separated model sizes of the typing rows: default, small, smollm2-135m, qwen2.5-0.5b. */
    sizes: { type: 'string', default: sizeNames.join(',') },
    places: { type: 'string', default: '8' },
    keystrokes: { type: 'string', default: '8' },
    /** Comma-separated: q8 (int8), fp32. */
    'pretrained-dtypes': { type: 'string', default: 'q8,fp32' },
    'prefill-tokens': { type: 'string', default: '1024' },
    'decode-tokens': { type: 'string', default: '24' },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '2' },
    /** What the two servers differ in: reuse (KV-cache reuse on/off) or context (workspace context on/off). */
    compare: { type: 'string', default: 'reuse' },
  },
});

const variants: [Variant, Variant] =
  values.compare === 'context'
    ? [
        { label: 'workspace context', reuse: true, workspaceContext: true },
        { label: 'no context', reuse: true, workspaceContext: false },
      ]
    : [
        { label: 'KV-cache reuse', reuse: true },
        { label: 'no reuse', reuse: false },
      ];

interface Run {
  samples: Sample[];
  rss: { current: number; peak: number };
}

async function main(): Promise<void> {
  const only = values['pretrained-only'] || values['typing-only'];
  if (!only) await completionRows();
  if (!values['pretrained-only'] && !values['skip-typing']) {
    const sizes = values.sizes!.split(',') as SizeName[];
    const unknown = sizes.filter((s) => !sizeNames.includes(s));
    if (unknown.length) throw new Error(`unknown size ${unknown.join(', ')}: choose from ${sizeNames.join(', ')}`);
    await typingRows({
      file: values.file!,
      places: Number(values.places),
      keystrokes: Number(values.keystrokes),
      sizes,
    });
  }
  if (values['skip-pretrained'] || values['typing-only']) return;
  await pretrainedRow({
    dtypes: values['pretrained-dtypes']!.split(',') as ConversionDtype[],
    prefillTokens: Number(values['prefill-tokens']),
    decodeTokens: Number(values['decode-tokens']),
    threads: Number(values.threads),
    rounds: Number(values.rounds),
  });
}

async function completionRows(): Promise<void> {
  if (!fs.existsSync(serverScript)) throw new Error(`${serverScript} is missing: run npm run build`);
  const modelDir = await benchModel();
  const file = path.resolve(repository, values.file!);
  const text = fs.readFileSync(file, 'utf8');
  const positions = cursorCases(text, Number(values.positions));
  console.log(
    `file: ${path.relative(repository, file)} (${text.split('\n').length} lines), ${positions.length} cursor positions top to bottom, ` +
      'alternately mid-line and on a new line opened with Enter; explicit invocations (no debounce)',
  );
  console.log(
    `machine: ${os.cpus().length} cores, load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (other processes skew the figures)`,
  );

  // Both servers run side by side and take turns on every position (in alternating order), so that load from
  // other processes on the machine falls on both alike.
  const servers = [
    await BenchServer.start(modelDir, file, text, variants[0]),
    await BenchServer.start(modelDir, file, text, variants[1]),
  ];
  const runs: Run[] = [];
  try {
    for (const [i, position] of positions.entries()) {
      for (const server of i % 2 === 0 ? servers : [...servers].reverse()) await server.measure(position);
    }
    servers.forEach((server) => runs.push({ samples: server.samples, rss: server.memory() }));
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }

  const table: [string, ...string[]][] = [['', ...variants.map((v) => v.label)]];
  const stat = (f: (run: Run) => string, label: string) => table.push([label, ...runs.map(f)]);
  const fromModel = (run: Run) => run.samples.filter((s) => s.source === 'model');
  const ms = (v: number) => `${v.toFixed(1)} ms`;
  stat(
    (r) =>
      ms(
        percentile(
          fromModel(r).map((s) => s.serverMs),
          0.5,
        ),
      ),
    'server p50',
  );
  stat(
    (r) =>
      ms(
        percentile(
          fromModel(r).map((s) => s.serverMs),
          0.95,
        ),
      ),
    'server p95',
  );
  stat(
    (r) =>
      ms(
        percentile(
          fromModel(r).map((s) => s.cpuMs),
          0.5,
        ),
      ),
    'server CPU time p50',
  );
  stat(
    (r) =>
      ms(
        percentile(
          fromModel(r).map((s) => s.cpuMs),
          0.95,
        ),
      ),
    'server CPU time p95',
  );
  stat(
    (r) =>
      ms(
        percentile(
          r.samples.map((s) => s.roundTripMs),
          0.5,
        ),
      ),
    'round trip p50',
  );
  stat(
    (r) =>
      ms(
        percentile(
          r.samples.map((s) => s.roundTripMs),
          0.95,
        ),
      ),
    'round trip p95',
  );
  for (const kind of ['mid-line', 'new line'] as const) {
    const ofKind = (r: Run) =>
      fromModel(r)
        .filter((s) => s.kind === kind)
        .map((s) => s.serverMs);
    stat((r) => `${ms(percentile(ofKind(r), 0.5))} / ${ms(percentile(ofKind(r), 0.95))}`, `  ${kind} p50 / p95`);
    const tokens = (r: Run) => fromModel(r).filter((s) => s.kind === kind);
    stat(
      (r) =>
        `${mean(tokens(r).map((s) => s.prompt)).toFixed(0)} → ${mean(tokens(r).map((s) => s.generated)).toFixed(1)}`,
      `  ${kind} tokens in → out`,
    );
  }
  stat(
    (r) =>
      ms(
        percentile(
          fromModel(r).map((s) => s.promptMs),
          0.5,
        ),
      ),
    'prompt run p50',
  );
  stat(
    (r) =>
      `${percentile(
        fromModel(r).map((s) => s.perTokenMs),
        0.5,
      ).toFixed(2)} ms`,
    'decode step p50',
  );
  stat((r) => mean(fromModel(r).map((s) => s.prompt)).toFixed(0), 'prompt tokens (mean)');
  stat((r) => mean(fromModel(r).map((s) => s.reused)).toFixed(0), 'reused tokens (mean)');
  stat((r) => mean(fromModel(r).map((s) => s.generated)).toFixed(1), 'generated tokens (mean)');
  stat((r) => `${r.samples.filter((s) => s.shown).length}/${r.samples.length}`, 'suggestions shown');
  stat((r) => `${r.samples.filter((s) => s.source === 'cache').length}`, 'answered from the cache');
  stat((r) => `${(r.rss.current / 2 ** 20).toFixed(0)} MB (peak ${(r.rss.peak / 2 ** 20).toFixed(0)})`, 'server RSS');
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  console.log('');
  for (const row of table)
    console.log(row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('   '));

  // The same positions on both servers, compared pairwise: robust to load that changes during the run.
  const paired = (kind?: CursorCase['kind']) => {
    const differences = runs[0].samples
      .map((sample, i) => ({ sample, other: runs[1].samples[i] }))
      .filter(
        ({ sample, other }) => sample.source === 'model' && other.source === 'model' && (!kind || sample.kind === kind),
      )
      .map(({ sample, other }) => sample.serverMs - other.serverMs);
    return `${percentile(differences, 0.5) >= 0 ? '+' : ''}${percentile(differences, 0.5).toFixed(1)} ms`;
  };
  console.log(
    `\n${variants[0].label} − ${variants[1].label} at the same position (median): all ${paired()}, ` +
      `mid-line ${paired('mid-line')}, new line ${paired('new line')}`,
  );

  const best = runs[0];
  const p50 = percentile(
    fromModel(best).map((s) => s.serverMs),
    0.5,
  );
  const p95 = percentile(
    fromModel(best).map((s) => s.serverMs),
    0.95,
  );
  const rss = best.rss.peak / 2 ** 20;
  const verdict = (ok: boolean) => (ok ? 'met' : 'missed');
  console.log('');
  console.log(
    `goals (${variants[0].label}): p50 ≤ ${goals.p50} ms ${verdict(p50 <= goals.p50)}, p95 ≤ ${goals.p95} ms ${verdict(p95 <= goals.p95)}, RSS ≤ ${goals.rssMegabytes} MB ${verdict(rss <= goals.rssMegabytes)}`,
  );
  const load = os.loadavg()[0];
  if (load > os.cpus().length * 0.75) {
    console.log(
      `note: the load average (${load.toFixed(1)} on ${os.cpus().length} cores) means other processes competed for the CPU; the CPU-time rows show what the requests cost.`,
    );
  }
}

/** models/default, or a model trained on this repository for a minute (reused on later runs). */
async function benchModel(): Promise<string> {
  if (values.model) return path.resolve(values.model);
  const shipped = path.join(repository, 'models', 'default');
  if (!values['repository-model'] && fs.existsSync(path.join(shipped, 'onnx', 'model.onnx'))) {
    console.log(`model: ${path.relative(repository, shipped)}`);
    return shipped;
  }
  const out = path.join(repository, '.tmp', 'bench-complete-model');
  if (!values.retrain && fs.existsSync(path.join(out, 'onnx', 'model.onnx'))) {
    console.log(
      `model: ${path.relative(repository, out)}, trained on this repository by an earlier run (--retrain to train again)`,
    );
    return out;
  }
  console.log(
    `model: ${values['repository-model'] ? 'asked for' : 'models/default does not exist;'} training the \`default\` preset on this repository for 1 minute first …`,
  );
  fs.rmSync(out, { recursive: true, force: true });
  let last = 0;
  const result = await train(
    { workspace: repository, out, preset: 'default', minutes: 1, seed: 1 },
    {
      onProgress: (p) => {
        if (p.phase === 'training' && Date.now() - last < 10_000) return;
        last = Date.now();
        console.log(`  ${p.phase}: ${p.message}${p.loss !== undefined ? `, loss ${p.loss.toFixed(3)}` : ''}`);
      },
    },
  );
  console.log(
    `  trained ${result.steps} steps: loss ${result.loss.toFixed(3)}, validation loss ${result.valLoss.toFixed(3)}`,
  );
  return out;
}

/**
 * Cursor positions through the file, top to bottom, alternately: in the middle of a line of code (the user is
 * typing it: a single-line suggestion), and on a fresh line just opened with Enter after a line, indented like
 * the next line (a multi-line suggestion may follow).
 */
function cursorCases(text: string, count: number): CursorCase[] {
  const lines = text.split('\n');
  const candidates = lines.map((l, i) => ({ l, i })).filter(({ l }) => l.trim().length > 3);
  const step = Math.max(1, candidates.length / count);
  const cases: CursorCase[] = [];
  for (let k = 0; cases.length < count && Math.floor(k * step) < candidates.length; k++) {
    const { l, i } = candidates[Math.floor(k * step)];
    const indent = l.length - l.trimStart().length;
    if (k % 2 === 0) {
      cases.push({ text, line: i, character: indent + Math.floor((l.length - indent) / 2), kind: 'mid-line' });
    } else {
      const next = lines.slice(i + 1).find((n) => n.trim()) ?? '';
      const indentation = next.slice(0, next.length - next.trimStart().length);
      const opened = [...lines.slice(0, i + 1), indentation, ...lines.slice(i + 1)].join('\n');
      cases.push({ text: opened, line: i + 1, character: indentation.length, kind: 'new line' });
    }
  }
  return cases;
}

function mean(values: number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN;
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
