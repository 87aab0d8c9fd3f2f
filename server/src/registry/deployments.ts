// The versions of each deployment role, kept in the models folder: `.deployments/<role>.json` (the history, written
// atomically: the commit point of a deploy) and `.deployments/<role>/v<N>/` (the deployed folder's files, hard-linked
// where possible), so that a rollback serves the exact previous bytes again and a crash mid-deploy changes nothing.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  type DeploymentHistory,
  type DeploymentRole,
  type DeploymentVersion,
  deploymentRoles,
  isValidModelName,
} from '../protocol';
import { writeFileAtomic } from '../util/atomicFile';
import { RegistryError } from './registryError';

export const DEPLOYMENTS_FOLDER = '.deployments';

/** Files and folders of a model folder that are not part of what serves (training state, temp files). */
const NOT_DEPLOYED = new Set(['checkpoint']);
const isTemporary = (name: string) => /\.tmp-\d+$/.test(name) || name.includes('.partial-');

/** The points of a deploy where a caller may observe it (tests stop the process there). */
export type DeployStage = 'snapshotted' | 'committed';

export interface CommitOptions {
  modelsDirectory: string;
  role: DeploymentRole;
  model: string;
  /** The model folder whose files are recorded. */
  dir: string;
  metrics: Record<string, number>;
  forcedBy?: string;
  rollbackOf?: number;
  /** Called after each stage; awaited. */
  onStage?: (stage: DeployStage) => void | Promise<void>;
}

export function historyFile(modelsDirectory: string, role: DeploymentRole): string {
  return path.join(modelsDirectory, DEPLOYMENTS_FOLDER, `${role}.json`);
}

export function snapshotDir(modelsDirectory: string, role: DeploymentRole, version: number): string {
  return path.join(modelsDirectory, DEPLOYMENTS_FOLDER, role, `v${version}`);
}

/**
 * Calls `onChange` when the role's history file changes, whichever process wrote it (polled: the file is replaced
 * by a rename, which a plain fs.watch on it would lose). Does not keep the process alive.
 */
export function watchHistory(
  modelsDirectory: string,
  role: DeploymentRole,
  onChange: () => void,
  intervalMs = 1000,
): { dispose(): void } {
  const file = historyFile(modelsDirectory, role);
  const listener = () => onChange();
  fs.watchFile(file, { interval: intervalMs, persistent: false }, listener);
  return { dispose: () => fs.unwatchFile(file, listener) };
}

/** The recorded history of a role (empty when it was never deployed); throws RegistryError on a damaged file. */
export function readHistory(modelsDirectory: string, role: DeploymentRole): DeploymentHistory {
  const file = historyFile(modelsDirectory, role);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return { role, versions: [] };
  }
  try {
    const stored = JSON.parse(text) as DeploymentHistory;
    if (!Array.isArray(stored.versions)) throw new Error('versions is not a list');
    return { role, current: stored.current, versions: stored.versions };
  } catch (e) {
    throw new RegistryError(`${file} is damaged: ${e instanceof Error ? e.message : String(e)}`, 'conflict');
  }
}

export function readHistories(modelsDirectory: string): DeploymentHistory[] {
  return deploymentRoles.map((role) => readHistory(modelsDirectory, role));
}

/** The version serving a role now, if any. */
export function currentVersion(history: DeploymentHistory): DeploymentVersion | undefined {
  return history.versions.find((v) => v.version === history.current);
}

/** The onnx file of a model folder that the hash is taken of. */
export function onnxFileOf(dir: string): string {
  const preferred = path.join(dir, 'onnx', 'model.onnx');
  if (fs.existsSync(preferred)) return preferred;
  let found: string | undefined;
  try {
    found = fs
      .readdirSync(path.join(dir, 'onnx'))
      .filter((f) => f.endsWith('.onnx'))
      .sort()[0];
  } catch {
    found = undefined;
  }
  if (!found) throw new RegistryError(`${dir} has no onnx/model.onnx`, 'loadFailed');
  return path.join(dir, 'onnx', found);
}

