/**
 * Kernel-count rewrites measured against the forms they replace, on the active backend: GELU-tanh through
 * the sigmoid identity (adopted) vs the tanh form, and RoPE's half swap as one reverse (measured slower on
 * wasm, not adopted) vs the library's split + concat; forward and forward + backward. Prints one markdown
 * table (median milliseconds).
 *
 * ```sh
 * deno run -A bench/nn_bench.ts                 # wasm
 * deno run -A bench/nn_bench.ts --backend cpu --reps 5
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../lib/deps.ts";
import { type BackendName, initBackend } from "../lib/backend/backend.ts";
import { geluTanh } from "../lib/nn/mlp.ts";
import { RotaryTable } from "../lib/nn/rotary.ts";

function geluViaTanh(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.square(x), x), 0.044715)), Math.sqrt(2 / Math.PI));
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
  });
}

/** The RoPE rewrite that was measured and not adopted: the half swap as one reverse over [.., 2, rd/2]. */
function ropeViaReverse(x: tf.Tensor4D, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const [b, t, h, d] = x.shape;
    const swapped = tf.reshape(tf.reverse(tf.reshape(x, [b, t, h, 2, d / 2]), 3), [b, t, h, d]);
    return tf.add(tf.mul(x, cos), tf.mul(swapped, sin));
  });
}

/** Median ms of `f` (its result read back), after 2 warm-ups. */
export function median(f: () => tf.Tensor, reps: number): number {
  const ts: number[] = [];
  for (let r = 0; r < reps + 2; r++) {
    const t0 = performance.now();
    const y = f();
    y.dataSync();
    if (r >= 2) ts.push(performance.now() - t0);
    y.dispose();
  }
  ts.sort((a, b) => a - b);
  return ts[Math.floor(ts.length / 2)];
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { backend: { type: "string", default: "wasm" }, reps: { type: "string", default: "9" } },
  });
  await initBackend({ backend: values.backend as BackendName });
  const reps = Number(values.reps);
  const rows: string[] = [];
  const row = (name: string, shape: number[], oldF: () => tf.Tensor, newF: () => tf.Tensor) => {
    const o = median(oldF, reps), n = median(newF, reps);
    rows.push(`| ${name} | [${shape}] | ${o.toFixed(2)} | ${n.toFixed(2)} | ${(o / n).toFixed(2)}x |`);
  };
  for (const shape of [[1024, 512], [128, 3072]]) {
    const x = tf.randomNormal(shape);
    row("GELU-tanh fwd (sigmoid form; adopted)", shape, () => geluViaTanh(x), () => geluTanh(x));
    row(
      "GELU-tanh fwd+bwd",
      shape,
      () => tf.grad((t: tf.Tensor) => geluViaTanh(t).sum())(x),
      () => tf.grad((t: tf.Tensor) => geluTanh(t).sum())(x),
    );
    x.dispose();
  }
  for (const shape of [[8, 128, 4, 32], [1, 128, 12, 64]] as [number, number, number, number][]) {
    const rope = new RotaryTable({ headDim: shape[3], theta: 10000, maxPositions: shape[1] });
    const x = tf.randomNormal(shape) as tf.Tensor4D;
    const pos = tf.tensor2d(
      Array.from({ length: shape[0] }, () => Array.from({ length: shape[1] }, (_, i) => i)),
      undefined,
      "int32",
    ) as tf.Tensor2D;
    const ang = rope.angles(pos);
    row(
      "RoPE fwd (reverse; not adopted)",
      shape,
      () => rope.rotate(x, ang),
      () => ropeViaReverse(x, ang.cos, ang.sin),
    );
    row(
      "RoPE fwd+bwd (reverse; not adopted)",
      shape,
      () => tf.grad((t: tf.Tensor) => rope.rotate(t as tf.Tensor4D, ang).sum())(x),
      () => tf.grad((t: tf.Tensor) => ropeViaReverse(t as tf.Tensor4D, ang.cos, ang.sin).sum())(x),
    );
    tf.dispose([x, pos, ang.cos, ang.sin]);
    rope.dispose();
  }
  console.log(`Kernel rewrites, ${tf.getBackend()}, median of ${reps} (ms)\n`);
  console.log("| op | shape | baseline ms | candidate ms | candidate speed-up |\n|---|---|---|---|---|");
  for (const r of rows) console.log(r);
}
