/**
 * Normalisation layers: LayerNorm (biased variance, as PyTorch) and RMSNorm (as Llama), both in float32.
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Tensor } from "../tensor_types.ts";
import { fusedLayerNorm, fusedRmsNorm } from "../backend/webgpu_norm.ts";

/**
 * LayerNorm over the last axis: `(x - mean) / sqrt(var + eps) * weight + bias`, with the biased
 * (population) variance that `torch.nn.LayerNorm` uses. On webgpu this is one fused kernel (with an analytic
 * gradient) where the weight and bias are `[width]` float32; elsewhere the stock ops below.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { layerNorm } from "./norm.ts";
 * await tf.ready();
 * const y = layerNorm(tf.tensor2d([[1, 2, 3]]), tf.ones([3]), tf.zeros([3]), 1e-5);
 * assert.deepEqual((await y.array())[0].map((v) => +v.toFixed(2)), [-1.22, 0, 1.22]);
 * ```
 *
 * @category NN
 */
export function layerNorm<T extends Tensor>(
  x: T,
  weight: Tensor,
  bias: Tensor | undefined,
  eps: number,
): T {
  const fused = fusedLayerNorm(x, weight, bias, eps); // null off webgpu: the stock ops, unchanged
  if (fused) return fused;
  return tf.tidy(() => {
    const mean = tf.mean(x, -1, true);
    const centred = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centred), -1, true);
    const y = tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, eps))), weight);
    return (bias ? tf.add(y, bias) : y) as T;
  });
}

/**
 * RMSNorm over the last axis: `x * rsqrt(mean(x^2) + eps) * weight` (no centring, no bias). On webgpu
 * this is one fused kernel (with an analytic gradient) where the weight is `[width]` float32.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { rmsNorm } from "./norm.ts";
 * await tf.ready();
 * const y = rmsNorm(tf.tensor2d([[3, 4]]), tf.ones([2]), 0);
 * assert.deepEqual((await y.array())[0].map((v) => +v.toFixed(3)), [0.849, 1.131]);
 * ```
 *
 * @category NN
 */
export function rmsNorm<T extends Tensor>(x: T, weight: Tensor, eps: number): T {
  const fused = fusedRmsNorm(x, weight, eps); // null off webgpu: the stock ops, unchanged
  if (fused) return fused;
  return tf.tidy(() => {
    const ms = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), weight) as T;
  });
}

/**
 * The normalisation kinds {@linkcode applyNorm} understands.
 *
 * @category NN
 */
export type NormKind = "layernorm" | "rmsnorm";

/**
 * Applies the named norm: LayerNorm (with `bias` when given) or RMSNorm (bias must be absent).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { applyNorm } from "./norm.ts";
 * await tf.ready();
 * const y = applyNorm("rmsnorm", tf.tensor2d([[1, 1]]), tf.ones([2]), undefined, 1e-6);
 * assert.deepEqual(y.shape, [1, 2]);
 * ```
 *
 * @category NN
 */
export function applyNorm<T extends Tensor>(
  kind: NormKind,
  x: T,
  weight: Tensor,
  bias: Tensor | undefined,
  eps: number,
): T {
  if (kind === "layernorm") return layerNorm(x, weight, bias, eps);
  if (kind === "rmsnorm") {
    if (bias) throw new Error("applyNorm: RMSNorm has no bias; set normBias: false in the DecoderConfig");
    return rmsNorm(x, weight, eps);
  }
  throw new Error(`applyNorm: unknown norm '${kind}' (use "layernorm" or "rmsnorm")`);
}
