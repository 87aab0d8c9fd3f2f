// What every command shares: number parsers for commander options (a bad value is a usage error with the
// option's name), the usage error a command throws for a wrong combination of options, and the package's root.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError } from 'commander';

/** A wrong combination of options: exit code 2 and a pointer to the command's help. */
export class UsageError extends Error {}

const number = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('not a number.');
  return n;
};

export const positiveNumber = (value: string): number => {
  const n = number(value);
  if (n <= 0) throw new InvalidArgumentError('must be greater than 0.');
  return n;
};

export const nonNegativeNumber = (value: string): number => {
  const n = number(value);
  if (n < 0) throw new InvalidArgumentError('must not be negative.');
  return n;
};

export const positiveInteger = (value: string): number => {
  const n = number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number of at least 1.');
  return n;
};

export const nonNegativeInteger = (value: string): number => {
  const n = number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number of at least 0.');
  return n;
};

export const integer = (value: string): number => {
  const n = number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('must be a whole number.');
  return n;
};

/** Collects a repeatable option's values. */
export const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** The folder of the package (where package.json and the shipped models are), from the running file upwards. */
export function packageRoot(from = __dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    try {
      if (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).name === 'modelwright') return dir;
    } catch {}
    if (path.dirname(dir) === dir) return path.resolve(from, '..', '..');
  }
}

export function packageVersion(): string {
  try {
    return JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

/** A model shipped with the package (models/ next to package.json): read-only for evaluations. */
export function isShippedModel(modelDir: string): boolean {
  const shipped = path.join(packageRoot(), 'models');
  const dir = path.resolve(modelDir);
  return dir.startsWith(shipped + path.sep);
}

/** Whether text written to this stream may carry ANSI colour and cursor codes (a TTY, and NO_COLOR unset). */
export function usesAnsi(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(stream.isTTY) && !env.NO_COLOR;
}
