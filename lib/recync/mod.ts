/**
 * Recync: coherence-dip detection (cosim monitor), token-level control (v3) and response-level
 * checkpoint restart (v4), with the paired experiment harness, metrics and report.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CosimMonitor, RecyncRestartController } from "./mod.ts";
 * const ctl = new RecyncRestartController([0], { maxRestarts: 2 });
 * assert.equal(ctl.options.seedOffset, 10000);
 * assert.equal(new CosimMonitor().options.window, 20);
 * ```
 *
 * @module
 */
export * from "./monitor.ts";
export * from "./qp.ts";
export * from "./potential.ts";
export * from "./cbf.ts";
export * from "./order_params.ts";
export * from "./controller.ts";
export * from "./metrics.ts";
export * from "./restart.ts";
export * from "./sham.ts";
export * from "./null_process.ts";
export * from "./controls.ts";
export * from "./harness.ts";
export * from "./report.ts";
export * from "./judge.ts";
