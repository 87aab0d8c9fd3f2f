// Time budgets (`--minutes`). A run given only a time budget plans its number of steps from its measured speed,
// so that the learning-rate schedule (warmup, then decay to the final rate) ends when the budget does: a first
// plan after one step, a few refinements early on, then the total is fixed. If the machine slows down later,
// the schedule follows the clock instead, so the run still ends at the deadline with the schedule finished.
import type { Schedule } from '../engine/optimizer';

/** Steps of this process after which the plan is made again (the first ones are slow: arena sizing). */
const planningSteps = [1, 3, 10, 30, 100];
/** Steps left out of the speed measurement once enough others are measured. */
const settlingSteps = 2;
/** The plan is fixed at the latest once this fraction of the budget has passed. */
const planningFraction = 0.2;

/** 10% of the run, at most 100 steps. */
export const defaultWarmup = (totalSteps: number) => Math.min(100, Math.max(1, Math.floor(totalSteps / 10)));

/** The budget in seconds (Infinity for none). A run needs a number of steps or a time budget. */
export function budgetSeconds(options: { minutes?: number; steps?: number }): number {
  const seconds = options.minutes !== undefined ? options.minutes * 60 : Infinity;
  if (!options.steps && seconds === Infinity) throw new Error('give a budget: --steps N or --minutes N');
  return seconds;
}

/** What the run spends besides training steps, as the trainer measures it. */
export interface Overheads {
  /** One validation-loss measurement (measured, or estimated before the first). */
  validationSeconds: number;
  /** Steps between validation-loss measurements. */
  evalEvery: number;
}

/**
 * The plan of a run with a time budget. Times are seconds of the run's clock (the same clock the budget is
 * counted on); the caller reports every step's end and asks what learning-rate step to use and when to stop.
 */
export class BudgetPlan {
  /** The planned number of steps (0 until the first plan). */
  totalSteps = 0;
  /** True once the total will not change again. */
  fixed = false;
  private readonly marks: { step: number; seconds: number; overhead: number }[] = [];
  private plans = 0;

  constructor(
    readonly budgetSeconds: number,
    private readonly schedule: Schedule,
    private readonly options: { startStep: number; startSeconds: number; warmupGiven: boolean; planned?: number },
  ) {
    this.marks.push({ step: options.startStep, seconds: options.startSeconds, overhead: 0 });
    if (options.planned) {
      this.totalSteps = options.planned; // a resumed run keeps the plan it made
      this.fixed = true;
    }
  }

  /**
   * Records that `step` ended at `seconds`, `overheadSeconds` of which went to validation since the previous
   * step; (re)plans at the planning steps. Returns true when the total changed.
   */
  afterStep(step: number, seconds: number, overheadSeconds: number, overheads: Overheads): boolean {
    const previous = this.marks[this.marks.length - 1];
    this.marks.push({ step, seconds, overhead: previous.overhead + overheadSeconds });
    if (this.fixed) return false;
    const count = step - this.options.startStep;
    const late = seconds - this.options.startSeconds >= planningFraction * this.budgetSeconds;
    const last = planningSteps[planningSteps.length - 1];
    if (!planningSteps.includes(count) && !late) return false;
    const before = this.totalSteps;
    this.totalSteps = this.planFrom(step, seconds, overheads);
    this.plans++;
    if (late || count >= last) this.fixed = true;
    this.schedule.totalSteps = this.totalSteps;
    if (!this.options.warmupGiven) this.schedule.warmupSteps = defaultWarmup(this.totalSteps);
    return this.totalSteps !== before;
  }

  /** How many times the total was planned. */
  get planCount(): number {
    return this.plans;
  }

  /**
   * Seconds of one training step, without validation: the mean over the later half of the steps so far (steps
   * get faster for a while as memory and caches settle), or over all of them at first.
   */
  secondsPerStep(): number {
    const end = this.marks[this.marks.length - 1];
    const measured = end.step - this.options.startStep;
    const from =
      measured > 2 * settlingSteps ? this.marks[Math.max(settlingSteps, Math.floor(measured / 2))] : this.marks[0];
    const steps = end.step - from.step;
    return steps > 0 ? (end.seconds - from.seconds - (end.overhead - from.overhead)) / steps : NaN;
  }

  private planFrom(step: number, seconds: number, overheads: Overheads): number {
    const perStep = this.secondsPerStep() + overheads.validationSeconds / Math.max(1, overheads.evalEvery);
    const remaining = this.budgetSeconds - seconds;
    const more = Number.isFinite(perStep) && perStep > 0 ? Math.floor(remaining / perStep) : 0;
    return Math.max(step + 1, step + more);
  }

  /** The part of the training time that has passed, 0 to 1. */
  timeFraction(seconds: number): number {
    const span = this.budgetSeconds - this.options.startSeconds;
    return span > 0 ? Math.min(1, Math.max(0, (seconds - this.options.startSeconds) / span)) : 1;
  }

  /**
   * The (possibly fractional) step the learning rate is taken at: the step itself, or further along when the
   * clock (at the step's expected end) is ahead of the plan, so that the schedule reaches its final rate by the
   * deadline.
   */
  rateStep(step: number, seconds: number): number {
    if (!this.fixed) return step;
    const stepSeconds = this.secondsPerStep();
    const ends = seconds + (Number.isFinite(stepSeconds) ? stepSeconds : 0); // when this step will end
    return Math.max(step, this.timeFraction(ends) * this.totalSteps);
  }

  /**
   * How far the run is, 0 to 1, never going back: by the clock while planning, then by steps or by the clock,
   * whichever is further.
   */
  fraction(step: number, seconds: number): number {
    if (this.done(step, seconds)) return 1;
    const bySteps = this.fixed && this.totalSteps > 0 ? step / this.totalSteps : 0;
    return Math.min(1, Math.max(bySteps, this.timeFraction(seconds)));
  }

  /** True when the planned steps are done, or another step would end nearer after the deadline than before. */
  done(step: number, seconds: number): boolean {
    if (this.totalSteps > 0 && step >= this.totalSteps) return true;
    const halfStep = step > this.options.startStep ? this.secondsPerStep() / 2 : 0;
    return this.timeFraction(seconds + (Number.isFinite(halfStep) ? halfStep : 0)) >= 1;
  }
}
