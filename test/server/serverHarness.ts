// A JSON-RPC test client for the built language server (server/out/server.js --stdio): spawns it, initializes
// it with the capabilities a full client has, answers workspace/configuration from per-URI settings, records
// status notifications, log messages and progress, and offers small helpers for the requests the tests send.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  type CancellationTokenSource,
  type MessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
  createMessageConnection,
} from 'vscode-languageserver-protocol/node';
import {
  ConfigurationRequest,
  DidChangeConfigurationNotification,
  DidChangeTextDocumentNotification,
  DidOpenTextDocumentNotification,
  ExitNotification,
  InitializeRequest,
  InitializedNotification,
  type InlineCompletionList,
  InlineCompletionRequest,
  LogMessageNotification,
  RegistrationRequest,
  ShutdownRequest,
  WorkDoneProgress,
  WorkDoneProgressCreateRequest,
} from 'vscode-languageserver-protocol';
import {
  ListModels,
  type ServerStatus,
  Status,
  type TrainingFigures,
  TrainingProgress,
} from '../../server/src/protocol';

export const repository = path.resolve(__dirname, '..', '..');
export const serverScript = path.join(repository, 'server', 'out', 'server.js');

export interface HarnessOptions {
  modelsDirectory: string;
  bundledModelsDirectory: string;
  trusted?: boolean;
  /** The `modelwright` settings per document URI (undefined: the defaults). */
  settings?: (scopeUri: string | undefined) => unknown;
  workspaceFolder?: string;
  env?: Record<string, string>;
  /** Leave out client capabilities (to test that features register only what the client supports). */
  capabilities?: Record<string, unknown>;
  initializationOptions?: unknown;
}

export const fullCapabilities = {
  textDocument: {
    synchronization: { dynamicRegistration: false },
    inlineCompletion: { dynamicRegistration: false },
    hover: { contentFormat: ['markdown', 'plaintext'] },
    codeAction: { codeActionLiteralSupport: { codeActionKind: { valueSet: ['', 'quickfix', 'refactor'] } } },
  },
  window: { workDoneProgress: true },
  workspace: { configuration: true, didChangeConfiguration: { dynamicRegistration: true } },
};

export interface LogEntry {
  type: number;
  message: string;
}

export class ServerHarness {
  readonly statuses: ServerStatus[] = [];
  readonly logs: LogEntry[] = [];
  readonly trainingFigures: TrainingFigures[] = [];
  /** Work-done progress values per token (client- and server-created). */
  readonly progress = new Map<string | number, unknown[]>();
  readonly configurationRequests: (string | undefined)[] = [];
  settings: (scopeUri: string | undefined) => unknown;
  private versions = new Map<string, number>();
  private stderr = '';
  exitCode: number | null | undefined;

  private constructor(
    readonly child: ChildProcess,
    readonly connection: MessageConnection,
    options: HarnessOptions,
  ) {
    this.settings = options.settings ?? (() => undefined);
  }

