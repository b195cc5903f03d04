import { tf } from "../../lib/deps.ts";
import { initBackend } from "../../lib/backend/backend.ts";
import {
  installWasmMatMul,
  MIN_ROUTED_ROWS,
  uninstallWasmMatMul,
  wasmMatMulInstalled,
  wasmMatMulStats,
} from "../../lib/backend/wasm_matmul.ts";
import { assert } from "../assert.ts";

// XNNPACK routing is what this file tests: the native CBLAS (tests/backend/native_blas_test.ts) stays off.
const ok = await initBackend({ backend: "wasm", nativeBlas: false, nativeKernels: false }).then(
  () => true,
  () => false,
);
if (!ok) console.log("note: wasm backend unavailable; skipping the wasm matmul adapter tests");

/** Deterministic values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function rand(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(values(shape.reduce((a, b) => a * b, 1), seed), shape);
}

function close(actual: tf.Tensor, expected: tf.Tensor, what: string, tol = 2e-5): void {
  assert(
    actual.shape.join() === expected.shape.join(),
    `${what}: shape ${actual.shape} vs ${expected.shape}`,
  );
  const a = actual.dataSync(), e = expected.dataSync();
  for (let i = 0; i < e.length; i++) {
    const d = Math.abs(a[i] - e[i]);
    if (!(d <= tol * Math.max(1, Math.abs(e[i])))) {
      throw new Error(`${what}: element ${i} is ${a[i]}, stock gives ${e[i]} (|diff| ${d})`);
    }
  }
}

/** Runs `f` with the stock kernels, then with the adapter, and returns both results. */
function both<T>(f: () => T): { stock: T; routed: T } {
  uninstallWasmMatMul();
  const stock = f();
  installWasmMatMul();
  const routed = f();
  return { stock, routed };
}

// Batch shapes of a and b: none, equal, one side broadcast, rank-4.
const BATCHES: [number[], number[]][] = [[[], []], [[3], [3]], [[3], []], [[], [3]], [[2, 2], [2, 2]]];
const MS = [1, 5, MIN_ROUTED_ROWS, 19];
const KS = [7, 32];
const NS = [1, 9, 24];

function shapeOf(batch: number[], rows: number, cols: number, transposed: boolean): number[] {
  return [...batch, ...(transposed ? [cols, rows] : [rows, cols])];
}

Deno.test({
  name: "wasm matmul adapter: forward equals the stock kernel over shapes, batches and transpose flags",
  ignore: !ok,
  fn: () => {
    const before = tf.memory().numTensors;
    wasmMatMulStats(true);
    let cases = 0;
    for (const [ba, bb] of BATCHES) {
      for (const m of MS) {
        for (const k of KS) {
          for (const n of NS) {
            for (const tA of [false, true]) {
              for (const tB of [false, true]) {
                const a = rand(shapeOf(ba, m, k, tA), 1 + cases);
                const b = rand(shapeOf(bb, k, n, tB), 1000 + cases);
                const r = both(() => tf.matMul(a, b, tA, tB));
                close(r.routed, r.stock, `a ${a.shape} b ${b.shape} tA ${tA} tB ${tB}`);
                tf.dispose([a, b, r.stock, r.routed]);
                cases++;
              }
            }
          }
        }
      }
    }
    const s = wasmMatMulStats(true);
    assert(s.routed > 0 && s.stock > 0, `both paths exercised: ${JSON.stringify(s)}`);
    assert(wasmMatMulInstalled());
    assert(tf.memory().numTensors === before, "no tensors leaked");
  },
});

Deno.test({
  name: "wasm matmul adapter: gradients equal the stock kernel's",
  ignore: !ok,
  fn: () => {
    let seed = 7;
    // tfjs-core's BatchMatMul gradient does not reduce over broadcast batch dims (stock fails too): skip them.
    for (const [ba, bb] of BATCHES.filter(([x, y]) => x.length === y.length)) {
      for (const [m, k, n] of [[MIN_ROUTED_ROWS, 16, 12], [21, 8, 1], [3, 16, 12], [32, 32, 32]]) {
        for (const tA of [false, true]) {
          for (const tB of [false, true]) {
            const a = rand(shapeOf(ba, m, k, tA), seed++);
            const b = rand(shapeOf(bb, k, n, tB), seed++);
            const out = tf.matMul(a, b, tA, tB);
            const w = rand(out.shape, seed++);
            const g = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y, tA, tB).mul(w).sum());
            const r = both(() => g([a, b]));
            close(r.routed[0], r.stock[0], `dA of a ${a.shape} b ${b.shape} tA ${tA} tB ${tB}`);
            close(r.routed[1], r.stock[1], `dB of a ${a.shape} b ${b.shape} tA ${tA} tB ${tB}`);
            tf.dispose([a, b, out, w, ...r.stock, ...r.routed]);
          }
        }
      }
    }
  },
});

