// The training commands: Train Model… (fine-tune a model or train from scratch, with a time budget and a new
// name, shown in a cancellable notification), Stop Training and Show Training Panel.
import * as vscode from 'vscode';
import type { TrainModel } from '../../../server/src/protocol';
import { commandIds } from '../commandIds';
import { configurationSection, readClientSettings } from '../config';
import { describeTraining, formatDuration, trainingFraction } from '../format';
import type { ModelsTreeNode } from '../modelsTreeProvider';
import {
  minuteChoices,
  parseMinutes,
  suggestModelName,
  type TrainingChoice,
  trainingChoices,
  validateModelName,
} from '../trainingChoices';
import { type CommandArgument, type CommandContext, type CommandHandlers, modelNameOf } from './commandContext';
import { pickWorkspaceFolder, requireTrust } from './pickers';

type TrainingParams = Omit<TrainModel.Params, 'workDoneToken'>;

export function trainingCommands(context: CommandContext): CommandHandlers<'train' | 'stopTraining' | 'showTraining'> {
  /** The running training started from this window, to stop it from the panel or the palette. */
  let training: { name: string; source: vscode.CancellationTokenSource } | undefined;

  async function train(argument: CommandArgument): Promise<void> {
    if (!(await requireTrust('Training a model'))) return;
    if (training) {
      void vscode.window
        .showInformationMessage(`Modelwright is already training ${training.name}.`, 'Show Training')
        .then((choice) => choice && context.trainingView.reveal());
      return;
    }
    const folder = await pickWorkspaceFolder('Train on which workspace folder?');
    if (!folder) return;
    const listed = await context.server.listModels();
    const names = listed.models.map((m) => m.name);

    // "Train further" from the tree fine-tunes that model; otherwise offer fine-tuning the active model or a preset.
    const further = modelNameOf(argument);
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

    const params: TrainingParams = { workspaceFolder: folder.uri.fsPath, name: name.trim(), minutes };
    if (choice.preset) params.preset = choice.preset;
    if (choice.base) params.base = choice.base;
    await runTraining(params);
  }

  async function runTraining(params: TrainingParams): Promise<void> {
    const source = new vscode.CancellationTokenSource();
    training = { name: params.name, source };
    void vscode.commands.executeCommand('setContext', 'modelwright.training', true);
    const start = params.base ? `fine-tuning ${params.base}` : `preset ${params.preset}`;
    context.log.info(`Training ${params.name} on ${params.workspaceFolder} (${start}, ${params.minutes} min)`);
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
          const figures = context.server.onTrainingProgress((f) => {
            if (f.name !== params.name) return;
            figuresSeen = true;
            report(describeTraining(f), trainingFraction(f) * 100);
          });
          source.token.onCancellationRequested(() => report('stopping: saving a checkpoint…'));
          report('starting…');
          try {
            return await context.server.train(
              params,
              (p) => !figuresSeen && report(p.message ?? '', p.percentage),
              source.token,
            );
          } finally {
            figures.dispose();
          }
        },
      );
      await context.tree.refresh();
      const summary =
        `${result.steps} steps in ${formatDuration(result.elapsedSeconds)}, ` +
        `loss ${result.loss.toFixed(3)}, validation loss ${result.valLoss.toFixed(3)}`;
      context.log.info(`Training ${result.name} ${result.finished ? 'finished' : 'stopped'}: ${summary}`);
      const text = result.finished
        ? `Trained ${result.name}: ${summary}.`
        : `Training ${result.name} stopped; the checkpoint was saved (${summary}).`;
      void vscode.window.showInformationMessage(text, 'Deploy', 'Evaluate').then((choice) => {
        const node = context.tree.current.find((m) => m.name === result.name);
        const next: ModelsTreeNode | undefined = node && { kind: 'model', model: node };
        if (choice === 'Deploy') void vscode.commands.executeCommand(commandIds.deploy, next);
        if (choice === 'Evaluate') void vscode.commands.executeCommand(commandIds.evaluate, next);
      });
    } finally {
      source.dispose();
      training = undefined;
      void vscode.commands.executeCommand('setContext', 'modelwright.training', false);
      void context.tree.refresh();
    }
  }

  function stopTraining(): void {
    if (!training) {
      void vscode.window.showInformationMessage('No training started from this window is running.');
      return;
    }
    training.source.cancel();
  }

  return {
    train,
    stopTraining: async () => stopTraining(),
    showTraining: async (argument) => {
      const model = modelNameOf(argument);
      if (model) await context.trainingView.showModel(model);
      context.trainingView.reveal();
    },
  };
}

/** The time budget: the preferred one, the usual choices, or a typed number of minutes. */
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
