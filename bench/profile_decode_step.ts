/**
 * Where one cached decode step of the 124M GPT-2 shape goes on tfjs-wasm: ms per step, the number of fused
 * decode-attention calls, and the kernels by time (`tf.profile`), for a batch and a context length. With
 * `--prefill`, the same for the prompt's forward instead (a fresh cache each time, as `generate` does).
 *
 * ```sh
 * deno run -A bench/profile_decode_step.ts --batch 1 --context 968
 * deno run -A bench/profile_decode_step.ts --batch 16 --context 128
 * deno run -A bench/profile_decode_step.ts --batch 1 --context 128 --prefill
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../lib/deps.ts";
import { initBackend } from "../lib/backend/backend.ts";
import { createDecoder, gpt2SmallConfig } from "../lib/models/scratch.ts";
import { decodeAttentionCalls } from "../lib/backend/decode_attention.ts";

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      batch: { type: "string", default: "1" },
      context: { type: "string", default: "968" },
      prefill: { type: "boolean", default: false },
    },
  });
  const B = Number(values.batch), P = Number(values.context);
  await initBackend({ backend: "wasm" });
  const model = createDecoder(gpt2SmallConfig({}), { seed: 1 });
  const cache = model.createCache(B, { capacity: P + 16 });
  const ids = tf.tensor2d(
    Array.from({ length: B }, (_, b) => Array.from({ length: P }, (_, i) => (i * 7 + b) % 50000)),
    undefined,
    "int32",
  );
  const pre = model.forward(ids, { cache, lastOnly: true });
  tf.dispose([pre.logits, pre.hidden, pre.residual]);
  const decode = () => {
    const x = tf.tensor2d(Array.from({ length: B }, () => [5]), undefined, "int32");
    const r = model.forward(x, { cache, lastOnly: true });
    r.logits.dataSync(); // the step's readback
    tf.dispose([x, r.logits, r.hidden, r.residual]);
  };
  const prefill = () => {
    const fresh = model.createCache(B, { capacity: P + 16 });
    const r = model.forward(ids, { cache: fresh, lastOnly: true });
    r.logits.dataSync();
    tf.dispose([r.logits, r.hidden, r.residual]);
    fresh.dispose();
  };
  const step = values.prefill ? prefill : decode;
  for (let i = 0; i < 3; i++) step();
  decodeAttentionCalls(true);
  const t0 = performance.now();
  for (let i = 0; i < 5; i++) step();
  const ms = (performance.now() - t0) / 5;
  console.log(
    `batch ${B}, context ${P}${values.prefill ? ", prefill" : ""}: ${ms.toFixed(1)} ms/step; ` +
      `fused decode calls ${decodeAttentionCalls()}\n`,
  );
  const prof = await tf.profile(() => step());
  const by = new Map<string, [number, number]>();
  for (const k of prof.kernels) {
    const e = by.get(k.name) ?? [0, 0];
    e[0] += k.kernelTimeMs as number;
    e[1]++;
    by.set(k.name, e);
  }
  console.log("| kernel | ms | launches |\n|---|---|---|");
  for (const [n, [t, c]] of [...by].sort((a, b) => b[1][0] - a[1][0]).slice(0, 10)) {
    console.log(`| ${n} | ${t.toFixed(2)} | ${c} |`);
  }
  ids.dispose();
  cache.dispose();
  model.dispose();
}
