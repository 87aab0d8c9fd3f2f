// Starts the Modelwright language server (server/out/server.js) with vscode-languageclient over node IPC, lets
// the library restart it when it dies while reporting every restart, and exposes the protocol's custom messages
// as typed methods and events for the commands, the tree, the training view and the status bar. The Hugging Face
// token goes to the server in the initialization options and SetHubToken, and is redacted from its traces.
import { randomUUID } from 'node:crypto';
import * as vscode from 'vscode';
import {
  CloseAction,
  type CloseHandlerResult,
  type ErrorHandler,
  LanguageClient,
  type LanguageClientOptions,
  type Range,
  type ServerOptions,
  State,
  TransportKind,
  WorkDoneProgress,
  WorkDoneProgressCancelNotification,
} from 'vscode-languageclient/node';
import {
  type AcceptanceFigures,
  AcceptanceRates,
  Chat,
  DeleteModel,
  DeployModel,
  EvaluateModel,
  Explain,
  GetModelCard,
  type InitializationOptions,
  ListModels,
  type ModelMetrics,
  type ModelRole,
  PullModel,
  type ServerStatus,
  SetHubToken,
  SetRemoteKey,
  StartService,
  Status,
  StopService,
  type TrainingFigures,
  TrainingProgress,
  TrainModel,
} from '../../server/src/protocol';
import { configurationSection, readSettings } from './config';
import { redactSecrets } from './hubChoices';
import type { ConnectionState } from './statusText';

/** Work-done progress reported by the server for a request the client started (training, evaluation). */
export interface WorkProgress {
  message?: string;
  percentage?: number;
}

export class ServerClient implements vscode.Disposable {
  private readonly client: LanguageClient;
  private readonly stateEmitter = new vscode.EventEmitter<ConnectionState>();
  private readonly statusEmitter = new vscode.EventEmitter<ServerStatus | undefined>();
  private readonly trainingEmitter = new vscode.EventEmitter<TrainingFigures>();
  private readonly acceptanceEmitter = new vscode.EventEmitter<Record<string, AcceptanceFigures>>();
  private connectionState: ConnectionState = 'starting';
  private restartCount = 0;
  private status: ServerStatus | undefined;
  /** Every Hugging Face token sent to the server in this session, to redact from the traces. */
  private readonly secrets = new Set<string>();

  /** The client's connection to the server changed (starting, running, restarting after a crash, stopped). */
  readonly onDidChangeConnection = this.stateEmitter.event;
  /** The server's status changed (undefined while it restarts). */
  readonly onDidChangeStatus = this.statusEmitter.event;
  /** A training step's figures (all trainings, including ones started elsewhere). */
  readonly onTrainingProgress = this.trainingEmitter.event;
  /** The local acceptance record of inline suggestions changed (figures per model name). */
  readonly onAcceptanceRates = this.acceptanceEmitter.event;

  constructor(
    serverModule: string,
    private readonly initializationOptions: () => InitializationOptions,
    private readonly log: vscode.LogOutputChannel,
  ) {
    const serverOptions: ServerOptions = {
      run: { module: serverModule, transport: TransportKind.ipc },
      debug: {
        module: serverModule,
        transport: TransportKind.ipc,
        options: { execArgv: ['--nolazy', '--inspect=6019'] },
      },
    };
    // With modelwright.trace.server "verbose" the library logs every message's parameters, the token included.
    const redacted = redactingChannel(log, () => this.secrets);
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      synchronize: { configurationSection },
      outputChannel: redacted,
      traceOutputChannel: redacted,
      initializationOptions: () => {
        const options = this.initializationOptions();
        if (options.hubToken) this.secrets.add(options.hubToken);
        for (const key of Object.values(options.remoteKeys ?? {})) if (key) this.secrets.add(key);
        return options;
      },
      errorHandler: this.errorHandler(),
      middleware: {
        workspace: {
          // Hand the server validated, typed settings rather than whatever the user typed.
          configuration: async (params, token, next) => {
            const result = await next(params, token);
            if (!Array.isArray(result)) return result;
            return params.items.map((item, i) =>
              item.section === configurationSection
                ? readSettings(
                    vscode.workspace.getConfiguration(
                      configurationSection,
                      item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined,
                    ),
                  )
                : result[i],
            );
          },
        },
      },
    };
    this.client = new LanguageClient('modelwright', 'Modelwright', serverOptions, clientOptions);

