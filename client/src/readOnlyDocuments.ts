// Read-only virtual documents under the `modelwright:` scheme: explanations that fill in as they stream (shown as
// Markdown previews) and model cards. Appends are batched so a fast stream redraws at most every 50 ms.
import * as vscode from 'vscode';

export const documentScheme = 'modelwright';
const keptClosedDocuments = 20;

export class ReadOnlyDocuments implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private readonly texts = new Map<string, string>();
  private readonly pending = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private counter = 0;
  /** Closed documents, oldest first: a Markdown preview reads its document again after VS Code closed it. */
  private readonly closed: string[] = [];

  /** A new document URI whose path ends in `fileName` (its extension picks the language, e.g. `.md`). */
  newUri(fileName: string): vscode.Uri {
    return vscode.Uri.from({ scheme: documentScheme, path: `/${++this.counter}/${fileName}` });
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.texts.get(uri.toString()) ?? '';
  }

  set(uri: vscode.Uri, text: string): void {
    const key = uri.toString();
    const wasClosed = this.closed.indexOf(key);
    if (wasClosed >= 0) this.closed.splice(wasClosed, 1);
    this.texts.set(key, text);
    this.schedule(uri);
  }

  append(uri: vscode.Uri, text: string): void {
    this.set(uri, (this.texts.get(uri.toString()) ?? '') + text);
  }

  /** Forgets a document's text some time after it is closed (the last few closed ones are kept for previews). */
  forget(uri: vscode.Uri): void {
    const key = uri.toString();
    if (!this.texts.has(key) || this.closed.includes(key)) return;
    this.closed.push(key);
    while (this.closed.length > keptClosedDocuments) this.texts.delete(this.closed.shift() as string);
  }

  private schedule(uri: vscode.Uri): void {
    this.pending.add(uri.toString());
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      for (const key of this.pending) this.changed.fire(vscode.Uri.parse(key));
      this.pending.clear();
    }, 50);
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.changed.dispose();
  }
}
