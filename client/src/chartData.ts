// The data behind the Training panel's charts: loss curves appended from live training figures, read from a
// model card, and reduced to a bounded number of points so long trainings stay cheap to draw. Pure functions.
import type { ModelMetrics, TrainingFigures } from '../../server/src/protocol';
import type { EvaluationEntry, LossPoint } from './webviewProtocol';

/** The most points a chart draws; longer curves are reduced by {@link reduceCurve}. */
export const maxChartPoints = 400;

/**
 * Reduces a curve to at most `max` points: consecutive steps are grouped into equal buckets and each bucket
 * becomes one point at its last step with the mean training loss; validation points (sparse, and the figure users
 * compare) are all kept. The first and last points stay as they are.
 */
export function reduceCurve(points: readonly LossPoint[], max = maxChartPoints): LossPoint[] {
  const training = points.filter((p) => p.loss !== undefined);
  const validation = points.filter((p) => p.valLoss !== undefined).map((p) => ({ step: p.step, valLoss: p.valLoss }));
  let reduced: LossPoint[];
  if (training.length <= max || max < 3) {
    reduced = training.map((p) => ({ step: p.step, loss: p.loss }));
  } else {
    reduced = [{ step: training[0].step, loss: training[0].loss }];
    const inner = training.slice(1, -1);
    const buckets = max - 2;
    for (let b = 0; b < buckets; b++) {
      const from = Math.floor((b * inner.length) / buckets);
      const to = Math.floor(((b + 1) * inner.length) / buckets);
      if (to <= from) continue;
      let sum = 0;
      for (let i = from; i < to; i++) sum += inner[i].loss as number;
      reduced.push({ step: inner[to - 1].step, loss: sum / (to - from) });
    }
    const last = training[training.length - 1];
    reduced.push({ step: last.step, loss: last.loss });
  }
  // Merge the validation points in by step.
  const byStep = new Map<number, LossPoint>();
  for (const p of reduced) byStep.set(p.step, p);
  for (const v of validation) byStep.set(v.step, { ...byStep.get(v.step), step: v.step, valLoss: v.valLoss });
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

/** Appends a training step's figures to a live curve (in place); figures outside the training phase add nothing. */
export function appendFigures(curve: LossPoint[], f: TrainingFigures): void {
  if (f.loss === undefined && f.valLoss === undefined) return;
  const last = curve[curve.length - 1];
  if (last && last.step === f.step) {
    if (f.loss !== undefined) last.loss = f.loss;
    if (f.valLoss !== undefined) last.valLoss = f.valLoss;
    return;
  }
  if (last && f.step < last.step) curve.length = 0; // a new training started
  curve.push({ step: f.step, loss: f.loss, valLoss: f.valLoss });
}

const isNumber = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/** The training curve of a model card (`modelwright.json`), skipping malformed points. */
export function curveFromCard(card: Record<string, unknown>): LossPoint[] {
  const curve = Array.isArray(card.curve) ? card.curve : [];
  const points: LossPoint[] = [];
  for (const raw of curve) {
    if (typeof raw !== 'object' || raw === null) continue;
    const p = raw as Record<string, unknown>;
    if (!isNumber(p.step) || (!isNumber(p.loss) && !isNumber(p.valLoss))) continue;
    points.push({
      step: p.step,
      loss: isNumber(p.loss) ? p.loss : undefined,
      valLoss: isNumber(p.valLoss) ? p.valLoss : undefined,
    });
  }
  return points;
}

/** The evaluations recorded in a model card, oldest first, skipping malformed entries. */
export function evaluationsFromCard(model: string, card: Record<string, unknown>): EvaluationEntry[] {
  const list = Array.isArray(card.evaluations) ? card.evaluations : [];
  const entries: EvaluationEntry[] = [];
  for (const raw of list) {
    if (typeof raw !== 'object' || raw === null) continue;
    const e = raw as Record<string, unknown>;
    const latency = (e.latencyMs ?? {}) as Record<string, unknown>;
    if (![e.valLoss, e.perplexity, e.exactMatch, e.editSimilarity].every(isNumber)) continue;
    const metrics: ModelMetrics = {
      valLoss: e.valLoss as number,
      perplexity: e.perplexity as number,
      exactMatch: e.exactMatch as number,
      editSimilarity: e.editSimilarity as number,
      latencyMs: { p50: isNumber(latency.p50) ? latency.p50 : 0, p95: isNumber(latency.p95) ? latency.p95 : 0 },
      samples: isNumber(e.samples) ? e.samples : 0,
      at: typeof e.at === 'string' ? e.at : '',
    };
    entries.push({ model, metrics });
  }
  return entries;
}
