// The `modelwright` command: train, eval, complete, serve and deploy from a terminal with the same modules the
// language server uses, no VS Code needed. Each subcommand parses its flags with node:util parseArgs.
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ProgressBar } from './cli/progressBar';
import { formatDuration } from './protocol';
import { CONVERSION_DTYPES, type ConversionDtype, convertFolder, ensureRunnable } from './convert/convertFolder';
import { exportTriton } from './deploy/tritonExport';
import { runPull } from './hub/pullCommand';
import { type PresetName, presets } from './engine/model';
import { evaluateModel } from './eval/evaluate';
import { readModelCard, updateModelCard } from './modelFolder/modelCard';
import { generate } from './runtime/generate';
import { loadLanguageModel } from './runtime/languageModel';
import { train } from './train/trainer';

const usage = [
  'usage:',
  `  modelwright train --workspace DIR --out MODELDIR [--preset ${Object.keys(presets).join('|')}] [--base MODELDIR]`,
  '                    [--minutes N | --steps N] [--resume] [--seed N] [--batch-size N] [--context N]',
  '                    [--learning-rate X] [--eval-every N] [--checkpoint-seconds N] [--threads N]',
  '  modelwright eval MODELDIR --workspace DIR [--samples N] [--json]',
  '  modelwright complete --model MODELDIR --prompt TEXT [--suffix TEXT] [--max-tokens N] [--greedy] [--json]',
  '  modelwright serve --model [NAME=]MODELDIR [--model …] [--host H] [--port N] [--api-key-file F]',
  '                    [--max-batch-size N] [--max-batch-tokens N] [--no-batching] [--queue N] ' +
    '[--timeout SECONDS] [--threads N]',
  '  modelwright deploy MODELDIR --export triton DIR [--name NAME]',
  '  modelwright pull REPO_ID [--revision REV] [--dtype fp32|q8|q4] [--out DIR]   ' +
    '(HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE)',
  '  modelwright convert MODELDIR [--dtype fp32|q8]   (builds onnx/model.onnx, or with q8 int8 ' +
    "onnx/model_quantized.onnx, from a hub checkpoint's safetensors: gpt2, llama, qwen2, mistral)",
  '  modelwright lsp --stdio | --node-ipc   (the language server, for editors other than VS Code)',
].join('\n');

type Command = (args: string[]) => Promise<void>;

