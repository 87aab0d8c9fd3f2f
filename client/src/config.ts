// Typed settings under `modelwright.*`: the protocol `Settings` the server fetches with workspace/configuration
// (validated here, so the server always gets well-formed values) and the settings only the client reads.
// Pure mapping from a configuration reader, so it is tested without VS Code.
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultSettings, type ModelRole, modelRoles, type Settings } from '../../server/src/protocol';

export const configurationSection = 'modelwright';

/** The part of vscode.WorkspaceConfiguration (for the `modelwright` section) that this module reads. */
export interface ConfigurationReader {
  get<T>(key: string): T | undefined;
}

/** Settings that only the extension reads. */
export interface ClientSettings {
  /** Where trained models go; '' means the extension's global storage. */
  modelsDirectory: string;
  /** The time budget offered first by Train Model, in minutes. */
  trainingMinutes: number;
}

export const defaultClientSettings: ClientSettings = { modelsDirectory: '', trainingMinutes: 5 };

const bool = (v: unknown, fallback: boolean) => (typeof v === 'boolean' ? v : fallback);
const str = (v: unknown, fallback: string) => (typeof v === 'string' ? v.trim() : fallback);
function num(v: unknown, fallback: number, min: number, max: number, integer = true): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) return fallback;
  const clamped = Math.min(max, Math.max(min, v));
  return integer ? Math.round(clamped) : clamped;
}

/** The protocol settings from the `modelwright` section; wrong types fall back to defaults, numbers are clamped. */
export function readSettings(config: ConfigurationReader): Settings {
  const d = defaultSettings;
  const models = {} as Record<ModelRole, string>;
  for (const role of modelRoles) models[role] = str(config.get(`models.${role}`), d.models[role]);
  const disabled = config.get<unknown>('completion.disabledLanguages');
  return {
    models,
    completion: {
      enable: bool(config.get('completion.enable'), d.completion.enable),
      disabledLanguages: Array.isArray(disabled)
        ? disabled.filter((x): x is string => typeof x === 'string')
        : [...d.completion.disabledLanguages],
      maxTokens: num(config.get('completion.maxTokens'), d.completion.maxTokens, 1, 512),
      maxLines: num(config.get('completion.maxLines'), d.completion.maxLines, 1, 100),
      debounceMs: num(config.get('completion.debounceMs'), d.completion.debounceMs, 0, 2000),
      confidenceThreshold: num(
        config.get('completion.confidenceThreshold'),
        d.completion.confidenceThreshold,
        0,
        1,
        false,
      ),
    },
    explanation: {
      hover: bool(config.get('explanation.hover'), d.explanation.hover),
      maxTokens: num(config.get('explanation.maxTokens'), d.explanation.maxTokens, 1, 2048),
    },
  };
}

export function readClientSettings(config: ConfigurationReader): ClientSettings {
  return {
    modelsDirectory: str(config.get('modelsDirectory'), defaultClientSettings.modelsDirectory),
    trainingMinutes: num(config.get('training.minutes'), defaultClientSettings.trainingMinutes, 1, 24 * 60),
  };
}

/** The models directory: the setting (with `~` expanded) when given and absolute, else `<globalStorage>/models`. */
export function resolveModelsDirectory(setting: string, globalStoragePath: string, home = os.homedir()): string {
  let dir = setting.trim();
  if (dir === '~' || dir.startsWith('~/')) dir = path.join(home, dir.slice(1));
  return dir && path.isAbsolute(dir) ? path.normalize(dir) : path.join(globalStoragePath, 'models');
}
