/**
 * reFlow: a decoder whose embedding is factorised into a recipe matrix R `[V, S]` and a signal basis Φ
 * `[S, d]`, used at both ends (E = R·Φ, no LM head). Importing this module registers embedding kind
 * `reflow` and the reFlow presets (`reflow-1-small` ... `reflow-gpt2-new`, plus `-tiny` / `-mini`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { countParameters, modelPreset } from "../../mod.ts";
 * assert.equal(countParameters(modelPreset("reflow-1-small")), 46_471_680);
 * ```
 *
 * @module
 */
export * from "./embedding.ts";
export * from "./variants.ts";
export * from "./presets.ts";
export * from "./inspect.ts";
export * from "./load.ts";
export * from "./experiments/mod.ts";
