// `modelwright train`: trains a model from scratch or fine-tunes one on a workspace (or a text classifier on
// labelled rows), with a progress bar whose total settles after the first steps, Ctrl-C that saves a usable model,
// and --resume that continues.
import * as path from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { type PresetName, presets } from '../engine/model';
import { formatDuration, type TrainProgress } from '../protocol';
import { train } from '../train/trainer';
import { trainClassifierCommand } from './classifyCommands';
import { collect, nonNegativeNumber, positiveInteger, positiveNumber, UsageError, integer } from './options';
import { ProgressBar } from './progressBar';

interface TrainFlags {
  task: 'language-model' | 'classify';
  workspace?: string;
  out: string;
  preset?: string;
  base?: string;
  minutes?: number;
  steps?: number;
  resume?: boolean;
  force?: boolean;
  seed?: number;
  batchSize?: number;
  context?: number;
  learningRate?: number;
  warmup?: number;
  evalEvery?: number;
  checkpointSeconds?: number;
  threads?: number;
  allow?: string[];
  method?: string;
  loraRank?: number;
  loraAlpha?: number;
  loraDropout?: number;
  loraTargets?: string;
  dtype?: string;
  fimRate?: number;
  validationFraction?: number;
  data?: string;
  text?: string;
  label?: string;
  epochs?: number;
  patience?: number;
  weightDecay?: number;
  dropout?: number;
  classWeights?: string;
  maxLength?: number;
}

export function addTrainCommand(program: Command): void {
  program
    .command('train')
    .summary('train a model on a workspace, or fine-tune one')
    .description(
      'Trains a model on the source files of a workspace (from scratch with --preset, or fine-tuning --base) ' +
        'and writes a model folder. Give a budget: --minutes (the learning-rate schedule is planned from the ' +
        'measured speed to end with the budget) or --steps. Ctrl-C saves a usable model; --resume continues.\n\n' +
        'Reproducibility: with --threads 1 the same options give bit-identical weights, also across an ' +
        'interruption and --resume. With more threads onnxruntime may add numbers in a different order, so ' +
        'runs agree only within float rounding.\n\n' +
        'Text classifiers: --task classify --data FILE.csv|FILE.jsonl --text COLUMN --label COLUMN --out MODELDIR ' +
        'trains a small transformer encoder on labelled rows (stratified validation split, early stopping) and ' +
        "writes a folder transformers.js's text-classification pipeline loads.",
    )
    .usage(
      '--workspace DIR --out MODELDIR (--minutes N | --steps N | --resume) [options]\n' +
        '       modelwright train --task classify --data FILE --text COLUMN --label COLUMN --out MODELDIR [options]',
    )
    .option(
      '--task <task>',
      'language-model (code completion, from a workspace) or classify (labelled rows)',
      task,
      'language-model',
    )
    .option('--workspace <dir>', 'the workspace whose files to train on (language models)')
    .requiredOption('--out <modeldir>', 'the model folder to write (must be new or empty, unless --resume or --force)')
    .option('--minutes <n>', 'time budget in minutes: the schedule ends with it', positiveNumber)
    .option('--steps <n>', 'number of optimizer steps', positiveInteger)
    .option('--resume', 'continue the run stopped in --out (options given again override the stored ones)')
    .option('--force', 'replace whatever --out holds')
    .option('--preset <name>', `architecture of a new model: ${Object.keys(presets).join(', ')} (default: tiny)`)
    .option('--base <modeldir>', 'fine-tune this model folder (keeps its tokenizer and architecture)')
    .option('--seed <n>', 'seeds weights, split and batches (default: 0)', integer)
    .option('--batch-size <n>', 'sequences per step (default: 16)', positiveInteger)
    .option('--context <n>', "training window in tokens (default: the model's context)", positiveInteger)
    .option('--learning-rate <x>', 'peak learning rate (default: 1e-3, fine-tuning 3e-4)', positiveNumber)
    .option('--warmup <n>', 'warmup steps (default: a tenth of the run, at most 100)', positiveInteger)
    .option('--eval-every <n>', 'steps between validation-loss measurements (default: 50)', positiveInteger)
    .option('--checkpoint-seconds <n>', 'seconds between checkpoints (default: 30)', nonNegativeNumber)
    .option('--threads <n>', 'onnxruntime threads; 1 gives bit-identical runs (default: all cores)', positiveInteger)
    .option(
      '--allow <pattern>',
      'gitignore-style pattern of files to keep although a heuristic excludes them (repeatable)',
      collect,
    )
    .option(
      '--method <lora|full>',
      'fine-tuning a --base: a LoRA adapter or every weight (default: lora for Llama-family bases, full for GPT-2)',
    )
    .option('--lora-rank <n>', 'LoRA rank r (default: 8)', positiveInteger)
    .option('--lora-alpha <x>', 'LoRA alpha: the adapter is scaled by alpha / r (default: 2 × rank)', positiveNumber)
    .option('--lora-dropout <x>', 'dropout on the adapter input (default: 0)', nonNegativeNumber)
    .option(
      '--lora-targets <list>',
      'adapted layers: q,k,v,o,gate,up,down of a Llama-family base (default: q,k,v,o); c_attn,c_proj,c_fc of GPT-2 ' +
        '(default: c_attn; c_proj is the attention and MLP outputs)',
    )
    .option('--dtype <fp32|q8>', 'q8 also writes onnx/model_quantized.onnx with int8 weights (default: fp32)')
    .option(
      '--fim-rate <x>',
      'share of training files made fill-in-the-middle examples, so completions can see the text after the cursor ' +
        '(0 to 1; default: 0.5; 0 trains left to right only)',
      fraction,
    )
    .option(
      '--validation-fraction <x>',
      'share of the files (classify: of the rows) held out for validation and evaluation (default: 0.1; classify 0.2)',
      fraction,
    )
    .option('--data <file>', 'classify: the labelled CSV or JSONL file')
    .option('--text <column>', 'classify: the column (CSV header or JSON key) holding the text')
    .option('--label <column>', 'classify: the column holding the label')
    .option('--epochs <n>', 'classify: most passes over the training rows (default: 30)', positiveInteger)
    .option(
      '--patience <n>',
      'classify: stop after this many epochs without a better validation loss (default: 4)',
      positiveInteger,
    )
    .option(
      '--weight-decay <x>',
      'classify: AdamW weight decay, the L2 regularisation (default: 0.01)',
      nonNegativeNumber,
    )
    .option('--dropout <x>', 'classify: dropout rate in the encoder (default: 0.1)', nonNegativeNumber)
    .option(
      '--class-weights <none|balanced>',
      'classify: sample classes evenly (balanced) or as they come (default: none)',
    )
    .option('--max-length <n>', 'classify: most tokens of a text (default: 128)', positiveInteger)
    .action(async (flags: TrainFlags) => runTrain(flags));
}

