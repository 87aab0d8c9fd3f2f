// The training commands: Train Model… (fine-tune a downloaded pretrained model — LoRA by default — or another model,
// train from scratch, or train a text classifier from a labelled CSV/JSONL file of the workspace; with the time per
// epoch measured before the run, a time budget and a new name; shown in a cancellable notification, with the gain
// over the base at the end), Stop Training and Show Training Panel.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { EstimateTraining, PreviewLabelledData, type TrainModel } from '../../../server/src/protocol';
import { commandIds } from '../commandIds';
import { configurationSection, readClientSettings } from '../config';
import { describeTraining, formatDuration, trainingFraction } from '../format';
import type { ModelsTreeNode } from '../modelsTreeProvider';
import {
  asFineTuneBase,
  canFineTune,
  type ChoiceGroup,
  columnChoices,
  fineTuneChoices,
  fineTuneBases,
  groupTitles,
  labelledFilePattern,
  minuteChoices,
  parseMinutes,
  suggestModelName,
  type TrainingChoice,
  trainingChoices,
  validateModelName,
} from '../trainingChoices';
import { describeEpochs, describeEstimate, epochsIn, shortEstimate } from '../trainingEstimate';
import { describeGain } from '../trainingGain';
import { type CommandArgument, type CommandContext, type CommandHandlers, modelNameOf } from './commandContext';
import { pickWorkspaceFolder, requireTrust } from './pickers';

type TrainingParams = Omit<TrainModel.Params, 'workDoneToken'>;

