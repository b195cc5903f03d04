/**
 * Does tfjs-wasm's multi-threaded build start under this Deno? Forces `WASM_HAS_MULTITHREAD_SUPPORT`, asks
 * for two threads and starts the wasm backend; prints how it failed, or the thread count and a 512³ matmul
 * rate when it works. Issue 12 item 5 keeps the library on one wasm thread because this fails with the
 * stock package (see BENCHMARKS.md, "Two wasm threads").
 *
 * ```sh
 * deno run -A bench/wasm_threads_probe.ts
 * ```
 *
 * @module
 */
import { tf } from "../lib/deps.ts";
// deno-lint-ignore no-import-prefix -- the probe needs the package's own exports (setThreadsCount)
import * as wasmBackend from "npm:@tensorflow/tfjs-backend-wasm@4.22.0";

if (import.meta.main) {
  console.log(`Deno ${Deno.version.deno}, navigator.hardwareConcurrency ${navigator.hardwareConcurrency}`);
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", true);
  try {
    wasmBackend.setThreadsCount(2);
    const ok = await tf.setBackend("wasm");
    await tf.ready();
    if (!ok || tf.getBackend() !== "wasm") throw new Error(`setBackend("wasm") returned ${ok}`);
    const a = tf.randomNormal([512, 512]);
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) tf.matMul(a, a).dataSync();
    const ms = (performance.now() - t0) / 10;
    console.log(`started: ${wasmBackend.getThreadsCount()} threads, 512^3 matmul ${ms.toFixed(1)} ms`);
  } catch (e) {
    console.log(`the threaded wasm backend does not start: ${String(e).split("\n")[0]}`);
  }
}