/** Plain double-precision reference of act(op(a) op(b) + bias) for 2-D a, b. */
function reference(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  tA: boolean,
  tB: boolean,
  bias: Float32Array,
  act: (v: number) => number,
): Float32Array {
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        s += (tA ? a[p * m + i] : a[i * k + p]) * (tB ? b[j * k + p] : b[p * n + j]);
      }
      out[i * n + j] = act(s + bias[j]);
    }
  }
  return out;
}

Deno.test({
  name: "wasm matmul adapter: fused matmul with bias is right where stock's scalar path indexes bias[i*N+j]",
  ignore: !ok,
  fn: () => {
    installWasmMatMul();
    const acts: [tf.fused.Activation, (v: number) => number][] = [
      ["linear", (v) => v],
      ["relu", (v) => Math.max(0, v)],
      ["sigmoid", (v) => 1 / (1 + Math.exp(-v))],
    ];
    for (const [m, k, n] of [[2, 5, 3], [MIN_ROUTED_ROWS, 16, 12], [17, 9, 31]]) {
      for (const tA of [false, true]) {
        for (const tB of [false, true]) {
          for (const [name, act] of acts) {
            const av = values(m * k, m + k), bv = values(k * n, n), biasv = values(n, 99);
            const a = tf.tensor2d(av, tA ? [k, m] : [m, k]);
            const b = tf.tensor2d(bv, tB ? [n, k] : [k, n]);
            const bias = tf.tensor1d(biasv);
            const y = tf.fused.matMul({ a, b, transposeA: tA, transposeB: tB, bias, activation: name });
            const want = tf.tensor2d(reference(av, bv, m, k, n, tA, tB, biasv, act), [m, n]);
            close(y, want, `fused ${name} [${m}x${k}]x[${k}x${n}] tA ${tA} tB ${tB}`, 1e-5);
            tf.dispose([a, b, bias, y, want]);
          }
        }
      }
    }
  },
});

Deno.test({
  name: "wasm matmul adapter: fused matmul gradients (bias, transposes, batch) equal the unfused stock ops",
  ignore: !ok,
  fn: () => {
    let seed = 3;
    for (const [ba, bb] of [[[], []], [[2], [2]]] as [number[], number[]][]) {
      for (const tA of [false, true]) {
        for (const tB of [false, true]) {
          const [m, k, n] = [12, 10, 6];
          const a = rand(shapeOf(ba, m, k, tA), seed++);
          const b = rand(shapeOf(bb, k, n, tB), seed++);
          const bias = rand([n], seed++);
          const w = rand([...(ba.length ? ba : bb), m, n], seed++);
          installWasmMatMul();
          const fused = tf.grads((x: tf.Tensor, y: tf.Tensor, c: tf.Tensor) =>
            tf.fused.matMul({ a: x, b: y, bias: c, transposeA: tA, transposeB: tB, activation: "relu" })
              .mul(w).sum()
          )([a, b, bias]);
          uninstallWasmMatMul();
          const plain = tf.grads((x: tf.Tensor, y: tf.Tensor, c: tf.Tensor) =>
            tf.relu(tf.matMul(x, y, tA, tB).add(c)).mul(w).sum()
          )([a, b, bias]);
          installWasmMatMul();
          for (let i = 0; i < 3; i++) {
            close(fused[i], plain[i], `grad ${i} of a ${a.shape} b ${b.shape} tA ${tA} tB ${tB}`);
          }
          tf.dispose([a, b, bias, w, ...fused, ...plain]);
        }
      }
    }
  },
});

Deno.test({
  name: "wasm matmul adapter: initBackend can disable it",
  ignore: !ok,
  fn: async () => {
    await initBackend({ backend: "wasm", wasmMatMul: false });
    assert(!wasmMatMulInstalled());
    await initBackend({ backend: "wasm", nativeBlas: false, nativeKernels: false });
    assert(wasmMatMulInstalled());
  },
});
