// `modelwright train --task classify --data FILE --text COLUMN --label COLUMN --out DIR` and `modelwright eval
// MODEL --data FILE --text COLUMN --label COLUMN [--json]` for text classifiers, as functions of parsed options and
// an output pair that return the exit code (0 done, 1 failed — bad data names the row —, 2 wrong usage).
import * as path from 'node:path';
import { evaluateClassifier } from '../classify/classifierMetrics';
import { trainClassifier } from '../classify/trainClassifier';
import type { ClassifierMetrics } from '../protocol';
import type { CommandIo } from './gatedDeploy';

export interface TrainClassifierCommandOptions {
  data?: string;
  text?: string;
  label?: string;
  out?: string;
  base?: string;
  epochs?: number;
  patience?: number;
  batchSize?: number;
  learningRate?: number;
  weightDecay?: number;
  dropout?: number;
  classWeights?: string;
  maxLength?: number;
  minutes?: number;
  validationFraction?: number;
  seed?: number;
  threads?: number;
  maxBytes?: number;
  signal?: AbortSignal;
}

export async function trainClassifierCommand(options: TrainClassifierCommandOptions, io: CommandIo): Promise<number> {
  if (!options.data || !options.text || !options.label || !options.out) {
    io.stderr.write('modelwright train --task classify needs --data FILE --text COLUMN --label COLUMN --out DIR\n');
    return 2;
  }
  if (options.classWeights !== undefined && !['none', 'balanced'].includes(options.classWeights)) {
    io.stderr.write('modelwright train: --class-weights must be none or balanced\n');
    return 2;
  }
  try {
    const result = await trainClassifier({
      ...options,
      data: options.data,
      text: options.text,
      label: options.label,
      out: options.out,
      classWeights: options.classWeights as 'none' | 'balanced' | undefined,
      onProgress: (p) => io.stderr.write(`${p.message}\n`),
    });
    const d = result.data;
    io.stdout.write(
      `${d.file}: ${d.rows.length} rows (${d.encoding}), ${d.emptyRows.length} empty and ` +
        `${d.duplicateRows.length} duplicate rows skipped${d.emptyRows.length ? ` (rows ${d.emptyRows.slice(0, 10).join(', ')})` : ''}\n` +
        `classes: ${d.classes.map((c) => `${c.label} ${c.count} (${((100 * c.count) / d.rows.length).toFixed(0)}%)`).join(', ')}\n` +
        `trained ${result.epochs} epochs (best ${result.bestEpoch}) on ${result.trainRows} rows in ${result.elapsedSeconds.toFixed(1)} s\n` +
        `${formatClassifierMetrics(result.metrics, `validation (${result.validationRows} rows)`)}\n` +
        `→ ${path.resolve(result.modelDir)}\n`,
    );
    return 0;
  } catch (e) {
    io.stderr.write(`modelwright train: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

export interface EvalClassifierCommandOptions {
  model?: string;
  data?: string;
  text?: string;
  label?: string;
  json?: boolean;
  /** Only the validation rows of the data's split (what the model held out when trained on this file). */
  validation?: boolean;
  threads?: number;
}

export async function evalClassifierCommand(options: EvalClassifierCommandOptions, io: CommandIo): Promise<number> {
  if (!options.model || !options.data || !options.text || !options.label) {
    io.stderr.write('modelwright eval needs MODEL --data FILE --text COLUMN --label COLUMN\n');
    return 2;
  }
  try {
    const metrics = await evaluateClassifier(options.model, options.data, {
      text: options.text,
      label: options.label,
      validationOnly: options.validation,
      threads: options.threads,
    });
    io.stdout.write(
      options.json
        ? `${JSON.stringify(metrics)}\n`
        : `${formatClassifierMetrics(metrics, path.basename(options.data))}\n`,
    );
    return 0;
  } catch (e) {
    io.stderr.write(`modelwright eval: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

/** Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix (rows: true, columns: predicted). */
export function formatClassifierMetrics(m: ClassifierMetrics, title: string): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const width = Math.max(8, ...m.labels.map((l) => l.length)) + 2;
  const lines = [
    `${title}: accuracy ${pct(m.accuracy)} (majority class ${pct(m.majorityAccuracy)}), macro-F1 ${m.macroF1.toFixed(3)}, ${m.samples} rows`,
    `  ${'class'.padEnd(width)}${'precision'.padStart(10)}${'recall'.padStart(10)}${'F1'.padStart(8)}${'rows'.padStart(7)}`,
    ...m.perClass.map(
      (c) =>
        `  ${c.label.padEnd(width)}${c.precision.toFixed(3).padStart(10)}${c.recall.toFixed(3).padStart(10)}${c.f1.toFixed(3).padStart(8)}${String(c.support).padStart(7)}`,
    ),
    `  confusion (rows true, columns predicted): ${m.labels.join(' ')}`,
    ...m.confusion.map((row, i) => `  ${m.labels[i].padEnd(width)}${row.map((n) => String(n).padStart(7)).join('')}`),
  ];
  return lines.join('\n');
}
