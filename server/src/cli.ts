// The `modelwright` command: train, eval and complete from a terminal with the same modules the language
// server uses, no VS Code needed. Each subcommand parses its flags with node:util parseArgs.
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ProgressBar, formatDuration } from './cli/progressBar';
import { PresetName, presets } from './engine/model';
import { train } from './train/trainer';

const usage = `usage:
  modelwright train --workspace DIR --out MODELDIR [--preset ${Object.keys(presets).join('|')}] [--base MODELDIR]
                    [--minutes N | --steps N] [--resume] [--seed N] [--batch-size N] [--context N]
                    [--learning-rate X] [--eval-every N] [--threads N]
  modelwright eval MODELDIR --workspace DIR [--samples N] [--json]
  modelwright complete --model MODELDIR --prompt TEXT [--suffix TEXT] [--max-tokens N] [--greedy] [--json]`;

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
      workspace: { type: 'string' }, out: { type: 'string' }, preset: { type: 'string' }, base: { type: 'string' },
      minutes: { type: 'string' }, steps: { type: 'string' }, resume: { type: 'boolean' }, seed: { type: 'string' },
      'batch-size': { type: 'string' }, context: { type: 'string' }, 'learning-rate': { type: 'string' },
      'eval-every': { type: 'string' }, threads: { type: 'string' },
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
        if (p.valLoss !== undefined) bar.log(`step ${p.step}: loss ${p.loss?.toFixed(4)}, validation loss ${p.valLoss.toFixed(4)}`);
      },
    },
  );
  bar.log(
    `${result.finished ? 'trained' : 'stopped'} ${result.steps} steps in ${formatDuration(result.elapsedSeconds)}: ` +
      `loss ${result.loss.toFixed(4)}, validation loss ${result.valLoss.toFixed(4)}, ${Math.round(result.tokensPerSecond)} tok/s → ${path.resolve(result.modelDir)}`,
  );
};

const commands: Record<string, Command> = { train: trainCommand };

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  const command = name ? commands[name] : undefined;
  if (!command) {
    process.stderr.write(`${usage}\n`);
    return name && name !== '--help' ? 2 : 0;
  }
  try {
    await command(args);
    return 0;
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
