// Every command of the extension in one place: Train, Evaluate, Deploy, Explain Selection, Select Model, Show
// Logs, Delete, Reveal Model Card and the small ones the views use. Each handler accepts what the palette, the
// Models tree's context menu or the Training panel pass it, and asks for whatever is missing.
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  type ExplainCommand,
  type ModelRole,
  modelRoles,
  type ModelSummary,
  type StartService,
  type TrainModel,
} from '../../server/src/protocol';
import { type CommandName, commandIds } from './commandIds';
import { configurationSection, readClientSettings } from './config';
import {
  describeModel,
  describeTraining,
  explanationDocument,
  formatDuration,
  metricRows,
  trainingFraction,
} from './format';
import type { ModelsTreeNode, ModelsTreeProvider } from './modelsTreeProvider';
import type { ReadOnlyDocuments } from './readOnlyDocuments';
import type { ServerClient } from './serverClient';
import {
  minuteChoices,
  parseMinutes,
  suggestModelName,
  type TrainingChoice,
  trainingChoices,
  validateModelName,
} from './trainingChoices';
import type { TrainingView } from './trainingView';

export interface CommandContext {
  server: ServerClient;
  tree: ModelsTreeProvider;
  trainingView: TrainingView;
  documents: ReadOnlyDocuments;
  log: vscode.LogOutputChannel;
}

/** What a command may be passed: a tree row, the Training panel's request, or nothing (the palette). */
type CommandArgument =
  | ModelsTreeNode
  | { source: 'trainingView'; model?: string }
  | ExplainCommand.Arguments
  | undefined;

const roleLabels: Record<ModelRole, string> = { completion: 'Inline completions', explanation: 'Explanations' };

export class Commands {
  /** The running training started from this window, to stop it from the panel or the palette. */
  private training: { name: string; source: vscode.CancellationTokenSource } | undefined;

  constructor(private readonly c: CommandContext) {}

  register(): vscode.Disposable[] {
    const handlers: Record<CommandName, (arg: CommandArgument) => Promise<unknown>> = {
      train: (arg) => this.train(arg),
      evaluate: (arg) => this.evaluate(arg),
      deploy: (arg) => this.deploy(arg),
      explainSelection: () => this.explainSelection(),
      explain: (arg) => this.explainFromCodeAction(arg),
      selectModel: (arg) => this.selectModel(arg),
      showLogs: async () => this.c.log.show(),
      deleteModel: (arg) => this.deleteModel(arg),
      revealModelCard: (arg) => this.revealModelCard(arg),
      refreshModels: () => this.c.tree.refresh(),
      stopTraining: async () => this.stopTraining(),
      restartServer: () => this.c.server.restart(),
      stopService: () => this.stopService(),
      showTraining: async (arg) => {
        const model = modelNameOf(arg);
        if (model) await this.c.trainingView.showModel(model);
        this.c.trainingView.reveal();
      },
    };
    return (Object.keys(handlers) as CommandName[]).map((name) =>
      vscode.commands.registerCommand(commandIds[name], async (...args: unknown[]) => {
        try {
          // Server-made commands (the explain code action) pass several arguments; the rest pass at most one.
          return await handlers[name]((name === 'explain' ? args : args[0]) as CommandArgument);
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          this.c.log.error(`${commandIds[name]} failed: ${message}`);
          void vscode.window
            .showErrorMessage(`Modelwright: ${message}`, 'Show Logs')
            .then((choice) => choice && this.c.log.show());
        }
      }),
    );
  }

  // ── Train ──────────────────────────────────────────────────────────────────────────────────────────────────

