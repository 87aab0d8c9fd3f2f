// Runs the built `modelwright` command (bin/modelwright.js → server/out/cli.js) as a child process, as a user
// would, and returns its exit code and outputs. Build it first with `npm run build` or `node scripts/bundle.mjs`.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

export const cli = path.resolve(__dirname, '../../bin/modelwright.js');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): CliResult {
  const result = spawnSync(process.execPath, [cli, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    cwd,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
