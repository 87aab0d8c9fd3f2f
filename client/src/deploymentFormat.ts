// How the extension shows deployments: the gate's side-by-side table (as plain lines for a modal dialog and the
// log), a version's one-line description for the Models tree, and a classifier's confusion matrix as Markdown.
import type { ClassifierMetrics, DeploymentVersion, GateReport } from '../../server/src/protocol';

const metricNames: Record<string, string> = {
  exactMatch: 'next-line exact match',
  editSimilarity: 'edit similarity',
  bitsPerByte: 'held-out loss (bits/byte)',
  valLoss: 'validation loss',
  macroF1: 'macro-F1',
  accuracy: 'accuracy',
};

export function gateTableLines(report: GateReport): string[] {
  const value = (v: number | undefined) => (v === undefined ? '—' : v.toFixed(4));
  return [
    `Compared on ${report.data}${report.threshold ? `, threshold ${report.threshold}` : ''}:`,
    ...report.rows.map(
      (row) =>
        `${metricNames[row.metric] ?? row.metric} (${row.better} is better): ` +
        `${report.serving ? `${report.serving} ${value(row.serving)} → ` : ''}${report.candidate} ${value(row.candidate)}` +
        `${row.pass ? '' : '  ✗ worse'}`,
    ),
  ];
}

export function describeVersion(v: DeploymentVersion, current: boolean): string {
  const parts = [v.model, v.sha256.slice(0, 8), v.at.slice(0, 16).replace('T', ' ')];
  if (v.forcedBy) parts.push(`forced (${v.forcedBy})`);
  if (v.rollbackOf !== undefined) parts.push(`rollback to v${v.rollbackOf}`);
  if (current) parts.push('serving');
  return parts.join(' · ');
}

export function versionMetrics(v: DeploymentVersion): string {
  return Object.entries(v.metrics)
    .map(([k, x]) => `${metricNames[k] ?? k} ${x.toFixed(3)}`)
    .join(', ');
}

/** The confusion matrix (rows: true label, columns: predicted) and per-class figures as Markdown tables. */
export function confusionMarkdown(m: ClassifierMetrics): string {
  const header = `| true \\ predicted | ${m.labels.join(' | ')} |`;
  const rule = `|---|${m.labels.map(() => '---:').join('|')}|`;
  const rows = m.confusion.map((row, i) => `| **${m.labels[i]}** | ${row.join(' | ')} |`);
  const perClass = [
    '| class | precision | recall | F1 | rows |',
    '|---|---:|---:|---:|---:|',
    ...m.perClass.map(
      (c) => `| ${c.label} | ${c.precision.toFixed(3)} | ${c.recall.toFixed(3)} | ${c.f1.toFixed(3)} | ${c.support} |`,
    ),
  ];
  return [
    `accuracy ${(100 * m.accuracy).toFixed(1)}% (majority class ${(100 * m.majorityAccuracy).toFixed(1)}%), ` +
      `macro-F1 ${m.macroF1.toFixed(3)} on ${m.samples} rows`,
    '',
    header,
    rule,
    ...rows,
    '',
    ...perClass,
  ].join('\n');
}
