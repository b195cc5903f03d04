/**
 * Our webgpu matmul kernels (lib/backend/webgpu_matmul.ts) against tfjs-webgpu's stock kernels on the same
 * device (Mesa llvmpipe here): a grid of shapes, transpose flags and batch broadcasts through both
 * programs (matrix-vector with and without split K, tiled), fused bias and every fused activation, the
 * gradients, the stock fallbacks, and no leaks.
 */
import { assert, assertEquals } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import {
  installWebGPUMatMul,
  uninstallWebGPUMatMul,
  webgpuMatMulInstalled,
  webgpuMatMulStats,
} from "../../lib/backend/webgpu_matmul.ts";
import { useBackend } from "../fixtures.ts";

/** A seeded tensor of uniform values in [-1, 1). */
function rand(shape: number[], seed: number): tf.Tensor {
  return tf.randomUniform(shape, -1, 1, "float32", seed);
}

/** `f` with the stock kernels, then with ours; returns both results as flat arrays. */
async function both(f: () => tf.Tensor | tf.Tensor[]): Promise<[Float32Array[], Float32Array[]]> {
  const read = async (r: tf.Tensor | tf.Tensor[]) => {
    const list = Array.isArray(r) ? r : [r];
    const out = await Promise.all(list.map((t) => t.data() as Promise<Float32Array>));
    tf.dispose(list);
    return out;
  };
  uninstallWebGPUMatMul();
  const want = await read(f());
  installWebGPUMatMul();
  const got = await read(f());
  return [want, got];
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assertEquals(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// [shape of a, shape of b, transposeA, transposeB]: shapes are as stored (already transposed).
type Case = [number[], number[], boolean, boolean];

function cases(): Case[] {
  const out: Case[] = [];
  // [M, K, N] over both programs: matrix-vector rows 1, 2, 16; tiled 17, 64, 65, 130; K across tile and
  // split boundaries (1, 17, 300, 1030, 4096); N across column-group boundaries.
  const mkn = [
    [1, 1, 1],
    [1, 17, 3],
    [2, 300, 65],
    [16, 1030, 64],
    [1, 64, 5000],
    [2, 4096, 8],
    [17, 5, 3],
    [64, 16, 64],
    [65, 300, 65],
    [130, 33, 200],
  ];
  for (const [m, k, n] of mkn) {
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        out.push([ta ? [k, m] : [m, k], tb ? [n, k] : [k, n], ta, tb]);
      }
    }
  }
  // Batches: equal, broadcast from 1 on either side, rank 4, in both programs.
  out.push([[3, 2, 7], [3, 7, 5], false, false]);
  out.push([[3, 40, 7], [1, 5, 7], false, true]);
  out.push([[1, 7, 40], [3, 7, 9], true, false]);
  out.push([[2, 3, 4, 6], [2, 3, 6, 70], false, false]);
  out.push([[2, 3, 80, 6], [2, 3, 70, 6], false, true]);
  return out;
}

Deno.test("webgpu matmul: our kernels equal stock over shapes, transposes and batch broadcasts", async () => {
  await useBackend("webgpu");
  assert(webgpuMatMulInstalled(), "initBackend installs our kernels on webgpu");
  const before = tf.memory().numTensors;
  webgpuMatMulStats(true);
  let seed = 1;
  for (const [sa, sb, ta, tb] of cases()) {
    const a = rand(sa, seed++), b = rand(sb, seed++);
    const [[want], [got]] = await both(() => tf.matMul(a, b, ta, tb));
    const k = ta ? sa[sa.length - 2] : sa[sa.length - 1];
    const d = maxDiff(want, got);
    assert(d <= 2e-6 * k + 1e-6, `${sa} x ${sb} (ta ${ta}, tb ${tb}): max |diff| ${d}`);
    tf.dispose([a, b]);
  }
  const s = webgpuMatMulStats(true);
  assert(s.gemv > 0 && s.tiled > 0, `both programs ran: ${JSON.stringify(s)}`);
  assertEquals(s.stock, 0, "no float32 product fell back to stock");
  assertEquals(tf.memory().numTensors, before);
});

