// Work-done progress for long requests (training, evaluation, explanations): uses the client's workDoneToken
// when it sent one, otherwise creates a token with window/workDoneProgress/create when the client supports it.
// Cancellation from the progress UI (window/workDoneProgress/cancel) aborts the returned signal, for both kinds.
import { randomUUID } from 'node:crypto';
import {
  type ClientCapabilities,
  type Connection,
  type ProgressToken,
  type ServerCapabilities,
  WorkDoneProgress,
  type WorkDoneProgressBegin,
  WorkDoneProgressCancelNotification,
  WorkDoneProgressCreateRequest,
  type WorkDoneProgressEnd,
  type WorkDoneProgressReport,
} from 'vscode-languageserver';
import type { Feature } from './feature';

export interface ProgressReporter {
  /** Aborted when the user cancels the progress. */
  readonly signal: AbortSignal;
  report(message: string, percentage?: number): void;
  done(message?: string): void;
}

export class WorkDoneProgressFeature implements Feature {
  private supported = false;
  private readonly running = new Map<ProgressToken, AbortController>();

  constructor(private readonly connection: Connection) {}

  initialize(capabilities: ClientCapabilities): ServerCapabilities {
    this.supported = capabilities.window?.workDoneProgress === true;
    return {};
  }

  initialized(): void {
    // Replaces the library's handler, which only knows server-created tokens.
    this.connection.onNotification(WorkDoneProgressCancelNotification.type, ({ token }) =>
      this.running.get(token)?.abort(),
    );
  }

  async begin(clientToken: ProgressToken | undefined, title: string, cancellable: boolean): Promise<ProgressReporter> {
    const controller = new AbortController();
    let token = clientToken;
    if (token === undefined && this.supported) {
      const created = randomUUID();
      try {
        await this.connection.sendRequest(WorkDoneProgressCreateRequest.type, { token: created });
        token = created;
      } catch {
        token = undefined; // the client refused: work without progress
      }
    }
    if (token === undefined) return { signal: controller.signal, report: () => {}, done: () => {} };
    const progressToken = token;
    this.running.set(progressToken, controller);
    const send = (value: WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd) =>
      void Promise.resolve(this.connection.sendProgress(WorkDoneProgress.type, progressToken, value)).catch(
        () => undefined,
      );
    send({ kind: 'begin', title, cancellable, percentage: 0 });
    let finished = false;
    return {
      signal: controller.signal,
      report: (message, percentage) => {
        if (finished) return;
        send({
          kind: 'report',
          message,
          ...(percentage !== undefined ? { percentage: Math.max(0, Math.min(100, Math.round(percentage))) } : {}),
        });
      },
      done: (message) => {
        if (finished) return;
        finished = true;
        this.running.delete(progressToken);
        send({ kind: 'end', ...(message ? { message } : {}) });
      },
    };
  }
}
