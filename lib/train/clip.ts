/**
 * Gradient clipping by global L2 norm, computed on the device without a readback.
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Tensor } from "../tensor_types.ts";

/**
 * The clipped gradients and the norm before clipping. The caller owns every returned tensor.
 *
 * @category Training
 */
export interface ClipResult {
  /** Clipped gradients by parameter name. */
  grads: Map<string, Tensor>;
  /** Global L2 norm of the gradients before clipping, a scalar. */
  norm: Tensor;
}

/**
 * Scales every gradient by `min(1, maxNorm / (norm + 1e-6))`, where `norm` is the L2 norm of all
 * gradients taken together (PyTorch's `clip_grad_norm_`). The input tensors are not disposed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { clipByGlobalNorm } from "./clip.ts";
 * import { initBackend } from "../backend/backend.ts";
 * await initBackend({ backend: "cpu" });
 * const grads = new Map([["a", tf.tensor1d([3, 0])], ["b", tf.tensor1d([4])]]);
 * const { grads: clipped, norm } = clipByGlobalNorm(grads, 1);
 * assert.equal(norm.dataSync()[0], 5);
 * assert.deepEqual(Array.from(clipped.get("a")!.dataSync(), (v) => +v.toFixed(4)), [0.6, 0]);
 * ```
 *
 * @category Training
 */
export function clipByGlobalNorm(grads: Map<string, Tensor>, maxNorm: number): ClipResult {
  if (!(maxNorm > 0)) throw new RangeError(`clipByGlobalNorm: maxNorm must be > 0, got ${maxNorm}`);
  const out = new Map<string, Tensor>();
  const norm = globalNorm(grads);
  tf.tidy(() => {
    const scale = tf.minimum(tf.scalar(1), tf.scalar(maxNorm).div(norm.add(1e-6)));
    for (const [k, g] of grads) out.set(k, tf.keep(g.mul(scale)));
  });
  return { grads: out, norm };
}

/**
 * The L2 norm of all tensors taken together, as a scalar tensor.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { globalNorm } from "./clip.ts";
 * import { initBackend } from "../backend/backend.ts";
 * await initBackend({ backend: "cpu" });
 * assert.equal(globalNorm(new Map([["x", tf.tensor1d([3, 4])]])).dataSync()[0], 5);
 * ```
 *
 * @category Training
 */
export function globalNorm(tensors: Map<string, Tensor>): Tensor {
  return tf.tidy(() => {
    let sum: Tensor = tf.scalar(0);
    for (const g of tensors.values()) sum = sum.add(g.square().sum());
    return sum.sqrt() as Tensor;
  });
}