const optionalNumber = (v: string | undefined, name: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} needs a number, got "${v}"`);
  return n;
};

class UsageError extends Error {}

const trainCommand: Command = async (args) => {
  const { values } = parseArgs({
    args,
    options: {
      workspace: { type: 'string' },
      out: { type: 'string' },
      preset: { type: 'string' },
      base: { type: 'string' },
      minutes: { type: 'string' },
      steps: { type: 'string' },
      resume: { type: 'boolean' },
      seed: { type: 'string' },
      'batch-size': { type: 'string' },
      context: { type: 'string' },
      'learning-rate': { type: 'string' },
      'eval-every': { type: 'string' },
      threads: { type: 'string' },
      'checkpoint-seconds': { type: 'string' },
    },
  });
  if (!values.workspace || !values.out) throw new UsageError('train needs --workspace DIR and --out MODELDIR');
  if (values.preset && !(values.preset in presets)) throw new UsageError(`unknown preset "${values.preset}"`);
  if (values.preset && values.base) throw new UsageError('--preset trains from scratch, --base fine-tunes: give one');

  const controller = new AbortController();
  const bar = new ProgressBar();
  process.once('SIGINT', () => {
    bar.log('stopping: saving a checkpoint (Ctrl-C again to quit at once)');
    controller.abort();
    process.once('SIGINT', () => process.exit(130));
  });
  const result = await train(
    {
      workspace: values.workspace,
      out: values.out,
      preset: values.preset as PresetName | undefined,
      base: values.base,
      minutes: optionalNumber(values.minutes, 'minutes'),
      steps: optionalNumber(values.steps, 'steps'),
      resume: values.resume,
      seed: optionalNumber(values.seed, 'seed'),
      batchSize: optionalNumber(values['batch-size'], 'batch-size'),
      contextLength: optionalNumber(values.context, 'context'),
      learningRate: optionalNumber(values['learning-rate'], 'learning-rate'),
      evalEvery: optionalNumber(values['eval-every'], 'eval-every'),
      threads: optionalNumber(values.threads, 'threads'),
      checkpointSeconds: optionalNumber(values['checkpoint-seconds'], 'checkpoint-seconds'),
    },
    {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase !== 'training') return bar.log(p.message);
        const parts = [
          `step ${p.step}/${p.totalSteps}`,
          `loss ${p.loss?.toFixed(3)}`,
          p.valLoss !== undefined ? `val ${p.valLoss.toFixed(3)}` : '',
          `${Math.round(p.tokensPerSecond ?? 0)} tok/s`,
          `ETA ${formatDuration(p.etaSeconds ?? NaN)}`,
        ];
        bar.update(p.totalSteps ? p.step / p.totalSteps : 0, parts.filter(Boolean).join('  '));
        if (p.valLoss !== undefined)
          bar.log(`step ${p.step}: loss ${p.loss?.toFixed(4)}, validation loss ${p.valLoss.toFixed(4)}`);
      },
    },
  );
  bar.log(
    `${result.finished ? 'trained' : 'stopped'} ${result.steps} steps in ${formatDuration(result.elapsedSeconds)}: ` +
      `loss ${result.loss.toFixed(4)}, validation loss ${result.valLoss.toFixed(4)}, ` +
      `${Math.round(result.tokensPerSecond)} tok/s → ${path.resolve(result.modelDir)}`,
  );
};

const evalCommand: Command = async (args) => {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      workspace: { type: 'string' },
      samples: { type: 'string' },
      seed: { type: 'string' },
      json: { type: 'boolean' },
      threads: { type: 'string' },
    },
  });
  const [modelDir] = positionals;
  if (!modelDir || !values.workspace) throw new UsageError('eval needs MODELDIR and --workspace DIR');
  const bar = new ProgressBar();
  const result = await evaluateModel(modelDir, values.workspace, {
    samples: optionalNumber(values.samples, 'samples'),
    seed: optionalNumber(values.seed, 'seed'),
    threads: optionalNumber(values.threads, 'threads'),
    onProgress: values.json ? undefined : (done, total, message) => bar.update(done / total, message),
  });
  if (values.json) {
    const { heldOutFiles: _, ...json } = result;
    process.stdout.write(JSON.stringify(json) + '\n');
    return;
  }
  bar.log(
    `evaluated ${path.resolve(modelDir)} on ${result.heldOutFiles} held-out files of ${path.resolve(values.workspace)}`,
  );
  const rows: [string, string][] = [
    ['validation loss', result.valLoss.toFixed(4)],
    ['perplexity', result.perplexity.toFixed(2)],
    ['next-line exact match', `${(100 * result.exactMatch).toFixed(1)}% of ${result.samples}`],
    ['next-line edit similarity', result.editSimilarity.toFixed(3)],
    ['completion latency p50 / p95', `${result.latencyMs.p50.toFixed(1)} / ${result.latencyMs.p95.toFixed(1)} ms`],
  ];
  for (const [k, v] of rows) process.stdout.write(`  ${k.padEnd(30)} ${v}\n`);
};

const completeCommand: Command = async (args) => {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' },
      prompt: { type: 'string' },
      suffix: { type: 'string' },
      'max-tokens': { type: 'string' },
      greedy: { type: 'boolean' },
      temperature: { type: 'string' },
      'top-p': { type: 'string' },
      seed: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (!values.model || values.prompt === undefined)
    throw new UsageError('complete needs --model MODELDIR and --prompt TEXT');
  ensureRunnable(values.model, (message) => process.stderr.write(`${message}\n`));
  const model = await loadLanguageModel(values.model, { intraOpThreads: 1 });
  try {
    const suffixLine = values.suffix
      ?.split('\n')
      .find((l) => l.trim())
      ?.trim();
    const result = await generate(model, values.prompt, {
      maxTokens: optionalNumber(values['max-tokens'], 'max-tokens') ?? 64,
      temperature: values.greedy ? 0 : (optionalNumber(values.temperature, 'temperature') ?? 0.7),
      topP: optionalNumber(values['top-p'], 'top-p') ?? 0.95,
      seed: optionalNumber(values.seed, 'seed'),
      // Stop where the completion reaches the text after the cursor.
      stop: suffixLine ? [suffixLine] : undefined,
    });
    if (values.json) process.stdout.write(JSON.stringify({ text: result.text, tokenIds: result.tokenIds }) + '\n');
    else process.stdout.write(`${values.prompt}\x1b[1m${result.text}\x1b[0m${values.suffix ?? ''}\n`);
  } finally {
    await model.dispose();
  }
};

const serveCommand: Command = async (args) => {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string', multiple: true },
      host: { type: 'string' },
      port: { type: 'string' },
      'api-key-file': { type: 'string' },
      'max-batch-size': { type: 'string' },
      'max-batch-tokens': { type: 'string' },
      'no-batching': { type: 'boolean' },
      queue: { type: 'string' },
      timeout: { type: 'string' },
      threads: { type: 'string' },
    },
  });
  if (!values.model?.length) throw new UsageError('serve needs at least one --model MODELDIR');
  const models = values.model.map((spec) => {
    const at = spec.indexOf('=');
    return at > 0 ? { name: spec.slice(0, at), dir: spec.slice(at + 1) } : { dir: spec };
  });
  const log = (message: string) => process.stderr.write(`${new Date().toISOString()} ${message}\n`);
  const timeout = optionalNumber(values.timeout, 'timeout');
  // Loaded here so that other commands (the language server among them) do not pay for the HTTP framework.
  const { readApiKeyFile } = await import('./serve/auth.js');
  const { startServer } = await import('./serve/httpServer.js');
  const server = await startServer({
    models,
    host: values.host,
    port: optionalNumber(values.port, 'port') ?? 8000,
    apiKey: values['api-key-file'] ? readApiKeyFile(values['api-key-file'], log) : undefined,
    batching: !values['no-batching'],
    maxBatchSize: optionalNumber(values['max-batch-size'], 'max-batch-size'),
    maxBatchTokens: optionalNumber(values['max-batch-tokens'], 'max-batch-tokens'),
    maxQueue: optionalNumber(values.queue, 'queue'),
    requestTimeoutMs: timeout === undefined ? undefined : timeout * 1000,
    intraOpThreads: optionalNumber(values.threads, 'threads'),
    log,
  });
  process.stdout.write(`listening on ${server.url}\n`);
  // SIGTERM/SIGINT: stop accepting, let requests in flight finish, exit; a second signal exits at once.
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log(`${signal}: finishing requests in flight (again to quit at once)`);
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(143));
      server.close().then(resolve, (e: unknown) => {
        log(`shutdown failed: ${e instanceof Error ? e.message : String(e)}`);
        resolve();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
};

const deployCommand: Command = async (args) => {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { export: { type: 'string' }, name: { type: 'string' } },
  });
  const [modelDir, target] = positionals;
  if (!modelDir || values.export !== 'triton' || !target)
    throw new UsageError('deploy needs MODELDIR --export triton DIR');
  const result = exportTriton(modelDir, target, { name: values.name });
  if (readModelCard(modelDir)) {
    updateModelCard(modelDir, (card) => {
      card.deployedAt = { ...card.deployedAt, [`triton:${path.resolve(target)}`]: new Date().toISOString() };
    });
  }
  process.stdout.write(
    `wrote Triton model ${result.name}: ${result.configFile} ` +
      `(${result.signature.inputs.length} inputs, ${result.signature.outputs.length} outputs) ` +
      `and ${result.modelFile}\n`,
  );
};

const lspCommand: Command = async (args) => {
  if (!args.some((a) => a === '--stdio' || a === '--node-ipc' || a.startsWith('--socket') || a.startsWith('--pipe'))) {
    throw new UsageError('lsp needs a transport: --stdio, --node-ipc, --socket=PORT or --pipe=NAME');
  }
  await import('./server.js'); // starts listening on the transport named in process.argv
  await new Promise<never>(() => {}); // the server ends the process when the client says so
};

const convertCommand: Command = async (args) => {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { dtype: { type: 'string' } },
  });
  if (positionals.length !== 1) throw new UsageError('convert needs one MODELDIR');
  const dtype = values.dtype ?? 'fp32';
  if (!(CONVERSION_DTYPES as readonly string[]).includes(dtype)) {
    throw new UsageError(`--dtype must be ${CONVERSION_DTYPES.join(' or ')}, got "${dtype}"`);
  }
  const started = performance.now();
  const result = convertFolder(positionals[0], { dtype: dtype as ConversionDtype });
  const seconds = (performance.now() - started) / 1000;
  const external = result.externalDataFile ? ` (weights in ${path.join(positionals[0], result.externalDataFile)})` : '';
  process.stdout.write(
    `${path.join(positionals[0], result.onnxFile)}: ${result.family}, ${result.dtype}, ${result.parameters} ` +
      `parameters, ${(result.bytes / 1e6).toFixed(1)} MB${external}, ${formatDuration(seconds)}\n`,
  );
};

const pullCommand: Command = async (args) => {
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const code = await runPull(args, {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    signal: controller.signal,
    afterPull: (result) => ensureRunnable(result.dir, (message) => process.stderr.write(`${message}\n`)),
  });
  if (code !== 0) process.exitCode = code;
};

const commands: Record<string, Command> = {
  lsp: lspCommand,
  train: trainCommand,
  eval: evalCommand,
  complete: completeCommand,
  serve: serveCommand,
  deploy: deployCommand,
  convert: convertCommand,
  pull: pullCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  const command = name ? commands[name] : undefined;
  if (!command) {
    process.stderr.write(`${usage}\n`);
    return name && name !== '--help' ? 2 : 0;
  }
  try {
    await command(args);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`modelwright ${name}: ${message}\n`);
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${usage}\n`);
      return 2;
    }
    return 1;
  }
}

if (require.main === module) main(process.argv.slice(2)).then((code) => process.exit(code));
