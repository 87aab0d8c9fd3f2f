// The status bar item: active model and last completion latency, training progress, and the server's state
// (starting, restarting after a crash, stopped). The wording comes from statusText.ts.
import * as vscode from 'vscode';
import { commandIds } from './commandIds';
import type { ServerClient } from './serverClient';
import { statusView } from './statusText';

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('modelwright.status', vscode.StatusBarAlignment.Right, 100);
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(private readonly server: ServerClient) {
    this.item.name = 'Modelwright';
    this.subscriptions.push(
      server.onDidChangeConnection(() => this.update()),
      server.onDidChangeStatus(() => this.update()),
      vscode.workspace.onDidGrantWorkspaceTrust(() => this.update()),
    );
    this.update();
    this.item.show();
  }

  update(): void {
    const view = statusView({
      connection: this.server.connection,
      server: this.server.lastStatus,
      trusted: vscode.workspace.isTrusted,
      restarts: this.server.restarts,
    });
    this.item.text = view.text;
    const tooltip = new vscode.MarkdownString(view.tooltip);
    tooltip.supportThemeIcons = true;
    this.item.tooltip = tooltip;
    this.item.command = commandIds[view.command];
    this.item.backgroundColor =
      view.severity === 'error'
        ? new vscode.ThemeColor('statusBarItem.errorBackground')
        : view.severity === 'warning'
          ? new vscode.ThemeColor('statusBarItem.warningBackground')
          : undefined;
  }

  dispose(): void {
    for (const s of this.subscriptions) s.dispose();
    this.item.dispose();
  }
}
