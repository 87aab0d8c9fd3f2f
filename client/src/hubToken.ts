// The Hugging Face token for downloading private and gated models: kept in the extension's SecretStorage (never
// in settings, never logged), read once at activation so that it can go to the language server at start, and
// announced when it changes (Set Hugging Face Token…, or another window of the editor).
import * as vscode from 'vscode';

export class HubToken implements vscode.Disposable {
  static readonly secretKey = 'modelwright.hubToken';
  private value: string | undefined;
  private readonly emitter = new vscode.EventEmitter<string | undefined>();
  private readonly listener: vscode.Disposable;

  /** The token changed (undefined: removed). */
  readonly onDidChange = this.emitter.event;

  constructor(private readonly secrets: vscode.SecretStorage) {
    this.listener = secrets.onDidChange((e) => {
      if (e.key === HubToken.secretKey) void this.load();
    });
  }

  /** The token as last read; undefined when there is none. */
  get current(): string | undefined {
    return this.value;
  }

  /** Reads the stored token; fires onDidChange when it differs from the one known. */
  async load(): Promise<void> {
    const stored = (await this.secrets.get(HubToken.secretKey))?.trim() || undefined;
    if (stored === this.value) return;
    this.value = stored;
    this.emitter.fire(stored);
  }

  /** Stores the token; an empty one deletes it. */
  async set(token: string): Promise<void> {
    const value = token.trim();
    if (value) await this.secrets.store(HubToken.secretKey, value);
    else await this.secrets.delete(HubToken.secretKey);
    await this.load();
  }

  dispose(): void {
    this.listener.dispose();
    this.emitter.dispose();
  }
}
