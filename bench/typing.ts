// The per-size rows of `npm run bench:complete`: the first ghost text while typing, through the language server with
// KV-cache reuse, for the shipped default (trained) and, with random weights (bench/randomModels.ts), the `small`
// preset in float32 and SmolLM2-135M- and Qwen2.5-0.5B-shaped models in int8; p50/p95 per size and the server's
// memory. Random weights never end a line, so those rows generate a first line of 8 tokens.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parameterShapesOf } from '../server/src/engine/architecture';
import { readArchitecture } from '../server/src/modelFolder/config';
import { percentile } from '../server/src/util/statistics';
import { BenchServer, type CursorCase, type Sample, type Variant, repository } from './lspServer';
import { randomModelFolder } from './randomModels';

export const sizeNames = ['default', 'small', 'smollm2-135m', 'qwen2.5-0.5b'] as const;
export type SizeName = (typeof sizeNames)[number];

export interface TypingOptions {
  /** The file typed in, relative to the repository. */
  file: string;
  /** Lines typed in, spread through the file. */
  places: number;
  /** Characters typed at each place, one request each. */
  keystrokes: number;
  sizes: readonly SizeName[];
}

/** Issue goals for the first ghost text while typing. */
const goals: Partial<Record<SizeName, { p50: number; p95?: number }>> = {
  default: { p50: 20, p95: 50 },
  'qwen2.5-0.5b': { p50: 250 },
};

/**
 * The first line of a random-weights model: this many tokens (about a line of code). Random weights often repeat
 * themselves, which the repetition rule would cut short and prompt lookup would guess (neither as a trained
 * model's lines would), so every size is timed on whole lines, one run per token.
 */
const RANDOM_FIRST_LINE = { maxTokens: 8, dropRepetition: false, promptLookup: false };

interface Row {
  size: SizeName;
  parameters: number;
  typing: Sample[];
  afterJump: Sample[];
  rss: { current: number; peak: number };
}

export async function typingRows(options: TypingOptions): Promise<void> {
  const file = path.resolve(repository, options.file);
  const text = fs.readFileSync(file, 'utf8');
  const places = typingPlaces(text, options.places, options.keystrokes);
  console.log(
    `\nfirst ghost text while typing, per model size: ${places.length} lines of ${options.file}, each cut in the ` +
      `middle and then typed on ${options.keystrokes} characters, one automatic request per keystroke (no debounce), KV-cache ` +
      `reuse on; random-weight models generate ${RANDOM_FIRST_LINE.maxTokens} tokens`,
  );
  const rows: Row[] = [];
  for (const size of options.sizes) {
    const { dir, settings } = sizeFolder(size);
    // Automatic triggers, as an editor sends them while the user types, without the debounce's deliberate wait.
    const variant: Variant = { label: size, reuse: true, automatic: true, settings: { ...settings, debounceMs: 0 } };
    const server = await BenchServer.start(dir, file, places[0][0].text, variant);
    const afterJump: Sample[] = [];
    const typing: Sample[] = [];
    try {
      for (const [jump, ...keystrokes] of places) {
        await server.measure(jump);
        afterJump.push(server.samples[server.samples.length - 1]);
        for (const keystroke of keystrokes) {
          await server.measure(keystroke);
          typing.push(server.samples[server.samples.length - 1]);
        }
      }
      rows.push({ size, parameters: parameterCount(dir), typing, afterJump, rss: server.memory() });
    } finally {
      await server.stop();
    }
    printRow(rows[rows.length - 1]);
  }
  for (const row of rows) {
    const goal = goals[row.size];
    if (!goal) continue;
    const { p50, p95 } = figures(row.typing);
    const verdict = (ok: boolean) => (ok ? 'met' : 'missed');
    console.log(
      `goal (${row.size}): p50 ≤ ${goal.p50} ms ${verdict(p50 <= goal.p50)}` +
        (goal.p95 !== undefined ? `, p95 ≤ ${goal.p95} ms ${verdict(p95 <= goal.p95)}` : ''),
    );
  }
}

function figures(samples: Sample[]) {
  const fromModel = samples.filter((s) => s.source === 'model').map((s) => s.serverMs);
  return { p50: percentile(fromModel, 0.5), p95: percentile(fromModel, 0.95), count: fromModel.length };
}

function printRow(row: Row): void {
  const typed = figures(row.typing);
  const jumped = figures(row.afterJump);
  const model = row.typing.filter((s) => s.source === 'model');
  const mean = (f: (s: Sample) => number) => model.reduce((a, s) => a + f(s), 0) / Math.max(1, model.length);
  const megabytes = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
  console.log(
    `  ${row.size.padEnd(13)} ${(row.parameters / 1e6).toFixed(1).padStart(6)}M params   typing p50 ` +
      `${typed.p50.toFixed(1)} ms, p95 ${typed.p95.toFixed(1)} ms (${typed.count} from the model, ` +
      `${row.typing.length - typed.count} from the cache)   after a jump p50 ${jumped.p50.toFixed(0)} ms   ` +
      `${mean((s) => s.prompt - s.reused).toFixed(1)} of ${mean((s) => s.prompt).toFixed(0)} prompt tokens run, ` +
      `${mean((s) => s.generated).toFixed(1)} generated at ${percentile(
        model.map((s) => s.perTokenMs),
        0.5,
      ).toFixed(1)} ms/token   RSS ${megabytes(row.rss.current)} MB (peak ${megabytes(row.rss.peak)})`,
  );
}

/**
 * `count` lines of code spread through the text, each as the document is when the cursor arrives in its middle
 * (the rest of the line not written yet), then after each of the next `keystrokes` characters of the line.
 */
function typingPlaces(text: string, count: number, keystrokes: number): CursorCase[][] {
  const lines = text.split('\n');
  const candidates = lines
    .map((l, i) => ({ l, i }))
    .filter(({ l }) => l.trim().length >= 2 * keystrokes && !l.trim().startsWith('//'));
  const step = Math.max(1, candidates.length / count);
  const places: CursorCase[][] = [];
  for (let k = 0; places.length < count && Math.floor(k * step) < candidates.length; k++) {
    const { l, i } = candidates[Math.floor(k * step)];
    const indent = l.length - l.trimStart().length;
    const cut = indent + Math.floor((l.length - indent - keystrokes) / 2);
    const at = (typed: number): CursorCase => ({
      text: [...lines.slice(0, i), l.slice(0, cut + typed), ...lines.slice(i + 1)].join('\n'),
      line: i,
      character: cut + typed,
      kind: 'mid-line',
    });
    places.push(Array.from({ length: keystrokes + 1 }, (_, typed) => at(typed)));
  }
  return places;
}

/** The model folder of a size, and the completion settings its row uses. */
function sizeFolder(size: SizeName): { dir: string; settings?: Variant['settings'] } {
  if (size === 'default') return { dir: path.join(repository, 'models', 'default') };
  if (size === 'small') return { dir: randomModelFolder('gpt2-small', 'fp32'), settings: RANDOM_FIRST_LINE };
  return { dir: randomModelFolder(size, 'q8'), settings: RANDOM_FIRST_LINE };
}

function parameterCount(dir: string): number {
  return parameterShapesOf(readArchitecture(dir)).reduce((sum, [, dims]) => sum + dims.reduce((a, b) => a * b, 1), 0);
}
