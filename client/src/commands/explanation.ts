// The explanation commands: Explain Selection (the selection, or the current line) and the server's "Explain with
// Modelwright" code action. Both stream into a read-only Markdown document shown as a Markdown preview beside the
// editor (rendered, not as source; the source editor only where the Markdown preview is not available).
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

  /** Opens a read-only Markdown document as a preview beside the editor and fills it in as the explanation streams. */
  async function explainRange(document: vscode.TextDocument, range: vscode.Range): Promise<void> {
    const file = path.basename(document.uri.path);
    // A selection that ends at the start of a line does not take that line in.
    const last = range.end.character === 0 && range.end.line > range.start.line ? range.end.line - 1 : range.end.line;
    const lines =
      range.start.line === last ? `line ${range.start.line + 1}` : `lines ${range.start.line + 1}–${last + 1}`;
    const uri = context.documents.newUri(`Explanation of ${file} ${lines}.md`);
    const what = `${file}, ${lines}`;
    context.documents.set(uri, explanationDocument(what, ''));
    await showRendered(uri, context.log);

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

/**
 * Shows a Markdown document rendered, beside the editor and without taking the focus: the built-in Markdown
 * preview, which redraws as the document changes. Without that extension (disabled), the read-only source.
 */
async function showRendered(uri: vscode.Uri, log: vscode.LogOutputChannel): Promise<void> {
  const document = await vscode.workspace.openTextDocument(uri);
  const source = vscode.window.activeTextEditor;
  try {
    // Not checked with getCommands first: the Markdown extension registers the command only once it activates.
    await vscode.commands.executeCommand('markdown.showPreviewToSide', uri);
    // The preview takes the focus: give it back to the code.
    if (source && vscode.window.activeTextEditor !== source)
      await vscode.window.showTextDocument(source.document, { viewColumn: source.viewColumn, preserveFocus: false });
    return;
  } catch (error) {
    log.warn(`The Markdown preview did not open (${String(error)}): showing the explanation as text.`);
  }
  await vscode.window.showTextDocument(document, {
    viewColumn: vscode.ViewColumn.Beside,
    preview: true,
    preserveFocus: true,
  });
}
