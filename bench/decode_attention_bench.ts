/**
 * One-token decode attention (scores over L cached keys, softmax, weighted values) in four formulations,
 * on the active backend: the stock batched products, broadcast multiply + sum, the products transposed so
 * that their output rows are L and hd (routed through XNNPACK by the wasm matmul adapter), and the fused
 * SIMD kernel of lib/backend/decode_attention.ts (wasm only), which the library uses for one-token steps.
 * Measured for issue 12 item 3. Prints one markdown table (mean milliseconds over the repeats, after
 * warm-up).
 *
 * ```sh
 * deno run -A bench/decode_attention_bench.ts              # wasm
 * deno run -A bench/decode_attention_bench.ts --backend cpu --reps 10
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../lib/deps.ts";
import { type BackendName, initBackend } from "../lib/backend/backend.ts";
import { decodeAttention } from "../lib/backend/decode_attention.ts";

type Form = (q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D) => tf.Tensor;

/** The three formulations, each returning z [B, H, 1, hd]. */
const FORMS: Record<string, Form> = {
  stock: (q, k, v) =>
    tf.matMul(tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(q.shape[3]))), v),
  elementwise: (q, k, v) => {
    const s = tf.softmax(tf.mul(tf.sum(tf.mul(q, k), -1), 1 / Math.sqrt(q.shape[3]))); // [B, H, L]
    return tf.sum(tf.mul(tf.expandDims(s, -1), v), 2, true);
  },
  transposed: (q, k, v) => {
    const [b, h, l, hd] = k.shape;
    const sT = tf.matMul(k, q, false, true); // [B, H, L, 1]: L output rows
    const s = tf.softmax(tf.mul(tf.reshape(sT, [b, h, 1, l]), 1 / Math.sqrt(hd)));
    return tf.reshape(tf.matMul(v, s, true, true), [b, h, 1, hd]); // hd output rows
  },
};

/** The fused kernel (wasm only), shaped as the others. */
const fused: Form = (q, k, v) => {
  const [b, h, , hd] = q.shape;
  const z = decodeAttention(tf.reshape(q, [b, h, hd]), k, v, k.shape[2]);
  if (!z) throw new Error("the fused kernel runs on the wasm backend only");
  return tf.reshape(z, [b, h, 1, hd]);
};

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { backend: { type: "string", default: "wasm" }, reps: { type: "string", default: "20" } },
  });
  const info = await initBackend({ backend: values.backend as BackendName });
  if (info.name === "wasm") FORMS.fused = fused;
  const reps = Number(values.reps);
  const H = 12, hd = 64;
  console.log(`backend ${info.name}, H ${H}, hd ${hd}, ${reps} repeats\n`);
  console.log(`| B | L | ${Object.keys(FORMS).join(" ms | ")} ms | max |Δ| vs stock |`);
  console.log(`|---|---|${Object.keys(FORMS).map(() => "---|").join("")}---|`);
  for (const [B, L] of [[1, 128], [1, 1000], [16, 128], [16, 1000]]) {
    const q = tf.randomNormal([B, H, 1, hd]) as tf.Tensor4D;
    const k = tf.randomNormal([B, H, L, hd]) as tf.Tensor4D;
    const v = tf.randomNormal([B, H, L, hd]) as tf.Tensor4D;
    const ms: string[] = [];
    for (const f of Object.values(FORMS)) {
      const run = () => tf.tidy(() => f(q, k, v));
      for (let i = 0; i < 3; i++) run().dispose();
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) {
        const r = run();
        r.dataSync(); // the readback ends the timed step, as a decode step's does
        r.dispose();
      }
      ms.push(((performance.now() - t0) / reps).toFixed(2));
    }
    const diff = tf.tidy(() =>
      Math.max(
        ...Object.values(FORMS).map((f) =>
          tf.max(tf.abs(tf.sub(f(q, k, v), FORMS.stock(q, k, v)))).dataSync()[0]
        ),
      )
    );
    console.log(`| ${B} | ${L} | ${ms.join(" | ")} | ${diff.toExponential(1)} |`);
    tf.dispose([q, k, v]);
  }
}
