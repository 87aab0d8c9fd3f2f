// The `modelwright` settings, fetched from the client per resource with workspace/configuration (never cached
// globally: a folder or language may override them). A short cache per resource spares a round trip per
// keystroke; didChangeConfiguration clears it. Malformed values fall back to the defaults, field by field.
import {
  type Connection,
  type ClientCapabilities,
  DidChangeConfigurationNotification,
  type ServerCapabilities,
} from 'vscode-languageserver';
import { type Settings, defaultSettings, modelRoles } from '../protocol';
import type { Feature } from './feature';

/** How long settings fetched for one resource are reused. */
const CACHE_MS = 1000;
/** A client that does not answer workspace/configuration in time gets the defaults. */
const REQUEST_TIMEOUT_MS = 2000;

export class SettingsFeature implements Feature {
  private canPull = false;
  private canRegister = false;
  private pushed: unknown;
  private readonly cache = new Map<string, { at: number; settings: Promise<Settings> }>();

  constructor(private readonly connection: Connection) {}

  initialize(capabilities: ClientCapabilities): ServerCapabilities {
    this.canPull = capabilities.workspace?.configuration === true;
    this.canRegister = capabilities.workspace?.didChangeConfiguration?.dynamicRegistration === true;
    this.connection.onDidChangeConfiguration((change) => {
      this.cache.clear();
      const section = (change.settings as { modelwright?: unknown } | null | undefined)?.modelwright;
      if (section !== undefined) this.pushed = section;
    });
    return {};
  }

  async initialized(): Promise<void> {
    if (this.canRegister) {
      await this.connection.client
        .register(DidChangeConfigurationNotification.type, { section: 'modelwright' })
        .catch(() => undefined);
    }
  }

  /** The settings that apply to a document (or the workspace when `resource` is undefined). */
  get(resource?: string): Promise<Settings> {
    const key = resource ?? '';
    const cached = this.cache.get(key);
    if (cached && Date.now() - cached.at < CACHE_MS) return cached.settings;
    const settings = this.fetch(resource);
    this.cache.set(key, { at: Date.now(), settings });
    if (this.cache.size > 64) this.cache.delete(this.cache.keys().next().value as string);
    return settings;
  }

  private async fetch(resource: string | undefined): Promise<Settings> {
    if (!this.canPull) return normalizeSettings(this.pushed);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), REQUEST_TIMEOUT_MS);
    });
    try {
      const raw = await Promise.race([
        this.connection.workspace
          .getConfiguration({ scopeUri: resource, section: 'modelwright' })
          .catch(() => undefined),
        timeout,
      ]);
      return normalizeSettings(raw ?? this.pushed);
    } finally {
      clearTimeout(timer);
    }
  }
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  !!value && typeof value === 'object' && !Array.isArray(value);

function number(value: unknown, fallback: number, min: number, max: number, integer = true): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) return fallback;
  return integer ? Math.round(value) : value;
}

/** Settings from whatever the client sent: missing or malformed fields take their default. */
export function normalizeSettings(raw: unknown): Settings {
  const section = isRecord(raw) ? raw : {};
  const models = isRecord(section.models) ? section.models : {};
  const completion = isRecord(section.completion) ? section.completion : {};
  const explanation = isRecord(section.explanation) ? section.explanation : {};
  const d = defaultSettings;
  return {
    models: Object.fromEntries(
      modelRoles.map((role) => [
        role,
        typeof models[role] === 'string' ? (models[role] as string).trim() : d.models[role],
      ]),
    ) as Settings['models'],
    completion: {
      enable: typeof completion.enable === 'boolean' ? completion.enable : d.completion.enable,
      disabledLanguages: Array.isArray(completion.disabledLanguages)
        ? completion.disabledLanguages.filter((l): l is string => typeof l === 'string')
        : [...d.completion.disabledLanguages],
      maxTokens: number(completion.maxTokens, d.completion.maxTokens, 1, 4096),
      maxLines: number(completion.maxLines, d.completion.maxLines, 1, 200),
      debounceMs: number(completion.debounceMs, d.completion.debounceMs, 0, 10_000),
      confidenceThreshold: number(completion.confidenceThreshold, d.completion.confidenceThreshold, 0, 1, false),
    },
    explanation: {
      hover: typeof explanation.hover === 'boolean' ? explanation.hover : d.explanation.hover,
      maxTokens: number(explanation.maxTokens, d.explanation.maxTokens, 1, 4096),
    },
  };
}
