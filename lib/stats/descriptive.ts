/**
 * Descriptive statistics on plain number arrays: mean, variance, standard deviation, quantiles, ranks.
 *
 * @module
 */

/**
 * Arithmetic mean; NaN for an empty array.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { meanOf } from "./descriptive.ts";
 * assert.equal(meanOf([1, 2, 3]), 2);
 * ```
 *
 * @category Statistics
 */
export function meanOf(xs: ArrayLike<number>): number {
  if (xs.length === 0) return NaN;
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}

/**
 * Variance with `ddof` delta degrees of freedom (1 = sample variance, the default; 0 = population).
 * Two-pass algorithm for accuracy. NaN when n - ddof <= 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { varianceOf } from "./descriptive.ts";
 * assert.ok(Math.abs(varianceOf([1, 2, 3, 4]) - 5 / 3) < 1e-12); // sample variance, 1.6667
 * ```
 *
 * @category Statistics
 */
export function varianceOf(xs: ArrayLike<number>, ddof = 1): number {
  const n = xs.length;
  if (n - ddof <= 0) return NaN;
  const m = meanOf(xs);
  let ss = 0, comp = 0;
  for (let i = 0; i < n; i++) {
    const d = xs[i] - m;
    ss += d * d;
    comp += d;
  }
  // The compensation term removes the rounding error left in the mean.
  return (ss - (comp * comp) / n) / (n - ddof);
}

/**
 * Standard deviation with `ddof` (default 1, the sample SD).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { standardDeviationOf } from "./descriptive.ts";
 * assert.equal(standardDeviationOf([2, 4, 4, 4, 5, 5, 7, 9], 0), 2);
 * ```
 *
 * @category Statistics
 */
export function standardDeviationOf(xs: ArrayLike<number>, ddof = 1): number {
  return Math.sqrt(varianceOf(xs, ddof));
}

/**
 * Quantile of sorted data by linear interpolation between order statistics (Hyndman-Fan type 7, the
 * default of R and numpy). `sorted` must be ascending.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { quantileSorted } from "./descriptive.ts";
 * assert.equal(quantileSorted([1, 2, 3, 4], 0.5), 2.5);
 * ```
 *
 * @category Statistics
 */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile: q must be in [0, 1], got ${q}`);
  const h = (n - 1) * q;
  const lo = Math.floor(h), hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/**
 * Ranks 1..n with ties given their average rank ("midranks"), plus the tie group sizes (> 1 only).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { averageRanks } from "./descriptive.ts";
 * assert.deepEqual(Array.from(averageRanks([10, 20, 20, 30]).ranks), [1, 2.5, 2.5, 4]);
 * ```
 *
 * @category Statistics
 */
export function averageRanks(xs: ArrayLike<number>): { ranks: number[]; ties: number[] } {
  const n = xs.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => xs[a] - xs[b]);
  const ranks = new Array<number>(n);
  const ties: number[] = [];
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && xs[order[j + 1]] === xs[order[i]]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]] = r;
    if (j > i) ties.push(j - i + 1);
    i = j + 1;
  }
  return { ranks, ties };
}