  private async train(arg: CommandArgument): Promise<void> {
    if (!(await requireTrust('Training a model'))) return;
    if (this.training) {
      void vscode.window
        .showInformationMessage(`Modelwright is already training ${this.training.name}.`, 'Show Training')
        .then((c) => c && this.c.trainingView.reveal());
      return;
    }
    const folder = await pickWorkspaceFolder('Train on which workspace folder?');
    if (!folder) return;
    const listed = await this.c.server.listModels();
    const names = listed.models.map((m) => m.name);

    // "Train further" from the tree fine-tunes that model; otherwise offer fine-tuning the active model or a preset.
    const further = modelNameOf(arg);
    let choice: TrainingChoice | undefined;
    if (further) choice = trainingChoices([further])[0];
    else {
      const active = listed.active.completion;
      const bases = [
        ...new Set(
          [active, ...listed.models.filter((m) => m.bundled).map((m) => m.name)].filter((n): n is string => !!n),
        ),
      ];
      choice = await vscode.window.showQuickPick(trainingChoices(bases), {
        title: 'Train Model (1/3)',
        placeHolder: 'Fine-tune a model or train from scratch',
        matchOnDescription: true,
      });
    }
    if (!choice) return;

    const minutes = await pickMinutes(
      readClientSettings(vscode.workspace.getConfiguration(configurationSection)).trainingMinutes,
    );
    if (minutes === undefined) return;

    const name = await vscode.window.showInputBox({
      title: 'Train Model (3/3)',
      prompt: 'Name of the new model (a folder under the models directory)',
      value: suggestModelName(folder.name, new Date(), names),
      validateInput: (value) => validateModelName(value.trim(), names),
    });
    if (!name) return;

    const params: Omit<TrainModel.Params, 'workDoneToken'> = {
      workspaceFolder: folder.uri.fsPath,
      name: name.trim(),
      minutes,
    };
    if (choice.preset) params.preset = choice.preset;
    if (choice.base) params.base = choice.base;
    await this.runTraining(params);
  }

