// The commands that manage models and the extension: Select Model… (the workspace's model per role, without
// deploying), Delete Model…, Reveal Model Card, Refresh, Show Logs and Restart Server.
import * as vscode from 'vscode';
import { modelRoles } from '../../../server/src/protocol';
import { configurationSection } from '../config';
import { describeModel } from '../format';
import { type CommandArgument, type CommandContext, type CommandHandlers, modelNameOf } from './commandContext';
import { describeRoles, pickModel, pickRoles, requireTrust } from './pickers';

export function modelCommands(
  context: CommandContext,
): CommandHandlers<'selectModel' | 'deleteModel' | 'revealModelCard' | 'refreshModels' | 'showLogs' | 'restartServer'> {
  /** Picks the model this workspace uses per role (the `modelwright.models.*` settings), without deploying it. */
  async function selectModel(argument: CommandArgument): Promise<void> {
    const { models, active } = await context.server.listModels();
    const usable = vscode.workspace.isTrusted ? models : models.filter((m) => m.bundled);
    const deployed: vscode.QuickPickItem & { model?: string } = {
      label: '$(rocket) The deployed model',
      description: active.completion ?? '',
      model: '',
    };
    const items = [deployed, ...usable.map((m) => ({ label: m.name, description: describeModel(m), model: m.name }))];
    const named = modelNameOf(argument);
    const picked =
      named !== undefined
        ? items.find((i) => i.model === named)
        : await vscode.window.showQuickPick(items, {
            title: 'Select Model',
            placeHolder: 'The model this workspace uses',
          });
    if (!picked || picked.model === undefined) return;
    const roles = await pickRoles(`Use ${picked.model || 'the deployed model'} for`, modelRoles);
    if (!roles) return;
    const config = vscode.workspace.getConfiguration(configurationSection);
    const target = vscode.workspace.workspaceFolders?.length
      ? vscode.ConfigurationTarget.Workspace
      : vscode.ConfigurationTarget.Global;
    for (const role of roles) await config.update(`models.${role}`, picked.model, target);
    void vscode.window.showInformationMessage(
      `This workspace now uses ${picked.model || 'the deployed model'} for ${describeRoles(roles)}.`,
    );
  }

  async function deleteModel(argument: CommandArgument): Promise<void> {
    if (!(await requireTrust('Deleting a model'))) return;
    const model = await pickModel(
      context.server,
      argument,
      'Delete which model?',
      (m) => !m.bundled && m.status === 'idle',
    );
    if (!model) return;
    const confirmed = await vscode.window.showWarningMessage(
      `Delete the model ${model.name}?`,
      { modal: true, detail: `Its folder ${model.path} is removed for good.` },
      'Delete',
    );
    if (confirmed !== 'Delete') return;
    await context.server.deleteModel(model.name);
    context.log.info(`Deleted ${model.name}`);
    await context.tree.refresh();
  }

  async function revealModelCard(argument: CommandArgument): Promise<void> {
    const model = await pickModel(context.server, argument, 'Show the model card of which model?');
    if (!model) return;
    const card = await context.server.modelCard(model.name);
    const uri = context.documents.newUri(`${model.name}/modelwright.json`);
    context.documents.set(uri, JSON.stringify(card, null, 2) + '\n');
    await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(uri), { preview: true });
  }

  return {
    selectModel,
    deleteModel,
    revealModelCard,
    refreshModels: () => context.tree.refresh(),
    showLogs: async () => context.log.show(),
    restartServer: () => context.server.restart(),
  };
}
