// The script of the Training webview view (bundled by esbuild with chart.js into client/out/webview/training.js):
// draws the loss curve (per step, or per epoch for a text classifier), live while a training runs, the evaluation
// metrics and a fine-tuned model's gain over its base; its buttons ask the extension to run commands. Colors come
// from the VS Code theme's CSS variables.
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from 'chart.js';
import { appendFigures, maxChartPoints, reduceCurve } from '../src/chartData';
import { describeTraining, formatTimestamp, metricRows } from '../src/format';
import type { EvaluationEntry, FromWebview, LossPoint, ToWebview, WebviewCommand } from '../src/webviewProtocol';
import type { TrainingComparison, TrainingFigures } from '../../server/src/protocol';
import { gainRows } from '../src/trainingGain';

Chart.register(
  LineController,
  LineElement,
  PointElement,
  LinearScale,
  BarController,
  BarElement,
  CategoryScale,
  Legend,
  Tooltip,
);

declare function acquireVsCodeApi(): { postMessage(message: FromWebview): void };
const vscode = acquireVsCodeApi();

const element = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const css = (name: string, fallback: string) =>
  getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
const foreground = css('--vscode-foreground', '#ccc');
const gridColor = css('--vscode-editorWidget-border', 'rgba(128,128,128,0.3)');
const blue = css('--vscode-charts-blue', '#3794ff');
const orange = css('--vscode-charts-orange', '#d18616');
const green = css('--vscode-charts-green', '#89d185');
Chart.defaults.color = foreground;
Chart.defaults.font.family = css('--vscode-font-family', 'sans-serif');
Chart.defaults.borderColor = gridColor;

let curve: LossPoint[] = [];
let evaluations: EvaluationEntry[] = [];
let training: TrainingFigures | undefined;

const lossChart = new Chart<'line', { x: number; y: number }[]>(element<HTMLCanvasElement>('loss'), {
  type: 'line',
  data: {
    datasets: [
      {
        label: 'training loss',
        data: [],
        borderColor: blue,
        backgroundColor: blue,
        pointRadius: 0,
        borderWidth: 1.5,
        tension: 0.2,
      },
      {
        label: 'validation loss',
        data: [],
        borderColor: orange,
        backgroundColor: orange,
        pointRadius: 3,
        borderWidth: 1.5,
        spanGaps: true,
      },
    ],
  },
  options: {
    animation: false,
    maintainAspectRatio: false,
    parsing: false,
    normalized: true,
    scales: {
      x: { type: 'linear', title: { display: true, text: 'step' } },
      y: { title: { display: true, text: 'loss' } },
    },
    plugins: { legend: { labels: { boxWidth: 12 } } },
  },
});

const metricsChart = new Chart<'bar', number[], string>(element<HTMLCanvasElement>('metrics'), {
  type: 'bar',
  data: {
    labels: [],
    datasets: [
      { label: 'exact match %', data: [], backgroundColor: blue },
      { label: 'edit similarity %', data: [], backgroundColor: green },
    ],
  },
  options: {
    animation: false,
    maintainAspectRatio: false,
    scales: { y: { min: 0, max: 100 } },
    plugins: { legend: { labels: { boxWidth: 12 } } },
  },
});

function drawCurve(): void {
  if (curve.length > 2 * maxChartPoints) curve = reduceCurve(curve);
  lossChart.data.datasets[0].data = curve
    .filter((p) => p.loss !== undefined)
    .map((p) => ({ x: p.step, y: p.loss as number }));
  lossChart.data.datasets[1].data = curve
    .filter((p) => p.valLoss !== undefined)
    .map((p) => ({ x: p.step, y: p.valLoss as number }));
  lossChart.update('none');
  element('lossEmpty').hidden = curve.length > 0;
  (element('loss').parentElement as HTMLElement).hidden = curve.length === 0;
}