  private async runTraining(params: Omit<TrainModel.Params, 'workDoneToken'>): Promise<void> {
    const source = new vscode.CancellationTokenSource();
    this.training = { name: params.name, source };
    void vscode.commands.executeCommand('setContext', 'modelwright.training', true);
    this.c.log.info(
      `Training ${params.name} on ${params.workspaceFolder} (${params.base ? `fine-tuning ${params.base}` : `preset ${params.preset}`}, ${params.minutes} min)`,
    );
    try {
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Training ${params.name}`, cancellable: true },
        async (progress, token) => {
          token.onCancellationRequested(() => source.cancel());
          let reported = 0; // percent so far: `increment` is relative
          let figuresSeen = false;
          const report = (message: string, percent?: number) => {
            const increment = percent !== undefined && percent > reported ? percent - reported : undefined;
            if (increment) reported = percent as number;
            progress.report({ message, increment });
          };
          const figures = this.c.server.onTrainingProgress((f) => {
            if (f.name !== params.name) return;
            figuresSeen = true;
            report(describeTraining(f), trainingFraction(f) * 100);
          });
          source.token.onCancellationRequested(() => report('stopping: saving a checkpoint…'));
          report('starting…');
          try {
            return await this.c.server.train(
              params,
              (p) => !figuresSeen && report(p.message ?? '', p.percentage),
              source.token,
            );
          } finally {
            figures.dispose();
          }
        },
      );
      await this.c.tree.refresh();
      const summary = `${result.steps} steps in ${formatDuration(result.elapsedSeconds)}, loss ${result.loss.toFixed(3)}, validation loss ${result.valLoss.toFixed(3)}`;
      this.c.log.info(`Training ${result.name} ${result.finished ? 'finished' : 'stopped'}: ${summary}`);
      const text = result.finished
        ? `Trained ${result.name}: ${summary}.`
        : `Training ${result.name} stopped; the checkpoint was saved (${summary}).`;
      void vscode.window.showInformationMessage(text, 'Deploy', 'Evaluate').then((choice) => {
        const node = this.c.tree.current.find((m) => m.name === result.name);
        const arg: ModelsTreeNode | undefined = node && { kind: 'model', model: node };
        if (choice === 'Deploy') void vscode.commands.executeCommand(commandIds.deploy, arg);
        if (choice === 'Evaluate') void vscode.commands.executeCommand(commandIds.evaluate, arg);
      });
    } finally {
      source.dispose();
      this.training = undefined;
      void vscode.commands.executeCommand('setContext', 'modelwright.training', false);
      void this.c.tree.refresh();
    }
  }

  private stopTraining(): void {
    if (!this.training) {
      void vscode.window.showInformationMessage('No training started from this window is running.');
      return;
    }
    this.training.source.cancel();
  }

  // ── Evaluate, deploy, select, delete, model card ───────────────────────────────────────────────────────────

  private async evaluate(arg: CommandArgument): Promise<void> {
    const model = await this.pickModel(arg, 'Evaluate which model?');
    if (!model) return;
    const folder = await pickWorkspaceFolder(`Evaluate ${model.name} on which workspace folder?`);
    if (!folder) return;
    const metrics = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Evaluating ${model.name}`, cancellable: true },
      (progress, token) =>
        this.c.server.evaluate(
          { name: model.name, workspaceFolder: folder.uri.fsPath },
          (p) => progress.report({ message: p.message }),
          token,
        ),
    );
    this.c.log.info(
      `Evaluation of ${model.name} on ${folder.name}: ${metricRows(metrics)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
    this.c.trainingView.showEvaluation(model.name, metrics);
    await this.c.tree.refresh();
  }

  private async deploy(arg: CommandArgument): Promise<void> {
    if (!(await requireTrust('Deploying a model'))) return;
    const model = await this.pickModel(arg, 'Deploy which model?');
    if (!model) return;
    const roles = await pickRoles(`Deploy ${model.name} for`, modelRoles, true);
    if (!roles) return;
    if (roles === 'service') return this.startService(model.name);
    let active: Partial<Record<ModelRole, string>> = {};
    for (const role of roles) active = (await this.c.server.deploy(model.name, role)).active;
    this.c.log.info(`Deployed ${model.name} for ${roles.join(' and ')}; active: ${JSON.stringify(active)}`);
    await this.c.tree.refresh();
    void vscode.window.showInformationMessage(
      `${model.name} now serves ${roles.map((r) => roleLabels[r].toLowerCase()).join(' and ')}.`,
    );
  }

  private async startService(name: string): Promise<void> {
    let result: StartService.Result;
    try {
      result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Starting the HTTP service for ${name}…` },
        () => this.c.server.startService({ models: [name] }),
      );
    } catch (error) {
      if ((error as { code?: number }).code === -32601)
        throw new Error('this language server has no HTTP service yet.');
      throw error;
    }
    this.c.log.info(`HTTP service for ${result.models.join(', ')} at ${result.url}`);
    void vscode.commands.executeCommand('setContext', 'modelwright.serviceRunning', true);
    const choice = await vscode.window.showInformationMessage(
      `${result.models.join(', ')} is served at ${result.url} (OpenAI /v1/completions, Open Inference Protocol /v2).`,
      'Copy URL',
      'Stop',
    );
    if (choice === 'Copy URL') await vscode.env.clipboard.writeText(result.url);
    if (choice === 'Stop') await this.stopService();
  }

  private async stopService(): Promise<void> {
    await this.c.server.stopService();
    void vscode.commands.executeCommand('setContext', 'modelwright.serviceRunning', false);
    this.c.log.info('HTTP service stopped');
    void vscode.window.showInformationMessage('The Modelwright HTTP service stopped.');
  }

  /** Picks the model this workspace uses per role (the `modelwright.models.*` settings), without deploying it. */
  private async selectModel(arg: CommandArgument): Promise<void> {
    const { models, active } = await this.c.server.listModels();
    const usable = vscode.workspace.isTrusted ? models : models.filter((m) => m.bundled);
    const deployed: vscode.QuickPickItem & { model?: string } = {
      label: '$(rocket) The deployed model',
      description: active.completion ?? '',
      model: '',
    };
    const items = [deployed, ...usable.map((m) => ({ label: m.name, description: describeModel(m), model: m.name }))];
    const named = modelNameOf(arg);
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
      `This workspace now uses ${picked.model || 'the deployed model'} for ${roles.map((r) => roleLabels[r].toLowerCase()).join(' and ')}.`,
    );
  }

  private async deleteModel(arg: CommandArgument): Promise<void> {
    if (!(await requireTrust('Deleting a model'))) return;
    const model = await this.pickModel(arg, 'Delete which model?', (m) => !m.bundled && m.status === 'idle');
    if (!model) return;
    const confirmed = await vscode.window.showWarningMessage(
      `Delete the model ${model.name}?`,
      { modal: true, detail: `Its folder ${model.path} is removed for good.` },
      'Delete',
    );
    if (confirmed !== 'Delete') return;
    await this.c.server.deleteModel(model.name);
    this.c.log.info(`Deleted ${model.name}`);
    await this.c.tree.refresh();
  }

  private async revealModelCard(arg: CommandArgument): Promise<void> {
    const model = await this.pickModel(arg, 'Show the model card of which model?');
    if (!model) return;
    const card = await this.c.server.modelCard(model.name);
    const uri = this.c.documents.newUri(`${model.name}/modelwright.json`);
    this.c.documents.set(uri, JSON.stringify(card, null, 2) + '\n');
    await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(uri), { preview: true });
  }

  // ── Explain ────────────────────────────────────────────────────────────────────────────────────────────────

  private async explainSelection(): Promise<void> {
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
    await this.explain(editor.document, range);
  }

  /** The server's "Explain with Modelwright" code action: [uri, range]. */
  private async explainFromCodeAction(arg: CommandArgument): Promise<void> {
    if (!Array.isArray(arg) || typeof arg[0] !== 'string' || !arg[1])
      throw new Error('the explain command needs a document and a range');
    const document = await vscode.workspace.openTextDocument(vscode.Uri.parse(arg[0]));
    await this.explain(document, this.c.server.asRange(arg[1]));
  }

  /** Opens a read-only Markdown document beside the editor and fills it in as the explanation streams. */
  private async explain(document: vscode.TextDocument, range: vscode.Range): Promise<void> {
    const file = path.basename(document.uri.path);
    // A selection that ends at the start of a line does not take that line in.
    const last = range.end.character === 0 && range.end.line > range.start.line ? range.end.line - 1 : range.end.line;
    const lines =
      range.start.line === last ? `line ${range.start.line + 1}` : `lines ${range.start.line + 1}–${last + 1}`;
    const uri = this.c.documents.newUri(`Explanation of ${file} ${lines}.md`);
    const what = `${file}, ${lines}`;
    this.c.documents.set(uri, explanationDocument(what, ''));
    await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(uri), {
      viewColumn: vscode.ViewColumn.Beside,
      preview: true,
      preserveFocus: true,
    });

    let streamed = '';
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: `Explaining ${what}`, cancellable: true },
      (_progress, token) =>
        this.c.server.explain(
          document,
          range,
          (chunk) => {
            streamed += chunk;
            this.c.documents.set(uri, explanationDocument(what, streamed));
          },
          token,
        ),
    );
    this.c.documents.set(uri, explanationDocument(what, streamed, result));
  }

  // ── Helpers ────────────────────────────────────────────────────────────────────────────────────────────────

  /** The model a command acts on: the tree row or panel model it was passed, else one the user picks. */
  private async pickModel(
    arg: CommandArgument,
    placeHolder: string,
    filter: (m: ModelSummary) => boolean = () => true,
  ): Promise<ModelSummary | undefined> {
    const { models } = await this.c.server.listModels();
    const named = modelNameOf(arg);
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
}

