// Model names in URLs and in the service's model list, by the one rule in protocol.ts (no separators, no "..", no
// leading dot: a name cannot lead outside the models folder), and folder resolution that checks it again.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isValidModelName, modelNameRule } from '../protocol';

export function checkModelName(name: string): string {
  if (!isValidModelName(name))
    throw new Error(`invalid model name ${JSON.stringify(name)}: use ${modelNameRule.description}`);
  return name;
}

/** The folder of model `name` inside `modelsDirectory`, refusing names (or symlinks) that lead outside it. */
export function resolveModelDir(modelsDirectory: string, name: string): string {
  checkModelName(name);
  const root = fs.realpathSync(modelsDirectory);
  const candidate = path.join(root, name);
  if (!fs.existsSync(candidate)) throw new Error(`model ${name} not found in ${modelsDirectory}`);
  const real = fs.realpathSync(candidate);
  const relative = path.relative(root, real);
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) {
    throw new Error(`model ${name} resolves outside ${modelsDirectory}`);
  }
  return real;
}

/** A model name for a folder: its base name when valid (e.g. "default" for models/default), else a cleaned one. */
export function nameForFolder(dir: string): string {
  const base = path.basename(path.resolve(dir));
  const cleaned = base
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/^[._-]+/, '')
    .replace(/\.\.+/g, '.')
    .slice(0, 100);
  if (isValidModelName(base)) return base;
  return isValidModelName(cleaned) ? cleaned : 'model';
}
