/**
 * Where the time of one training step goes: `tf.profile` over one `Trainer` step of a train-bench size,
 * kernel time summed by kernel name, on tfjs-wasm with stock matmuls, the XNNPACK matmul adapter, and the
 * native CBLAS (where one loads). Prints one markdown table per setting.
 *
 * ```sh
 * deno run -A bench/profile_train_step.ts --size 4x128 --top 8
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../lib/deps.ts";
import { initBackend } from "../lib/backend/backend.ts";
import { benchTrainer } from "./train_bench.ts";

/** Kernel time by kernel name over one training step (after two warm-up steps). */
export async function profileStep(size: string, batch: number, block: number) {
  const trainer = benchTrainer(size, batch, block);
  try {
    for (let i = 0; i < 2; i++) await trainer.trainStep();
    const t0 = performance.now();
    const info = await tf.profile(async () => {
      await trainer.trainStep();
    });
    const wall = performance.now() - t0;
    const byName = new Map<string, { ms: number; count: number }>();
    for (const k of info.kernels) {
      const e = byName.get(k.name) ?? { ms: 0, count: 0 };
      e.ms += typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
      e.count++;
      byName.set(k.name, e);
    }
    return { wall, launches: info.kernels.length, byName };
  } finally {
    trainer.dispose();
    trainer.model.dispose();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      size: { type: "string", default: "4x128" },
      batch: { type: "string", default: "8" },
      block: { type: "string", default: "128" },
      top: { type: "string", default: "8" },
    },
  });
  const settings = [
    ["stock matmul", { wasmMatMul: false }],
    ["XNNPACK matmul adapter", { nativeBlas: false }],
    ["native CBLAS matmuls", { nativeBlas: true }],
  ] as const;
  for (const [label, opts] of settings) {
    const info = await initBackend({ backend: "wasm", ...opts }).catch((e: Error) => {
      console.log(`\n${label}: not run (${e.message})`);
      return null;
    });
    if (!info) continue;
    const p = await profileStep(values.size!, Number(values.batch), Number(values.block));
    const total = [...p.byName.values()].reduce((a, e) => a + e.ms, 0);
    console.log(
      `\n${label}: ${p.launches} kernel launches, ` +
        `kernel time ${total.toFixed(0)} ms, wall ${p.wall.toFixed(0)} ms (profiled)\n`,
    );
    console.log("| kernel | launches | ms | share |\n|---|---|---|---|");
    const rows = [...p.byName.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, Number(values.top));
    for (const [name, e] of rows) {
      console.log(`| ${name} | ${e.count} | ${e.ms.toFixed(1)} | ${(100 * e.ms / total).toFixed(1)} % |`);
    }
  }
}
