// The commands that evaluate and deploy a model: Evaluate Model… (metrics on a workspace folder, shown in
// the Training panel), Deploy Model… (for inline completions, explanations or both: the gate's side-by-side table
// first, then the question; a worse model only when deployed anyway), Roll Back Deployment, and the HTTP
// service's start and stop.
import * as vscode from 'vscode';
import {
  CheckDeploy,
  type DeploymentRole,
  GatedDeploy,
  type GateReport,
  type ModelRole,
  type ModelSummary,
  modelRoles,
  RollbackDeployment,
  type StartService,
} from '../../../server/src/protocol';
import { configurationSection, readClientSettings } from '../config';
import { describeVersion, gateTableLines } from '../deploymentFormat';
import { metricRows } from '../format';
import type { CommandArgument, CommandContext, CommandHandlers } from './commandContext';
import { describeRoles, pickModel, pickRoles, pickWorkspaceFolder, requireTrust } from './pickers';

export function evaluationAndDeploymentCommands(
  context: CommandContext,
): CommandHandlers<'evaluate' | 'deploy' | 'stopService' | 'rollback'> {
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
    const classifier = model.kind === 'text-classification';
    const roles = classifier ? 'service' : await pickRoles(`Deploy ${model.name} for`, modelRoles, true);
    if (!roles) return;
    if (roles === 'service' && !classifier) return startService(model.name);
    const targets: DeploymentRole[] = roles === 'service' ? ['service'] : roles;
    if (model.bundled) {
      // Bundled models are not versioned: they deploy as they are.
      let active: Partial<Record<ModelRole, string>> = {};
      for (const role of targets)
        if (role !== 'service') active = (await context.server.deploy(model.name, role)).active;
      context.log.info(`Deployed ${model.name} for ${targets.join(' and ')}; active: ${JSON.stringify(active)}`);
    } else {
      for (const role of targets) if (!(await gatedDeploy(model, role))) return;
      // A classifier serves over HTTP: start (or restart) the service with its deployed version.
      if (classifier) {
        await context.tree.refresh();
        return startService(model.name);
      }
    }
    await context.tree.refresh();
    void vscode.window.showInformationMessage(
      roles === 'service'
        ? `${model.name} is the HTTP service's version.`
        : `${model.name} now serves ${describeRoles(roles)}.`,
    );
  }

  /** Shows the gate's table, asks, and deploys; false when the user stopped. */
  async function gatedDeploy(model: ModelSummary, role: DeploymentRole): Promise<boolean> {
    const { deployThreshold: threshold } = readClientSettings(vscode.workspace.getConfiguration(configurationSection));
    let evalWorkspace: string | undefined;
    let report: GateReport;
    const check = () =>
      vscode.window.withProgress(
        {
          location: vscode.ProgressLocation.Notification,
          title: `Comparing ${model.name} with the model serving ${role}…`,
        },
        () => context.server.request(CheckDeploy, { name: model.name, role, threshold, evalWorkspace }),
      );
    try {
      report = await check();
    } catch (error) {
      // A model without a recorded training workspace is compared on a workspace folder the user picks.
      if (!/give an evaluation workspace/.test(error instanceof Error ? error.message : String(error))) throw error;
      const folder = await pickWorkspaceFolder(`Compare ${model.name} on which workspace folder?`);
      if (!folder) return false;
      evalWorkspace = folder.uri.fsPath;
      report = await check();
    }
    const table = gateTableLines(report);
    context.log.info(`Deploy gate for ${model.name} (${role}):\n  ${table.join('\n  ')}`);
    const choice = report.pass
      ? await vscode.window.showInformationMessage(
          `Deploy ${model.name} for ${role}?`,
          { modal: true, detail: table.join('\n') },
          'Deploy',
        )
      : await vscode.window.showWarningMessage(
          `${model.name} is worse than ${report.serving} for ${role}.`,
          { modal: true, detail: `${table.join('\n')}\n\nDeploying anyway is recorded with the version.` },
          'Deploy Anyway',
        );
    if (!choice) return false;
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Deploying ${model.name} for ${role}…` },
      () =>
        context.server.request(GatedDeploy, {
          name: model.name,
          role,
          threshold,
          evalWorkspace,
          force: report.pass ? undefined : 'deployed anyway in VS Code',
        }),
    );
    context.log.info(`${role}: ${describeVersion(result.version, true)} (version ${result.version.version})`);
    return true;
  }

  async function rollback(argument: CommandArgument): Promise<void> {
    if (!(await requireTrust('Rolling back a deployment'))) return;
    const fromTree = argument && typeof argument === 'object' && 'kind' in argument ? argument : undefined;
    let history = fromTree && 'history' in fromTree ? fromTree.history : undefined;
    if (!history) {
      const candidates = context.tree.deployments.filter((h) => h.versions.length > 1);
      if (candidates.length === 0) {
        void vscode.window.showInformationMessage('No role has a previous version to roll back to.');
        return;
      }
      const picked = await vscode.window.showQuickPick(
        candidates.map((h) => ({ label: h.role, description: `version ${h.current}`, history: h })),
        { title: 'Roll back which role?' },
      );
      history = picked?.history;
    }
    if (!history) return;
    const index = history.versions.findIndex((v) => v.version === history.current);
    const target =
      fromTree?.kind === 'deploymentVersion' && fromTree.version.version !== history.current
        ? fromTree.version
        : history.versions[index - 1];
    if (!target) {
      void vscode.window.showInformationMessage(`${history.role} has no previous version.`);
      return;
    }
    const choice = await vscode.window.showWarningMessage(
      `Roll ${history.role} back to version ${target.version} (${target.model})?`,
      { modal: true, detail: describeVersion(target, false) },
      'Roll Back',
    );
    if (choice !== 'Roll Back') return;
    const result = await context.server.request(RollbackDeployment, { role: history.role, version: target.version });
    context.log.info(
      `${history.role}: rolled back to version ${target.version}, now version ${result.version.version}`,
    );
    await context.tree.refresh();
    void vscode.window.showInformationMessage(`${result.version.model} serves ${history.role} again.`);
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

  return { evaluate, deploy, rollback, stopService: () => stopService() };
}
