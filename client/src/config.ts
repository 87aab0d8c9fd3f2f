// Typed settings under `modelwright.*`: the protocol `Settings` the server fetches with workspace/configuration
// (validated here, so the server always gets well-formed values) and the settings only the client reads.
// Pure mapping from a configuration reader, so it is tested without VS Code.
import * as os from 'node:os';
import * as path from 'node:path';
import { clampSetting, numericSettings, type Settings, settingsFrom } from '../../server/src/protocol';

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
  /** How much worse than the serving model a deploy may be on the gate's metrics. */
  deployThreshold: number;
  /** Threads per model in the language server (0: by model size); sent at initialization. */
  inferenceThreads: number;
}

export const defaultClientSettings: ClientSettings = {
  modelsDirectory: '',
  trainingMinutes: numericSettings['training.minutes'].default,
  deployThreshold: numericSettings['deploy.threshold'].default,
  inferenceThreads: numericSettings.inferenceThreads.default,
};

/** The protocol settings from the `modelwright` section; wrong types fall back to defaults, numbers are clamped. */
export function readSettings(config: ConfigurationReader): Settings {
  return settingsFrom((key) => config.get(key));
}

export function readClientSettings(config: ConfigurationReader): ClientSettings {
  const modelsDirectory = config.get<unknown>('modelsDirectory');
  return {
    modelsDirectory:
      typeof modelsDirectory === 'string' ? modelsDirectory.trim() : defaultClientSettings.modelsDirectory,
    trainingMinutes: clampSetting('training.minutes', config.get('training.minutes')),
    deployThreshold: clampSetting('deploy.threshold', config.get('deploy.threshold')),
    inferenceThreads: clampSetting('inferenceThreads', config.get('inferenceThreads')),
  };
}

/** The models directory: the setting (with `~` expanded) when given and absolute, else `<globalStorage>/models`. */
export function resolveModelsDirectory(setting: string, globalStoragePath: string, home = os.homedir()): string {
  let dir = setting.trim();
  if (dir === '~' || dir.startsWith('~/')) dir = path.join(home, dir.slice(1));
  return dir && path.isAbsolute(dir) ? path.normalize(dir) : path.join(globalStoragePath, 'models');
}
