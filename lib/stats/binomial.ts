/**
 * Confidence intervals for a binomial proportion (the crisis-free rate): Wilson score and Clopper-Pearson.
 *
 * @module
 */
import { betaQuantile, normalQuantile } from "./special.ts";

/**
 * A proportion with its two-sided confidence interval.
 *
 * @category Statistics
 */
export interface ProportionInterval {
  /** Successes. */
  successes: number;
  /** Trials (the denominator). */
  n: number;
  /** successes / n (NaN when n = 0). */
  estimate: number;
  /** Lower confidence limit. */
  lower: number;
  /** Upper confidence limit. */
  upper: number;
  /** Confidence level, e.g. 0.95. */
  level: number;
  /** Which interval this is. */
  method: "wilson" | "clopper-pearson";
}

function checkCounts(successes: number, n: number): void {
  if (!Number.isInteger(successes) || !Number.isInteger(n) || n < 0 || successes < 0 || successes > n) {
    throw new RangeError(`binomial interval: need integers 0 <= successes <= n, got ${successes}/${n}`);
  }
}

/**
 * Wilson score interval (no continuity correction). Well-behaved near 0 and 1, unlike the Wald interval.
 * With n = 0 the interval is [0, 1].
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { wilsonInterval } from "./binomial.ts";
 * const ci = wilsonInterval(81, 263);
 * assert.deepEqual([ci.lower.toFixed(4), ci.upper.toFixed(4)], ["0.2553", "0.3662"]);
 * ```
 *
 * @category Statistics
 */
export function wilsonInterval(successes: number, n: number, level = 0.95): ProportionInterval {
  checkCounts(successes, n);
  if (n === 0) return { successes, n, estimate: NaN, lower: 0, upper: 1, level, method: "wilson" };
  const z = normalQuantile(1 - (1 - level) / 2);
  const p = successes / n, z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  return {
    successes,
    n,
    estimate: p,
    lower: successes === 0 ? 0 : Math.max(0, centre - half),
    upper: successes === n ? 1 : Math.min(1, centre + half),
    level,
    method: "wilson",
  };
}

/**
 * Clopper-Pearson ("exact") interval from beta quantiles; conservative (coverage >= level).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { clopperPearsonInterval } from "./binomial.ts";
 * const ci = clopperPearsonInterval(81, 263);
 * assert.deepEqual([ci.lower.toFixed(4), ci.upper.toFixed(4)], ["0.2527", "0.3676"]);
 * ```
 *
 * @category Statistics
 */
export function clopperPearsonInterval(successes: number, n: number, level = 0.95): ProportionInterval {
  checkCounts(successes, n);
  if (n === 0) return { successes, n, estimate: NaN, lower: 0, upper: 1, level, method: "clopper-pearson" };
  const a = (1 - level) / 2;
  return {
    successes,
    n,
    estimate: successes / n,
    lower: successes === 0 ? 0 : betaQuantile(a, successes, n - successes + 1),
    upper: successes === n ? 1 : betaQuantile(1 - a, successes + 1, n - successes),
    level,
    method: "clopper-pearson",
  };
}
