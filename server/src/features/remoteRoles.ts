// Remote endpoints for the completion and explanation roles (settings `modelwright.remote.<role>.*`, API keys from
// the extension's SecretStorage through SetRemoteKey): one client per role and endpoint, and the endpoint's health.
// A failure or a timeout sends the role back to the local model, says so once (status and log), and the endpoint
// is tried again after a back-off that doubles while it stays down.
import * as path from 'node:path';
import {
  type ModelRole,
  type RemoteRoleSettings,
  type RemoteRoleStatus,
  SetRemoteKey,
  type Settings,
  isValidModelName,
  modelRoles,
} from '../protocol';
import { RemoteClient, describeRemoteFailure } from '../serve/remoteClient';
import type { Feature } from './feature';
import type { ServerContext } from './serverContext';

/** The first wait before a down endpoint is tried again; each failed retry doubles it, up to MAX_BACKOFF_MS. */
export const FIRST_BACKOFF_MS = 10_000;
export const MAX_BACKOFF_MS = 5 * 60_000;

interface Outage {
  error: string;
  backoffMs: number;
  retryAt: number;
  /** A wrong setting: only a settings change helps, so nothing is retried. */
  permanent: boolean;
}

interface RoleEndpoint {
  /** Settings and key, to notice a change (never logged: it holds the key). */
  signature: string;
  client?: RemoteClient;
  status: RemoteRoleStatus;
  /** It has answered since the settings last changed. */
  answered: boolean;
  outage?: Outage;
  retryTimer?: NodeJS.Timeout;
}

/** A remote call that failed because the endpoint is unavailable (not because the request was cancelled). */
export class RemoteUnavailable extends Error {}

export class RemoteRoles implements Feature {
  private readonly keys: Partial<Record<ModelRole, string>>;
  private readonly endpoints = new Map<ModelRole, RoleEndpoint>();

  constructor(
    private readonly context: ServerContext,
    /** Back-off before the first retry (tests shorten it). */
    private readonly firstBackoffMs = Number(process.env.MODELWRIGHT_REMOTE_BACKOFF_MS) || FIRST_BACKOFF_MS,
  ) {
    this.keys = { ...(context.options.remoteKeys ?? {}) };
  }

  initialize(): Record<string, never> {
    this.context.connection.onNotification(SetRemoteKey.type, (params) => {
      if (!params || !modelRoles.includes(params.role)) return;
      const key = typeof params.key === 'string' ? params.key.trim() : '';
      if (key) this.keys[params.role] = key;
      else delete this.keys[params.role];
      this.context.log.info(`the API key of the remote ${params.role} endpoint was ${key ? 'set' : 'removed'}`);
    });
    return {};
  }

  dispose(): void {
    for (const endpoint of this.endpoints.values()) this.close(endpoint);
    this.endpoints.clear();
  }

  /**
   * The client for the role's remote endpoint when the settings name one and it is not backing off after a
   * failure; undefined means the local model serves the role.
   */
  clientFor(role: ModelRole, settings: Settings): RemoteClient | undefined {
    const wanted = settings.remote[role];
    if (!wanted.url) {
      if (this.endpoints.has(role)) {
        this.close(this.endpoints.get(role)!);
        this.endpoints.delete(role);
        this.publish();
      }
      return undefined;
    }
    const endpoint = this.endpointFor(role, wanted);
    const outage = endpoint.outage;
    if (!endpoint.client || (outage && (outage.permanent || Date.now() < outage.retryAt))) return undefined;
    return endpoint.client;
  }

  /** A name for what serves the role remotely, e.g. `coder @ http://gpu:8000`, for answers and the acceptance record. */
  label(client: RemoteClient): string {
    return `${client.endpoint.model} @ ${client.endpoint.url}`;
  }

  /**
   * Runs `call` against the role's endpoint. A failure that is not the request's own cancellation marks the
   * endpoint down (said once, then retried after the back-off) and throws RemoteUnavailable, so that the caller
   * falls back to the local model; a success after an outage says the endpoint is back.
   */
  async run<T>(role: ModelRole, client: RemoteClient, signal: AbortSignal, call: () => Promise<T>): Promise<T> {
    try {
      const result = await call();
      this.succeeded(role, client);
      return result;
    } catch (error) {
      if (signal.aborted) throw error;
      throw this.failed(role, client, describeRemoteFailure(error, client.endpoint.timeoutMs));
    }
  }