    this.client.onDidChangeState((e) => {
      if (e.newState === State.Running) this.setConnection('running');
      else if (e.newState === State.Starting)
        this.setConnection(this.connectionState === 'restarting' ? 'restarting' : 'starting');
      else if (this.connectionState !== 'restarting') this.setConnection('stopped');
    });
    this.client.onNotification(Status.type, (status) => {
      this.status = status;
      this.statusEmitter.fire(status);
    });
    this.client.onNotification(TrainingProgress.type, (figures) => this.trainingEmitter.fire(figures));
    this.client.onNotification(AcceptanceRates.type, ({ models }) => this.acceptanceEmitter.fire(models));
  }

  get connection(): ConnectionState {
    return this.connectionState;
  }
  get restarts(): number {
    return this.restartCount;
  }
  get lastStatus(): ServerStatus | undefined {
    return this.status;
  }

  async start(): Promise<void> {
    this.setConnection('starting');
    try {
      await this.client.start();
    } catch (error) {
      this.setConnection('stopped');
      this.log.error(`The language server did not start: ${String(error)}`);
      throw error;
    }
  }

  /** Restarts the server (after workspace trust is granted, the models directory changed, or on request). */
  async restart(): Promise<void> {
    this.status = undefined;
    this.statusEmitter.fire(undefined);
    this.setConnection('starting');
    if (this.client.state === State.Stopped) await this.client.start();
    else await this.client.restart();
  }

  /** Any request of the protocol (for command groups whose requests have no method here). */
  request<P, R>(message: { method: string; type: { readonly _?: [P, R, unknown, unknown] } }, params: P): Promise<R> {
    return this.client.sendRequest(message.method, params) as Promise<R>;
  }

  listModels(): Promise<ListModels.Result> {
    return this.client.sendRequest(ListModels.type, {});
  }

  modelCard(name: string): Promise<GetModelCard.Result> {
    return this.client.sendRequest(GetModelCard.type, { name });
  }

  deploy(name: string, role: ModelRole): Promise<DeployModel.Result> {
    return this.client.sendRequest(DeployModel.type, { name, role });
  }

  deleteModel(name: string): Promise<DeleteModel.Result> {
    return this.client.sendRequest(DeleteModel.type, { name });
  }

  /**
   * Trains a model. The server reports work-done progress under a token the client makes; cancelling `token`
   * sends window/workDoneProgress/cancel, and the server stops at the next step, saves, and resolves as usual.
   */
  train(
    params: Omit<TrainModel.Params, 'workDoneToken'>,
    onProgress: (p: WorkProgress) => void,
    token: vscode.CancellationToken,
  ): Promise<TrainModel.Result> {
    return this.withWorkDone(
      (workDoneToken) => this.client.sendRequest(TrainModel.type, { ...params, workDoneToken }),
      onProgress,
      token,
    );
  }

  evaluate(
    params: Omit<EvaluateModel.Params, 'workDoneToken'>,
    onProgress: (p: WorkProgress) => void,
    token: vscode.CancellationToken,
  ): Promise<ModelMetrics> {
    return this.withWorkDone(
      (workDoneToken) => this.client.sendRequest(EvaluateModel.type, { ...params, workDoneToken }, token),
      onProgress,
      token,
    );
  }

  /**
   * Explains a range; each streamed chunk is passed to `onChunk` as it arrives (partial results on a
   * partialResultToken). The client's own work-done token keeps the server from opening a second progress UI.
   */
  async explain(
    document: vscode.TextDocument,
    range: vscode.Range,
    onChunk: (text: string) => void,
    token: vscode.CancellationToken,
  ): Promise<Explain.Result> {
    const partialResultToken = randomUUID();
    const listener = this.client.onProgress(Explain.chunkType, partialResultToken, (chunk) => onChunk(chunk.text));
    try {
      return await this.withWorkDone(
        (workDoneToken) =>
          this.client.sendRequest(
            Explain.type,
            {
              textDocument: { uri: this.client.code2ProtocolConverter.asUri(document.uri) },
              range: this.client.code2ProtocolConverter.asRange(range),
              partialResultToken,
              workDoneToken,
            },
            token,
          ),
        () => undefined,
        token,
      );
    } finally {
      listener.dispose();
    }
  }

  /** The next turn of a conversation from a chat model; each streamed piece is passed to `onChunk`. */
  async chat(
    params: Omit<Chat.Params, 'workDoneToken' | 'partialResultToken'>,
    onChunk: (text: string) => void,
    token: vscode.CancellationToken,
  ): Promise<Chat.Result> {
    const partialResultToken = randomUUID();
    const listener = this.client.onProgress(Chat.chunkType, partialResultToken, (chunk) => onChunk(chunk.text));
    try {
      return await this.withWorkDone(
        (workDoneToken) => this.client.sendRequest(Chat.type, { ...params, partialResultToken, workDoneToken }, token),
        () => undefined,
        token,
      );
    } finally {
      listener.dispose();
    }
  }

  /**
   * Downloads a hub model into the models directory. Cancelling `token` sends both window/workDoneProgress/cancel
   * and $/cancelRequest; the server then answers with RequestCancelled.
   */
  pullModel(
    params: Omit<PullModel.Params, 'workDoneToken'>,
    onProgress: (p: WorkProgress) => void,
    token: vscode.CancellationToken,
  ): Promise<PullModel.Result> {
    if (params.token) this.secrets.add(params.token);
    return this.withWorkDone(
      (workDoneToken) => this.client.sendRequest(PullModel.type, { ...params, workDoneToken }, token),
      onProgress,
      token,
    );
  }

  /**
   * Tells the server the new Hugging Face token: a running or starting one now (the library holds the message until
   * it has started), a stopped one at its next initialization.
   */
  /** A remote endpoint's API key changed (SetRemoteKey); redacted from the traces like the hub token. */
  setRemoteKey(role: ModelRole, key: string | undefined): void {
    if (key) this.secrets.add(key);
    if (this.client.state === State.Stopped) return;
    this.client.sendNotification(SetRemoteKey.type, key ? { role, key } : { role }).catch(() => undefined);
  }

  setHubToken(token: string | undefined): void {
    if (token) this.secrets.add(token);
    if (this.client.state === State.Stopped) return;
    this.client.sendNotification(SetHubToken.type, token ? { token } : {}).catch(() => undefined);
  }

  /** Serves models over HTTP (OpenAI /v1, Open Inference Protocol /v2) from the language server. */
  startService(params: StartService.Params): Promise<StartService.Result> {
    return this.client.sendRequest(StartService.type, params);
  }

  stopService(): Promise<StopService.Result> {
    return this.client.sendRequest(StopService.type, {});
  }

  /** Converts a protocol range (from a server-made command's arguments) to the editor's. */
  asRange(range: Range): vscode.Range {
    return this.client.protocol2CodeConverter.asRange(range);
  }

  private async withWorkDone<R>(
    send: (workDoneToken: string) => Promise<R>,
    onProgress: (p: WorkProgress) => void,
    token: vscode.CancellationToken,
  ): Promise<R> {
    const workDoneToken = randomUUID();
    const listener = this.client.onProgress(WorkDoneProgress.type, workDoneToken, (value) => {
      if (value.kind !== 'end') onProgress({ message: value.message, percentage: value.percentage });
    });
    const cancel = token.onCancellationRequested(() => {
      this.client
        .sendNotification(WorkDoneProgressCancelNotification.type, { token: workDoneToken })
        .catch(() => undefined);
    });
    try {
      return await send(workDoneToken);
    } finally {
      listener.dispose();
      cancel.dispose();
    }
  }

  /** The library's restart policy (up to 4 restarts in 3 minutes), with every restart logged and shown. */
  private errorHandler(): ErrorHandler {
    let fallback: ErrorHandler | undefined; // made on first use: it needs the client
    const library = () => (fallback ??= this.client.createDefaultErrorHandler());
    return {
      error: (error, message, count) => library().error(error, message, count),
      closed: async (): Promise<CloseHandlerResult> => {
        const result = await library().closed();
        const restart = result.action === CloseAction.Restart;
        if (restart) this.restartCount++;
        // The connection state first, so listeners of the status change see the server as gone.
        this.setConnection(restart ? 'restarting' : 'stopped');
        this.status = undefined;
        this.statusEmitter.fire(undefined);
        if (restart) {
          this.log.warn(`The language server stopped unexpectedly; restarting it (restart ${this.restartCount}).`);
          return result;
        }
        const text = result.message ?? 'The Modelwright language server stopped.';
        this.log.error(text);
        void vscode.window.showErrorMessage(text, 'Show Logs', 'Restart').then((choice) => {
          if (choice === 'Show Logs') this.log.show();
          if (choice === 'Restart') this.restart().catch((e) => this.log.error(String(e)));
        });
        return { ...result, handled: true };
      },
    };
  }

  private setConnection(state: ConnectionState): void {
    if (state === this.connectionState) return;
    this.connectionState = state;
    this.stateEmitter.fire(state);
  }

  /** Stops the server (at deactivation), waiting up to 2 s for it to shut down. */
  async stop(): Promise<void> {
    if (this.client.needsStop()) await this.client.stop(2000).catch(() => undefined);
  }

  dispose(): void {
    void this.stop();
    this.stateEmitter.dispose();
    this.statusEmitter.dispose();
    this.trainingEmitter.dispose();
    this.acceptanceEmitter.dispose();
  }
}

/** The log channel with the given secrets replaced in everything written to it (the library's traces included). */
function redactingChannel(log: vscode.LogOutputChannel, secrets: () => Iterable<string>): vscode.LogOutputChannel {
  const writers = new Set(['trace', 'debug', 'info', 'warn', 'error', 'append', 'appendLine', 'replace']);
  return new Proxy(log, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      if (!writers.has(String(property))) return value.bind(target);
      return (...args: unknown[]) =>
        value.apply(
          target,
          args.map((arg) => {
            if (typeof arg === 'string') return redactSecrets(arg, secrets());
            if (arg instanceof Error) return redactSecrets(arg.stack ?? arg.message, secrets());
            return arg;
          }),
        );
    },
  });
}
