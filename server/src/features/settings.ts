// The `modelwright` settings, fetched from the client per resource with workspace/configuration (never cached
// globally: a folder or language may override them). A short cache per resource spares a round trip per
// keystroke; didChangeConfiguration clears it. Malformed values fall back to the defaults, field by field, and
// numbers are clamped to the bounds package.json declares (protocol.ts `numericSettings`).
import {
  type Connection,
  type ClientCapabilities,
  DidChangeConfigurationNotification,
  type ServerCapabilities,
} from 'vscode-languageserver';
import { type Settings, settingsFrom } from '../protocol';
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

/** Settings from whatever the client sent (the `modelwright` section object): see `settingsFrom`. */
export function normalizeSettings(raw: unknown): Settings {
  return settingsFrom((key) => {
    let value: unknown = raw;
    for (const part of key.split('.')) {
      value =
        value && typeof value === 'object' && !Array.isArray(value)
          ? (value as Record<string, unknown>)[part]
          : undefined;
    }
    return value;
  });
}
