// The Training webview view in the Modelwright container: the live loss curve of a running training (language
// models and text classifiers alike), or the curve of the model picked in the tree, evaluation metrics, and after a
// fine-tune the gain over its base, drawn by client/webview/training.ts (chart.js, bundled) under a CSP with a nonce.
// Messages both ways are typed in webviewProtocol.ts.
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import type { ModelMetrics, TrainingComparison, TrainingFigures } from '../../server/src/protocol';
import { appendFigures, curveFromCard, evaluationsFromCard, reduceCurve } from './chartData';
import { commandIds } from './commandIds';
import type { ServerClient } from './serverClient';
import {
  type EvaluationEntry,
  isFromWebview,
  type LossPoint,
  type ToWebview,
  type WebviewCommand,
} from './webviewProtocol';

// Style rules and markup of the webview page too long for one source line, spliced into it unchanged.
const BODY_STYLE =
  'body { padding: 0 8px 8px; color: var(--vscode-foreground); font-family: var(--vscode-font-family); ' +
  'font-size: var(--vscode-font-size); }';
const BUTTON_STYLE =
  'button { background: var(--vscode-button-background); color: var(--vscode-button-foreground); border: none; ' +
  'padding: 3px 10px; cursor: pointer; border-radius: 2px; }';
const SECONDARY_BUTTON_STYLE =
  'button.secondary { background: var(--vscode-button-secondaryBackground); ' +
  'color: var(--vscode-button-secondaryForeground); }';
const METRICS_CANVAS =
  '<canvas id="metrics" aria-label="Exact match and edit similarity per evaluation" role="img"></canvas>';

const commandOf: Record<WebviewCommand, string> = {
  train: commandIds.train,
  evaluate: commandIds.evaluate,
  stopTraining: commandIds.stopTraining,
  deploy: commandIds.deploy,
};

