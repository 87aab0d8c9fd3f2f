// The model folders that can be served: the user's models directory (trusted workspaces only) and the bundled one,
// scanned into entries by name (user models shadow bundled ones), resolved by name or absolute path, and summed up
// with their model cards for the client's model list.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type ModelRole, type ModelSummary, isValidModelName, modelNameRule } from '../protocol';
import { type ModelCard, readModelCard } from '../modelFolder/modelCard';
import { RegistryError } from './registryError';

export interface ModelEntry {
  name: string;
  dir: string;
  bundled: boolean;
}

export interface CatalogOptions {
  modelsDirectory: string;
  bundledModelsDirectory: string;
  /** Untrusted workspaces see bundled models only. */
  trusted: boolean;
}

export class ModelCatalog {
  constructor(private readonly options: CatalogOptions) {}

  /** Every model folder that can be served (user models shadow bundled ones of the same name). */
  entries(): ModelEntry[] {
    const found = new Map<string, ModelEntry>();
    const scan = (directory: string, bundled: boolean) => {
      let names: fs.Dirent[];
      try {
        names = fs.readdirSync(directory, { withFileTypes: true });
      } catch {
        return;
      }
      for (const d of names) {
        if (!(d.isDirectory() || d.isSymbolicLink()) || !isValidModelName(d.name) || found.has(d.name)) continue;
        const dir = path.join(directory, d.name);
        if (fs.existsSync(path.join(dir, 'config.json'))) found.set(d.name, { name: d.name, dir, bundled });
      }
    };
    if (this.options.trusted) scan(this.options.modelsDirectory, false);
    scan(this.options.bundledModelsDirectory, true);
    return [...found.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  find(name: string): ModelEntry | undefined {
    return this.entries().find((e) => e.name === name);
  }

  /** The entry of a model name, or of an absolute model folder path (trusted workspaces only); throws RegistryError. */
  resolve(name: string): ModelEntry {
    if (typeof name === 'string' && path.isAbsolute(name)) {
      // A model folder anywhere on disk (e.g. a transformers.js chat model), by absolute path: trusted workspaces only.
      if (!this.options.trusted)
        throw new RegistryError(
          'untrusted workspace: model folders outside the bundled models cannot be used',
          'forbidden',
        );
      if (!fs.existsSync(path.join(name, 'config.json')))
        throw new RegistryError(`${name} is not a model folder: config.json is missing`, 'unknownModel');
      return { name, dir: name, bundled: false };
    }
    if (!isValidModelName(name)) {
      throw new RegistryError(
        `"${String(name)}" is not a valid model name (${modelNameRule.description})`,
        'invalidName',
      );
    }
    const entry = this.find(name);
    if (entry) return entry;
    const known = this.entries().map((e) => e.name);
    throw new RegistryError(
      `unknown model "${name}"; known models: ${known.length ? known.join(', ') : 'none'}`,
      'unknownModel',
    );
  }

  /** One summary per entry for the client, with the roles `rolesOf` gives and `training` marked as training. */
  summaries(rolesOf: (name: string) => ModelRole[], training?: string): ModelSummary[] {
    return this.entries().map((entry) => {
      let card: ModelCard | undefined;
      try {
        card = readModelCard(entry.dir);
      } catch {
        card = undefined;
      }
      const roles = rolesOf(entry.name);
      const evaluation = card?.evaluations?.at(-1);
      const summary: ModelSummary = {
        name: entry.name,
        path: entry.dir,
        kind: 'causal-lm',
        bundled: entry.bundled,
        sizeBytes: folderSize(entry.dir),
        status: entry.name === training ? 'training' : roles.length ? 'active' : 'idle',
        roles,
      };
      if (card?.preset) summary.preset = card.preset;
      if (card?.parameters) summary.parameters = card.parameters;
      if (card?.createdAt) summary.createdAt = card.createdAt;
      if (card?.parent) summary.parent = card.parent;
      if (evaluation) {
        summary.metrics = {
          valLoss: evaluation.valLoss,
          perplexity: evaluation.perplexity,
          exactMatch: evaluation.exactMatch,
          editSimilarity: evaluation.editSimilarity,
          latencyMs: evaluation.latencyMs,
          samples: evaluation.samples,
          at: evaluation.at,
        };
      }
      return summary;
    });
  }
}

function folderSize(dir: string): number {
  let total = 0;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) total += folderSize(full);
    else if (e.isFile()) total += fs.statSync(full).size;
  }
  return total;
}
