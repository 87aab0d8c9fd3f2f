// The active model per role, persisted in <modelsDirectory>/active.json (trusted workspaces only): read at start,
// with names of folders that are gone dropped and the bundled default model for completion, and written on deploy.
// A role's deployment history (deployments.ts), where there is one, is the record that wins over active.json.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type ModelRole, modelRoles } from '../protocol';
import { writeFileAtomic } from '../util/atomicFile';
import { currentVersion, readHistory } from './deployments';

export const ACTIVE_FILE = 'active.json';
/** The bundled model that serves until another one is deployed. */
export const DEFAULT_MODEL = 'default';

export type ActiveModels = Partial<Record<ModelRole, string>>;

export interface ActiveModelsOptions {
  modelsDirectory: string;
  /** Untrusted workspaces neither read nor write active.json: they serve the bundled default. */
  trusted: boolean;
  log?: (message: string) => void;
}

/** The stored active models whose folders `exists`, with DEFAULT_MODEL for completion when none is stored. */
export function readActiveModels(options: ActiveModelsOptions, exists: (name: string) => boolean): ActiveModels {
  const active: ActiveModels = {};
  if (options.trusted) {
    try {
      const stored = JSON.parse(fs.readFileSync(path.join(options.modelsDirectory, ACTIVE_FILE), 'utf8'));
      for (const role of modelRoles) {
        const name = stored?.[role];
        if (typeof name !== 'string' || !name) continue;
        if (exists(name)) active[role] = name;
        else options.log?.(`${ACTIVE_FILE}: the ${role} model "${name}" no longer exists; using the default`);
      }
    } catch {
      // no active.json yet
    }
    for (const role of modelRoles) {
      let name: string | undefined;
      try {
        name = currentVersion(readHistory(options.modelsDirectory, role))?.model;
      } catch (e) {
        options.log?.(e instanceof Error ? e.message : String(e));
      }
      if (name && exists(name)) active[role] = name;
    }
  }
  if (!active.completion && exists(DEFAULT_MODEL)) active.completion = DEFAULT_MODEL;
  return active;
}

export function writeActiveModels(options: ActiveModelsOptions, active: ActiveModels): void {
  if (!options.trusted) return;
  writeFileAtomic(path.join(options.modelsDirectory, ACTIVE_FILE), JSON.stringify(active, null, 2) + '\n');
}
