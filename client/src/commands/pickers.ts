// The questions several command groups ask: whether the workspace is trusted, which workspace folder, which
// model, and which roles a model is used for.
import * as vscode from 'vscode';
import type { ModelRole, ModelSummary } from '../../../server/src/protocol';
import { describeModel } from '../format';
import type { ServerClient } from '../serverClient';
import { type CommandArgument, modelNameOf } from './commandContext';

export const roleLabels: Record<ModelRole, string> = { completion: 'Inline completions', explanation: 'Explanations' };

/** The roles in a sentence, e.g. "inline completions and explanations". */
export function describeRoles(roles: readonly ModelRole[]): string {
  return roles.map((r) => roleLabels[r].toLowerCase()).join(' and ');
}

/** True in a trusted workspace; otherwise says why `action` is off and offers to manage workspace trust. */
export async function requireTrust(action: string): Promise<boolean> {
  if (vscode.workspace.isTrusted) return true;
  const choice = await vscode.window.showWarningMessage(
    `${action} needs a trusted workspace: in Restricted Mode Modelwright only completes with its bundled model.`,
    'Manage Workspace Trust',
  );
  if (choice) await vscode.commands.executeCommand('workbench.trust.manage');
  return false;
}

export async function pickWorkspaceFolder(placeHolder: string): Promise<vscode.WorkspaceFolder | undefined> {
  const folders = vscode.workspace.workspaceFolders ?? [];
  if (folders.length === 0) {
    void vscode.window.showWarningMessage(
      'Open a folder first: Modelwright trains and evaluates on a workspace folder.',
    );
    return undefined;
  }
  if (folders.length === 1) return folders[0];
  return vscode.window.showWorkspaceFolderPick({ placeHolder });
}

/** The model a command acts on: the tree row or panel model it was passed, else one the user picks. */
export async function pickModel(
  server: ServerClient,
  argument: CommandArgument,
  placeHolder: string,
  filter: (m: ModelSummary) => boolean = () => true,
): Promise<ModelSummary | undefined> {
  const { models } = await server.listModels();
  const named = modelNameOf(argument);
  if (named) {
    const model = models.find((m) => m.name === named);
    if (model && filter(model)) return model;
    if (!model) throw new Error(`No model named ${named}.`);
  }
  const candidates = models.filter(filter);
  if (candidates.length === 0) {
    void vscode.window.showInformationMessage('No model to choose from.');
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    candidates.map((m) => ({ label: m.name, description: describeModel(m), model: m })),
    { placeHolder, matchOnDescription: true },
  );
  return picked?.model;
}

/** Asks for the roles of a model; with `service`, also offers serving it over HTTP. */
export async function pickRoles(title: string, roles: readonly ModelRole[]): Promise<ModelRole[] | undefined>;
export async function pickRoles(
  title: string,
  roles: readonly ModelRole[],
  service: true,
): Promise<ModelRole[] | 'service' | undefined>;
export async function pickRoles(
  title: string,
  roles: readonly ModelRole[],
  service = false,
): Promise<ModelRole[] | 'service' | undefined> {
  const items: (vscode.QuickPickItem & { roles: ModelRole[] | 'service' })[] = [
    ...roles.map((r) => ({ label: roleLabels[r], roles: [r] })),
    { label: 'Both', roles: [...roles] },
  ];
  if (service)
    items.push({
      label: 'HTTP service',
      description: 'OpenAI /v1 and Open Inference Protocol /v2 on 127.0.0.1',
      roles: 'service',
    });
  const picked = await vscode.window.showQuickPick(items, { title, placeHolder: 'Role' });
  return picked?.roles;
}
