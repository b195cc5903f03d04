/**
 * Token and learned-position embeddings, and the LM head (unembedding), tied or untied.
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Tensor, Tensor1D, Tensor2D, Tensor3D } from "../tensor_types.ts";

/**
 * `tf.gather(table, indices)` along axis 0 with a gradient that works on every backend. tfjs
 * differentiates gather with UnsortedSegmentSum, which the wasm backend lacks; scatterND (which sums
 * duplicate indices) gives the same table gradient natively on cpu, wasm and webgpu. Embedding lookups and
 * the training loss both gather through this one function.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import type { Tensor } from "../../mod.ts";
 * import { gatherRows } from "./embedding.ts";
 * await tf.setBackend("cpu");
 * const table = tf.tensor2d([[1, 2], [3, 4], [5, 6]]);
 * const g = tf.grad((t: Tensor) => gatherRows(t, tf.tensor1d([2, 0, 2], "int32")).sum())(table);
 * assert.deepEqual(Array.from(g.dataSync()), [1, 1, 0, 0, 2, 2]); // row 2 gathered twice
 * ```
 *
 * @category NN
 */
export function gatherRows(table: Tensor, indices: Tensor1D): Tensor {
  // customGrad's typing cannot express (tensor, tensor, save); the runtime passes exactly that.
  const lookup = tf.customGrad(
    ((tbl: Tensor, idx: Tensor, save: tf.GradSaveFunc) => {
      save([idx]);
      return {
        value: tf.gather(tbl, idx),
        gradFunc: (dy: Tensor, saved: Tensor[]) => [
          tf.scatterND(tf.reshape(saved[0], [-1, 1]), dy, tbl.shape),
          tf.zerosLike(saved[0]),
        ],
      };
    }) as unknown as (
      ...args: (Tensor | tf.GradSaveFunc)[]
    ) => { value: Tensor; gradFunc: () => Tensor[] },
  );
  return lookup(table, indices);
}

/**
 * Looks up rows of the token table: ids `[B, T]` (int32), table `[V, d]` -> `[B, T, d]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import type { Tensor2D } from "../../mod.ts";
 * import { embedTokens } from "./embedding.ts";
 * await tf.ready();
 * const x = embedTokens(tf.tensor2d([[0, 2]], [1, 2], "int32"), tf.ones([4, 3]) as Tensor2D);
 * assert.deepEqual(x.shape, [1, 2, 3]);
 * ```
 *
 * @category NN
 */
export function embedTokens(ids: Tensor2D, table: Tensor2D): Tensor3D {
  return tf.tidy(() => {
    const [b, t] = ids.shape;
    const d = table.shape[1];
    const flat = tf.reshape(ids.dtype === "int32" ? ids : tf.cast(ids, "int32"), [b * t]) as Tensor1D;
    return tf.reshape(gatherRows(table, flat), [b, t, d]) as Tensor3D;
  });
}

/**
 * Looks up learned position rows: position ids `[B, T]`, table `[P, d]` -> `[B, T, d]` (GPT-2's `wpe`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import type { Tensor2D } from "../../mod.ts";
 * import { embedPositions } from "./embedding.ts";
 * await tf.ready();
 * const p = embedPositions(tf.tensor2d([[0, 1]], [1, 2], "int32"), tf.zeros([8, 3]) as Tensor2D);
 * assert.deepEqual(p.shape, [1, 2, 3]);
 * ```
 *
 * @category NN
 */
export function embedPositions(positions: Tensor2D, table: Tensor2D): Tensor3D {
  return embedTokens(positions, table);
}

/**
 * The LM head: hidden `[B, T, d]` to logits `[B, T, V]`. With `tied`, `weight` is the token table `[V, d]`
 * (multiplied transposed, no copy); otherwise it is an unembedding `[d, V]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import type { Tensor2D, Tensor3D } from "../../mod.ts";
 * import { unembed } from "./embedding.ts";
 * await tf.ready();
 * const logits = unembed(tf.ones([1, 2, 3]) as Tensor3D, tf.ones([5, 3]) as Tensor2D, true);
 * assert.deepEqual(logits.shape, [1, 2, 5]);
 * ```
 *
 * @category NN
 */
export function unembed(
  hidden: Tensor3D,
  weight: Tensor2D,
  tied: boolean,
  bias?: Tensor1D,
): Tensor3D {
  return tf.tidy(() => {
    const [b, t, d] = hidden.shape;
    const flat = tf.reshape(hidden, [b * t, d]) as Tensor2D;
    const logits = tf.fused.matMul({ a: flat, b: weight, transposeB: tied, bias });
    return tf.reshape(logits, [b, t, logits.shape[1] as number]) as Tensor3D;
  });
}
