/**
 * The reFlow interpretability experiments (spec §4): twelve pure functions over a reFlow model and its
 * tokenizer that return JSON results and Observable Plot figures, the maths they share, the report
 * writer and the checkpoint inspector behind `deno task reflow`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gini, parseExperimentIds } from "./mod.ts";
 * assert.equal(gini([1, 1, 1]), 0);
 * assert.deepEqual(parseExperimentIds("2,3"), [2, 3]);
 * ```
 *
 * @module
 */
export * from "./maths.ts";
export * from "./access.ts";
export * from "./defaults.ts";
export * from "./figures.ts";
export * from "./experiments.ts";
export * from "./word_tokenizer.ts";
export * from "./report.ts";
