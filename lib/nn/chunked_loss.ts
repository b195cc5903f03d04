/**
 * Cross-entropy of a linear head without the full logit matrix: for `x` `[N, k]` and a head `w` `[V, k]`
 * (logits = x·wᵀ), the mean CE over N targets is computed over row chunks, and the backward pass
 * recomputes each chunk's softmax instead of keeping N·V values (at V = 50304 and N = 12·1024 positions
 * the full matrix alone is 2.5 GB in fp32).
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Scalar, Tensor, Tensor1D, Tensor2D } from "../tensor_types.ts";

/** One chunk's summed CE: Σ (logsumexp(l) − l[target]) over its rows. */
function chunkLoss(x: Tensor2D, w: Tensor2D, targets: Tensor1D): Scalar {
  return tf.tidy(() => {
    const logits = tf.matMul(x, w, false, true);
    const lse = tf.logSumExp(logits, 1);
    const picked = tf.sum(tf.mul(logits, tf.oneHot(targets, w.shape[0])), 1);
    return tf.sum(tf.sub(lse, picked)) as Scalar;
  });
}

/**
 * Mean cross-entropy of logits x·wᵀ against integer `targets` `[N]`, in chunks of `chunkRows` rows, with
 * a custom gradient (for `x` and `w`) that recomputes each chunk: peak memory is `chunkRows × V` values
 * instead of `N × V`. Equal to the full computation up to float rounding.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../deps.ts";
 * import { chunkedHeadCrossEntropy } from "./chunked_loss.ts";
 * await tf.setBackend("cpu");
 * const x = tf.tensor2d([[1, 0], [0, 1], [1, 1]]), w = tf.tensor2d([[1, 2], [0, 1], [3, 0]]);
 * const t = tf.tensor1d([2, 0, 1], "int32");
 * const full = tf.losses.softmaxCrossEntropy(tf.oneHot(t, 3), tf.matMul(x, w, false, true));
 * const chunked = chunkedHeadCrossEntropy(x, w, t, 2);
 * assert.ok(Math.abs(chunked.dataSync()[0] - full.dataSync()[0]) < 1e-5);
 * ```
 *
 * @category NN
 */
export function chunkedHeadCrossEntropy(
  x: Tensor2D,
  w: Tensor2D,
  targets: Tensor1D,
  chunkRows: number,
): Scalar {
  const n = x.shape[0];
  if (targets.shape[0] !== n) {
    throw new Error(`chunkedHeadCrossEntropy: ${n} rows but ${targets.shape[0]} targets`);
  }
  if (!Number.isInteger(chunkRows) || chunkRows < 1) {
    throw new Error(`chunkedHeadCrossEntropy: chunkRows must be a positive integer, got ${chunkRows}`);
  }
  const starts: number[] = [];
  for (let s = 0; s < n; s += chunkRows) starts.push(s);
  const rows = (s: number) => Math.min(chunkRows, n - s);
  const f = tf.customGrad(
    ((xi: Tensor, wi: Tensor, ti: Tensor, save: tf.GradSaveFunc) => {
      save([xi, wi, ti]);
      const value = tf.tidy(() => {
        let sum: Tensor = tf.scalar(0);
        for (const s of starts) {
          const part = chunkLoss(
            tf.slice(xi, [s, 0], [rows(s), -1]) as Tensor2D,
            wi as Tensor2D,
            tf.slice(ti, [s], [rows(s)]) as Tensor1D,
          );
          sum = tf.add(sum, part);
        }
        return tf.div(sum, n);
      });
      return {
        value,
        gradFunc: (dy: Tensor, saved: Tensor[]) => {
          const [xs, ws, ts] = saved as [Tensor2D, Tensor2D, Tensor1D];
          return tf.tidy(() => {
            // d(mean CE)/d logits = (softmax − onehot) / N, per chunk; then dx = g·w and dw = gᵀ·x.
            const scale = tf.div(dy, n);
            const dxParts: Tensor[] = [];
            let dw: Tensor = tf.zerosLike(ws);
            for (const s of starts) {
              const xc = tf.slice(xs, [s, 0], [rows(s), -1]) as Tensor2D;
              const tc = tf.slice(ts, [s], [rows(s)]) as Tensor1D;
              const g = tf.mul(
                tf.sub(tf.softmax(tf.matMul(xc, ws, false, true)), tf.oneHot(tc, ws.shape[0])),
                scale,
              );
              dxParts.push(tf.matMul(g, ws));
              dw = tf.add(dw, tf.matMul(g, xc, true, false));
            }
            const dx = dxParts.length === 1 ? dxParts[0] : tf.concat(dxParts, 0);
            return [dx, dw, tf.zerosLike(ts)];
          });
        },
      };
    }) as unknown as (...args: (Tensor | tf.GradSaveFunc)[]) => { value: Tensor; gradFunc: () => Tensor[] },
  );
  return f(x, w, targets.dtype === "int32" ? targets : tf.cast(targets, "int32")) as Scalar;
}
