/**
 * The hardware ceiling for matmul-bound workloads: fp32 GEMM GFLOP/s on tfjs-wasm (XNNPACK, and the native
 * CBLAS where one loads) and on PyTorch at one thread, in one run. BENCHMARKS.md compares the training, prefill and batched-decode ratios with it.
 *
 * ```sh
 * deno run -A bench/gemm_ceiling.ts            # sizes 256, 512, 1024; torch from /usr/bin/python3
 * ```
 *
 * @module
 */
import { tf } from "../lib/deps.ts";
import { initBackend } from "../lib/backend/backend.ts";

const SIZES = [256, 512, 1024];

const TORCH = `
import os, time, torch
torch.set_num_threads(1)
for n in [${SIZES.join(", ")}]:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3): a @ b
    reps = 20 if n < 1024 else 5
    t0 = time.perf_counter()
    for _ in range(reps): a @ b
    s = (time.perf_counter() - t0) / reps
    print(f"| torch 1.x cpu (1 thread) | {n} | {2 * n**3 / s / 1e9:.1f} |")
`;

if (import.meta.main) {
  console.log("| implementation | n (n x n x n) | GFLOP/s |\n|---|---|---|");
  for (const nativeBlas of [false, true]) {
    const info = await initBackend({ backend: "wasm", nativeBlas: nativeBlas ? undefined : false });
    if (nativeBlas && !info.blas) continue; // no CBLAS here
    const label = info.blas ? `native CBLAS ${info.blas.split("/").pop()}` : "XNNPACK";
    for (const n of SIZES) {
      const a = tf.randomNormal([n, n]), b = tf.randomNormal([n, n]);
      for (let i = 0; i < 2; i++) tf.matMul(a, b).dispose();
      const reps = n === 1024 ? 5 : 20;
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) {
        const c = tf.matMul(a, b);
        c.dataSync();
        c.dispose();
      }
      const s = (performance.now() - t0) / 1000 / reps;
      console.log(`| tfjs-wasm (${label}, 1 thread) | ${n} | ${(2 * n ** 3 / s / 1e9).toFixed(1)} |`);
      tf.dispose([a, b]);
    }
  }
  const py = ["/usr/bin/python3", "python3"];
  for (const p of py) {
    const out = await new Deno.Command(p, {
      args: ["-c", TORCH],
      // One thread for OpenBLAS too (Debian's torch BLAS ignores torch.set_num_threads).
      env: { OMP_WAIT_POLICY: "ACTIVE", OPENBLAS_NUM_THREADS: "1", OMP_NUM_THREADS: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output().catch(() => null);
    if (out?.success) {
      console.log(new TextDecoder().decode(out.stdout).trimEnd());
      break;
    }
  }
}
