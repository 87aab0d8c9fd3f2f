// `modelwright deploy MODEL --role R` (evaluation-gated: refuses a worse model and prints the side-by-side table;
// --force overrides and is recorded) and `modelwright deploy --rollback [--role R]`, as a function of parsed options
// and an output pair, returning the exit code: 0 deployed, 1 refused or failed, 2 wrong usage.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type DeploymentRole, deploymentRoles, isValidModelName, modelRoles } from '../protocol';
import { ACTIVE_FILE } from '../registry/activeModels';
import { formatGateTable } from '../registry/deployGate';
import type { DeployStage } from '../registry/deployments';
import { rollback, versionedDeploy } from '../registry/versionedDeploy';
import { writeFileAtomic } from '../util/atomicFile';

export interface CommandIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

export interface DeployCommandOptions {
  /** A model name in the models folder, or the path of a folder in it. */
  model?: string;
  role?: string;
  /** The models folder (default: the folder MODEL is in, else ./models). */
  models?: string;
  evalWorkspace?: string;
  /** For classifiers: a data file to compare on instead of the candidate's validation rows. */
  evalData?: string;
  text?: string;
  label?: string;
  threshold?: number | string;
  force?: boolean;
  rollback?: boolean;
  /** With rollback: the version to return to (default the previous). */
  version?: number | string;
  samples?: number | string;
  threads?: number | string;
  /** Observes the stages of the deploy (tests stop the process at one). */
  onStage?: (stage: DeployStage) => void | Promise<void>;
}

export async function gatedDeployCommand(options: DeployCommandOptions, io: CommandIo): Promise<number> {
  const usage = (message: string) => {
    io.stderr.write(`modelwright deploy: ${message}\n`);
    return 2;
  };
  const number = (value: number | string | undefined, name: string): number | undefined => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isFinite(n)) throw new UsageError(`--${name} needs a number, got "${value}"`);
    return n;
  };
  try {
    const role = (options.role ?? (options.rollback ? undefined : 'completion')) as DeploymentRole | undefined;
    if (role !== undefined && !deploymentRoles.includes(role))
      return usage(`--role must be one of ${deploymentRoles.join(', ')}, got "${options.role}"`);
    const located = locate(options);
    const modelsDirectory = located.modelsDirectory;
    const activate = (r: DeploymentRole, model: { name: string }) => {
      if (!(modelRoles as readonly string[]).includes(r)) return;
      const file = path.join(modelsDirectory, ACTIVE_FILE);
      let active: Record<string, string> = {};
      try {
        active = JSON.parse(fs.readFileSync(file, 'utf8'));
      } catch {
        active = {};
      }
      active[r] = model.name;
      writeFileAtomic(file, JSON.stringify(active, null, 2) + '\n');
    };

    if (options.rollback) {
      const roles = role ? [role] : deploymentRoles.filter((r) => hasHistory(modelsDirectory, r));
      if (roles.length !== 1)
        return usage(
          roles.length ? `several roles have versions (${roles.join(', ')}): give --role` : 'nothing was deployed yet',
        );
      const version = await rollback({
        modelsDirectory,
        role: roles[0],
        version: number(options.version, 'version'),
        activate,
      });
      io.stdout.write(
        `${roles[0]}: rolled back to version ${version.rollbackOf} ("${version.model}", sha256 ${version.sha256.slice(0, 12)}), now version ${version.version}\n`,
      );
      return 0;
    }

    if (!located.candidate) return usage('give the MODEL to deploy, or --rollback');
    const evalData =
      options.evalData !== undefined
        ? { file: options.evalData, text: options.text ?? 'text', label: options.label ?? 'label' }
        : undefined;
    const result = await versionedDeploy({
      modelsDirectory,
      role: role ?? 'completion',
      candidate: located.candidate,
      fallbackServing: role && fallbackServing(modelsDirectory, role),
      threshold: number(options.threshold, 'threshold') ?? 0,
      evalWorkspace: options.evalWorkspace,
      evalData,
      samples: number(options.samples, 'samples'),
      threads: number(options.threads, 'threads'),
      force: options.force ? '--force' : undefined,
      activate,
      onStage: options.onStage,
      onProgress: (message) => io.stderr.write(`${message}\n`),
    });
    io.stdout.write(`${formatGateTable(result.report)}\n`);
    if (!result.version) {
      io.stderr.write(
        `modelwright deploy: refused "${located.candidate.name}" for ${role}; --force deploys it anyway\n`,
      );
      return 1;
    }
    const forced = result.version.forcedBy ? ` (forced by ${result.version.forcedBy})` : '';
    io.stdout.write(`${role}: "${located.candidate.name}" is version ${result.version.version}${forced}\n`);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) return usage(e.message);
    io.stderr.write(`modelwright deploy: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

class UsageError extends Error {}

function locate(options: DeployCommandOptions): {
  modelsDirectory: string;
  candidate?: { name: string; dir: string };
} {
  const model = options.model;
  if (!model) return { modelsDirectory: path.resolve(options.models ?? 'models') };
  const asPath = path.resolve(model);
  const isFolder = fs.existsSync(path.join(asPath, 'config.json'));
  const modelsDirectory = path.resolve(options.models ?? (isFolder ? path.dirname(asPath) : 'models'));
  const dir = isFolder ? asPath : path.join(modelsDirectory, model);
  const name = path.basename(dir);
  if (!fs.existsSync(path.join(dir, 'config.json'))) throw new UsageError(`${dir} is not a model folder`);
  if (path.dirname(dir) !== modelsDirectory || !isValidModelName(name))
    throw new UsageError(`${dir} is not a folder of the models folder ${modelsDirectory}`);
  return { modelsDirectory, candidate: { name, dir } };
}

function hasHistory(modelsDirectory: string, role: DeploymentRole): boolean {
  return fs.existsSync(path.join(modelsDirectory, '.deployments', `${role}.json`));
}

/** What active.json says serves an editor role, for the first gated deploy of that role. */
function fallbackServing(modelsDirectory: string, role: DeploymentRole): { name: string; dir: string } | undefined {
  if (!(modelRoles as readonly string[]).includes(role)) return undefined;
  try {
    const name = JSON.parse(fs.readFileSync(path.join(modelsDirectory, ACTIVE_FILE), 'utf8'))[role];
    const dir = path.join(modelsDirectory, String(name));
    return isValidModelName(name) && fs.existsSync(path.join(dir, 'config.json')) ? { name, dir } : undefined;
  } catch {
    return undefined;
  }
}