/** sha256 of a file, read in chunks (model files can be gigabytes). */
export function sha256File(file: string): string {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(1 << 20);
    let read: number;
    while ((read = fs.readSync(fd, buffer, 0, buffer.length, null)) > 0) hash.update(buffer.subarray(0, read));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/**
 * Records a new version of `role` serving `model`: snapshots the folder's files, then writes the history with the
 * new version as current (one atomic rename: the commit). Before the commit nothing a reader sees has changed.
 */
export async function commitVersion(options: CommitOptions): Promise<DeploymentVersion> {
  const { modelsDirectory, role } = options;
  if (!deploymentRoles.includes(role))
    throw new RegistryError(`unknown role "${String(role)}"; roles: ${deploymentRoles.join(', ')}`, 'invalidName');
  const history = readHistory(modelsDirectory, role);
  const number = Math.max(0, ...history.versions.map((v) => v.version)) + 1;
  const sha256 = sha256File(onnxFileOf(options.dir));
  const target = snapshotDir(modelsDirectory, role, number);
  // A crash after an earlier snapshot but before its commit leaves a folder nobody refers to: replace it.
  fs.rmSync(target, { recursive: true, force: true });
  const partial = `${target}.partial-${process.pid}`;
  fs.rmSync(partial, { recursive: true, force: true });
  linkTree(options.dir, partial);
  fs.renameSync(partial, target);
  await options.onStage?.('snapshotted');
  const version: DeploymentVersion = {
    version: number,
    model: options.model,
    sha256,
    metrics: options.metrics,
    at: new Date().toISOString(),
    ...(options.forcedBy ? { forcedBy: options.forcedBy } : {}),
    ...(options.rollbackOf !== undefined ? { rollbackOf: options.rollbackOf } : {}),
  };
  const next: DeploymentHistory = { role, current: number, versions: [...history.versions, version] };
  writeFileAtomic(historyFile(modelsDirectory, role), JSON.stringify(next, null, 2) + '\n');
  await options.onStage?.('committed');
  return version;
}

/** The version a rollback returns to: `version`, or the one before the current. Throws when there is none. */
export function rollbackTarget(history: DeploymentHistory, version?: number): DeploymentVersion {
  const { role } = history;
  if (version !== undefined) {
    const found = history.versions.find((v) => v.version === version);
    if (!found) throw new RegistryError(`${role} has no version ${version}`, 'unknownModel');
    if (found.version === history.current)
      throw new RegistryError(`version ${version} already serves ${role}`, 'conflict');
    return found;
  }
  const index = history.versions.findIndex((v) => v.version === history.current);
  const previous = index > 0 ? history.versions[index - 1] : undefined;
  if (!previous) throw new RegistryError(`${role} has no previous version to roll back to`, 'conflict');
  return previous;
}

/**
 * Puts the files of `target`'s snapshot back into the models folder under its model's name when they differ from
 * what is there now (a model retrained or deleted since); returns the folder. Each file is replaced atomically.
 */
export function restoreSnapshot(modelsDirectory: string, role: DeploymentRole, target: DeploymentVersion): string {
  if (!isValidModelName(target.model))
    throw new RegistryError(`version ${target.version} names no valid model`, 'conflict');
  const dir = path.join(modelsDirectory, target.model);
  const snapshot = snapshotDir(modelsDirectory, role, target.version);
  let same = false;
  try {
    same = sha256File(onnxFileOf(dir)) === target.sha256;
  } catch {
    same = false;
  }
  if (same) return dir;
  if (!fs.existsSync(snapshot))
    throw new RegistryError(`the files of ${role} version ${target.version} are gone (${snapshot})`, 'conflict');
  copyTreeAtomically(snapshot, dir);
  return dir;
}

/** The versions (of any role) whose snapshot or model is `name`: what deleting that model would orphan. */
export function versionsUsing(modelsDirectory: string, name: string): { role: DeploymentRole; version: number }[] {
  const uses: { role: DeploymentRole; version: number }[] = [];
  for (const history of readHistories(modelsDirectory))
    for (const v of history.versions) if (v.model === name) uses.push({ role: history.role, version: v.version });
  return uses;
}

/** Mirrors `from` into a new folder `to` with hard links (copies where links are impossible). */
function linkTree(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true });
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    if (NOT_DEPLOYED.has(entry.name) || isTemporary(entry.name)) continue;
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isDirectory()) linkTree(source, target);
    else if (entry.isFile()) {
      try {
        // Every model file is replaced by rename (util/atomicFile), never rewritten in place, so a link keeps
        // exactly the deployed bytes.
        fs.linkSync(source, target);
      } catch {
        fs.copyFileSync(source, target);
      }
    }
  }
}

function copyTreeAtomically(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true });
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isDirectory()) copyTreeAtomically(source, target);
    else if (entry.isFile()) {
      const temp = `${target}.tmp-${process.pid}`;
      fs.copyFileSync(source, temp);
      fs.renameSync(temp, target);
    }
  }
}
