// `modelwright eval`: evaluates one or more model folders on a workspace, all on the same files, and prints a
// table (or JSON lines) with the files used, held-out loss per token and per byte, next-line completion figures
// and latency; with --context, also next-line completion as the editor prompts it (suffix, workspace context)
// beside a character n-gram baseline. Evaluations of shipped or read-only models are recorded under the user's
// data folder.
import * as path from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { type ContextEvaluationResult, type ContextMode, evaluateWithContext } from '../completion/contextEvaluation';
import { type EvaluationFiles, chooseEvaluationFiles, type EvaluationResult, evaluateModel } from '../eval/evaluate';
import { isIncomplete } from '../train/finalExport';
import { splitByFile } from '../workspace/corpus';
import { evalClassifierCommand } from './classifyCommands';
import { isShippedModel, nonNegativeInteger, integer, positiveInteger, UsageError } from './options';
import { ProgressBar } from './progressBar';

interface EvalFlags {
  workspace?: string;
  data?: string;
  text?: string;
  label?: string;
  validation?: boolean;
  samples: number;
  seed: number;
  json?: boolean;
  threads: number;
  heldOutOf?: string;
  lossBytes: number;
  record: boolean;
  examples: number;
  context?: ContextMode;
}

function contextMode(value: string): ContextMode {
  if (value !== 'none' && value !== 'workspace') throw new InvalidArgumentError("expected 'none' or 'workspace'");
  return value;
}

export function addEvalCommand(program: Command): void {
  program
    .command('eval')
    .summary('evaluate model folders on a workspace, or a classifier on labelled rows')
    .description(
      'Evaluates each model folder on the same files of a workspace: on a workspace some of the models were ' +
        'trained on, the files all of them held out from training; elsewhere all its files. Reports the held-out ' +
        'loss per token (and perplexity) and in bits per byte (which compares models with different tokenizers), ' +
        'next-line exact match and edit similarity at sampled cursor positions, and completion latency. The ' +
        "result is added to the model card, or for a shipped or read-only model to the user's data folder " +
        '(MODELWRIGHT_DATA_DIR, else $XDG_DATA_HOME/modelwright or ~/.local/share/modelwright).\n\n' +
        'A text classifier is evaluated on labelled rows instead: MODELDIR --data FILE --text COLUMN --label ' +
        'COLUMN reports accuracy, macro-F1, per-class precision and recall and the confusion matrix.',
    )
    .argument('<modeldir...>', 'one or more model folders')
    .option('--workspace <dir>', 'the workspace to evaluate language models on')
    .option('--data <file>', 'evaluate a text classifier on this labelled CSV or JSONL file instead')
    .option('--text <column>', 'with --data: the column holding the text')
    .option('--label <column>', 'with --data: the column holding the label')
    .option('--validation', "with --data: only the rows of the file's validation split (held out in training)")
    .option('--samples <n>', 'cursor positions for next-line completion', nonNegativeInteger, 100)
    .option('--seed <n>', 'chooses the cursor positions', integer, 0)
    .option('--held-out-of <modeldir>', 'use the files this model held out from training')
    .option('--loss-bytes <n>', 'bytes of held-out text (whole files) the loss is measured on', positiveInteger, 64000)
    .option('--examples <n>', 'also show this many completions next to the real line', nonNegativeInteger, 0)
    .option(
      '--context <mode>',
      "also score completions as the editor prompts them (suffix after the cursor), with 'none' or 'workspace' " +
        'context (the evaluated files are kept out of the index), beside a character 8-gram baseline trained on ' +
        'the other files',
      contextMode,
    )
    .option('--threads <n>', 'onnxruntime threads', positiveInteger, 1)
    .option('--no-record', 'do not record the results')
    .option('--json', 'one JSON object per model on stdout')
    .action(async (modelDirs: string[], flags: EvalFlags) => runEval(modelDirs, flags));
}

async function runEval(modelDirs: string[], flags: EvalFlags): Promise<void> {
  if (flags.data) return runEvalClassifier(modelDirs, flags);
  if (!flags.workspace)
    throw new UsageError("required option '--workspace <dir>' (or --data for a classifier) not specified");
  const workspace = flags.workspace;
  for (const dir of modelDirs)
    if (isIncomplete(dir)) throw new UsageError(`${dir} is an unfinished training run, not a model`);
  const chosen = await chooseEvaluationFiles(workspace, modelDirs, flags.heldOutOf);
  const bar = new ProgressBar();
  if (!flags.json) bar.log(`evaluating on ${chosen.description}`);
  const results: Result[] = [];
  for (const dir of modelDirs) {
    const result = await evaluateModel(dir, workspace, {
      samples: flags.samples,
      seed: flags.seed,
      threads: flags.threads,
      lossBytes: flags.lossBytes,
      files: chosen,
      record: flags.record,
      examples: flags.examples,
      readOnly: isShippedModel(dir),
      onProgress: flags.json ? undefined : (done, total, message) => bar.update(done / total, `${dir}: ${message}`),
    });
    if (!flags.json) bar.log(`${dir}: done${result.recordedIn ? ` (recorded in ${result.recordedIn})` : ''}`);
    const context = flags.context ? await contextEvaluation(dir, flags, chosen, bar) : undefined;
    results.push({ dir, result, context });
  }
  if (flags.json) {
    for (const { dir, result, context } of results) {
      const { filesDescription, recordedIn: _, files: __, examples, ...figures } = result;
      const shown = { ...(flags.examples > 0 ? { examples } : {}), ...(context ? { context } : {}) };
      process.stdout.write(`${JSON.stringify({ model: path.resolve(dir), ...figures, filesDescription, ...shown })}\n`);
    }
    return;
  }
  const first = results[0].result;
  process.stdout.write(
    `on ${first.heldOutFiles} files (digest ${first.filesDigest}); loss over ${first.lossFiles} of them ` +
      `(${first.lossBytes} bytes), next-line completion at ${first.samples} cursor positions\n`,
  );
  process.stdout.write(formatTable(results));
  process.stdout.write(formatContextTable(results));
  process.stdout.write(formatExamples(results));
}