/** Labelled files listed at most, and folders never searched for them. */
const MAX_DATA_FILES = 20;
const EXCLUDED_FOLDERS = '{**/node_modules/**,**/.git/**,**/out/**,**/dist/**}';

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

    // "Train further" from the tree fine-tunes that model; otherwise offer the pretrained models first.
    const further = modelNameOf(argument);
    let choice: TrainingChoice | undefined;
    if (further) {
      const model = listed.models.find((m) => m.name === further);
      if (!model || !canFineTune(model)) {
        void vscode.window.showWarningMessage(`${further} is not a language model Modelwright can fine-tune.`);
        return;
      }
      choice = fineTuneChoices(asFineTuneBase(model))[0];
    } else {
      const bases = fineTuneBases(listed.models, listed.active.completion);
      const items = withSeparators(trainingChoices(bases, await labelledFiles(folder)));
      const picked = await vscode.window.showQuickPick(items, {
        title: 'Train Model (1/3)',
        placeHolder: 'Fine-tune a model, train one from scratch, or train a text classifier',
        matchOnDescription: true,
      });
      choice = picked?.choice;
    }
    if (!choice) return;
    if (choice.data !== undefined) return trainClassifier(folder, choice.data, names);

    const estimate = await estimateRun(folder, choice);
    if (estimate === null) return;
    const minutes = await pickMinutes(
      readClientSettings(vscode.workspace.getConfiguration(configurationSection)).trainingMinutes,
      estimate,
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
    if (choice.base && choice.method) params.method = choice.method;
    await runTraining(params);
  }

  /**
   * The run's time per epoch, measured by the server before it starts (cancellable). Undefined when it could not be
   * measured and the user trains anyway; null when the user gave up.
   */
  async function estimateRun(
    folder: vscode.WorkspaceFolder,
    choice: TrainingChoice,
  ): Promise<EstimateTraining.Result | undefined | null> {
    const params: EstimateTraining.Params = { workspaceFolder: folder.uri.fsPath };
    if (choice.preset) params.preset = choice.preset;
    if (choice.base) params.base = choice.base;
    if (choice.base && choice.method) params.method = choice.method;
    try {
      const estimate = await vscode.window.withProgress(
        {
          location: vscode.ProgressLocation.Notification,
          title: 'Measuring a training step on this workspace…',
          cancellable: true,
        },
        (_progress, token) =>
          Promise.race([
            context.server.request(EstimateTraining, params),
            new Promise<null>((resolve) => token.onCancellationRequested(() => resolve(null))),
          ]),
      );
      if (estimate) context.log.info(`Training estimate for ${choice.label}: ${describeEstimate(estimate)}`);
      return estimate;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      context.log.warn(`Estimating ${choice.label} failed: ${message}`);
      const go = await vscode.window.showWarningMessage(
        `Modelwright could not measure this training: ${message}`,
        'Train Anyway',
      );
      return go ? undefined : null;
    }
  }

  /** A text classifier from a labelled file: its text and label columns (from its first rows), then a name. */
  async function trainClassifier(folder: vscode.WorkspaceFolder, file: string, names: string[]): Promise<void> {
    const preview = await context.server.request(PreviewLabelledData, { workspaceFolder: folder.uri.fsPath, file });
    const text = await vscode.window.showQuickPick(columnChoices(preview.columns, 'text'), {
      title: 'Train a Text Classifier (2/4)',
      placeHolder: `The column with the text to classify (${preview.rows} rows read from ${file})`,
    });
    if (!text) return;
    const labels = columnChoices(preview.columns, 'label', text.column);
    if (labels.length === 0) {
      void vscode.window.showWarningMessage(`${file} has no other column with two or more values to use as the label.`);
      return;
    }
    const label = await vscode.window.showQuickPick(labels, {
      title: 'Train a Text Classifier (3/4)',
      placeHolder: 'The column with the label (the class of each row)',
    });
    if (!label) return;
    const stem = path.basename(file).replace(/\.[^.]+$/, '');
    const name = await vscode.window.showInputBox({
      title: 'Train a Text Classifier (4/4)',
      prompt: 'Name of the new classifier (a folder under the models directory)',
      value: suggestModelName(`${stem}-${label.column}`, new Date(), names),
      validateInput: (value) => validateModelName(value.trim(), names),
    });
    if (!name) return;
    const minutes = readClientSettings(vscode.workspace.getConfiguration(configurationSection)).trainingMinutes;
    await runTraining({
      workspaceFolder: folder.uri.fsPath,
      name: name.trim(),
      minutes,
      classifier: { data: file, text: text.column, label: label.column },
    });
  }

  async function runTraining(params: TrainingParams): Promise<void> {
    const source = new vscode.CancellationTokenSource();
    training = { name: params.name, source };
    void vscode.commands.executeCommand('setContext', 'modelwright.training', true);
    const start = params.classifier
      ? `text classifier from ${params.classifier.data}`
      : params.base
        ? `fine-tuning ${params.base}${params.method ? ` (${params.method})` : ''}`
        : `preset ${params.preset}`;
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
      const text = resultMessage(result);
      context.log.info(text);
      if (result.comparison) context.trainingView.showComparison(result.name, result.comparison);
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

/** What the end-of-training message says: steps or epochs, the losses, and the gain over the base or the accuracy. */
function resultMessage(result: TrainModel.Result): string {
  const unit = result.classification ? 'epoch' : 'step';
  let summary =
    `${result.steps} ${unit}${result.steps === 1 ? '' : 's'} in ${formatDuration(result.elapsedSeconds)}, ` +
    `loss ${result.loss.toFixed(3)}, validation loss ${result.valLoss.toFixed(3)}`;
  if (result.comparison) summary += `; ${describeGain(result.comparison)}`;
  if (result.classification) {
    const c = result.classification;
    summary += `; accuracy ${(100 * c.accuracy).toFixed(1)}%, macro-F1 ${c.macroF1.toFixed(3)} on ${c.samples} validation rows`;
  }
  return result.finished
    ? `Trained ${result.name}: ${summary}.`
    : `Training ${result.name} stopped; the checkpoint was saved (${summary}).`;
}

/** Quick-pick items with a heading above each group of choices. */
function withSeparators(choices: TrainingChoice[]): (vscode.QuickPickItem & { choice?: TrainingChoice })[] {
  const items: (vscode.QuickPickItem & { choice?: TrainingChoice })[] = [];
  let group: ChoiceGroup | undefined;
  for (const choice of choices) {
    if (choice.group !== group) {
      group = choice.group;
      items.push({ label: groupTitles[group], kind: vscode.QuickPickItemKind.Separator });
    }
    items.push({ label: choice.label, description: choice.description, detail: choice.detail, choice });
  }
  return items;
}

/** The folder's labelled CSV/JSONL files, relative to it (a few, outside dependency and build folders). */
async function labelledFiles(folder: vscode.WorkspaceFolder): Promise<string[]> {
  const found = await vscode.workspace.findFiles(
    new vscode.RelativePattern(folder, labelledFilePattern),
    EXCLUDED_FOLDERS,
    MAX_DATA_FILES,
  );
  return found.map((uri) => path.relative(folder.uri.fsPath, uri.fsPath).split(path.sep).join('/')).sort();
}

/** The time budget: the preferred one, the usual choices, or a typed number of minutes; epochs each when estimated. */
async function pickMinutes(
  preferred: number,
  estimate: EstimateTraining.Result | undefined,
): Promise<number | undefined> {
  const values = [...new Set([preferred, ...minuteChoices])].sort((a, b) => a - b);
  const items: (vscode.QuickPickItem & { minutes?: number })[] = values.map((m) => ({
    label: `${m} minute${m === 1 ? '' : 's'}`,
    description: [m === preferred ? 'default' : '', estimate ? describeEpochs(epochsIn(m, estimate)) : '']
      .filter(Boolean)
      .join(' · '),
    minutes: m,
  }));
  items.push({ label: 'Other…', description: 'type a number of minutes' });
  if (estimate) items.unshift({ label: describeEstimate(estimate), kind: vscode.QuickPickItemKind.Separator });
  const picked = await vscode.window.showQuickPick(items, {
    title: estimate ? `Train Model (2/3): ${shortEstimate(estimate)}` : 'Train Model (2/3)',
    placeHolder: 'Time budget: training stops and saves when it runs out',
  });
  if (!picked) return undefined;
  if (picked.minutes !== undefined) return picked.minutes;
  const typed = await vscode.window.showInputBox({
    title: 'Train Model (2/3)',
    prompt: estimate ? `Minutes of training (${describeEstimate(estimate)})` : 'Minutes of training',
    value: String(preferred),
    validateInput: (v) =>
      parseMinutes(v) === undefined ? 'A number of minutes, more than 0 and at most 1440' : undefined,
  });
  return typed === undefined ? undefined : parseMinutes(typed);
}