function modelNameOf(arg: CommandArgument): string | undefined {
  if (!arg || typeof arg !== 'object' || Array.isArray(arg)) return undefined;
  if ('kind' in arg) return arg.model.name;
  if ('source' in arg) return arg.model || undefined;
  return undefined;
}

async function requireTrust(action: string): Promise<boolean> {
  if (vscode.workspace.isTrusted) return true;
  const choice = await vscode.window.showWarningMessage(
    `${action} needs a trusted workspace: in Restricted Mode Modelwright only completes with its bundled model.`,
    'Manage Workspace Trust',
  );
  if (choice) await vscode.commands.executeCommand('workbench.trust.manage');
  return false;
}

async function pickWorkspaceFolder(placeHolder: string): Promise<vscode.WorkspaceFolder | undefined> {
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

async function pickMinutes(preferred: number): Promise<number | undefined> {
  const values = [...new Set([preferred, ...minuteChoices])].sort((a, b) => a - b);
  const items: (vscode.QuickPickItem & { minutes?: number })[] = values.map((m) => ({
    label: `${m} minute${m === 1 ? '' : 's'}`,
    description: m === preferred ? 'default' : undefined,
    minutes: m,
  }));
  items.push({ label: 'Other…', description: 'type a number of minutes' });
  const picked = await vscode.window.showQuickPick(items, {
    title: 'Train Model (2/3)',
    placeHolder: 'Time budget: training stops and saves when it runs out',
  });
  if (!picked) return undefined;
  if (picked.minutes !== undefined) return picked.minutes;
  const typed = await vscode.window.showInputBox({
    title: 'Train Model (2/3)',
    prompt: 'Minutes of training',
    value: String(preferred),
    validateInput: (v) =>
      parseMinutes(v) === undefined ? 'A number of minutes, more than 0 and at most 1440' : undefined,
  });
  return typed === undefined ? undefined : parseMinutes(typed);
}

/** Asks for the roles of a model; with `service`, also offers serving it over HTTP. */
async function pickRoles(title: string, roles: readonly ModelRole[]): Promise<ModelRole[] | undefined>;
async function pickRoles(
  title: string,
  roles: readonly ModelRole[],
  service: true,
): Promise<ModelRole[] | 'service' | undefined>;
async function pickRoles(
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
