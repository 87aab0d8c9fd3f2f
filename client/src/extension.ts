// The extension's entry point, wiring only: the language server client, the status bar, the Models tree, the
// Training view, the read-only documents, the Hugging Face token and remote endpoint keys, the commands, the
// @modelwright chat participant and the model picker's local models (where the running VS Code has those APIs).
// Logic lives in its own module.
import * as vscode from 'vscode';
import { registerLanguageModelProvider } from './chat/languageModelProvider';
import { registerChatParticipant } from './chat/participant';
import { registerCommands } from './commands';
import { configurationSection, readClientSettings, resolveModelsDirectory } from './config';
import { EndpointKeys } from './endpointKey';
import { HubToken } from './hubToken';
import { type ModelsTreeNode, ModelsTreeProvider } from './modelsTreeProvider';
import { documentScheme, ReadOnlyDocuments } from './readOnlyDocuments';
import { ServerClient } from './serverClient';
import { StatusBar } from './statusBar';
import { privacyNote } from './statusMenu';
import { TrainingView } from './trainingView';

let server: ServerClient | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('Modelwright', { log: true });
  const hubToken = new HubToken(context.secrets);
  const endpointKeys = new EndpointKeys(context.secrets);
  const clientSettings = () => readClientSettings(vscode.workspace.getConfiguration(configurationSection));
  const modelsDirectory = () =>
    resolveModelsDirectory(clientSettings().modelsDirectory, context.globalStorageUri.fsPath);
  server = new ServerClient(
    // MODELWRIGHT_SERVER_MODULE runs another server build (development, and the tests' instant-server baseline).
    process.env.MODELWRIGHT_SERVER_MODULE || context.asAbsolutePath('server/out/server.js'),
    () => ({
      modelsDirectory: modelsDirectory(),
      bundledModelsDirectory: context.asAbsolutePath('models'),
      trusted: vscode.workspace.isTrusted,
      inferenceThreads: clientSettings().inferenceThreads,
      ...(hubToken.current ? { hubToken: hubToken.current } : {}),
      ...(Object.keys(endpointKeys.current).length ? { remoteKeys: endpointKeys.current } : {}),
    }),
    log,
  );
  const tree = new ModelsTreeProvider(server, log);
  const treeView = vscode.window.createTreeView<ModelsTreeNode>('modelwright.models', {
    treeDataProvider: tree,
    showCollapseAll: true,
  });
  const trainingView = new TrainingView(context.extensionUri, server, log);
  const documents = new ReadOnlyDocuments();

  // Redraw the tree when the server (re)starts, the active models change, or a training starts or ends.
  let treeKey = '';
  const refreshTreeOnChange = () => {
    const s = server?.lastStatus;
    const training = `${s?.training?.name}:${s?.training?.phase === 'training'}`;
    const key = `${server?.connection}|${JSON.stringify(s?.active)}|${training}`;
    if (key !== treeKey && server?.connection === 'running') void tree.refresh();
    treeKey = key;
  };

  context.subscriptions.push(
    log,
    server,
    tree,
    treeView,
    trainingView,
    documents,
    new StatusBar(server),
    hubToken,
    endpointKeys,
    ...registerCommands({ server, tree, trainingView, documents, hubToken, endpointKeys, log }),
    vscode.window.registerWebviewViewProvider(TrainingView.viewId, trainingView),
    vscode.workspace.registerTextDocumentContentProvider(documentScheme, documents),
    server.onDidChangeStatus(refreshTreeOnChange),
    server.onDidChangeConnection(refreshTreeOnChange),
    treeView.onDidChangeSelection((e) => {
      const node = e.selection[0];
      if (node?.kind === 'model') void trainingView.showModel(node.model.name);
    }),
    vscode.workspace.onDidCloseTextDocument((d) => d.uri.scheme === documentScheme && documents.forget(d.uri)),
    // The server learns trust, the models directory and its threads at initialization: restart it when they change.
    vscode.workspace.onDidGrantWorkspaceTrust(() => void server?.restart()),
    vscode.workspace.onDidChangeConfiguration((e) => {
      const atStart = ['modelsDirectory', 'inferenceThreads'];
      if (atStart.some((key) => e.affectsConfiguration(`${configurationSection}.${key}`))) void server?.restart();
    }),
    hubToken.onDidChange((token) => server?.setHubToken(token)),
    endpointKeys.onDidChange(({ role, key }) => server?.setRemoteKey(role, key)),
    vscode.env.onDidChangeTelemetryEnabled((enabled) => log.info(privacyNote(enabled))),
  );
  for (const optional of [
    registerChatParticipant(server, context.extensionUri, log),
    registerLanguageModelProvider(server, log),
  ])
    if (optional) context.subscriptions.push(optional);
  log.info(privacyNote(vscode.env.isTelemetryEnabled));
  // The token is read first so that the server has it from its start (a failed read: start without one).
  const started = server;
  void hubToken
    .load()
    .catch((error) => log.warn(`The Hugging Face token could not be read: ${String(error)}`))
    .then(() => endpointKeys.load())
    .catch((error) => log.warn(`The remote endpoint keys could not be read: ${String(error)}`))
    .then(() => started.start())
    .catch((error) => log.error(`Modelwright could not start its language server: ${String(error)}`));
}

export async function deactivate(): Promise<void> {
  await server?.stop();
  server = undefined;
}