function drawEvaluations(): void {
  const shown = evaluations.slice(-6);
  metricsChart.data.labels = shown.map((e) => `${e.model} ${formatTimestamp(e.metrics.at).slice(5)}`);
  metricsChart.data.datasets[0].data = shown.map((e) => +(e.metrics.exactMatch * 100).toFixed(1));
  metricsChart.data.datasets[1].data = shown.map((e) => +(e.metrics.editSimilarity * 100).toFixed(1));
  metricsChart.update('none');
  element('metricsEmpty').hidden = shown.length > 0;
  (element('metrics').parentElement as HTMLElement).hidden = shown.length === 0;
  const table = element<HTMLTableElement>('metricsTable');
  table.replaceChildren();
  const latest = shown[shown.length - 1];
  if (!latest) return;
  for (const [label, value] of [['model', latest.model], ...metricRows(latest.metrics)]) {
    const row = table.insertRow();
    row.insertCell().textContent = label;
    row.insertCell().textContent = value;
  }
}

function drawComparison(comparison: TrainingComparison | undefined): void {
  element('gain').hidden = comparison === undefined;
  const table = element<HTMLTableElement>('gainTable');
  table.replaceChildren();
  if (!comparison) return;
  element('gainTitle').textContent = `Gain over the base ${comparison.base.name}`;
  element('gainFiles').textContent = `${comparison.filesDescription}; ${comparison.samples} next-line completions each`;
  const head = table.createTHead().insertRow();
  for (const title of ['', 'base', 'fine-tuned', 'change']) {
    const cell = document.createElement('th');
    cell.textContent = title;
    head.appendChild(cell);
  }
  const body = table.createTBody();
  for (const row of gainRows(comparison)) {
    const tr = body.insertRow();
    for (const text of [row.metric, row.base, row.trained]) tr.insertCell().textContent = text;
    const change = tr.insertCell();
    change.textContent = row.change;
    change.className = row.better ? 'better' : 'worse';
  }
}

function drawAxis(): void {
  const unit = training?.unit ?? 'step';
  const x = lossChart.options.scales?.x as { title?: { text?: string } } | undefined;
  if (x?.title && x.title.text !== unit) x.title.text = unit;
}

function drawHeader(model: string): void {
  element('title').textContent = model ? `Model: ${model}` : 'Training';
  const running = training !== undefined && training.phase !== 'done' && training.phase !== 'failed';
  element('figures').textContent = training
    ? `${training.phase === 'training' ? 'Training: ' : ''}${describeTraining(training)}`
    : '';
  element('stop').hidden = !running;
  element<HTMLButtonElement>('train').disabled = running;
}

let shownModel = '';
window.addEventListener('message', (event: MessageEvent<ToWebview>) => {
  const message = event.data;
  switch (message.type) {
    case 'show':
      shownModel = message.model;
      curve = message.curve;
      evaluations = message.evaluations;
      training = message.training;
      for (const id of ['train', 'deploy']) element<HTMLButtonElement>(id).hidden = !message.trusted;
      drawHeader(shownModel);
      drawAxis();
      drawCurve();
      drawEvaluations();
      drawComparison(message.comparison);
      break;
    case 'progress':
      training = message.figures;
      appendFigures(curve, message.figures);
      drawHeader(shownModel);
      drawAxis();
      drawCurve();
      if (message.figures.comparison) drawComparison(message.figures.comparison);
      break;
    case 'comparison':
      drawComparison(message.comparison);
      break;
    case 'evaluation':
      evaluations.push(message.entry);
      drawEvaluations();
      element('evaluationTitle').scrollIntoView({ behavior: 'smooth', block: 'start' });
      break;
  }
});

for (const command of ['train', 'stop', 'evaluate', 'deploy'] as const) {
  const name: WebviewCommand = command === 'stop' ? 'stopTraining' : command;
  element(command).addEventListener('click', () => vscode.postMessage({ type: 'command', command: name }));
}
vscode.postMessage({ type: 'ready' });
