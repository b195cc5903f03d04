/**
 * The hardware ceiling for matmul-bound workloads: fp32 GEMM GFLOP/s on tfjs-wasm (XNNPACK, and the native
 * CBLAS where one loads) and on PyTorch at one thread, in one run. BENCHMARKS.md compares the training,
 * prefill and batched-decode ratios with it.
 *
 * A second table multiplies by model weights as a decoder does: the four products of a GPT-2-small block
 * (768 x 768 four times, 768 x 3072, 3072 x 768) over 12 blocks of distinct weights (so that they stream
 * from memory, as in a forward), at 1, 16 and 128 rows, on the native CBLAS, on the native packed GEMM
 * (`deno task build-native`; weights packed before timing) and on torch's `F.linear`, all at one thread.
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
const ROWS = [1, 16, 128];
/** [K, N] of one GPT-2-small block's products: Q, K, V, O, MLP in, MLP out. */
const BLOCK: [number, number][] = [[768, 768], [768, 768], [768, 768], [768, 768], [768, 3072], [3072, 768]];
const BLOCKS = 12;

const TORCH_LINEAR = `
import time, torch, torch.nn.functional as F
torch.set_num_threads(1)
block = ${JSON.stringify(BLOCK)}
ws = [(torch.randn(n, k) * 0.02, torch.zeros(n)) for _ in range(${BLOCKS}) for k, n in block]
for m in [${ROWS.join(", ")}]:
    xs = {k: torch.randn(m, k) for k in (768, 3072)}
    def one():
        for w, b in ws: F.linear(xs[w.shape[1]], w, b)
    one()
    reps = 5
    t0 = time.perf_counter()
    for _ in range(reps): one()
    s = (time.perf_counter() - t0) / reps
    flops = 2 * m * sum(k * n for k, n in block) * ${BLOCKS}
    print(f"| torch 1.x cpu F.linear (1 thread) | {m} | {s * 1e3:.1f} | {flops / s / 1e9:.1f} |")
`;

/** ms per pass over the 12 blocks' products at `m` rows, and GFLOP/s, on the backend as initialised. */
function weightPass(m: number): [number, number] {
  const ws = Array.from({ length: BLOCKS }, () => BLOCK.map(([k, n]) => tf.randomNormal([k, n], 0, 0.02)))
    .flat();
  const bs = ws.map((w) => tf.zeros([w.shape[1]!]));
  const xs = new Map([768, 3072].map((k) => [k, tf.randomNormal([m, k])]));
  const one = () => {
    for (let i = 0; i < ws.length; i++) {
      tf.fused.matMul({ a: xs.get(ws[i].shape[0]!)!, b: ws[i], bias: bs[i] }).dispose();
    }
  };
  one(); // packs the weights where the packed GEMM runs
  const reps = 5;
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) one();
  const ms = (performance.now() - t0) / reps;
  tf.dispose([...ws, ...bs, ...xs.values()]);
  const flops = 2 * m * BLOCK.reduce((s, [k, n]) => s + k * n, 0) * BLOCKS;
  return [ms, flops / ms / 1e6];
}

async function torch(code: string): Promise<void> {
  for (const p of ["/usr/bin/python3", "python3"]) {
    const out = await new Deno.Command(p, {
      args: ["-c", code],
      // One thread for OpenBLAS too (Debian's torch BLAS ignores torch.set_num_threads).
      env: { OMP_WAIT_POLICY: "ACTIVE", OPENBLAS_NUM_THREADS: "1", OMP_NUM_THREADS: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output().catch(() => null);
    if (out?.success) {
      console.log(new TextDecoder().decode(out.stdout).trimEnd());
      return;
    }
  }
}

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
  await torch(TORCH);
  console.log(
    "\n| products by weights, GPT-2-small x 12 blocks | rows | ms per pass | GFLOP/s |\n|---|---|---|---|",
  );
  for (const packed of [false, true]) {
    const info = await initBackend({ backend: "wasm", nativeKernels: packed ? undefined : false });
    if (packed && !info.native) {
      console.log("| tfjs-wasm, native packed GEMM | not built: deno task build-native | | |");
      continue;
    }
    const label = packed
      ? "native packed GEMM"
      : info.blas
      ? "native CBLAS (XNNPACK below 8 rows)"
      : "XNNPACK";
    for (const m of ROWS) {
      const [ms, gflops] = weightPass(m);
      console.log(`| tfjs-wasm, ${label} (1 thread) | ${m} | ${ms.toFixed(1)} | ${gflops.toFixed(1)} |`);
    }
  }
  await torch(TORCH_LINEAR);
}
