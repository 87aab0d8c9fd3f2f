// The deploy gate: evaluates a candidate and the model serving a role on the same held-out data with the metric the
// role cares about — next-line exact match and edit similarity for completion, held-out loss (bits per byte, so
// tokenizers compare) for explanation, macro-F1 for a classifier — and passes only when the candidate is not worse
// than the serving model by more than the threshold on any of them.
import * as path from 'node:path';
import { evaluateClassifier } from '../classify/classifierMetrics';
import { isClassifierFolder } from '../classify/classifier';
import { chooseEvaluationFiles, evaluateModel } from '../eval/evaluate';
import { readModelCard } from '../modelFolder/modelCard';
import type { DeploymentRole, GateReport, GateRow, ModelKind } from '../protocol';
import { RegistryError } from './registryError';

export interface GateModel {
  name: string;
  dir: string;
}

export interface GateOptions {
  role: DeploymentRole;
  candidate: GateModel;
  serving?: GateModel;
  /** Largest tolerated loss: a fraction for rates (0.02 = two points of macro-F1), bits per byte for losses. */
  threshold?: number;
  /** Evaluate language models on this workspace's files (default: the candidate's training workspace). */
  evalWorkspace?: string;
  /** Evaluate classifiers on this file's rows (default: the validation rows of the candidate's training data). */
  evalData?: { file: string; text: string; label: string };
  /** Completion samples per language model (default 40). */
  samples?: number;
  threads?: number;
  signal?: AbortSignal;
  onProgress?: (message: string) => void;
}

export interface GateResult {
  report: GateReport;
  /** The candidate's figures, by metric name, recorded with the version. */
  metrics: Record<string, number>;
}

interface Metric {
  name: string;
  better: 'higher' | 'lower';
}

export function kindOfFolder(dir: string): ModelKind {
  return isClassifierFolder(dir) ? 'text-classification' : 'causal-lm';
}

/** The metrics a role is judged by, for a model of this kind. */
export function gateMetrics(role: DeploymentRole, kind: ModelKind): Metric[] {
  if (kind === 'text-classification') {
    if (role !== 'service')
      throw new RegistryError(
        `a text classifier serves the HTTP service, not ${role}: deploy it with role service`,
        'conflict',
      );
    return [
      { name: 'macroF1', better: 'higher' },
      { name: 'accuracy', better: 'higher' },
    ];
  }
  if (role === 'completion')
    return [
      { name: 'exactMatch', better: 'higher' },
      { name: 'editSimilarity', better: 'higher' },
    ];
  return [{ name: 'bitsPerByte', better: 'lower' }];
}

export async function runGate(options: GateOptions): Promise<GateResult> {
  const threshold = options.threshold ?? 0;
  if (!(Number.isFinite(threshold) && threshold >= 0))
    throw new RegistryError('the threshold must be a number ≥ 0', 'invalidName');
  const kind = kindOfFolder(options.candidate.dir);
  const metrics = gateMetrics(options.role, kind);
  const serving = options.serving && options.serving.dir !== options.candidate.dir ? options.serving : undefined;
  if (serving && kindOfFolder(serving.dir) !== kind) {
    throw new RegistryError(
      `"${serving.name}" (serving ${options.role}) and "${options.candidate.name}" are different kinds of model; ` +
        'they cannot be compared (deploy with force to replace it anyway)',
      'conflict',
    );
  }
  const models = serving ? [options.candidate, serving] : [options.candidate];
  const evaluated =
    kind === 'text-classification'
      ? await evaluateClassifiers(models, options)
      : await evaluateLanguageModels(models, options, options.role === 'completion');
  const rows: GateRow[] = metrics.map((m) => {
    const candidate = evaluated.figures[0][m.name];
    const current = serving ? evaluated.figures[1][m.name] : undefined;
    const pass =
      current === undefined ||
      (m.better === 'higher' ? candidate >= current - threshold : candidate <= current + threshold);
    return {
      metric: m.name,
      better: m.better,
      candidate,
      ...(current !== undefined ? { serving: current } : {}),
      pass,
    };
  });
  // Only the gate's own metrics decide; the others are shown for context.
  const deciding = kind === 'text-classification' ? rows.filter((r) => r.metric === 'macroF1') : rows;
  return {
    report: {
      role: options.role,
      candidate: options.candidate.name,
      ...(serving ? { serving: serving.name } : {}),
      threshold,
      data: evaluated.data,
      rows,
      pass: deciding.every((r) => r.pass),
    },
    metrics: evaluated.figures[0],
  };
}

