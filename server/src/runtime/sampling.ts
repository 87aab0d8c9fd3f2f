// Choosing the next token from a row of logits: greedy, temperature, top-k and top-p (nucleus) sampling with
// an optional seeded random source, plus log-softmax helpers that give the model's probability of a token
// (callers compare it against confidence thresholds). Scratch buffers are reused from token to token.
import { uniform } from '../engine/random';

export interface SamplingOptions {
  /** 0 (the default) picks the most likely token; otherwise logits are divided by it before sampling. */
  temperature?: number;
  /** Keep the smallest set of most likely tokens whose probabilities add up to at least topP (0 < topP ≤ 1). */
  topP?: number;
  /** Keep only the topK most likely tokens (0 or absent: no limit). */
  topK?: number;
  /** Seed for reproducible sampling; without one, Math.random is used. */
  seed?: number;
}

/** Index of the largest logit (the first one on ties). */
export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] > bestValue) {
      bestValue = logits[i];
      best = i;
    }
  }
  return best;
}

/** log Σ exp(logits), computed stably. */
export function logSumExp(logits: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return max + Math.log(sum);
}

/** log softmax(logits)[id]. */
export function logProbability(logits: ArrayLike<number>, id: number): number {
  return logits[id] - logSumExp(logits);
}

/** softmax(logits)[id]. */
export function tokenProbability(logits: ArrayLike<number>, id: number): number {
  return Math.exp(logProbability(logits, id));
}

/** Writes log softmax(logits) into `out` (allocated when absent) and returns it. */
export function logSoftmax(logits: ArrayLike<number>, out?: Float32Array): Float32Array {
  const result = out ?? new Float32Array(logits.length);
  const lse = logSumExp(logits);
  for (let i = 0; i < logits.length; i++) result[i] = logits[i] - lse;
  return result;
}

/** A token id with its log probability. */
export interface TokenLogProbability {
  id: number;
  logprob: number;
}

/**
 * The `k` most likely ids of one row of logits with their log softmax, most likely first (ties: lower id
 * first). One pass with a small sorted list, so k ≪ vocabulary size costs about one read of the row.
 */
export function topLogProbabilities(
  logits: ArrayLike<number>,
  k: number,
  lse = logSumExp(logits),
): TokenLogProbability[] {
  const count = Math.min(Math.max(0, Math.floor(k)), logits.length);
  const ids: number[] = [];
  for (let i = 0; i < logits.length && count > 0; i++) {
    const value = logits[i];
    if (ids.length === count && !(value > logits[ids[count - 1]])) continue;
    let at = ids.length === count ? count - 1 : ids.length;
    while (at > 0 && value > logits[ids[at - 1]]) {
      if (at < count) ids[at] = ids[at - 1];
      at--;
    }
    ids[at] = i;
  }
  return ids.map((id) => ({ id, logprob: logits[id] - lse }));
}

/**
 * A reusable chooser of next tokens for one vocabulary size. Filtering follows the usual order: temperature,
 * then top-k, then top-p over what is left.
 */
export class Sampler {
  private readonly temperature: number;
  private readonly topP: number;
  private readonly topK: number;
  private readonly random: () => number;
  // Scratch space, sized on first use: candidate ids and their (unnormalized, then normalized) weights.
  private ids = new Int32Array(0);
  private weights = new Float64Array(0);

  constructor(options: SamplingOptions = {}) {
    const temperature = options.temperature ?? 0;
    if (!(temperature >= 0) || !Number.isFinite(temperature))
      throw new Error(`temperature must be ≥ 0, got ${options.temperature}`);
    const topP = options.topP ?? 1;
    if (!(topP > 0 && topP <= 1)) throw new Error(`topP must be in (0, 1], got ${options.topP}`);
    const topK = options.topK ?? 0;
    if (!(Number.isInteger(topK) && topK >= 0))
      throw new Error(`topK must be a non-negative integer, got ${options.topK}`);
    this.temperature = temperature;
    this.topP = topP;
    this.topK = topK;
    this.random = options.seed === undefined ? Math.random : uniform(options.seed);
  }

  get isGreedy(): boolean {
    return this.temperature === 0 || this.topK === 1;
  }

  /** Picks the next token from one row of logits (not modified); tokenProbability gives the model's probability. */
  pick(logits: ArrayLike<number>): number {
    return this.isGreedy ? argmax(logits) : this.sample(logits);
  }