Deno.test("webgpu matmul: fused bias and activations equal stock in both programs", async () => {
  await useBackend("webgpu");
  const acts = ["linear", "relu", "relu6", "elu", "sigmoid", "leakyrelu"] as const;
  let seed = 100;
  for (const [m, k, n] of [[1, 40, 70], [3, 2000, 6], [33, 40, 70]]) {
    for (const activation of acts) {
      for (const tb of [false, true]) {
        const a = rand([m, k], seed++), b = rand(tb ? [n, k] : [k, n], seed++), bias = rand([n], seed++);
        const [[want], [got]] = await both(() =>
          tf.fused.matMul({ a, b, transposeB: tb, bias, activation, leakyreluAlpha: 0.3 })
        );
        const d = maxDiff(want, got);
        assert(d <= 2e-6 * k + 1e-6, `${m}x${k}x${n} ${activation} tb ${tb}: max |diff| ${d}`);
        tf.dispose([a, b, bias]);
      }
    }
  }
});

Deno.test("webgpu matmul: gradients through our kernels equal stock", async () => {
  await useBackend("webgpu");
  let seed = 200;
  for (const [m, k, n] of [[1, 30, 50], [24, 70, 40], [3, 2048, 5]]) {
    const a = rand([2, m, k], seed++), b = rand([2, k, n], seed++), bias = rand([n], seed++);
    const r = rand([2, m, n], seed++);
    const loss = (x: tf.Tensor, w: tf.Tensor, c: tf.Tensor) =>
      tf.sum(tf.mul(tf.fused.matMul({ a: x, b: w, bias: c, activation: "relu" }), r));
    const [want, got] = await both(() => tf.grads(loss)([a, b, bias]));
    for (let i = 0; i < 3; i++) {
      const d = maxDiff(want[i], got[i]);
      assert(d <= 2e-6 * Math.max(k, 2 * m) + 1e-6, `${m}x${k}x${n} grad ${i}: max |diff| ${d}`);
    }
    tf.dispose([a, b, bias, r]);
  }
});

Deno.test("webgpu matmul: what the programs do not take goes to stock, with stock's results", async () => {
  await useBackend("webgpu");
  webgpuMatMulStats(true);
  const a = rand([4, 6], 1), b = rand([6, 5], 2), alpha = rand([5], 3);
  // prelu is not fused here: the stock kernel runs it.
  const [[want], [got]] = await both(() =>
    tf.fused.matMul({ a, b, activation: "prelu", preluActivationWeights: alpha })
  );
  assertEquals(maxDiff(want, got), 0);
  assertEquals(webgpuMatMulStats(true).stock, 1);
  tf.dispose([a, b, alpha]);
});

Deno.test("webgpu matmul: initBackend's webgpuKernels: false keeps stock, true installs ours, default by adapter", async () => {
  const { initBackend, webgpuKernelsEnabled } = await import("../../lib/backend/backend.ts");
  const info = await initBackend({ backend: "webgpu", webgpuKernels: false });
  assertEquals([webgpuMatMulInstalled(), webgpuKernelsEnabled()], [false, false]);
  await initBackend({ backend: "webgpu", webgpuKernels: true });
  assertEquals([webgpuMatMulInstalled(), webgpuKernelsEnabled()], [true, true]);
  // Default: ours on a hardware adapter; on a software one (llvmpipe) stock matmuls, fused norms/attention.
  await initBackend({ backend: "webgpu" });
  assertEquals([webgpuMatMulInstalled(), webgpuKernelsEnabled()], [!info.isFallbackAdapter, true]);
  await initBackend({ backend: "webgpu", webgpuKernels: true });
});
