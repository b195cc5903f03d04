/**
 * Token and learned-position embeddings, and the LM head (unembedding), tied or untied.
 *
 * @module
 */
import { tf } from "../deps.ts";

/**
 * Looks up rows of the token table: ids `[B, T]` (int32), table `[V, d]` -> `[B, T, d]`.
 *
 * @example
 * ```ts
 * import { tf } from "../deps.ts";
 * import { embedTokens } from "./embedding.ts";
 * await tf.ready();
 * const x = embedTokens(tf.tensor2d([[0, 2]], [1, 2], "int32"), tf.ones([4, 3]) as tf.Tensor2D);
 * console.log(x.shape); // [1, 2, 3]
 * ```
 */
export function embedTokens(ids: tf.Tensor2D, table: tf.Tensor2D): tf.Tensor3D {
  return tf.tidy(() => {
    const [b, t] = ids.shape;
    const flat = tf.reshape(ids.dtype === "int32" ? ids : tf.cast(ids, "int32"), [b * t]);
    return tf.reshape(tf.gather(table, flat), [b, t, table.shape[1]]) as tf.Tensor3D;
  });
}

/**
 * Looks up learned position rows: position ids `[B, T]`, table `[P, d]` -> `[B, T, d]` (GPT-2's `wpe`).
 *
 * @example
 * ```ts
 * import { tf } from "../deps.ts";
 * import { embedPositions } from "./embedding.ts";
 * await tf.ready();
 * const p = embedPositions(tf.tensor2d([[0, 1]], [1, 2], "int32"), tf.zeros([8, 3]) as tf.Tensor2D);
 * console.log(p.shape); // [1, 2, 3]
 * ```
 */
export function embedPositions(positions: tf.Tensor2D, table: tf.Tensor2D): tf.Tensor3D {
  return embedTokens(positions, table);
}

/**
 * The LM head: hidden `[B, T, d]` to logits `[B, T, V]`. With `tied`, `weight` is the token table `[V, d]`
 * (multiplied transposed, no copy); otherwise it is an unembedding `[d, V]`.
 *
 * @example
 * ```ts
 * import { tf } from "../deps.ts";
 * import { unembed } from "./embedding.ts";
 * await tf.ready();
 * const logits = unembed(tf.ones([1, 2, 3]) as tf.Tensor3D, tf.ones([5, 3]) as tf.Tensor2D, true);
 * console.log(logits.shape); // [1, 2, 5]
 * ```
 */
export function unembed(
  hidden: tf.Tensor3D,
  weight: tf.Tensor2D,
  tied: boolean,
  bias?: tf.Tensor1D,
): tf.Tensor3D {
  return tf.tidy(() => {
    const [b, t, d] = hidden.shape;
    const flat = tf.reshape(hidden, [b * t, d]) as tf.Tensor2D;
    const logits = tf.fused.matMul({ a: flat, b: weight, transposeB: tied, bias });
    return tf.reshape(logits, [b, t, logits.shape[1] as number]) as tf.Tensor3D;
  });
}
