// The explanation commands: Explain Selection (the selection, or the current line) and the server's "Explain with
// Modelwright" code action. Both stream into a read-only Markdown document beside the editor.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { explanationDocument } from '../format';
import type { CommandArgument, CommandContext, CommandHandlers } from './commandContext';

export function explanationCommands(context: CommandContext): CommandHandlers<'explainSelection' | 'explain'> {
  async function explainSelection(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage('Select some code in an editor to explain it.');
      return;
    }
    const selection = editor.selection;
    // An empty selection explains the current line.
    const range = selection.isEmpty
      ? editor.document.lineAt(selection.active.line).range
      : new vscode.Range(selection.start, selection.end);
    await explainRange(editor.document, range);
  }

  /** The server's "Explain with Modelwright" code action: [uri, range]. */
  async function explainFromCodeAction(argument: CommandArgument): Promise<void> {
    if (!Array.isArray(argument) || typeof argument[0] !== 'string' || !argument[1])
      throw new Error('the explain command needs a document and a range');
    const document = await vscode.workspace.openTextDocument(vscode.Uri.parse(argument[0]));
    await explainRange(document, context.server.asRange(argument[1]));
  }

  /** Opens a read-only Markdown document beside the editor and fills it in as the explanation streams. */
  async function explainRange(document: vscode.TextDocument, range: vscode.Range): Promise<void> {
    const file = path.basename(document.uri.path);
    // A selection that ends at the start of a line does not take that line in.
    const last = range.end.character === 0 && range.end.line > range.start.line ? range.end.line - 1 : range.end.line;
    const lines =
      range.start.line === last ? `line ${range.start.line + 1}` : `lines ${range.start.line + 1}–${last + 1}`;
    const uri = context.documents.newUri(`Explanation of ${file} ${lines}.md`);
    const what = `${file}, ${lines}`;
    context.documents.set(uri, explanationDocument(what, ''));
    await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(uri), {
      viewColumn: vscode.ViewColumn.Beside,
      preview: true,
      preserveFocus: true,
    });

    let streamed = '';
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: `Explaining ${what}`, cancellable: true },
      (_progress, token) =>
        context.server.explain(
          document,
          range,
          (chunk) => {
            streamed += chunk;
            context.documents.set(uri, explanationDocument(what, streamed));
          },
          token,
        ),
    );
    context.documents.set(uri, explanationDocument(what, streamed, result));
  }

  return { explainSelection: () => explainSelection(), explain: explainFromCodeAction };
}
