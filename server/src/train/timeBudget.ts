// Time budgets (`--minutes`). The step time is the median of the last 20 steps; a run given only a time budget
// sets its number of steps from it after 3 steps and refines it after 10, 30 and 100, while the learning rate
// is still warming up (the first steps are slow while onnxruntime sizes its memory arena).
import type { Schedule } from '../engine/optimizer';
import { median } from '../util/statistics';

/** Steps of this process after which a time-budgeted run (re)sizes its schedule. */
const sizingSteps = [3, 10, 30, 100];
/** Steps measured for the step time. */
const recentSteps = 20;
/** The schedule assumes steps this much slower than measured, so that the run ends inside its budget. */
const safetyMargin = 1.05;

/** 10% of the run, at most 100 steps. */
export const defaultWarmup = (totalSteps: number) => Math.min(100, Math.max(1, Math.floor(totalSteps / 10)));

/** The budget in seconds (Infinity for none). A run needs a number of steps or a time budget. */
export function budgetSeconds(options: { minutes?: number; steps?: number }): number {
  const seconds = options.minutes !== undefined ? options.minutes * 60 : Infinity;
  if (!options.steps && seconds === Infinity) throw new Error('give a budget: --steps N or --minutes N');
  return seconds;
}

/** The durations of this process's steps. */
export class StepTimes {
  private readonly milliseconds: number[] = [];

  get count(): number {
    return this.milliseconds.length;
  }

  /** Runs one step and records how long it took. */
  async measure<T>(step: () => Promise<T>): Promise<T> {
    const started = performance.now();
    const result = await step();
    this.milliseconds.push(performance.now() - started);
    return result;
  }

  /** The median of the recent steps, in seconds (NaN before the first step). */
  secondsPerStep(): number {
    return median(this.milliseconds.slice(-recentSteps)) / 1000;
  }
}

/**
 * After each of the sizing steps, makes the schedule end when the remaining time runs out at the measured step
 * time; the first sizing also sets the warmup unless the run was given one.
 */
export function sizeScheduleToBudget(
  schedule: Schedule,
  stepTimes: StepTimes,
  step: number,
  remainingSeconds: number,
  warmupGiven: boolean,
): void {
  if (!sizingSteps.includes(stepTimes.count)) return;
  const stepsThatFit = Math.floor(remainingSeconds / (stepTimes.secondsPerStep() * safetyMargin));
  schedule.totalSteps = Math.max(step + 1, step + stepsThatFit);
  if (stepTimes.count === sizingSteps[0] && !warmupGiven) schedule.warmupSteps = defaultWarmup(schedule.totalSteps);
}