async function runEvalClassifier(modelDirs: string[], flags: EvalFlags): Promise<void> {
  if (flags.workspace || flags.context)
    throw new UsageError('--data evaluates a classifier: --workspace and --context do not apply');
  if (modelDirs.length !== 1) throw new UsageError('--data evaluates one classifier at a time');
  const { data, text, label, json, validation, threads } = flags;
  const code = await evalClassifierCommand(
    { model: modelDirs[0], data, text, label, json, validation, threads },
    { stdout: process.stdout, stderr: process.stderr },
  );
  if (code !== 0) process.exitCode = code;
}

/** Next-line completion as the editor prompts it, on the chosen files, which stay out of the workspace index. */
async function contextEvaluation(
  dir: string,
  flags: EvalFlags,
  chosen: EvaluationFiles,
  bar: ProgressBar,
): Promise<ContextEvaluationResult> {
  // On a workspace the models were not trained on, a fifth of it is evaluated and the rest is the context.
  const evaluated = chosen.heldOut
    ? chosen.files
    : splitByFile(chosen.files, { seed: flags.seed, validationFraction: 0.2 }).validation;
  return evaluateWithContext(dir, flags.workspace!, {
    context: flags.context!,
    heldOut: evaluated.map((file) => file.path),
    samples: flags.samples,
    seed: flags.seed,
    threads: flags.threads,
    onProgress: flags.json ? undefined : (done, total) => bar.update(done / total, `${dir}: ${flags.context} context`),
  });
}

function formatContextTable(results: Result[]): string {
  const scored = results.filter((r): r is Required<Result> => r.context !== undefined);
  if (scored.length === 0) return '';
  const percent = (x: number) => `${(100 * x).toFixed(1)}%`;
  const ratio = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '∞');
  const header = ['model', 'context', 'exact match', 'edit sim.', '8-gram EM', '8-gram ES', 'EM ratio', 'ES ratio'];
  const rows = scored.map(({ dir, context: c }) => [
    dir,
    `${c.context} (${c.meanContextTokens.toFixed(0)} tokens)`,
    percent(c.model.exactMatch),
    c.model.editSimilarity.toFixed(3),
    percent(c.ngram.exactMatch),
    c.ngram.editSimilarity.toFixed(3),
    ratio(c.ratio.exactMatch),
    ratio(c.ratio.editSimilarity),
  ]);
  const first = scored[0].context;
  return (
    `\nas the editor prompts (suffix present) at ${first.samples} cursor positions of ${first.heldOutFiles} files; ` +
    `the 8-gram baseline trained on the other ${first.trainingFiles}:\n` +
    table(header, rows)
  );
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ') + '\n';
  return line(header) + rows.map(line).join('');
}

interface Result {
  dir: string;
  result: EvaluationResult;
  context?: ContextEvaluationResult;
}

/** The completions side by side with the real line, one block per cursor position. */
function formatExamples(results: { dir: string; result: EvaluationResult }[]): string {
  const count = Math.min(...results.map(({ result }) => result.examples.length));
  if (!(count > 0)) return '';
  const width = Math.max('real line'.length, ...results.map(({ dir }) => dir.length));
  let text = '\ncompletions of the next line at held-out cursor positions:\n';
  for (let i = 0; i < count; i++) {
    const { path: file, before, expected } = results[0].result.examples[i];
    text += `  ${file}, after: ${before.trim().slice(0, 70)}\n`;
    text += `    ${'real line'.padEnd(width)}  ${expected}\n`;
    for (const { dir, result } of results) {
      const generated = result.examples[i].generated.trim();
      const mark = generated === expected ? '  ✓' : '';
      text += `    ${dir.padEnd(width)}  ${generated || '(nothing)'}${mark}\n`;
    }
  }
  return text;
}

function formatTable(results: { dir: string; result: EvaluationResult }[]): string {
  const header = ['model', 'loss/token', 'perplexity', 'bits/byte', 'exact match', 'edit sim.', 'p50 ms', 'p95 ms'];
  const rows = results.map(({ dir, result }) => [
    dir,
    result.valLoss.toFixed(4),
    result.perplexity.toFixed(2),
    result.bitsPerByte?.toFixed(3) ?? '',
    `${(100 * result.exactMatch).toFixed(1)}%`,
    result.editSimilarity.toFixed(3),
    result.latencyMs.p50.toFixed(1),
    result.latencyMs.p95.toFixed(1),
  ]);
  const baseline = results[0].result.baseline;
  rows.push([
    'baseline: repeat the previous line',
    '',
    '',
    '',
    `${(100 * baseline.exactMatch).toFixed(1)}%`,
    baseline.editSimilarity.toFixed(3),
    '',
    '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ') + '\n';
  const note =
    results.length > 1
      ? 'loss/token and perplexity compare only models with the same tokenizer; bits/byte compares any.\n'
      : '';
  return line(header) + rows.map(line).join('') + note;
}
