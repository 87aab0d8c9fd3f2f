// Tests the time-budget plan with a simulated clock (no wall time): the total settles within the first fifth
// of the budget after a bounded number of plans, the run ends on its last planned step near the budget with the
// learning rate at the end of its decay, and a run that slows down later stops at the deadline, schedule done.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { learningRateAt, type Schedule } from '../../server/src/engine/optimizer';
import { BudgetPlan, type Overheads } from '../../server/src/train/timeBudget';

interface Simulation {
  steps: number;
  seconds: number;
  lastRate: number;
  fractions: number[];
  totals: { step: number; seconds: number; total: number }[];
  plan: BudgetPlan;
  schedule: Schedule;
}

/** Runs the trainer's loop against a clock that advances by `stepSeconds(step)` per step and 0.5 s per validation. */
function simulate(budget: number, stepSeconds: (step: number) => number, evalEvery = 50): Simulation {
  const schedule: Schedule = { learningRate: 1e-3, warmupSteps: 100, totalSteps: 0, minLearningRateRatio: 0.1 };
  const plan = new BudgetPlan(budget, schedule, { startStep: 0, startSeconds: 0, warmupGiven: false });
  const overheads: Overheads = { validationSeconds: 0, evalEvery };
  let seconds = 0;
  let step = 0;
  let lastRate = NaN;
  const fractions: number[] = [];
  const totals: Simulation['totals'] = [];
  while (!plan.done(step, seconds)) {
    lastRate = learningRateAt(schedule, plan.rateStep(step, seconds));
    seconds += stepSeconds(step);
    step++;
    let overhead = 0;
    if (step % evalEvery === 0) {
      overhead = 0.5;
      seconds += overhead;
      overheads.validationSeconds = overhead;
    } else if (overheads.validationSeconds === 0) overheads.validationSeconds = 0.2;
    if (plan.afterStep(step, seconds, overhead, overheads)) totals.push({ step, seconds, total: plan.totalSteps });
    fractions.push(plan.fraction(step, seconds));
  }
  return { steps: step, seconds, lastRate, fractions, totals, plan, schedule };
}

/** Slow first steps (memory arenas), then 0.1 s with a little jitter. */
const warmingUp = (step: number) => (step < 2 ? 1.5 : 0.1 + 0.01 * Math.sin(step));

test('a time-budgeted run plans early, ends on its last planned step near the budget, schedule finished', () => {
  const budget = 180;
  const run = simulate(budget, warmingUp);
  const lastChange = run.totals.at(-1)!;
  assert.ok(lastChange.seconds <= 0.2 * budget, `the total still changed at ${lastChange.seconds}s`);
  assert.ok(run.plan.fixed && run.plan.planCount <= 6, `${run.plan.planCount} plans`);
  assert.equal(run.steps, run.plan.totalSteps, 'the run ends on its last planned step');
  assert.ok(run.seconds <= budget + 0.5, `the run took ${run.seconds}s of ${budget}s`);
  assert.ok(run.seconds >= 0.97 * budget, `the run used only ${run.seconds}s of ${budget}s`);
  const floor = run.schedule.learningRate * run.schedule.minLearningRateRatio;
  assert.ok(run.lastRate <= floor * 1.01, `the last learning rate ${run.lastRate} is not the final ${floor}`);
  assert.equal(run.fractions.at(-1), 1, 'the progress reaches 100%');
  for (let i = 1; i < run.fractions.length; i++)
    assert.ok(run.fractions[i] >= run.fractions[i - 1], 'progress never goes back');
  assert.equal(run.schedule.warmupSteps, Math.min(100, Math.floor(run.plan.totalSteps / 10)));
});

test('a run that slows down after planning stops at the deadline with its schedule finished', () => {
  const budget = 120;
  const run = simulate(budget, (step) => (step < 400 ? warmingUp(step) : 0.16));
  assert.ok(run.steps < run.plan.totalSteps, 'the slowdown leaves planned steps undone');
  assert.ok(Math.abs(run.seconds - budget) <= 0.16, `stopped at ${run.seconds}s, not at the deadline`);
  const floor = run.schedule.learningRate * run.schedule.minLearningRateRatio;
  assert.ok(run.lastRate <= floor * 1.01, `the last learning rate ${run.lastRate} is not the final ${floor}`);
  assert.equal(run.fractions.at(-1), 1);
});

test('a very short budget still plans from the first step and ends with the budget', () => {
  const run = simulate(3, (step) => (step < 1 ? 0.5 : 0.05));
  assert.ok(run.plan.totalSteps > 0 && run.steps > 3);
  assert.ok(run.seconds <= 3 + 0.5, `took ${run.seconds}s of 3s`);
  assert.equal(run.fractions.at(-1), 1);
});
