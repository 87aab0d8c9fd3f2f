// A language server that answers every inline completion at once, with no model: the floor of the
// keystroke-to-ghost-text time in the end-to-end harness (VS Code's own delays, the extension, IPC and
// rendering). codeServer.e2e.ts bundles it and runs the extension against it to measure that baseline.
import {
  createConnection,
  InlineCompletionRequest,
  ProposedFeatures,
  TextDocumentSyncKind,
} from 'vscode-languageserver/node';
import { ListModels, Status } from '../../server/src/protocol';

const connection = createConnection(ProposedFeatures.all);
const active = { completion: 'instant', explanation: 'instant' };
let lastCompletionMs: number | undefined;

connection.onInitialize(() => ({
  capabilities: { textDocumentSync: TextDocumentSyncKind.Incremental, inlineCompletionProvider: true },
}));
connection.onInitialized(() => void connection.sendNotification(Status.type, { health: 'ready', active }));
connection.onRequest(ListModels.type, () => ({ models: [], active }));
connection.onRequest(InlineCompletionRequest.type, ({ position }) => {
  const started = performance.now();
  // An empty range at the cursor: without one VS Code replaces the word there and drops what does not extend it.
  const result = { items: [{ insertText: 'instantSuggestion();', range: { start: position, end: position } }] };
  lastCompletionMs = performance.now() - started;
  void connection.sendNotification(Status.type, { health: 'ready', active, lastCompletionMs });
  return result;
});
connection.listen();
