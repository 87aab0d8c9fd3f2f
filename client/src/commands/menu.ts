// The first-run and status bar commands: the status bar's menu (Show Menu), Pause or Resume Completions (the
// `completion.enable` setting where it is set), Try Completions (a scratch file to type in) and Get Started
// (the walkthrough).
import * as vscode from 'vscode';
import { commandIds } from '../commandIds';
import { configurationSection, readSettings } from '../config';
import { statusMenu, walkthroughId } from '../statusMenu';
import type { CommandContext, CommandHandlers } from './commandContext';

const tryItText = [
  '// Type below: Modelwright suggests the rest of the line in grey (ghost text); Tab accepts it.',
  'function fibonacci(n: number): number {',
  '  if (n < 2) return n;',
  '  return ',
].join('\n');

export function menuCommands(
  context: CommandContext,
): CommandHandlers<'showMenu' | 'toggleCompletions' | 'tryCompletions' | 'openWalkthrough'> {
  async function showMenu(): Promise<void> {
    const server = context.server;
    const items = statusMenu({
      connection: server.connection,
      server: server.lastStatus,
      completionsEnabled: readSettings(vscode.workspace.getConfiguration(configurationSection)).completion.enable,
      trusted: vscode.workspace.isTrusted,
      telemetryEnabled: vscode.env.isTelemetryEnabled,
    });
    const picked = await vscode.window.showQuickPick(items, { title: 'Modelwright', placeHolder: 'Modelwright' });
    if (picked?.command) await vscode.commands.executeCommand(commandIds[picked.command]);
  }

  /** Flips `completion.enable` at the most specific level it is set at (else for the user). */
  async function toggleCompletions(): Promise<void> {
    const config = vscode.workspace.getConfiguration(configurationSection);
    const enabled = readSettings(config).completion.enable;
    const inspected = config.inspect<boolean>('completion.enable');
    const target =
      inspected?.workspaceFolderValue !== undefined
        ? vscode.ConfigurationTarget.WorkspaceFolder
        : inspected?.workspaceValue !== undefined
          ? vscode.ConfigurationTarget.Workspace
          : vscode.ConfigurationTarget.Global;
    await config.update('completion.enable', !enabled, target);
    vscode.window.setStatusBarMessage(
      enabled ? 'Modelwright: inline completions paused' : 'Modelwright: inline completions resumed',
      3000,
    );
  }

  async function tryCompletions(): Promise<void> {
    const document = await vscode.workspace.openTextDocument({ language: 'typescript', content: tryItText });
    const editor = await vscode.window.showTextDocument(document);
    const end = document.lineAt(document.lineCount - 1).range.end;
    editor.selection = new vscode.Selection(end, end);
  }

  async function openWalkthrough(): Promise<void> {
    await vscode.commands.executeCommand('workbench.action.openWalkthrough', walkthroughId, false);
  }

  return {
    showMenu: () => showMenu(),
    toggleCompletions: () => toggleCompletions(),
    tryCompletions: () => tryCompletions(),
    openWalkthrough: () => openWalkthrough(),
  };
}
