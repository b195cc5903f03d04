/**
 * Sampling cost per decode step at a GPT-2 vocabulary (V = 50257): the device path (tfjs kernels) against
 * the host path (one readback, JavaScript), per setting, on the active backend. Prints one markdown table.
 *
 * ```sh
 * deno run -A bench/sampling_bench.ts                       # wasm, batch 1
 * deno run -A bench/sampling_bench.ts --backend cpu --batch 4 --reps 20
 * ```
 *
 * Each case: 3 warm-up calls, then the median of `--reps` calls of `TokenSampler.sample` including the
 * read of its three outputs (as `generate()` reads them in its packed step readback).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../lib/deps.ts";
import { type BackendName, initBackend } from "../lib/backend/backend.ts";
import { Prng } from "../lib/random/prng.ts";
import { type SamplerPath, type SamplingParams, TokenSampler } from "../lib/generate/sampling.ts";

/** Median milliseconds of one sample call (outputs read back) for a setting and path. */
export function timeSampling(
  logits: tf.Tensor2D,
  params: SamplingParams,
  path: SamplerPath,
  reps: number,
): number {
  const [B, V] = logits.shape;
  const sampler = new TokenSampler(B, V, params, { path });
  const u = Array.from({ length: B }, (_, i) => (0.37 + i * 0.1) % 1);
  const times: number[] = [];
  for (let r = 0; r < reps + 3; r++) {
    const t0 = performance.now();
    const o = sampler.sample(logits, u);
    o.tokens.dataSync();
    o.logprobs.dataSync();
    o.sampledLogprobs.dataSync();
    if (r >= 3) times.push(performance.now() - t0);
    tf.dispose([o.tokens, o.logprobs, o.sampledLogprobs]);
  }
  sampler.dispose();
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      backend: { type: "string", default: "wasm" },
      batch: { type: "string", default: "1" },
      vocab: { type: "string", default: "50257" },
      reps: { type: "string", default: "15" },
    },
  });
  await initBackend({ backend: values.backend as BackendName });
  const B = Number(values.batch), V = Number(values.vocab), reps = Number(values.reps);
  const data = new Float32Array(B * V);
  const rng = new Prng(12345);
  for (let i = 0; i < data.length; i++) data[i] = 3 * rng.nextNormal(); // N(0, 3^2) logits
  const logits = tf.tensor2d(data, [B, V]);
  const settings: [string, SamplingParams][] = [
    ["greedy", { temperature: 0 }],
    ["temperature 1", {}],
    ["top-k 50", { topK: 50 }],
    ["top-p 0.9", { topP: 0.9 }],
    ["top-k 50 + top-p 0.9, T 0.8", { topK: 50, topP: 0.9, temperature: 0.8 }],
  ];
  console.log(`Sampling cost per step, ${tf.getBackend()}, B = ${B}, V = ${V}, median of ${reps}\n`);
  console.log("| setting | device ms | host ms | device / host |\n|---|---|---|---|");
  for (const [name, p] of settings) {
    const d = timeSampling(logits, p, "device", reps), h = timeSampling(logits, p, "host", reps);
    console.log(`| ${name} | ${d.toFixed(2)} | ${h.toFixed(2)} | ${(d / h).toFixed(1)}x |`);
  }
  logits.dispose();
}
