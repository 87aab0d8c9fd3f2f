// The @modelwright chat participant (VS Code's stable chat API, 1.90+): wires chatHandler.ts to the editor, the
// language server and the commands. Feature-detected, so a VS Code without chat (or with chat turned off) simply
// has no participant.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { commandIds } from '../commandIds';
import type { ServerClient } from '../serverClient';
import { type CodeToExplain, chatHandler, participantId } from './chatHandler';

export function registerChatParticipant(
  server: ServerClient,
  extensionUri: vscode.Uri,
  log: vscode.LogOutputChannel,
): vscode.Disposable | undefined {
  if (typeof vscode.chat?.createChatParticipant !== 'function') {
    log.info('This VS Code has no chat API: the @modelwright chat participant is off.');
    return undefined;
  }
  const commands = { train: commandIds.train, eval: commandIds.evaluate, deploy: commandIds.deploy } as const;
  const handler = chatHandler({
    codeToExplain,
    explain: (code, onChunk, token) =>
      server.explain(code.document as vscode.TextDocument, code.range as vscode.Range, onChunk, token),
    chat: (messages, onChunk, token) => server.chat({ messages }, onChunk, token),
    runCommand: (command) => Promise.resolve(vscode.commands.executeCommand(commands[command])),
    snapshot: async () => {
      const { models, active } = await server.listModels();
      return { models, active };
    },
    onTrainingProgress: (listener) => server.onTrainingProgress(listener),
  });
  const participant = vscode.chat.createChatParticipant(participantId, async (request, context, stream, token) => {
    try {
      return await handler(request, context, stream, token);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      log.error(`@modelwright: ${message}`);
      return { errorDetails: { message } };
    }
  });
  participant.iconPath = vscode.Uri.joinPath(extensionUri, 'client', 'media', 'icon.png');
  participant.followupProvider = {
    provideFollowups: (result) =>
      result.metadata?.command === 'train' && result.metadata.model
        ? [{ prompt: '', command: 'eval', label: `Evaluate ${result.metadata.model}` }]
        : [],
  };
  return participant;
}

/** The first referenced file or location, else the active editor's selection, else its whole file. */
function codeToExplain(references: readonly vscode.ChatPromptReference[]): CodeToExplain | undefined {
  const editor = vscode.window.activeTextEditor;
  for (const reference of references) {
    const value = reference.value;
    if (value instanceof vscode.Location) {
      const document = vscode.workspace.textDocuments.find((d) => d.uri.toString() === value.uri.toString());
      if (document) return labelled(document, value.range);
    }
    if (value instanceof vscode.Uri) {
      const document = vscode.workspace.textDocuments.find((d) => d.uri.toString() === value.toString());
      if (document) return labelled(document, wholeFile(document));
    }
  }
  if (!editor) return undefined;
  const selection = editor.selection;
  return labelled(editor.document, selection.isEmpty ? wholeFile(editor.document) : selection);
}

function wholeFile(document: vscode.TextDocument): vscode.Range {
  return new vscode.Range(0, 0, document.lineCount, 0);
}

function labelled(document: vscode.TextDocument, range: vscode.Range): CodeToExplain {
  const file = path.basename(document.uri.path);
  const last = Math.min(
    document.lineCount - 1,
    range.end.character === 0 && range.end.line > range.start.line ? range.end.line - 1 : range.end.line,
  );
  const lines = range.start.line === last ? `line ${last + 1}` : `lines ${range.start.line + 1}–${last + 1}`;
  return { document, range, label: `${file}, ${lines}` };
}