  private sample(logits: ArrayLike<number>): number {
    const n = logits.length;
    if (this.ids.length < n) {
      this.ids = new Int32Array(n);
      this.weights = new Float64Array(n);
    }
    const ids = this.ids;
    const weights = this.weights;
    let max = -Infinity;
    for (let i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
    const inverseTemperature = 1 / this.temperature;

    // exp((logit − max) / T) for every token; the total normalizes them.
    let count = n;
    let total = 0;
    for (let i = 0; i < n; i++) {
      ids[i] = i;
      const w = Math.exp((logits[i] - max) * inverseTemperature);
      weights[i] = w;
      total += w;
    }

    if (this.topP < 1) {
      // A token with probability ≤ (1 − topP) / n can never be in the nucleus (it and everything after it in
      // sorted order add up to at most 1 − topP), so drop those first: cheap, and it leaves few tokens when the
      // model is confident. (After top-k the bound only gets looser, so this holds for top-k + top-p too.)
      const floor = ((1 - this.topP) / n) * total;
      let kept = 0;
      for (let i = 0; i < count; i++) {
        if (weights[i] > floor) {
          ids[kept] = ids[i];
          weights[kept] = weights[i];
          kept++;
        }
      }
      count = kept;
    }
    if (this.topK > 0 && this.topK < count) {
      count = selectLargest(ids, weights, count, this.topK);
    }
    if (this.topP < 1) {
      // After top-k, top-p applies to the renormalized distribution of what is left.
      let keptTotal = total;
      if (this.topK > 0) {
        keptTotal = 0;
        for (let i = 0; i < count; i++) keptTotal += weights[i];
      }
      count = selectNucleus(ids, weights, count, this.topP * keptTotal);
    }

    let sum = 0;
    for (let i = 0; i < count; i++) sum += weights[i];
    let r = this.random() * sum;
    for (let i = 0; i < count; i++) {
      r -= weights[i];
      if (r < 0) return ids[i];
    }
    return ids[count - 1];
  }
}

/** Moves the k largest weights (with their ids) to the front, in no particular order; returns k. */
function selectLargest(ids: Int32Array, weights: Float64Array, count: number, k: number): number {
  // Quickselect on [0, count).
  let lo = 0;
  let hi = count - 1;
  while (lo < hi) {
    const pivot = weights[(lo + hi) >>> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (weights[i] > pivot) i++;
      while (weights[j] < pivot) j--;
      if (i <= j) {
        swap(ids, weights, i, j);
        i++;
        j--;
      }
    }
    if (k - 1 <= j) hi = j;
    else if (k - 1 >= i) lo = i;
    else break;
  }
  return k;
}

/**
 * Moves the smallest set of largest weights whose sum reaches `target` to the front (in no particular order)
 * and returns its size: the nucleus of top-p sampling. Found by partitioning rather than sorting, in expected
 * linear time: a nearly flat distribution keeps thousands of tokens, and a sort per token would be slow.
 */
function selectNucleus(ids: Int32Array, weights: Float64Array, count: number, target: number): number {
  let lo = 0; // [0, lo) is in the nucleus, its weights adding up to `included` < target
  let hi = count; // the rest of the nucleus is a prefix of [lo, hi)
  let included = 0;
  while (hi - lo > 1) {
    const pivot = weights[(lo + hi) >>> 1];
    // Three-way partition of [lo, hi): [lo, greater) > pivot, [greater, less) = pivot, [less, hi) < pivot.
    let greater = lo;
    let i = lo;
    let less = hi;
    let greaterSum = 0;
    while (i < less) {
      const w = weights[i];
      if (w > pivot) {
        greaterSum += w;
        swap(ids, weights, i++, greater++);
      } else if (w < pivot) {
        swap(ids, weights, i, --less);
      } else {
        i++;
      }
    }
    if (included + greaterSum >= target) {
      hi = greater;
      continue;
    }
    const equalSum = (less - greater) * pivot;
    if (included + greaterSum + equalSum >= target) {
      return Math.min(less, greater + Math.max(1, Math.ceil((target - included - greaterSum) / pivot)));
    }
    included += greaterSum + equalSum;
    lo = less;
  }
  return hi;
}

function swap(ids: Int32Array, weights: Float64Array, i: number, j: number): void {
  const id = ids[i];
  ids[i] = ids[j];
  ids[j] = id;
  const w = weights[i];
  weights[i] = weights[j];
  weights[j] = w;
}
