// The API keys of the completion and explanation roles' remote endpoints: kept in the extension's SecretStorage
// (never in settings, never logged), read once at activation so that they go to the language server at start, and
// announced per role when they change (Set Remote Endpoint Key…, or another window of the editor).
import * as vscode from 'vscode';
import { type ModelRole, modelRoles } from '../../server/src/protocol';

export class EndpointKeys implements vscode.Disposable {
  static secretKey(role: ModelRole): string {
    return `modelwright.remoteKey.${role}`;
  }

  private readonly values: Partial<Record<ModelRole, string>> = {};
  private readonly emitter = new vscode.EventEmitter<{ role: ModelRole; key: string | undefined }>();
  private readonly listener: vscode.Disposable;

  /** A role's key changed (undefined: removed). */
  readonly onDidChange = this.emitter.event;

  constructor(private readonly secrets: vscode.SecretStorage) {
    this.listener = secrets.onDidChange((e) => {
      const role = modelRoles.find((r) => EndpointKeys.secretKey(r) === e.key);
      if (role) void this.load(role);
    });
  }

  /** The keys as last read, per role that has one. */
  get current(): Partial<Record<ModelRole, string>> {
    return { ...this.values };
  }

  /** Reads the stored keys (of one role, or all); fires onDidChange for each that differs from the one known. */
  async load(role?: ModelRole): Promise<void> {
    for (const r of role ? [role] : modelRoles) {
      const stored = (await this.secrets.get(EndpointKeys.secretKey(r)))?.trim() || undefined;
      if (stored === this.values[r]) continue;
      if (stored) this.values[r] = stored;
      else delete this.values[r];
      this.emitter.fire({ role: r, key: stored });
    }
  }

  /** Stores a role's key; an empty one deletes it. */
  async set(role: ModelRole, key: string): Promise<void> {
    const value = key.trim();
    if (value) await this.secrets.store(EndpointKeys.secretKey(role), value);
    else await this.secrets.delete(EndpointKeys.secretKey(role));
    await this.load(role);
  }

  dispose(): void {
    this.listener.dispose();
    this.emitter.dispose();
  }
}
