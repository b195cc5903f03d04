/**
 * Wilcoxon signed-rank test for paired differences.
 *
 * Conventions (stated because packages differ):
 * - Zero differences are dropped before ranking (Wilcoxon's original rule, R's and scipy's default).
 * - V (R's name, scipy's `statistic` for the two-sided test is min(V⁺, V⁻)) is the sum of the ranks of
 *   the positive differences; tied |differences| get midranks.
 * - `method: "auto"` (default) uses the exact null distribution when fewer than 50 non-zero differences
 *   remain and none are tied and none were zero (R's rule); otherwise the normal approximation with the
 *   tie-corrected variance n(n+1)(2n+1)/24 − Σ(t³−t)/48 and a continuity correction of ½.
 * - `method: "exact"` also works with ties: it enumerates the permutation distribution of doubled ranks
 *   (all integers), which is exact conditional on the observed ranks.
 *
 * @module
 */
import { averageRanks } from "./descriptive.ts";
import { normalCdf } from "./special.ts";

/**
 * Options for {@linkcode wilcoxonSignedRank}.
 *
 * @category Statistics
 */
export interface WilcoxonOptions {
  /** "auto" (default), "exact" or "normal"; see the module notes. */
  method?: "auto" | "exact" | "normal";
  /** "two-sided" (default), "greater" (differences tend to be positive) or "less". */
  alternative?: "two-sided" | "greater" | "less";
  /** Continuity correction for the normal approximation (default true). */
  correction?: boolean;
}

/**
 * The outcome of {@linkcode wilcoxonSignedRank}.
 *
 * @category Statistics
 */
export interface WilcoxonResult {
  /** Sum of ranks of the positive differences (R's V). */
  statistic: number;
  /** Sum of ranks of the negative differences. */
  negativeRankSum: number;
  /** Number of non-zero differences used. */
  n: number;
  /** Number of zero differences dropped. */
  zeros: number;
  /** Whether |differences| had ties. */
  hasTies: boolean;
  /** p-value under the chosen alternative. */
  pValue: number;
  /** Which null distribution produced the p-value. */
  method: "exact" | "normal";
  /** The standardised statistic (normal method only). */
  z?: number;
  /** The alternative hypothesis tested. */
  alternative: "two-sided" | "greater" | "less";
}

/**
 * Wilcoxon signed-rank test on paired differences d_i (e.g. baseline − intervention).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { wilcoxonSignedRank } from "./wilcoxon.ts";
 * // Hollander & Wolfe's depression-scale example (R's ?wilcox.test): V = 40, one-sided p = 0.01953.
 * const x = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30];
 * const y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29];
 * const r = wilcoxonSignedRank(x.map((v, i) => v - y[i]), { alternative: "greater" });
 * assert.equal(r.statistic, 40);
 * assert.equal(r.pValue.toFixed(5), "0.01953");
 * ```
 *
 * @category Statistics
 */
export function wilcoxonSignedRank(
  differences: ArrayLike<number>,
  options: WilcoxonOptions = {},
): WilcoxonResult {
  const alternative = options.alternative ?? "two-sided";
  const correction = options.correction ?? true;
  const nonzero: number[] = [];
  for (let i = 0; i < differences.length; i++) {
    const d = differences[i];
    if (!Number.isFinite(d)) throw new RangeError(`wilcoxonSignedRank: difference ${i} is not finite (${d})`);
    if (d !== 0) nonzero.push(d);
  }
  const zeros = differences.length - nonzero.length;
  const n = nonzero.length;
  const { ranks, ties } = averageRanks(nonzero.map(Math.abs));
  let vPlus = 0;
  for (let i = 0; i < n; i++) if (nonzero[i] > 0) vPlus += ranks[i];
  const total = (n * (n + 1)) / 2;
  const hasTies = ties.length > 0;
  const base = { statistic: vPlus, negativeRankSum: total - vPlus, n, zeros, hasTies, alternative };
  if (n === 0) return { ...base, pValue: 1, method: "exact" };
  const method = options.method === "exact" || options.method === "normal"
    ? options.method
    : (n < 50 && !hasTies && zeros === 0 ? "exact" : "normal");
  if (method === "exact") {
    if (n > 1000) {
      throw new RangeError(`wilcoxonSignedRank: exact method limited to 1000 differences, got ${n}`);
    }
    const pValue = exactSignedRankP(ranks, vPlus, alternative);
    return { ...base, pValue, method: "exact" };
  }
  const mu = total / 2;
  let tieTerm = 0;
  for (const t of ties) tieTerm += t * t * t - t;
  const sigma = Math.sqrt((n * (n + 1) * (2 * n + 1)) / 24 - tieTerm / 48);
  const diff = vPlus - mu;
  let cc = 0;
  if (correction) {
    cc = alternative === "two-sided" ? Math.sign(diff) * 0.5 : alternative === "greater" ? 0.5 : -0.5;
  }
  const z = sigma > 0 ? (diff - cc) / sigma : 0;
  let pValue: number;
  if (alternative === "two-sided") pValue = Math.min(1, 2 * Math.min(normalCdf(z), 1 - normalCdf(z)));
  else if (alternative === "greater") pValue = 1 - normalCdf(z);
  else pValue = normalCdf(z);
  return { ...base, pValue, method: "normal", z };
}

/** Exact p-value by counting sign assignments over doubled (integer) ranks. */
function exactSignedRankP(
  ranks: number[],
  vPlus: number,
  alternative: "two-sided" | "greater" | "less",
): number {
  const r2 = ranks.map((r) => Math.round(2 * r));
  const maxSum = r2.reduce((a, b) => a + b, 0);
  // counts[s] = number of subsets of ranks whose doubled sum is s; total 2^n (exact in doubles up to 2^53).
  let counts = new Float64Array(maxSum + 1);
  counts[0] = 1;
  let reach = 0;
  for (const r of r2) {
    const next = counts.slice();
    for (let s = 0; s <= reach; s++) if (counts[s] !== 0) next[s + r] += counts[s];
    counts = next;
    reach += r;
  }
  const totalCount = Math.pow(2, ranks.length);
  const v2 = Math.round(2 * vPlus);
  let le = 0, ge = 0;
  for (let s = 0; s <= maxSum; s++) {
    if (s <= v2) le += counts[s];
    if (s >= v2) ge += counts[s];
  }
  const pLe = le / totalCount, pGe = ge / totalCount;
  if (alternative === "greater") return pGe;
  if (alternative === "less") return pLe;
  return Math.min(1, 2 * Math.min(pLe, pGe));
}
