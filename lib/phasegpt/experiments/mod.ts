/**
 * PhaseGPT experiments: plans, the resumable and shardable sweep, reports with the preregistered Phase B
 * criteria, and the chance-level analysis of the order parameter R.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { analyticChanceR } from "./mod.ts";
 * assert.ok(analyticChanceR({ heads: 12, tokens: 512, oscillators: 32 })["heads-mean"].mean > 0.87);
 * ```
 *
 * @module
 */
export * from "./plan.ts";
export * from "./sweep.ts";
export * from "./report.ts";
export * from "./chance.ts";
export * from "./charts.ts";
