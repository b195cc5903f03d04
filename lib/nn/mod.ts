/**
 * Transformer building blocks on tfjs tensors, one implementation each: norms, rotary positions,
 * causal grouped-query attention, MLPs and embeddings. Functions take explicit weight tensors.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { rmsNorm } from "./mod.ts";
 * await tf.ready();
 * const y = rmsNorm(tf.ones([1, 4]), tf.ones([4]), 1e-6);
 * assert.deepEqual(y.shape, [1, 4]);
 * ```
 *
 * @module
 */
export * from "./norm.ts";
export * from "./rotary.ts";
export * from "./attention.ts";
export * from "./mlp.ts";
export * from "./embedding.ts";
export * from "./chunked_loss.ts";
