// Keeps a running service on a deployment role's current version: watches the role's history in the models folder
// (written by `modelwright deploy`, a rollback or the editor, from any process) and serves each new current version
// under one name, with the deployment's version number in the Open Inference Protocol routes.
import type { DeploymentRole } from '../protocol';
import { currentVersion, readHistory, watchHistory } from '../registry/deployments';
import { servingModel } from '../registry/versionedDeploy';
import type { RunningServer } from './httpServer';

export interface DeployedModel {
  dir: string;
  version: number;
  /** The model the version deployed. */
  model: string;
}

/** The role's current version in `modelsDirectory`, or why there is none. */
export function deployedModel(modelsDirectory: string, role: DeploymentRole): DeployedModel {
  const current = currentVersion(readHistory(modelsDirectory, role));
  const serving = servingModel(modelsDirectory, role);
  if (!current || !serving) {
    throw new Error(
      `nothing is deployed as ${role} in ${modelsDirectory}: deploy a model first (modelwright deploy MODEL --role ${role})`,
    );
  }
  return { dir: serving.dir, version: current.version, model: current.model };
}

export interface FollowOptions {
  modelsDirectory: string;
  role: DeploymentRole;
  /** The name the role's versions are served under. */
  name: string;
  /** The version being served when following starts. */
  version: number;
  /** How often the history file is checked (default 1 s). */
  intervalMs?: number;
  log?: (message: string) => void;
}

/** Follows the role's history until disposed; a version that fails to load is logged and the old one keeps serving. */
export function followDeployments(server: RunningServer, options: FollowOptions): { dispose(): void } {
  let served = options.version;
  let pending = Promise.resolve();
  const check = () => {
    pending = pending.then(async () => {
      let next: DeployedModel;
      try {
        next = deployedModel(options.modelsDirectory, options.role);
      } catch {
        return; // the history is being written, or the role was never deployed: nothing to switch to
      }
      if (next.version === served) return;
      try {
        await server.reload(options.name, next.dir, next.version);
        served = next.version;
        options.log?.(`${options.name}: ${options.role} version ${next.version} ("${next.model}") now serves`);
      } catch (e) {
        options.log?.(
          `${options.name}: ${options.role} version ${next.version} could not be loaded, version ${served} ` +
            `keeps serving: ${e instanceof Error ? e.message : String(e)}`,
        );
      }
    });
  };
  return watchHistory(options.modelsDirectory, options.role, check, options.intervalMs);
}