export class TrainingView implements vscode.WebviewViewProvider, vscode.Disposable {
  static readonly viewId = 'modelwright.training';
  private view: vscode.WebviewView | undefined;
  private model = '';
  private curve: LossPoint[] = [];
  private evaluations: EvaluationEntry[] = [];
  private training: TrainingFigures | undefined;
  /** The gain over the base of the models fine-tuned in this session, by name. */
  private readonly comparisons = new Map<string, TrainingComparison>();
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly server: ServerClient,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.subscriptions.push(server.onTrainingProgress((f) => this.onTraining(f)));
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    const scripts = vscode.Uri.joinPath(this.extensionUri, 'client', 'out', 'webview');
    view.webview.options = { enableScripts: true, localResourceRoots: [scripts] };
    view.webview.html = this.html(view.webview, vscode.Uri.joinPath(scripts, 'training.js'));
    this.subscriptions.push(
      view.webview.onDidReceiveMessage((message: unknown) => {
        if (!isFromWebview(message)) return;
        if (message.type === 'ready') {
          if (!this.model && !this.training) void this.showActiveModel();
          else this.postShow();
        } else {
          void vscode.commands.executeCommand(commandOf[message.command], {
            source: 'trainingView',
            model: this.model,
          });
        }
      }),
      view.onDidDispose(() => (this.view = undefined)),
    );
  }

  /** The model the panel shows (the one last picked, trained or evaluated). */
  get shownModel(): string {
    return this.model;
  }

  /** Shows a model's recorded curve and evaluations, read from its card (unless a training is drawing live). */
  async showModel(name: string): Promise<void> {
    if (this.isTraining()) return;
    try {
      const card = await this.server.modelCard(name);
      this.model = name;
      this.curve = curveFromCard(card);
      this.evaluations = evaluationsFromCard(name, card);
    } catch (error) {
      this.log.warn(`Reading the model card of ${name} failed: ${String(error)}`);
      this.model = name;
      this.curve = [];
      this.evaluations = [];
    }
    this.postShow();
  }

  /** Adds an evaluation result and brings the panel into view. */
  showEvaluation(model: string, metrics: ModelMetrics): void {
    const entry = { model, metrics };
    this.evaluations.push(entry);
    this.post({ type: 'evaluation', entry });
    this.reveal();
  }

  /** Shows a fine-tuned model's gain over its base (also sent with the training's last figures). */
  showComparison(model: string, comparison: TrainingComparison): void {
    this.comparisons.set(model, comparison);
    if (model === this.model) this.post({ type: 'comparison', comparison });
  }

  reveal(): void {
    if (this.view) this.view.show(true);
    else void vscode.commands.executeCommand(`${TrainingView.viewId}.focus`);
  }

  private async showActiveModel(): Promise<void> {
    try {
      const { active } = await this.server.listModels();
      if (active.completion) return this.showModel(active.completion);
    } catch (error) {
      this.log.warn(`Listing models for the training panel failed: ${String(error)}`);
    }
    this.postShow();
  }

  private isTraining(): boolean {
    return this.training !== undefined && this.training.phase !== 'done' && this.training.phase !== 'failed';
  }

  private onTraining(f: TrainingFigures): void {
    if (f.comparison) this.comparisons.set(f.name, f.comparison);
    if (f.name !== this.training?.name || f.name !== this.model) {
      // A new training: start a fresh live curve.
      this.training = f;
      this.model = f.name;
      this.curve = [];
      this.evaluations = [];
      appendFigures(this.curve, f);
      this.postShow();
      return;
    }
    this.training = f;
    appendFigures(this.curve, f);
    this.post({ type: 'progress', figures: f });
  }

  private postShow(): void {
    this.post({
      type: 'show',
      model: this.model,
      curve: reduceCurve(this.curve),
      evaluations: this.evaluations,
      training: this.training?.name === this.model ? this.training : undefined,
      comparison: this.comparisons.get(this.model),
      trusted: vscode.workspace.isTrusted,
    });
  }

  private post(message: ToWebview): void {
    void this.view?.webview.postMessage(message);
  }

  private html(webview: vscode.Webview, script: vscode.Uri): string {
    const nonce = randomBytes(16).toString('base64');
    const csp = [
      "default-src 'none'",
      `img-src ${webview.cspSource} data:`,
      `style-src 'nonce-${nonce}'`,
      `script-src 'nonce-${nonce}'`,
    ].join('; ');
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<style nonce="${nonce}">
  ${BODY_STYLE}
  h2 { font-size: 1.05em; margin: 10px 0 2px; font-weight: 600; }
  .figures { color: var(--vscode-descriptionForeground); min-height: 1.4em; margin-bottom: 6px; }
  .actions { display: flex; gap: 6px; flex-wrap: wrap; margin: 6px 0 8px; }
  ${BUTTON_STYLE}
  ${SECONDARY_BUTTON_STYLE}
  button:hover { background: var(--vscode-button-hoverBackground); }
  button[hidden] { display: none; }
  button:disabled { opacity: 0.5; cursor: default; }
  .chart { position: relative; height: 180px; margin-bottom: 8px; }
  .chart[hidden] { display: none; }
  .empty { color: var(--vscode-descriptionForeground); font-style: italic; margin: 8px 0; }
  table { border-collapse: collapse; width: 100%; margin-top: 4px; }
  td { padding: 1px 4px; border-bottom: 1px solid var(--vscode-panel-border, transparent); }
  td:last-child { text-align: right; font-variant-numeric: tabular-nums; }
  #gainTable td:not(:first-child) { text-align: right; font-variant-numeric: tabular-nums; }
  #gainTable th { text-align: right; font-weight: 600; padding: 1px 4px; }
  #gainTable th:first-child { text-align: left; }
  td.better { color: var(--vscode-charts-green); }
  td.worse { color: var(--vscode-charts-red); }
  #gain[hidden] { display: none; }
</style>
<title>Training</title>
</head>
<body>
  <h2 id="title">Training</h2>
  <div class="figures" id="figures"></div>
  <div class="actions">
    <button id="train">Train…</button>
    <button id="stop" class="secondary" hidden>Stop</button>
    <button id="evaluate" class="secondary">Evaluate</button>
    <button id="deploy" class="secondary">Deploy</button>
  </div>
  <h2>Loss</h2>
  <div class="empty" id="lossEmpty">No training curve yet.</div>
  <div class="chart"><canvas id="loss" aria-label="Training and validation loss per step" role="img"></canvas></div>
  <h2 id="evaluationTitle">Evaluation</h2>
  <div class="empty" id="metricsEmpty">Not evaluated yet.</div>
  <div class="chart">${METRICS_CANVAS}</div>
  <table id="metricsTable"></table>
  <div id="gain" hidden>
    <h2 id="gainTitle">Gain over the base</h2>
    <div class="figures" id="gainFiles"></div>
    <table id="gainTable"></table>
  </div>
  <script nonce="${nonce}" src="${webview.asWebviewUri(script).toString()}"></script>
</body>
</html>`;
  }

  dispose(): void {
    for (const s of this.subscriptions) s.dispose();
  }
}
