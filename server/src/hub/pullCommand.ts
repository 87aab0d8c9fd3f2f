// `modelwright pull REPO_ID [--revision REV] [--dtype fp32|q8|q4] [--out DIR]`: parses the arguments, runs
// pullModel with a progress line on stderr (rewritten in place on a TTY, a line every few seconds otherwise),
// prints the model folder on stdout and returns the exit code; every failure is one clear line.
import { defaultPullFolder } from './defaultModelsCache';
import { HubError } from './hubError';
import { pullModel, type PullResult } from './pull';
import { formatBytes, formatDuration, type PullProgress } from './pullProgress';
import { DTYPES, type Dtype } from './selectFiles';

export const PULL_USAGE = `usage: modelwright pull REPO_ID [--revision REV] [--dtype fp32|q8|q4] [--out DIR]

Downloads a model from the Hugging Face hub (HF_ENDPOINT) into DIR, by default a folder of
the models cache, and prints that folder. An interrupted pull resumes where it stopped.
  --revision REV   branch, tag or commit (default main)
  --dtype DTYPE    which ONNX export to take: fp32 (default), q8 or q4; without one, the
                   safetensors weights are pulled instead
  --out DIR        the model folder
Environment: HF_TOKEN for private or gated models, HF_HUB_OFFLINE=1 to use a pulled copy only.`;

export interface PullArgs {
  repo: string;
  revision?: string;
  dtype?: Dtype;
  out?: string;
}

export interface PullIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; isTTY?: boolean; columns?: number };
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Milliseconds between progress lines when stderr is not a TTY (5000). */
  plainIntervalMs?: number;
  /** Runs after a successful pull, before the folder is printed (the CLI converts safetensors-only pulls). */
  afterPull?: (result: PullResult) => void | Promise<void>;
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_CANCELLED = 130;

/** The parsed arguments, 'help', or the message of a usage error. */
export function parsePullArgs(args: readonly string[]): PullArgs | 'help' | { error: string } {
  const parsed: Partial<PullArgs> = {};
  const flags: Record<string, keyof PullArgs> = { '--revision': 'revision', '--dtype': 'dtype', '--out': 'out' };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--help' || arg === '-h') return 'help';
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? arg.split(/=(.*)/s) : [arg, undefined];
    const key = flags[flag === '-o' ? '--out' : flag];
    if (key) {
      const value = inline ?? args[++i];
      if (value === undefined || value === '') return { error: `${flag} needs a value` };
      (parsed as Record<string, string>)[key] = value;
    } else if (arg.startsWith('-')) {
      return { error: `unknown option ${arg}` };
    } else if (parsed.repo) {
      return { error: `unexpected argument ${arg}: give one REPO_ID` };
    } else {
      parsed.repo = arg;
    }
  }
  if (!parsed.repo) return { error: 'missing REPO_ID (owner/name)' };
  if (parsed.dtype && !DTYPES.includes(parsed.dtype))
    return { error: `--dtype must be one of ${DTYPES.join(', ')}, not ${parsed.dtype}` };
  return parsed as PullArgs;
}

/** The progress line: bytes, percentage, rate, time left and the current file. */
export function progressLine(progress: PullProgress): string {
  const percent = progress.bytesTotal > 0 ? Math.floor((progress.bytesDone / progress.bytesTotal) * 100) : 0;
  const rate = progress.bytesPerSecond > 0 ? `${formatBytes(progress.bytesPerSecond)}/s` : '-- B/s';
  const parts = [
    `${formatBytes(progress.bytesDone)} / ${formatBytes(progress.bytesTotal)}`,
    `${percent}%`,
    rate,
    `ETA ${formatDuration(progress.etaSeconds)}`,
    `[${progress.filesDone}/${progress.filesTotal}]`,
  ];
  if (progress.file) parts.push(progress.file);
  return parts.join('  ');
}

export async function runPull(args: readonly string[], io: PullIo = processIo()): Promise<number> {
  const parsed = parsePullArgs(args);
  if (parsed === 'help') {
    io.stdout.write(PULL_USAGE + '\n');
    return EXIT_OK;
  }
  if ('error' in parsed) {
    io.stderr.write(`modelwright pull: ${parsed.error}\n${PULL_USAGE.split('\n')[0]}\n`);
    return EXIT_USAGE;
  }

  const tty = Boolean(io.stderr.isTTY);
  const interval = io.plainIntervalMs ?? 5000;
  let lastPlain = -Infinity;
  let drawn = false;
  const clearLine = () => {
    if (drawn) io.stderr.write('\r\x1b[K');
    drawn = false;
  };
  const onProgress = (progress: PullProgress) => {
    if (progress.phase !== 'downloading') return;
    const line = progressLine(progress);
    if (tty) {
      const columns = io.stderr.columns ?? 100;
      io.stderr.write(`\r${line.slice(0, columns - 1)}\x1b[K`);
      drawn = true;
    } else if (Date.now() - lastPlain >= interval) {
      lastPlain = Date.now();
      io.stderr.write(line + '\n');
    }
  };

  try {
    const result = await pullModel({
      repo: parsed.repo,
      revision: parsed.revision,
      dtype: parsed.dtype,
      out: parsed.out ?? defaultPullFolder(parsed.repo, parsed.revision, { env: io.env }),
      env: io.env,
      signal: io.signal,
      onProgress,
    });
    clearLine();
    const total = result.files.reduce((sum, file) => sum + file.size, 0);
    const how = result.offline
      ? 'offline, already pulled'
      : `${formatBytes(result.downloadedBytes)} downloaded` +
        (result.reusedFiles.length ? `, ${result.reusedFiles.length} files already in place` : '');
    io.stderr.write(
      `pulled ${result.repo}@${result.commit.slice(0, 12)} (${result.dtype}, ${result.weights}): ` +
        `${result.files.length} files, ${formatBytes(total)} (${how})\n`,
    );
    if (result.weights === 'safetensors')
      io.stderr.write(`no ONNX export for ${result.dtype}: the safetensors weights were pulled for converting\n`);
    await io.afterPull?.(result);
    io.stdout.write(result.dir + '\n');
    return EXIT_OK;
  } catch (error) {
    clearLine();
    const message = error instanceof Error ? error.message : String(error);
    io.stderr.write(`modelwright pull: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
    if (error instanceof HubError && error.code === 'Cancelled') return EXIT_CANCELLED;
    return error instanceof HubError && error.code === 'InvalidArgument' ? EXIT_USAGE : EXIT_FAILED;
  }
}

function processIo(): PullIo {
  return { stdout: process.stdout, stderr: process.stderr };
}