function fraction(value: string): number {
  const x = Number(value);
  if (!(value.trim() !== '' && x >= 0 && x <= 1)) throw new InvalidArgumentError('give a number from 0 to 1');
  return x;
}

function task(value: string): TrainFlags['task'] {
  if (value !== 'language-model' && value !== 'classify')
    throw new InvalidArgumentError('give language-model or classify');
  return value;
}

async function runTrain(flags: TrainFlags): Promise<void> {
  if (flags.task === 'classify') return runTrainClassifier(flags);
  if (!flags.workspace) throw new UsageError("required option '--workspace <dir>' not specified");
  const workspace = flags.workspace;
  if (flags.preset && !(flags.preset in presets))
    throw new UsageError(`unknown preset "${flags.preset}" (one of ${Object.keys(presets).join(', ')})`);
  if (flags.preset && flags.base) throw new UsageError('--preset trains from scratch, --base fine-tunes: give one');
  if (!flags.resume && flags.minutes === undefined && flags.steps === undefined)
    throw new UsageError('give a budget: --minutes N or --steps N (or --resume to continue a run)');
  if (flags.resume && flags.force) throw new UsageError('--resume continues the run in --out, --force replaces it');
  if (flags.method !== undefined && !['lora', 'full'].includes(flags.method))
    throw new UsageError(`--method ${flags.method}: give lora or full`);
  if (flags.dtype !== undefined && !['fp32', 'q8'].includes(flags.dtype))
    throw new UsageError(`--dtype ${flags.dtype}: give fp32 or q8`);

  const controller = new AbortController();
  const bar = new ProgressBar();
  process.once('SIGINT', () => {
    bar.log('stopping: saving a checkpoint (Ctrl-C again to quit at once)');
    controller.abort();
    process.once('SIGINT', () => process.exit(130));
  });
  const result = await train(
    {
      workspace,
      out: flags.out,
      preset: flags.preset as PresetName | undefined,
      base: flags.base,
      minutes: flags.minutes,
      steps: flags.steps,
      resume: flags.resume,
      force: flags.force,
      seed: flags.seed,
      batchSize: flags.batchSize,
      contextLength: flags.context,
      learningRate: flags.learningRate,
      warmupSteps: flags.warmup,
      evalEvery: flags.evalEvery,
      threads: flags.threads,
      checkpointSeconds: flags.checkpointSeconds,
      allow: flags.allow,
      method: flags.method as 'lora' | 'full' | undefined,
      loraRank: flags.loraRank,
      loraAlpha: flags.loraAlpha,
      loraDropout: flags.loraDropout,
      loraTargets: flags.loraTargets?.split(',').map((target) => target.trim()),
      dtype: flags.dtype as 'fp32' | 'q8' | undefined,
      fimRate: flags.fimRate,
      validationFraction: flags.validationFraction,
    },
    { signal: controller.signal, onProgress: (p) => showProgress(bar, p) },
  );
  const held = result.heldOutFiles
    ? ` on ${result.heldOutFiles} held-out file${result.heldOutFiles === 1 ? '' : 's'}`
    : '';
  const bits = result.bitsPerByte !== undefined ? ` (${result.bitsPerByte.toFixed(3)} bits/byte)` : '';
  bar.log(
    `${result.finished ? 'trained' : 'stopped after'} ${result.steps} steps in ${formatDuration(result.elapsedSeconds)}: ` +
      `loss ${result.loss.toFixed(4)}, validation loss ${result.valLoss.toFixed(4)}${bits}${held}, ` +
      `${Math.round(result.tokensPerSecond)} tok/s → ${path.resolve(result.modelDir)}`,
  );
}