async function evaluateLanguageModels(
  models: GateModel[],
  options: GateOptions,
  completions: boolean,
): Promise<{ data: string; figures: Record<string, number>[] }> {
  const workspace = options.evalWorkspace ?? readModelCard(options.candidate.dir)?.data?.workspace;
  if (!workspace)
    throw new RegistryError(
      `"${options.candidate.name}" records no training workspace: give an evaluation workspace`,
      'invalidName',
    );
  // The files none of the models trained on (held out by those trained here; all files for the others).
  const files = await chooseEvaluationFiles(
    workspace,
    models.map((m) => m.dir),
  );
  const figures: Record<string, number>[] = [];
  for (const model of models) {
    options.onProgress?.(`evaluating ${model.name} on ${files.description}`);
    const result = await evaluateModel(model.dir, workspace, {
      files,
      samples: completions ? (options.samples ?? 40) : 0,
      threads: options.threads,
      record: false,
      signal: options.signal,
    });
    figures.push({
      valLoss: result.valLoss,
      bitsPerByte: result.bitsPerByte ?? result.valLoss,
      exactMatch: result.exactMatch,
      editSimilarity: result.editSimilarity,
    });
  }
  return { data: files.description, figures };
}

async function evaluateClassifiers(
  models: GateModel[],
  options: GateOptions,
): Promise<{ data: string; figures: Record<string, number>[] }> {
  let data = options.evalData;
  let validationOnly = false;
  if (!data) {
    const h = readModelCard(options.candidate.dir)?.hyperparameters ?? {};
    if (typeof h.dataFile !== 'string' || typeof h.textColumn !== 'string' || typeof h.labelColumn !== 'string')
      throw new RegistryError(
        `"${options.candidate.name}" records no training data: give an evaluation data file`,
        'invalidName',
      );
    data = { file: h.dataFile, text: h.textColumn, label: h.labelColumn };
    validationOnly = true;
  }
  const figures: Record<string, number>[] = [];
  for (const model of models) {
    options.onProgress?.(`evaluating ${model.name} on ${path.basename(data.file)}`);
    const metrics = await evaluateClassifier(model.dir, data.file, {
      text: data.text,
      label: data.label,
      validationOnly,
      threads: options.threads,
    });
    figures.push({ macroF1: metrics.macroF1, accuracy: metrics.accuracy });
  }
  return {
    data: `${validationOnly ? 'the validation rows of ' : 'the rows of '}${data.file} (${data.text} → ${data.label})`,
    figures,
  };
}

/** The gate's table as text: metric, serving, candidate, verdict. */
export function formatGateTable(report: GateReport): string {
  const format = (v: number | undefined) => (v === undefined ? '—' : v.toFixed(4));
  const lines = [
    `${report.role}: candidate "${report.candidate}" vs ${report.serving ? `serving "${report.serving}"` : 'nothing serving'}` +
      ` on ${report.data} (threshold ${report.threshold})`,
    `  ${'metric'.padEnd(16)} ${'serving'.padStart(10)} ${'candidate'.padStart(10)}  verdict`,
  ];
  for (const row of report.rows) {
    const arrow = row.better === 'higher' ? '↑' : '↓';
    lines.push(
      `  ${`${row.metric} ${arrow}`.padEnd(16)} ${format(row.serving).padStart(10)} ${format(row.candidate).padStart(10)}  ${row.pass ? 'ok' : 'worse'}`,
    );
  }
  lines.push(report.pass ? 'gate: passed' : 'gate: refused (the candidate is worse than the serving model)');
  return lines.join('\n');
}