  static async start(options: HarnessOptions): Promise<ServerHarness> {
    if (!fs.existsSync(serverScript)) throw new Error(`${serverScript} is missing: run npm run build`);
    const child = spawn(process.execPath, [serverScript, '--stdio'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
    });
    const connection = createMessageConnection(
      new StreamMessageReader(child.stdout!),
      new StreamMessageWriter(child.stdin!),
    );
    const harness = new ServerHarness(child, connection, options);
    child.stderr!.on('data', (chunk: Buffer) => (harness.stderr += chunk.toString()));
    child.on('exit', (code) => (harness.exitCode = code));
    connection.onNotification(Status.type, (status) => {
      harness.statuses.push(status);
    });
    connection.onNotification(TrainingProgress.type, (figures) => {
      harness.trainingFigures.push(figures);
    });
    connection.onNotification(LogMessageNotification.type, (entry) => {
      harness.logs.push(entry);
    });
    connection.onRequest(ConfigurationRequest.type, (params) =>
      params.items.map((item) => {
        harness.configurationRequests.push(item.scopeUri);
        return item.section === 'modelwright' ? (harness.settings(item.scopeUri) ?? null) : null;
      }),
    );
    connection.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
      harness.watchProgress(token);
    });
    connection.onRequest(RegistrationRequest.type, () => undefined);
    connection.onError(() => undefined);
    connection.listen();
    const workspace = options.workspaceFolder ?? repository;
    await connection.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      rootUri: `file://${workspace}`,
      workspaceFolders: [{ uri: `file://${workspace}`, name: path.basename(workspace) }],
      capabilities: (options.capabilities ?? fullCapabilities) as never,
      initializationOptions:
        options.initializationOptions !== undefined
          ? options.initializationOptions
          : {
              modelsDirectory: options.modelsDirectory,
              bundledModelsDirectory: options.bundledModelsDirectory,
              trusted: options.trusted ?? true,
            },
    });
    await connection.sendNotification(InitializedNotification.type, {});
    return harness;
  }

  watchProgress(token: string | number): void {
    if (this.progress.has(token)) return;
    const values: unknown[] = [];
    this.progress.set(token, values);
    this.connection.onProgress(WorkDoneProgress.type, token, (value) => {
      values.push(value);
    });
  }

  /** Resolves with the first status (seen so far or arriving) that satisfies `predicate`. */
  waitForStatus(predicate: (status: ServerStatus) => boolean, timeoutMs = 20_000): Promise<ServerStatus> {
    return waitFor(
      () => this.statuses.find(predicate),
      () => `a matching status; got ${JSON.stringify(this.statuses)}\n${this.stderr}`,
      timeoutMs,
    );
  }

  waitForLog(pattern: RegExp, timeoutMs = 10_000): Promise<LogEntry> {
    return waitFor(
      () => this.logs.find((l) => pattern.test(l.message)),
      () => `a log matching ${pattern}; got ${JSON.stringify(this.logs.map((l) => l.message))}`,
      timeoutMs,
    );
  }

  /**
   * Resolves once the server has asked for the settings of `uri` (the configuration request with index ≥ `since`
   * in `configurationRequests`) and has handled the answer. A request for a document asks for its settings first,
   * and the server goes on from the answer to the model without waiting for anything else, so by then the
   * request holds its model and is decoding.
   */
  async settingsAnswered(uri: string, since = 0): Promise<void> {
    await waitFor(() => this.configurationRequests.slice(since).includes(uri), `a settings request for ${uri}`);
    await this.roundTrip();
  }

  /**
   * Resolves once the server has handled every message sent before: it reads them in order, so the answer to a
   * request sent now comes after all of them were dispatched.
   */
  async roundTrip(): Promise<void> {
    await this.connection.sendRequest(ListModels.type, {});
  }

  /** New settings, announced with workspace/didChangeConfiguration (the server then fetches them again). */
  async configure(settings: (scopeUri: string | undefined) => unknown): Promise<void> {
    this.settings = settings;
    await this.connection.sendNotification(DidChangeConfigurationNotification.type, { settings: null });
  }

  open(uri: string, text: string, languageId = 'typescript'): void {
    this.versions.set(uri, 1);
    void this.connection.sendNotification(DidOpenTextDocumentNotification.type, {
      textDocument: { uri, languageId, version: 1, text },
    });
  }

  /** Replaces the whole text of an open document. */
  change(uri: string, text: string): void {
    const version = (this.versions.get(uri) ?? 1) + 1;
    this.versions.set(uri, version);
    void this.connection.sendNotification(DidChangeTextDocumentNotification.type, {
      textDocument: { uri, version },
      contentChanges: [{ text }],
    });
  }

  complete(
    uri: string,
    line: number,
    character: number,
    triggerKind: 1 | 2 = 1,
    token?: CancellationTokenSource,
  ): Promise<InlineCompletionList> {
    return this.connection.sendRequest(
      InlineCompletionRequest.type,
      { textDocument: { uri }, position: { line, character }, context: { triggerKind } },
      token?.token,
    ) as Promise<InlineCompletionList>;
  }

  /** The server's resident set size in bytes (Linux). */
  rss(): { current: number; peak: number } {
    const status = fs.readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
    return { current: field('VmRSS'), peak: field('VmHWM') };
  }

  get alive(): boolean {
    return this.exitCode === undefined;
  }

  get errorOutput(): string {
    return this.stderr;
  }

  async stop(): Promise<void> {
    if (this.alive) {
      try {
        await withTimeout(this.connection.sendRequest(ShutdownRequest.type), 5000);
        await this.connection.sendNotification(ExitNotification.type);
      } catch {
        // the server is gone or stuck: killed below
      }
    }
    const exited = new Promise<void>((resolve) => (this.alive ? this.child.once('exit', () => resolve()) : resolve()));
    await withTimeout(exited, 5000).catch(() => this.child.kill('SIGKILL'));
    this.connection.dispose();
  }
}

/** The LSP error (code and message) a request failed with, or code 0 when it succeeded. */
export async function failure(promise: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await promise;
    return { code: 0, message: '' };
  } catch (e) {
    return e as { code: number; message: string };
  }
}

/**
 * Waits until `condition` returns a value other than undefined, null or false, and resolves with it; rejects after
 * `timeoutMs` naming `what` was awaited. The one way these tests wait for something that has no event of its
 * own: a generous deadline on a condition, never a fixed delay.
 */
export async function waitFor<T>(
  condition: () => T | undefined | null | false,
  what: string | (() => string),
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = condition();
    if (value !== undefined && value !== null && value !== false) return value;
    if (performance.now() > deadline)
      throw new Error(`waited ${timeoutMs} ms for ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** A temp folder with `models/` (the user's) and `bundled/`, removed by `remove()`. */
export function modelDirectories(): { root: string; models: string; bundled: string; remove(): void } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelwright-server-'));
  const models = path.join(root, 'models');
  const bundled = path.join(root, 'bundled');
  fs.mkdirSync(models);
  fs.mkdirSync(bundled);
  return { root, models, bundled, remove: () => fs.rmSync(root, { recursive: true, force: true }) };
}
