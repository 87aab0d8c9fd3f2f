// How well a classifier labels rows: accuracy, per-class precision/recall/F1, macro-F1 (the unweighted mean of
// the classes' F1, so a rare class counts as much as a common one), the majority-class baseline and the confusion
// matrix; and the evaluation of a classifier folder on a data file.
import type { ClassifierMetrics } from '../protocol';
import { loadClassifier } from './classifier';
import { stratifiedSplit } from './classifierData';
import { DataError, readLabelledData } from './labelledData';

/** Metrics of predicted against true labels, over the label set `labels` (confusion[true][predicted]). */
export function classifierMetrics(
  labels: readonly string[],
  truth: readonly string[],
  predicted: readonly string[],
): ClassifierMetrics {
  const index = new Map(labels.map((label, i) => [label, i]));
  const confusion = labels.map(() => labels.map(() => 0));
  let correct = 0;
  truth.forEach((t, i) => {
    const p = predicted[i];
    if (t === p) correct++;
    const row = index.get(t);
    const column = index.get(p);
    if (row !== undefined && column !== undefined) confusion[row][column]++;
  });
  const perClass = labels.map((label, k) => {
    const truePositives = confusion[k][k];
    const predictedK = confusion.reduce((sum, row) => sum + row[k], 0);
    const support = confusion[k].reduce((a, b) => a + b, 0);
    const precision = predictedK ? truePositives / predictedK : 0;
    const recall = support ? truePositives / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    return { label, precision, recall, f1, support };
  });
  const present = perClass.filter((c) => c.support > 0);
  const majority = Math.max(0, ...perClass.map((c) => c.support));
  const count = Math.max(1, truth.length);
  return {
    accuracy: correct / count,
    macroF1: present.reduce((sum, c) => sum + c.f1, 0) / Math.max(1, present.length),
    majorityAccuracy: majority / count,
    labels: [...labels],
    perClass,
    confusion,
    samples: truth.length,
  };
}

export interface EvaluateClassifierOptions {
  text: string;
  label: string;
  /** Only the validation side of the data's split (what the classifier held out when trained on this file). */
  validationOnly?: boolean;
  validationFraction?: number;
  threads?: number;
}

/** Evaluates a classifier folder on the rows of a CSV/JSONL file; rows with labels it does not know are errors. */
export async function evaluateClassifier(
  modelDir: string,
  dataFile: string,
  options: EvaluateClassifierOptions,
): Promise<ClassifierMetrics> {
  const data = await readLabelledData(dataFile, { text: options.text, label: options.label });
  const rows = options.validationOnly ? stratifiedSplit(data.rows, options.validationFraction).validation : data.rows;
  const classifier = await loadClassifier(modelDir, { threads: options.threads });
  try {
    const known = new Set(classifier.labels);
    const unknown = rows.find((r) => !known.has(r.label));
    if (unknown) {
      throw new DataError(
        `${dataFile}: row ${unknown.row} has the label "${unknown.label}", which the classifier does not know ` +
          `(its labels: ${classifier.labels.join(', ')})`,
        unknown.row,
      );
    }
    const predictions = await classifier.classify(rows.map((r) => r.text));
    return classifierMetrics(
      classifier.labels,
      rows.map((r) => r.label),
      predictions.map((p) => p.label),
    );
  } finally {
    await classifier.dispose();
  }
}
