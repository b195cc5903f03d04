/**
 * Paired comparisons (baseline vs intervention on the same units): standardised effect sizes, the paired
 * t test, and one call that reports everything the Recync tables need.
 *
 * Differences are taken as Δ_i = a_i − b_i in the order the arrays are passed; Recync passes
 * (baseline outcome, intervention outcome) for "lower is better" outcomes, so Δ > 0 means improvement.
 *
 * Effect sizes (all share the numerator meanOf(Δ)):
 * - d_z      = meanOf(Δ) / sd(Δ)                       (within-unit; the default headline)
 * - d_av     = meanOf(Δ) / ((sd(a) + sd(b)) / 2)
 * - d_pooled = meanOf(Δ) / sqrt((sd(a)² + sd(b)²) / 2)
 * with sample SDs (ddof = 1).
 *
 * @module
 */
import { type BootstrapInterval, bootstrapInterval, type BootstrapOptions } from "./bootstrap.ts";
import { meanOf, standardDeviationOf } from "./descriptive.ts";
import { studentTQuantile, studentTTwoSidedP } from "./special.ts";
import { type WilcoxonOptions, type WilcoxonResult, wilcoxonSignedRank } from "./wilcoxon.ts";

/**
 * Which standardised mean difference to compute.
 *
 * @category Statistics
 */
export type PairedEffectKind = "dz" | "dav" | "pooled";

function checkPaired(a: ArrayLike<number>, b: ArrayLike<number>, where: string): void {
  if (a.length !== b.length) {
    throw new RangeError(`${where}: paired arrays differ in length (${a.length} vs ${b.length})`);
  }
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]) || !Number.isFinite(b[i])) {
      throw new RangeError(`${where}: pair ${i} holds a non-finite value (${a[i]}, ${b[i]})`);
    }
  }
}

/**
 * A paired standardised mean difference of a − b (see the module notes for the three formulas).
 * NaN when the denominator is zero or n < 2.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pairedEffectSize } from "./paired.ts";
 * // mean Δ 1.5 / sd Δ 0.577 ≈ 2.598
 * assert.ok(Math.abs(pairedEffectSize([3, 4, 5, 6], [1, 3, 3, 5], "dz") - 2.598) < 1e-3);
 * ```
 *
 * @category Statistics
 */
export function pairedEffectSize(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  kind: PairedEffectKind = "dz",
): number {
  checkPaired(a, b, "pairedEffectSize");
  const n = a.length;
  if (n < 2) return NaN;
  const d = Array.from({ length: n }, (_, i) => a[i] - b[i]);
  const m = meanOf(d);
  let den: number;
  if (kind === "dz") den = standardDeviationOf(d);
  else if (kind === "dav") den = (standardDeviationOf(a) + standardDeviationOf(b)) / 2;
  else if (kind === "pooled") {
    den = Math.sqrt((standardDeviationOf(a) ** 2 + standardDeviationOf(b) ** 2) / 2);
  } else throw new RangeError(`pairedEffectSize: unknown kind '${kind}' (use dz, dav or pooled)`);
  return den > 0 ? m / den : NaN;
}

/**
 * The outcome of {@linkcode pairedTTest}.
 *
 * @category Statistics
 */
export interface PairedTResult {
  /** Number of pairs. */
  n: number;
  /** mean(a − b). */
  meanDifference: number;
  /** Sample SD of a − b. */
  sdDifference: number;
  /** t statistic mean / (sd / √n). */
  t: number;
  /** Degrees of freedom n − 1. */
  df: number;
  /** Two-sided p-value from the t distribution (regularized incomplete beta). */
  pValue: number;
  /** Confidence interval of the mean difference. */
  ciLower: number;
  /** Upper limit of the mean difference CI. */
  ciUpper: number;
  /** Level of that CI. */
  level: number;
}

/**
 * Paired (one-sample on differences) t test of H0: meanOf(a − b) = 0, two-sided.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pairedTTest } from "./paired.ts";
 * // Student's sleep data (R: t.test(extra ~ group, data = sleep, paired = TRUE)): t = -4.0621, p = 0.002833.
 * const g1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0];
 * const g2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4];
 * const r = pairedTTest(g1, g2);
 * assert.deepEqual([r.t.toFixed(4), r.df, r.pValue.toFixed(6)], ["-4.0621", 9, "0.002833"]);
 * ```
 *
 * @category Statistics
 */
