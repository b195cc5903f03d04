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
              // One scope per chunk, so only one chunk's [rows, V] softmax is alive at a time.
              const [dxc, next] = tf.tidy(() => {
                const xc = tf.slice(xs, [s, 0], [rows(s), -1]) as Tensor2D;
                const tc = tf.slice(ts, [s], [rows(s)]) as Tensor1D;
                const g = tf.mul(
                  tf.sub(tf.softmax(tf.matMul(xc, ws, false, true)), tf.oneHot(tc, ws.shape[0])),
                  scale,
                );
                return [tf.matMul(g, ws), tf.add(dw, tf.matMul(g, xc, true, false))];
              });
              dw.dispose();
              dw = next;
              dxParts.push(dxc);
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

/** Logits (N·V) above which the head's cross-entropy is chunked: 2^27 (512 MiB of fp32) in general. */
const CHUNK_START = 2 ** 27;
/** On wasm the whole heap is 4 GiB (wasm32), so chunking starts at 2^24 logits (64 MiB). */
const CHUNK_START_WASM = 2 ** 24;
/** Values per chunk (64 MiB of fp32). */
const CHUNK_ELEMENTS = 2 ** 24;

/**
 * Rows per chunk for the cross-entropy of N positions against a V-word head, or 0 when the full logits
 * are small enough to build at once: chunking recomputes each chunk's logits in the backward pass (about
 * a third more head work), so it starts only above 2^27 logits (2^24 on the wasm backend, whose heap is
 * 4 GiB in all); a chunk then holds about 2^24 values. `explicit` (a component's own setting) wins.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../deps.ts";
 * import { headLossChunkRows } from "./chunked_loss.ts";
 * await tf.setBackend("cpu");
 * assert.equal(headLossChunkRows(1024, 65), 0); // a character model: no chunking
 * assert.equal(headLossChunkRows(12 * 1024, 50304), 333); // nanoGPT's batch: chunks of 333 rows
 * assert.equal(headLossChunkRows(1024, 50304, 128), 128);
 * ```
 *
 * @category NN
 */
export function headLossChunkRows(rows: number, vocab: number, explicit?: number): number {
  if (explicit !== undefined) return explicit;
  const start = tf.getBackend() === "wasm" ? CHUNK_START_WASM : CHUNK_START;
  return rows * vocab > start ? Math.max(1, Math.floor(CHUNK_ELEMENTS / vocab)) : 0;
}
