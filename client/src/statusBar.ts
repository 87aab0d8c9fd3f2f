// The status bar item: active model and last completion latency, training progress, the server's state (starting,
// restarting after a crash, stopped) and whether completions are paused. The wording comes from statusText.ts;
// clicking opens the Modelwright menu (statusMenu.ts).
import * as vscode from 'vscode';
import { commandIds } from './commandIds';
import { configurationSection, readSettings } from './config';
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
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration(`${configurationSection}.completion.enable`)) this.update();
      }),
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
    const paused = !readSettings(vscode.workspace.getConfiguration(configurationSection)).completion.enable;
    this.item.text = paused ? `$(debug-pause) ${view.text.replace(/^\$\([^)]*\)\s*/, '')}` : view.text;
    const menu = 'Click for the Modelwright menu: model, pause or resume completions, panel, logs.';
    // statusText.ts says what a click did before the menu; the menu now holds those actions.
    const lines = view.tooltip.replace(/(\n\n)?\s*Click to [^.]*\./g, '');
    const tooltip = new vscode.MarkdownString(
      `${lines}${paused ? '\n\nInline completions are paused.' : ''}\n\n${menu}`,
    );
    tooltip.supportThemeIcons = true;
    this.item.tooltip = tooltip;
    this.item.command = commandIds.showMenu;
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
