// Human-readable figures for the status bar, the Models tree, notifications and the Training panel: sizes,
// parameter counts, durations, training progress lines and metrics. Pure functions, tested without VS Code.
import {
  formatDuration,
  type ModelMetrics,
  type ModelOrigin,
  type ModelSummary,
  type TrainingFigures,
} from '../../server/src/protocol';

export { formatDuration };

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '?';
  const units = ['B', 'KB', 'MB', 'GB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 || value >= 100 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/** 1_100_000 → "1.1M", 950_000 → "950K". */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return '?';
  if (n >= 1e9) return `${trim(n / 1e9)}B`;
  if (n >= 1e6) return `${trim(n / 1e6)}M`;
  if (n >= 1e3) return `${trim(n / 1e3)}K`;
  return String(Math.round(n));
}

const trim = (x: number) => (x >= 100 ? String(Math.round(x)) : x.toFixed(1).replace(/\.0$/, ''));

export const formatPercent = (fraction: number) => `${(fraction * 100).toFixed(1)}%`;

/** The fraction of a training done, 0..1 (0 while the total is unknown). */
export function trainingFraction(f: TrainingFigures): number {
  if (f.phase === 'done') return 1;
  if (!f.totalSteps || f.totalSteps <= 0) return 0;
  return Math.min(1, Math.max(0, f.step / f.totalSteps));
}

/** The live line under a training notification: "step 120/600 · loss 3.214 · 1.2K tok/s · 2m 10s left". */
export function describeTraining(f: TrainingFigures): string {
  if (f.phase !== 'training') return f.message || f.phase;
  const parts = [`${f.unit ?? 'step'} ${f.step}/${f.totalSteps || '?'}`];
  if (f.loss !== undefined) parts.push(`loss ${f.loss.toFixed(3)}`);
  if (f.valLoss !== undefined) parts.push(`val ${f.valLoss.toFixed(3)}`);
  if (f.tokensPerSecond !== undefined) parts.push(`${formatCount(f.tokensPerSecond)} tok/s`);
  if (f.etaSeconds !== undefined) parts.push(`${formatDuration(f.etaSeconds)} left`);
  return parts.join(' · ');
}

/** Rows (label, value) of a model's metrics, in the order the tree and the panel show them. */
export function metricRows(m: ModelMetrics): [string, string][] {
  return [
    ['validation loss', m.valLoss.toFixed(3)],
    ['perplexity', m.perplexity.toFixed(1)],
    ['exact match', formatPercent(m.exactMatch)],
    ['edit similarity', formatPercent(m.editSimilarity)],
    ['latency p50 / p95', `${Math.round(m.latencyMs.p50)} / ${Math.round(m.latencyMs.p95)} ms`],
    ['samples', String(m.samples)],
    ['evaluated', formatTimestamp(m.at)],
  ];
}

/** An ISO time as "2026-11-28 14:05" (local time); the input unchanged when it does not parse. */
export function formatTimestamp(iso: string | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (x: number) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * The one-line description beside a model's name in the tree: "1.1M params · 4.6 MB · tiny · bundled", and for a
 * downloaded model its family, a precision other than fp32 and chat: "650 MB · qwen2 · q8 · chat".
 */
export function describeModel(m: ModelSummary): string {
  const parts: string[] = [];
  if (m.parameters) parts.push(`${formatCount(m.parameters)} params`);
  parts.push(formatBytes(m.sizeBytes));
  if (m.origin && m.modelType) parts.push(m.modelType);
  if (m.dtype && m.dtype !== 'fp32') parts.push(m.dtype);
  if (m.preset) parts.push(m.preset);
  if (m.chat) parts.push('chat');
  if (m.bundled) parts.push('bundled');
  if (m.status !== 'idle') parts.push(m.status === 'active' ? `active: ${m.roles.join(', ')}` : 'training');
  return parts.join(' · ');
}

/** Where a downloaded model came from: "Qwen/Qwen2.5-Coder-0.5B@main (8123ab45cd67)". */
export function describeOrigin(origin: ModelOrigin): string {
  return `${origin.repo}@${origin.revision}${origin.commit ? ` (${origin.commit.slice(0, 12)})` : ''}`;
}

/** Rows (label, value) of what a model's files say, for the tree's children and the tooltip; known fields only. */
export function modelFacts(m: ModelSummary): [string, string][] {
  const rows: [string, string][] = [];
  const yesNo = (value: boolean) => (value ? 'yes' : 'no');
  if (m.origin) rows.push(['downloaded from', describeOrigin(m.origin)]);
  if (m.modelType) rows.push(['family', m.modelType]);
  if (m.dtype) rows.push(['precision', m.dtype]);
  if (m.contextLength) rows.push(['context', `${m.contextLength.toLocaleString('en-US')} tokens`]);
  if (m.fillInTheMiddle !== undefined) rows.push(['fill-in-the-middle', yesNo(m.fillInTheMiddle)]);
  if (m.chat !== undefined) rows.push(['chat template', yesNo(m.chat)]);
  if (m.license) rows.push(['license', m.license]);
  return rows;
}

/** The Markdown tooltip of a model's row: name, description, path and its facts. */
export function modelTooltip(m: ModelSummary): string {
  const code = (text: string) => `\`${text.replace(/`/g, "'")}\``;
  const lines = [`**${m.name}** (${m.kind})`, '', describeModel(m), '', code(m.path)];
  const facts = modelFacts(m);
  if (facts.length) lines.push('', ...facts.map(([label, value]) => `- ${label}: ${code(value)}`));
  return lines.join('\n');
}

/**
 * The text of the read-only explanation document: a waiting line until the explanation streams in, then the
 * streamed text, and at the end the server's final text (authoritative) and the model that wrote it.
 */
export function explanationDocument(what: string, streamed: string, final?: { text: string; model: string }): string {
  if (final) return `${final.text || streamed}\n\n---\n\n_Explained by ${final.model}._\n`;
  return streamed || `_Explaining ${what}…_\n`;
}