async function runTrainClassifier(flags: TrainFlags): Promise<void> {
  if (flags.workspace || flags.preset || flags.steps || flags.resume || flags.method)
    throw new UsageError(
      '--task classify trains from --data rows: --workspace, --preset, --steps, --resume and --method do not apply',
    );
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const { data, text, label, out, base, epochs, patience, batchSize, learningRate, weightDecay, dropout } = flags;
  const code = await trainClassifierCommand(
    {
      ...{ data, text, label, out, base, epochs, patience, batchSize, learningRate, weightDecay, dropout },
      ...{ classWeights: flags.classWeights, maxLength: flags.maxLength, minutes: flags.minutes },
      ...{ seed: flags.seed, threads: flags.threads, validationFraction: flags.validationFraction },
      signal: controller.signal,
    },
    { stdout: process.stdout, stderr: process.stderr },
  );
  if (code !== 0) process.exitCode = code;
}

/** The bar's line: the step of a planned total (`~` while the plan may still change), figures and ETA. */
export function progressLine(p: TrainProgress): string {
  const total = p.totalSteps > 0 ? `${p.totalStepsFinal === false ? '~' : ''}${p.totalSteps}` : '?';
  const parts = [
    `step ${p.step}/${total}`,
    p.loss !== undefined ? `loss ${p.loss.toFixed(3)}` : '',
    p.valLoss !== undefined ? `val ${p.valLoss.toFixed(3)}` : '',
    p.learningRate !== undefined ? `lr ${p.learningRate.toExponential(1)}` : '',
    `${Math.round(p.tokensPerSecond ?? 0)} tok/s`,
    `ETA ${formatDuration(p.etaSeconds ?? NaN)}`,
  ];
  return parts.filter(Boolean).join('  ');
}

let lastTraining: TrainProgress | undefined;

function showProgress(bar: ProgressBar, p: TrainProgress): void {
  if (p.phase === 'training') {
    lastTraining = p;
    bar.update(p.fraction ?? (p.totalSteps ? p.step / p.totalSteps : 0), progressLine(p));
    if (p.valLoss !== undefined)
      bar.log(`step ${p.step}: loss ${p.loss?.toFixed(4)}, validation loss ${p.valLoss.toFixed(4)}`);
    return;
  }
  if (p.phase === 'saving' && lastTraining) {
    bar.finish(lastTraining.fraction ?? 1, progressLine({ ...lastTraining, totalStepsFinal: true, etaSeconds: 0 }));
  }
  bar.log(p.message);
}
