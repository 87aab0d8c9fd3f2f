// The modelwright/status notification: health, active models, the last completion's latency and the training
// state, sent to the client on every change. Changes of health, message or active models go out at once;
// latency and training figures, which change all the time, at most twice a second.
import type { Connection, ServerCapabilities } from 'vscode-languageserver';
import { type ServerStatus, Status } from '../protocol';
import type { Feature } from './feature';

const THROTTLE_MS = 500;

export class StatusFeature implements Feature {
  private status: ServerStatus = { health: 'starting', active: {} };
  private ready = false;
  private timer: NodeJS.Timeout | undefined;
  private lastSent = '';

  constructor(private readonly connection: Connection) {}

  initialize(): ServerCapabilities {
    return {};
  }

  initialized(): void {
    this.ready = true;
    this.send();
  }

  get current(): ServerStatus {
    return this.status;
  }

  /** Merges `change` into the status; `urgent` changes are sent now, others within THROTTLE_MS. */
  update(change: Partial<ServerStatus>, urgent = true): void {
    const next: ServerStatus = { ...this.status, ...change };
    for (const key of Object.keys(next) as (keyof ServerStatus)[]) if (next[key] === undefined) delete next[key];
    this.status = next;
    if (urgent) this.send();
    else this.timer ??= setTimeout(() => this.send(), THROTTLE_MS);
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
  }

  private send(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.ready) return;
    const text = JSON.stringify(this.status);
    if (text === this.lastSent) return;
    this.lastSent = text;
    this.connection.sendNotification(Status.type, this.status).catch(() => undefined);
  }
}