export function pairedTTest(a: ArrayLike<number>, b: ArrayLike<number>, level = 0.95): PairedTResult {
  checkPaired(a, b, "pairedTTest");
  const n = a.length;
  if (n < 2) throw new RangeError(`pairedTTest: need at least 2 pairs, got ${n}`);
  const d = Array.from({ length: n }, (_, i) => a[i] - b[i]);
  const m = meanOf(d);
  const sd = standardDeviationOf(d);
  const df = n - 1;
  const se = sd / Math.sqrt(n);
  // sd = 0: t is ±∞ (p = 0) when the mean is non-zero and undefined (p = 1 by convention) when it is zero.
  const t = se > 0 ? m / se : m === 0 ? 0 : Math.sign(m) * Infinity;
  const pValue = se > 0 ? studentTTwoSidedP(t, df) : m === 0 ? 1 : 0;
  const q = studentTQuantile(1 - (1 - level) / 2, df);
  return {
    n,
    meanDifference: m,
    sdDifference: sd,
    t,
    df,
    pValue,
    ciLower: m - q * se,
    ciUpper: m + q * se,
    level,
  };
}

/**
 * Options for {@linkcode pairedComparison}.
 *
 * @category Statistics
 */
export interface PairedComparisonOptions {
  /** Effect size whose bootstrap CI is reported (default "dz"). */
  effect?: PairedEffectKind;
  /** Bootstrap options (default: 10,000 percentile resamples, seed 0). */
  bootstrap?: BootstrapOptions;
  /** Wilcoxon options. */
  wilcoxon?: WilcoxonOptions;
  /** Level of the t-based CI of the mean difference (default 0.95). */
  level?: number;
}

/**
 * Everything {@linkcode pairedComparison} reports.
 *
 * @category Statistics
 */
export interface PairedComparison {
  /** Number of pairs. */
  n: number;
  /** mean(a − b). */
  meanDifference: number;
  /** d_z, d_av and pooled d, all of a − b. */
  dz: number;
  /** d_av of a − b. */
  dav: number;
  /** Pooled-SD d of a − b. */
  dPooled: number;
  /** The effect size the CI belongs to. */
  effect: PairedEffectKind;
  /** Bootstrap CI of `effect` (resampling pairs). */
  effectCi: BootstrapInterval;
  /** The paired t test. */
  t: PairedTResult;
  /** The Wilcoxon signed-rank test on a − b. */
  wilcoxon: WilcoxonResult;
}

/**
 * d_z, d_av and pooled d with a seeded bootstrap CI (pairs resampled), the paired t test and the
 * Wilcoxon signed-rank test, all on Δ = a − b.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pairedComparison } from "./paired.ts";
 * const base = [0.30, 0.25, 0.40, 0.10, 0.35, 0.20, 0.45, 0.15];
 * const interv = [0.10, 0.20, 0.15, 0.12, 0.05, 0.10, 0.30, 0.02];
 * const r = pairedComparison(base, interv, { bootstrap: { seed: 7, resamples: 1000 } });
 * assert.ok(r.dz > 0 && r.effectCi.lower < r.dz);
 * ```
 *
 * @category Statistics
 */
export function pairedComparison(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  options: PairedComparisonOptions = {},
): PairedComparison {
  checkPaired(a, b, "pairedComparison");
  const n = a.length;
  const effect = options.effect ?? "dz";
  const A = Float64Array.from(a), Bv = Float64Array.from(b);
  const ra = new Float64Array(n), rb = new Float64Array(n);
  const effectCi = bootstrapInterval(n, (idx) => {
    const k = idx.length;
    const sa = ra.subarray(0, k), sb = rb.subarray(0, k);
    for (let i = 0; i < k; i++) {
      sa[i] = A[idx[i]];
      sb[i] = Bv[idx[i]];
    }
    return pairedEffectSize(sa, sb, effect);
  }, options.bootstrap);
  const delta = Array.from({ length: n }, (_, i) => A[i] - Bv[i]);
  return {
    n,
    meanDifference: meanOf(delta),
    dz: pairedEffectSize(A, Bv, "dz"),
    dav: pairedEffectSize(A, Bv, "dav"),
    dPooled: pairedEffectSize(A, Bv, "pooled"),
    effect,
    effectCi,
    t: pairedTTest(A, Bv, options.level ?? 0.95),
    wilcoxon: wilcoxonSignedRank(delta, options.wilcoxon),
  };
}
