// The gain of a fine-tuned model over its base as the Training panel and the end-of-training message show it: the
// held-out figures of both on the same files, side by side, with the change (lower losses and higher rates are
// better). Pure: the webview bundle imports it too.
import type { TrainingComparison } from '../../server/src/protocol';

export interface GainRow {
  metric: string;
  base: string;
  trained: string;
  change: string;
  /** The fine-tuned model is better on this metric. */
  better: boolean;
}

const percent = (x: number) => `${(100 * x).toFixed(1)}%`;

export function gainRows(c: TrainingComparison): GainRow[] {
  const rows: GainRow[] = [];
  const loss = (metric: string, base: number | undefined, trained: number | undefined) => {
    if (base === undefined || trained === undefined) return;
    const change = trained - base;
    const relative = base !== 0 ? ` (${change <= 0 ? '' : '+'}${((100 * change) / base).toFixed(0)}%)` : '';
    rows.push({
      metric,
      base: base.toFixed(3),
      trained: trained.toFixed(3),
      change: `${change <= 0 ? '' : '+'}${change.toFixed(3)}${relative}`,
      better: change < 0,
    });
  };
  const rate = (metric: string, base: number, trained: number) => {
    const points = 100 * (trained - base);
    rows.push({
      metric,
      base: percent(base),
      trained: percent(trained),
      change: `${points < 0 ? '' : '+'}${points.toFixed(1)} points`,
      better: points > 0,
    });
  };
  loss('held-out loss', c.base.valLoss, c.trained.valLoss);
  loss('bits per byte', c.base.bitsPerByte, c.trained.bitsPerByte);
  rate('next-line exact match', c.base.exactMatch, c.trained.exactMatch);
  rate('next-line edit similarity', c.base.editSimilarity, c.trained.editSimilarity);
  return rows;
}

/** One sentence: "bits per byte 1.210 → 0.874 against the base qwen (3 held-out files)". */
export function describeGain(c: TrainingComparison): string {
  const rows = gainRows(c);
  const loss = rows.find((r) => r.metric === 'bits per byte') ?? rows[0];
  const files = `${c.files} held-out file${c.files === 1 ? '' : 's'}`;
  return `${loss.metric} ${loss.base} → ${loss.trained} against the base ${c.base.name} (${files})`;
}
