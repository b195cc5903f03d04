/**
 * Paired statistics for experiments: effect sizes (d_z, d_av, pooled d), seeded bootstrap CIs
 * (percentile, BCa), the paired t test, the Wilcoxon signed-rank test, binomial CIs (Wilson,
 * Clopper-Pearson) and the special functions behind them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pairedTTest } from "./mod.ts";
 * assert.equal(pairedTTest([2, 3, 5, 4], [1, 1, 2, 2]).df, 3);
 * ```
 *
 * @module
 */
export * from "./special.ts";
export * from "./descriptive.ts";
export * from "./binomial.ts";
export * from "./wilcoxon.ts";
export * from "./bootstrap.ts";
export * from "./paired.ts";
