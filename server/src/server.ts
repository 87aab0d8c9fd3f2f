// The Modelwright language server process: speaks LSP over stdio (`--stdio`, also `modelwright lsp --stdio`) or
// node IPC (`--node-ipc`, how the VS Code extension starts server/out/server.js), wires the features to the
// model registry, and never lets an error take the process down (they are logged to the client instead).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  type InitializeResult,
  ProposedFeatures,
  TextDocumentSyncKind,
  TextDocuments,
  createConnection,
} from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { CompletionPipeline } from './completion/completionPipeline';
import { WorkspaceFiles, filePath } from './explanation/workspaceFiles';
import { ChatFeature } from './features/chat';
import { CodeActionFeature } from './features/codeAction';
import { ExplainFeature } from './features/explain';
import type { Feature } from './features/feature';
import { HoverFeature } from './features/hover';
import { InlineCompletionFeature } from './features/inlineCompletion';
import { ModelsFeature } from './features/models';
import { PullModelFeature } from './features/pullModel';
import { RemoteRoles } from './features/remoteRoles';
import type { Logger, ServerContext } from './features/serverContext';
import { ServiceFeature } from './features/service';
import { SettingsFeature } from './features/settings';
import { StatusFeature } from './features/status';
import { TrainingFeature } from './features/training';
import { WorkDoneProgressFeature } from './features/workDoneProgress';
import { type InitializationOptions, type ServerStatus, clampSetting, modelRoles } from './protocol';
import { DEFAULT_MODEL } from './registry/activeModels';
import { ModelRegistry } from './registry/modelRegistry';
import { guardLspFraming } from './util/lspFraming';

// Over stdio, broken framing is dropped before the JSON-RPC reader sees it (a bad Content-Length would stall it).
const connection = process.argv.includes('--stdio')
  ? createConnection(
      ProposedFeatures.all,
      process.stdin.pipe(guardLspFraming((reason) => process.stderr.write(`dropped ${reason}\n`))),
      process.stdout,
    )
  : createConnection(ProposedFeatures.all);
const documents = new TextDocuments(TextDocument);

const log: Logger = {
  info: (message) => connection.console.info(message),
  warn: (message) => connection.console.warn(message),
  error: (message) => connection.console.error(message),
  debug: (message) => connection.console.debug(message),
};

const describe = (error: unknown) => (error instanceof Error ? (error.stack ?? error.message) : String(error));
process.on('uncaughtException', (error) => log.error(`uncaught error (the server keeps running): ${describe(error)}`));
process.on('unhandledRejection', (reason) =>
  log.error(`unhandled rejection (the server keeps running): ${describe(reason)}`),
);

let features: Feature[] = [];
let registry: ModelRegistry | undefined;

connection.onInitialize((params): InitializeResult => {
  const options = initializationOptions(params.initializationOptions);
  registry = new ModelRegistry({ ...options, threads: options.inferenceThreads, log: (message) => log.info(message) });
  const roots = (params.workspaceFolders ?? []).map((f) => filePath(f.uri)).filter((p): p is string => !!p);
  const rootFromUri = params.rootUri ? filePath(params.rootUri) : undefined;
  if (roots.length === 0 && rootFromUri) roots.push(rootFromUri);

  const settings = new SettingsFeature(connection);
  const status = new StatusFeature(connection);
  const progress = new WorkDoneProgressFeature(connection);
  const context: ServerContext = {
    connection,
    documents,
    registry,
    settings,
    status,
    progress,
    workspaceFiles: new WorkspaceFiles(roots),
    options,
    log,
  };
  const pipeline = new CompletionPipeline({ reuseKvCache: process.env.MODELWRIGHT_KV_REUSE !== '0' });
  const remoteRoles = new RemoteRoles(context);
  const explain = new ExplainFeature(context, remoteRoles);
  const training = new TrainingFeature(context);
  features = [
    settings,
    status,
    progress,
    remoteRoles,
    new InlineCompletionFeature(context, pipeline, roots, remoteRoles),
    new HoverFeature(context, explain),
    new CodeActionFeature(context),
    explain,
    new ChatFeature(context),
    new ModelsFeature(context, training),
    training,
    new ServiceFeature(context),
    new PullModelFeature(context),
  ];
  const capabilities = Object.assign(
    { textDocumentSync: TextDocumentSyncKind.Incremental },
    ...features.map((f) => f.initialize(params.capabilities)),
  );

  const activeRegistry = registry;
  activeRegistry.onDidChange(() => {
    status.update(healthOf(activeRegistry, options));
    const servingKey = activeRegistry.servingKey('completion');
    if (servingKey) pipeline.kvCaches.keepOnly(servingKey); // free the KV caches of a swapped-out model
  });
  return { capabilities, serverInfo: { name: 'modelwright', version: packageVersion() } };
});

connection.onInitialized(async () => {
  for (const feature of features) {
    try {
      await feature.initialized?.();
    } catch (e) {
      log.error(`initializing a feature failed: ${describe(e)}`);
    }
  }
  await registry?.start();
});

connection.onShutdown(async () => {
  for (const feature of features) await feature.dispose?.();
  await registry?.dispose();
});

/** Health and message for the status, from what the registry serves. */
function healthOf(models: ModelRegistry, options: InitializationOptions): Partial<ServerStatus> {
  const active = models.activeModels();
  const completion = active.completion;
  if (!completion) {
    return {
      health: 'error',
      active,
      message:
        `No completion model: the bundled "${DEFAULT_MODEL}" model is missing (${path.join(options.bundledModelsDirectory, DEFAULT_MODEL)}) ` +
        'and no model is deployed. Train a model and deploy it.',
    };
  }
  const failure = models.loadError(completion);
  if (!models.isServing('completion')) {
    return failure
      ? { health: 'error', active, message: `The completion model "${completion}" could not be loaded: ${failure}` }
      : { health: 'starting', active, message: `loading "${completion}"` };
  }
  return { health: 'ready', active, message: undefined };
}

function initializationOptions(raw: unknown): InitializationOptions {
  const given = (raw && typeof raw === 'object' ? raw : {}) as Partial<Record<keyof InitializationOptions, unknown>>;
  const directory = (value: unknown, fallback: string) =>
    typeof value === 'string' && value ? path.resolve(value) : fallback;
  const options: InitializationOptions = {
    modelsDirectory: directory(
      given.modelsDirectory,
      process.env.MODELWRIGHT_MODELS ?? path.join(os.homedir(), '.modelwright', 'models'),
    ),
    bundledModelsDirectory: directory(given.bundledModelsDirectory, path.resolve(__dirname, '..', '..', 'models')),
    trusted: given.trusted !== false,
    inferenceThreads: clampSetting('inferenceThreads', given.inferenceThreads),
  };
  if (typeof given.hubToken === 'string' && given.hubToken.trim()) options.hubToken = given.hubToken.trim();
  const keys = given.remoteKeys as Record<string, unknown> | undefined;
  for (const role of modelRoles) {
    const key = keys && typeof keys === 'object' ? keys[role] : undefined;
    if (typeof key === 'string' && key.trim()) options.remoteKeys = { ...options.remoteKeys, [role]: key.trim() };
  }
  if (raw !== undefined && (typeof raw !== 'object' || raw === null))
    log.warn('initializationOptions is not an object; using defaults');
  return options;
}

function packageVersion(): string {
  try {
    return JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', 'package.json'), 'utf8')).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

documents.listen(connection);
connection.listen();
