/**
 * Seeded nonparametric bootstrap confidence intervals (percentile and BCa) for any statistic of n units.
 *
 * Units are resampled with replacement (for paired data: whole pairs, never single tokens). Resamples
 * whose statistic is not finite (e.g. zero SD in a d) are skipped and counted, as spec §8.14 asks.
 *
 * @module
 */
import { Prng } from "../random/prng.ts";
import { quantileSorted } from "./descriptive.ts";
import { normalCdf, normalQuantile } from "./special.ts";

/**
 * Options for {@linkcode bootstrapInterval}.
 *
 * @category Statistics
 */
export interface BootstrapOptions {
  /** Number of resamples B (default 10,000). */
  resamples?: number;
  /** Seed of the library PRNG (default 0). The same seed gives the same interval. */
  seed?: number;
  /** Confidence level (default 0.95). */
  level?: number;
  /** "percentile" (default) or "bca" (bias-corrected and accelerated; jackknife acceleration). */
  method?: "percentile" | "bca";
}

/**
 * A bootstrap confidence interval.
 *
 * @category Statistics
 */
export interface BootstrapInterval {
  /** The statistic on the original sample. */
  estimate: number;
  /** Lower confidence limit. */
  lower: number;
  /** Upper confidence limit. */
  upper: number;
  /** Confidence level. */
  level: number;
  /** Interval method used. */
  method: "percentile" | "bca";
  /** Resamples requested. */
  resamples: number;
  /** Resamples skipped because the statistic was not finite. */
  skipped: number;
  /** Standard deviation of the finite bootstrap replicates (the bootstrap standard error). */
  standardError: number;
  /** PRNG seed used for the resamples. */
  seed: number;
}

/**
 * Bootstrap CI for `statistic`, which receives the indices of a resample (length n, values in [0, n)).
 * The percentile interval takes the (1−level)/2 and (1+level)/2 quantiles of the replicates (type-7
 * interpolation). BCa adjusts those quantile levels by the bias z0 (share of replicates below the
 * estimate) and the acceleration a from a leave-one-out jackknife.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bootstrapInterval } from "./bootstrap.ts";
 * const xs = [3.1, 2.4, 5.0, 4.2, 3.3, 2.9, 4.8, 3.7];
 * const meanOf = (idx: Int32Array) => idx.reduce((s, i) => s + xs[i], 0) / idx.length;
 * const ci = bootstrapInterval(xs.length, meanOf, { seed: 1, resamples: 2000 });
 * assert.ok(ci.lower < ci.estimate && ci.estimate < ci.upper);
 * ```
 *
 * @category Statistics
 */
export function bootstrapInterval(
  n: number,
  statistic: (indices: Int32Array) => number,
  options: BootstrapOptions = {},
): BootstrapInterval {
  const B = options.resamples ?? 10_000;
  const level = options.level ?? 0.95;
  const seed = options.seed ?? 0;
  const method = options.method ?? "percentile";
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`bootstrap: need at least one unit, got n=${n}`);
  if (!Number.isInteger(B) || B < 1) {
    throw new RangeError(`bootstrap: resamples must be a positive integer, got ${B}`);
  }
  if (!(level > 0 && level < 1)) throw new RangeError(`bootstrap: level must be in (0, 1), got ${level}`);
  const identity = Int32Array.from({ length: n }, (_, i) => i);
  const estimate = statistic(identity);
  const rng = new Prng(seed);
  const reps: number[] = [];
  const idx = new Int32Array(n);
  let skipped = 0;
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < n; i++) idx[i] = rng.nextInt(n);
    const v = statistic(idx);
    if (Number.isFinite(v)) reps.push(v);
    else skipped++;
  }
  const base = { estimate, level, method, resamples: B, skipped, seed };
  if (reps.length === 0) return { ...base, lower: NaN, upper: NaN, standardError: NaN };
  reps.sort((a, b) => a - b);
  let m = 0;
  for (const v of reps) m += v;
  m /= reps.length;
  let ss = 0;
  for (const v of reps) ss += (v - m) * (v - m);
  const standardError = reps.length > 1 ? Math.sqrt(ss / (reps.length - 1)) : 0;
  const alpha = (1 - level) / 2;
  let qLo = alpha, qHi = 1 - alpha;
  if (method === "bca") {
    if (!Number.isFinite(estimate)) return { ...base, lower: NaN, upper: NaN, standardError };
    // Bias correction: ties count half, so a statistic with a discrete distribution is not biased by them.
    let below = 0;
    for (const v of reps) below += v < estimate ? 1 : v === estimate ? 0.5 : 0;
    const p0 = Math.min(
      Math.max(below / reps.length, 1 / (reps.length + 1)),
      reps.length / (reps.length + 1),
    );
    const z0 = normalQuantile(p0);
    const a = jackknifeAcceleration(n, statistic);
    const adj = (z: number) => normalCdf(z0 + (z0 + z) / (1 - a * (z0 + z)));
    qLo = adj(normalQuantile(alpha));
    qHi = adj(normalQuantile(1 - alpha));
  }
  return { ...base, lower: quantileSorted(reps, qLo), upper: quantileSorted(reps, qHi), standardError };
}

/** Acceleration a = Σ(θ̄ − θ₍ᵢ₎)³ / (6 [Σ(θ̄ − θ₍ᵢ₎)²]^{3/2}) from leave-one-out estimates. */
function jackknifeAcceleration(n: number, statistic: (indices: Int32Array) => number): number {
  if (n < 3) return 0;
  const loo: number[] = [];
  const idx = new Int32Array(n - 1);
  for (let leave = 0; leave < n; leave++) {
    for (let i = 0, j = 0; i < n; i++) if (i !== leave) idx[j++] = i;
    const v = statistic(idx);
    if (Number.isFinite(v)) loo.push(v);
  }
  if (loo.length < 3) return 0;
  const m = loo.reduce((s, v) => s + v, 0) / loo.length;
  let num = 0, den = 0;
  for (const v of loo) {
    const d = m - v;
    num += d * d * d;
    den += d * d;
  }
  return den > 0 ? num / (6 * Math.pow(den, 1.5)) : 0;
}
