// Deploys with a gate and a history, and rollbacks, for both the `modelwright deploy` command and the language
// server: the gate compares the candidate with the role's current version, a passing (or forced) deploy commits a
// new version, and only then is the model activated — so a crash before the commit leaves the previous version
// serving, and one after it serves the new version at the next start.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { updateModelCard } from '../modelFolder/modelCard';
import type { DeploymentRole, DeploymentVersion, GateReport } from '../protocol';
import { type GateModel, type GateOptions, runGate } from './deployGate';
import {
  type DeployStage,
  commitVersion,
  currentVersion,
  readHistory,
  restoreSnapshot,
  rollbackTarget,
  snapshotDir,
} from './deployments';

export interface VersionedDeployOptions extends Omit<GateOptions, 'serving' | 'candidate'> {
  modelsDirectory: string;
  candidate: GateModel;
  /** The model serving the role when the history has no version yet (e.g. the bundled default). */
  fallbackServing?: GateModel;
  /** Deploy even when the gate refuses; the reason is recorded with the version and in the model card. */
  force?: string;
  /** Makes the committed version serve (loads and swaps it, or writes active.json). */
  activate?: (role: DeploymentRole, model: GateModel) => Promise<void> | void;
  /** Loads the candidate before anything is committed; a failure leaves everything as it was. */
  prepare?: (model: GateModel) => Promise<void>;
  onStage?: (stage: DeployStage) => void | Promise<void>;
}

export interface VersionedDeployResult {
  report: GateReport;
  /** The new version; undefined when the gate refused and nothing changed. */
  version?: DeploymentVersion;
}

/**
 * The files a role's current version serves, for the gate: its snapshot (exactly the deployed bytes, even when the
 * model's folder was retrained since), else the model's folder.
 */
export function servingModel(modelsDirectory: string, role: DeploymentRole): GateModel | undefined {
  const current = currentVersion(readHistory(modelsDirectory, role));
  if (!current) return undefined;
  const snapshot = snapshotDir(modelsDirectory, role, current.version);
  const dir = fs.existsSync(path.join(snapshot, 'config.json')) ? snapshot : path.join(modelsDirectory, current.model);
  return { name: current.model, dir };
}

export async function versionedDeploy(options: VersionedDeployOptions): Promise<VersionedDeployResult> {
  const { modelsDirectory, role, candidate } = options;
  const serving = servingModel(modelsDirectory, role) ?? options.fallbackServing;
  let report: GateReport;
  let metrics: Record<string, number>;
  try {
    ({ report, metrics } = await runGate({ ...options, serving }));
  } catch (e) {
    // Models that cannot be compared (different kinds) deploy only when forced.
    if (!options.force) throw e;
    const message = e instanceof Error ? e.message : String(e);
    report = {
      role,
      candidate: candidate.name,
      serving: serving?.name,
      threshold: options.threshold ?? 0,
      data: message,
      rows: [],
      pass: false,
    };
    metrics = {};
  }
  if (!report.pass && !options.force) return { report };
  await options.prepare?.(candidate);
  const forcedBy = report.pass ? undefined : options.force;
  const version = await commitVersion({
    modelsDirectory,
    role,
    model: candidate.name,
    dir: candidate.dir,
    metrics,
    forcedBy,
    onStage: options.onStage,
  });
  recordInCard(candidate.dir, role, version);
  await options.activate?.(role, candidate);
  return { report, version };
}

export interface RollbackOptions {
  modelsDirectory: string;
  role: DeploymentRole;
  version?: number;
  prepare?: (model: GateModel) => Promise<void>;
  activate?: (role: DeploymentRole, model: GateModel) => Promise<void> | void;
}

/** Serves an earlier version again: its exact files (restored if the folder changed since), as a new version. */
export async function rollback(options: RollbackOptions): Promise<DeploymentVersion> {
  const { modelsDirectory, role } = options;
  const target = rollbackTarget(readHistory(modelsDirectory, role), options.version);
  const dir = restoreSnapshot(modelsDirectory, role, target);
  const model = { name: target.model, dir };
  await options.prepare?.(model);
  const version = await commitVersion({
    modelsDirectory,
    role,
    model: target.model,
    dir,
    metrics: target.metrics,
    rollbackOf: target.version,
  });
  recordInCard(dir, role, version);
  await options.activate?.(role, model);
  return version;
}

/** The deploy in the model card: when, for which role and version, and what forced it. */
function recordInCard(dir: string, role: DeploymentRole, version: DeploymentVersion): void {
  try {
    updateModelCard(dir, (card) => {
      card.deployedAt = { ...(card.deployedAt ?? {}), [role]: version.at };
      const extended = card as typeof card & { deployments?: object[] };
      extended.deployments = [
        ...(extended.deployments ?? []),
        {
          role,
          version: version.version,
          at: version.at,
          ...(version.forcedBy ? { forcedBy: version.forcedBy } : {}),
          ...(version.rollbackOf !== undefined ? { rollbackOf: version.rollbackOf } : {}),
        },
      ];
    });
  } catch {
    // a folder without a card still deploys
  }
}
