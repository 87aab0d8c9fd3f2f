// The commands that evaluate and deploy a model: Evaluate Model… (metrics on a workspace folder, shown in
// the Training panel), Deploy Model… (for inline completions, explanations or both) and the HTTP service's
// start and stop.
import * as vscode from 'vscode';
import { type ModelRole, modelRoles, type StartService } from '../../../server/src/protocol';
import { metricRows } from '../format';
import type { CommandArgument, CommandContext, CommandHandlers } from './commandContext';
import { describeRoles, pickModel, pickRoles, pickWorkspaceFolder, requireTrust } from './pickers';

export function evaluationAndDeploymentCommands(
  context: CommandContext,
): CommandHandlers<'evaluate' | 'deploy' | 'stopService'> {
  async function evaluate(argument: CommandArgument): Promise<void> {
    const model = await pickModel(context.server, argument, 'Evaluate which model?');
    if (!model) return;
    const folder = await pickWorkspaceFolder(`Evaluate ${model.name} on which workspace folder?`);
    if (!folder) return;
    const metrics = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Evaluating ${model.name}`, cancellable: true },
      (progress, token) =>
        context.server.evaluate(
          { name: model.name, workspaceFolder: folder.uri.fsPath },
          (p) => progress.report({ message: p.message }),
          token,
        ),
    );
    context.log.info(
      `Evaluation of ${model.name} on ${folder.name}: ${metricRows(metrics)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
    context.trainingView.showEvaluation(model.name, metrics);
    await context.tree.refresh();
  }

  async function deploy(argument: CommandArgument): Promise<void> {
    if (!(await requireTrust('Deploying a model'))) return;
    const model = await pickModel(context.server, argument, 'Deploy which model?');
    if (!model) return;
    const roles = await pickRoles(`Deploy ${model.name} for`, modelRoles, true);
    if (!roles) return;
    if (roles === 'service') return startService(model.name);
    let active: Partial<Record<ModelRole, string>> = {};
    for (const role of roles) active = (await context.server.deploy(model.name, role)).active;
    context.log.info(`Deployed ${model.name} for ${roles.join(' and ')}; active: ${JSON.stringify(active)}`);
    await context.tree.refresh();
    void vscode.window.showInformationMessage(`${model.name} now serves ${describeRoles(roles)}.`);
  }

  async function startService(name: string): Promise<void> {
    let result: StartService.Result;
    try {
      result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Starting the HTTP service for ${name}…` },
        () => context.server.startService({ models: [name] }),
      );
    } catch (error) {
      if ((error as { code?: number }).code === -32601)
        throw new Error('this language server has no HTTP service yet.');
      throw error;
    }
    context.log.info(`HTTP service for ${result.models.join(', ')} at ${result.url}`);
    void vscode.commands.executeCommand('setContext', 'modelwright.serviceRunning', true);
    const choice = await vscode.window.showInformationMessage(
      `${result.models.join(', ')} is served at ${result.url} (OpenAI /v1/completions, Open Inference Protocol /v2).`,
      'Copy URL',
      'Stop',
    );
    if (choice === 'Copy URL') await vscode.env.clipboard.writeText(result.url);
    if (choice === 'Stop') await stopService();
  }

  async function stopService(): Promise<void> {
    await context.server.stopService();
    void vscode.commands.executeCommand('setContext', 'modelwright.serviceRunning', false);
    context.log.info('HTTP service stopped');
    void vscode.window.showInformationMessage('The Modelwright HTTP service stopped.');
  }

  return { evaluate, deploy, stopService: () => stopService() };
}
