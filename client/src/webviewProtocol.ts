// Typed messages between the Training webview view (client/webview/training.ts) and the extension
// (client/src/trainingView.ts). Both sides import these types; the webview bundle gets none of the runtime.
import type { ModelMetrics, TrainingComparison, TrainingFigures } from '../../server/src/protocol';

/** One point of a loss curve: training loss per step, validation loss where it was measured. */
export interface LossPoint {
  step: number;
  loss?: number;
  valLoss?: number;
}

/** One evaluation of a model, as the panel charts it. */
export interface EvaluationEntry {
  model: string;
  metrics: ModelMetrics;
}

/** extension → webview. */
export type ToWebview =
  /**
   * Replace everything shown: the curve and evaluations of `model`, the running training if any, and the gain over
   * its base measured when it was fine-tuned (in this session).
   */
  | {
      type: 'show';
      model: string;
      curve: LossPoint[];
      evaluations: EvaluationEntry[];
      training?: TrainingFigures;
      comparison?: TrainingComparison;
      trusted: boolean;
    }
  /** A step of the running training: append to the live curve. */
  | { type: 'progress'; figures: TrainingFigures }
  /** A new evaluation result. */
  | { type: 'evaluation'; entry: EvaluationEntry }
  /** A fine-tuned model against its base, at the end of its training. */
  | { type: 'comparison'; comparison: TrainingComparison };

/** webview → extension. */
export type FromWebview = { type: 'ready' } | { type: 'command'; command: WebviewCommand };

export type WebviewCommand = 'train' | 'evaluate' | 'stopTraining' | 'deploy';
export const webviewCommands: readonly WebviewCommand[] = ['train', 'evaluate', 'stopTraining', 'deploy'];

/** Narrows an untyped message from the webview; anything else is ignored by the extension. */
export function isFromWebview(value: unknown): value is FromWebview {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as { type?: unknown; command?: unknown };
  if (m.type === 'ready') return true;
  return m.type === 'command' && webviewCommands.includes(m.command as WebviewCommand);
}