  /** Records that a call to `client` failed with `reason`; returns the error for the caller to throw. */
  failed(role: ModelRole, client: RemoteClient, reason: string): RemoteUnavailable {
    const endpoint = this.endpoints.get(role);
    const message = `remote ${role} endpoint ${this.label(client)}: ${reason}`;
    if (!endpoint || endpoint.client !== client) return new RemoteUnavailable(message);
    // Requests that were already under way when it went down change nothing: only a failed retry extends the wait.
    if (endpoint.outage && Date.now() < endpoint.outage.retryAt) return new RemoteUnavailable(message);
    const first = !endpoint.outage;
    const backoffMs = first
      ? this.firstBackoffMs
      : Math.min(MAX_BACKOFF_MS, Math.max(this.firstBackoffMs, endpoint.outage!.backoffMs * 2));
    endpoint.outage = { error: reason, backoffMs, retryAt: Date.now() + backoffMs, permanent: false };
    if (first)
      this.context.log.warn(
        `${message}; the local model serves ${role} until it answers again (next try in ${Math.round(backoffMs / 1000)} s)`,
      );
    this.scheduleRetry(role, endpoint);
    this.publish();
    return new RemoteUnavailable(message);
  }

  private succeeded(role: ModelRole, client: RemoteClient): void {
    const endpoint = this.endpoints.get(role);
    if (!endpoint || endpoint.client !== client) return;
    if (endpoint.outage) this.context.log.info(`remote ${role} endpoint ${this.label(client)} answers again`);
    const changed = endpoint.outage !== undefined || !endpoint.answered;
    endpoint.outage = undefined;
    endpoint.answered = true;
    clearTimeout(endpoint.retryTimer);
    endpoint.retryTimer = undefined;
    if (changed) this.publish();
  }

  /** After the back-off, asks the endpoint for its models (a cheap call) so the status recovers without requests. */
  private scheduleRetry(role: ModelRole, endpoint: RoleEndpoint): void {
    clearTimeout(endpoint.retryTimer);
    const client = endpoint.client;
    if (!client || !endpoint.outage) return;
    endpoint.retryTimer = setTimeout(() => {
      endpoint.retryTimer = undefined;
      if (this.endpoints.get(role) !== endpoint || endpoint.client !== client) return;
      void this.run(role, client, new AbortController().signal, () => client.models()).catch(() => undefined);
    }, endpoint.outage.backoffMs);
    endpoint.retryTimer.unref?.();
  }

  private endpointFor(role: ModelRole, wanted: RemoteRoleSettings): RoleEndpoint {
    const modelDir = wanted.modelDir ? this.resolveModelDir(wanted.modelDir) : undefined;
    const apiKey = this.keys[role];
    const signature = JSON.stringify([wanted, modelDir, apiKey ?? '']);
    const existing = this.endpoints.get(role);
    if (existing?.signature === signature) return existing;
    if (existing) this.close(existing);
    const endpoint: RoleEndpoint = {
      signature,
      status: { url: wanted.url, model: wanted.model, state: 'unknown' },
      answered: false,
    };
    try {
      if (!wanted.model) throw new Error(`modelwright.remote.${role}.model is empty: name the model on the server`);
      endpoint.client = new RemoteClient({
        url: wanted.url,
        protocol: wanted.protocol,
        model: wanted.model,
        timeoutMs: wanted.timeoutMs,
        ...(apiKey ? { apiKey } : {}),
        ...(modelDir ? { modelDir } : {}),
      });
      this.context.log.info(
        `remote ${role} endpoint: ${wanted.protocol} ${wanted.url}, model "${wanted.model}"` +
          `${apiKey ? ', with an API key' : ''}, time limit ${wanted.timeoutMs} ms`,
      );
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      endpoint.outage = { error: reason, backoffMs: 0, retryAt: Number.POSITIVE_INFINITY, permanent: true };
      this.context.log.warn(`remote ${role} endpoint not used: ${reason}; the local model serves ${role}`);
    }
    this.endpoints.set(role, endpoint);
    this.publish();
    return endpoint;
  }

  /** A model name of the Models list stands for its folder; anything else is a path. */
  private resolveModelDir(value: string): string {
    const entry = isValidModelName(value) ? this.context.registry.find(value) : undefined;
    return entry ? entry.dir : path.resolve(value);
  }

  private close(endpoint: RoleEndpoint): void {
    clearTimeout(endpoint.retryTimer);
    endpoint.client?.dispose();
  }

  /** Sends every role's endpoint state with the status (at once: it changes only on failures and recoveries). */
  private publish(): void {
    const remote: Partial<Record<ModelRole, RemoteRoleStatus>> = {};
    for (const [role, endpoint] of this.endpoints) {
      const outage = endpoint.outage;
      endpoint.status = {
        url: endpoint.status.url,
        model: endpoint.status.model,
        state: outage ? 'down' : endpoint.answered ? 'up' : 'unknown',
        ...(outage ? { error: outage.error } : {}),
        ...(outage && !outage.permanent ? { retryAt: new Date(outage.retryAt).toISOString() } : {}),
      };
      remote[role] = endpoint.status;
    }
    this.context.status.update({ remote: Object.keys(remote).length ? remote : undefined });
  }
}
