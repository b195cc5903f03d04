/**
 * The native kernels (lib/backend/native_kernels.c through native_kernels.ts, wasm_matmul.ts and
 * wasm_gelu.ts): the packed GEMM against a float64 reference around its block sizes; the wasm adapter
 * packing a weight once, the first time it is seen, giving the same bits from the first product on and
 * matching the cpu backend (plain, transposed, batched, fused bias and activation, generation); packed
 * copies dropped on disposal and on in-place writes; the limits; the loader's errors (bad path, stale
 * build, no FFI); and GELU against float64 and the stock ops. The library is built into a temporary folder
 * here (tools/build_native.ts), so these tests need a C compiler; without one they are skipped with a
 * message.
 */
import { assert, assertEquals, assertRejects, assertThrows, maxDiff } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import { initBackend } from "../../lib/backend/backend.ts";
import { loadNativeKernels, packOperand } from "../../lib/backend/native_kernels.ts";
import { writeColumnsInPlace } from "../../lib/backend/decode_attention.ts";
import {
  MAX_PACKED_ROWS,
  setWasmNativeKernels,
  wasmMatMulStats,
  wasmNativeKernels,
  wasmPackedBytes,
} from "../../lib/backend/wasm_matmul.ts";
import { buildNativeKernels, NoCompilerError } from "../../tools/build_native.ts";
import { nativeGeluTanh } from "../../lib/backend/wasm_gelu.ts";
import { geluTanh } from "../../lib/nn/mlp.ts";
import { createDecoder, gpt2SmallConfig } from "../../lib/models/scratch.ts";
import { generate } from "../../lib/generate/generate.ts";

const dir = Deno.makeTempDirSync({ prefix: "native_kernels_test_" });
const built = `${dir}/libcoherence_native.so`;
let ignore = false;
try {
  await buildNativeKernels(built);
} catch (e) {
  if (!(e instanceof NoCompilerError)) throw e; // a failed build is a failure, not a skip
  ignore = true;
  console.warn(`native_kernels_test: ${e.message}: tests skipped`);
}
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

const ptr = (x: Float32Array) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(x)));

function values(n: number, seed: number): Float32Array {
  const v = new Float32Array(n);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    v[i] = x / 2 ** 31 - 1;
  }
  return v;
}

Deno.test({
  name: "native GEMM: the packed kernel equals a float64 reference around its block sizes",
  ignore,
  fn: () => {
    const gemm = loadNativeKernels(built)!;
    try {
      const nr = gemm.panelWidth;
      assert(nr === 16 || nr === 32, `panel width ${nr}`);
      for (const m of [1, 3, 8, 9, 17]) {
        for (const n of [1, nr - 1, nr, nr + 1, 100]) {
          for (const k of [1, 7, 256, 257, 600]) {
            for (const trans of [false, true]) {
              for (const withBias of [false, true]) {
                const a = values(m * k, m + k), b = values(k * n, n + 7 * k), bias = values(n, 3);
                const p = packOperand(gemm, ptr(b), trans ? k : n, trans, k, n);
                const c = new Float32Array(m * n).fill(NaN); // every element must be written
                gemm.gemm(m, n, k, ptr(a), k, p.address, ptr(c), n, withBias ? ptr(bias) : 0n);
                const want = new Float64Array(m * n);
                for (let i = 0; i < m; i++) {
                  for (let j = 0; j < n; j++) {
                    let s = withBias ? bias[j] : 0;
                    for (let t = 0; t < k; t++) s += a[i * k + t] * (trans ? b[j * k + t] : b[t * n + j]);
                    want[i * n + j] = s;
                  }
                }
                const d = maxDiff(c, want);
                assert(
                  d <= 2e-5 * Math.sqrt(k),
                  `m ${m} n ${n} k ${k} trans ${trans} bias ${withBias}: ${d}`,
                );
              }
            }
          }
        }
      }
    } finally {
      gemm.close();
    }
  },
});

/** Runs `f` on wasm with the native GEMM from `built` (and on cpu for the reference). */
async function onWasm<T>(f: () => T): Promise<T> {
  await initBackend({ backend: "wasm", nativeKernels: built });
  return f();
}

Deno.test({
  name: "native GEMM: a weight is packed once, products match cpu, and the first equals the next bit for bit",
  ignore,
  fn: async () => {
    const cases: { a: number[]; b: number[]; tB: boolean; bias?: boolean; act?: "relu" | "sigmoid" }[] = [
      { a: [5, 64], b: [64, 40], tB: false },
      { a: [1, 64], b: [64, 40], tB: false }, // one row: a matrix-vector product
      { a: [16, 96], b: [70, 96], tB: true }, // a tied head: the weight stored transposed
      { a: [2, 3, 48], b: [48, 33], tB: false }, // left batches stacked into rows
      { a: [7, 300], b: [1, 300, 65], tB: false, bias: true, act: "relu" },
      { a: [4, 32], b: [32, 50], tB: false, bias: true, act: "sigmoid" },
    ];
    for (const c of cases) {
      const av = values(c.a.reduce((x, y) => x * y), 1), bv = values(c.b.reduce((x, y) => x * y), 2);
      const n = c.tB ? c.b.at(-2)! : c.b.at(-1)!;
      const biasV = values(n, 4);
      const run = () => {
        const a = tf.tensor(av, c.a), w = tf.tensor(bv, c.b), bias = c.bias ? tf.tensor1d(biasV) : undefined;
        const outs: Float32Array[] = [];
        for (let i = 0; i < 3; i++) {
          const y = tf.fused.matMul({ a, b: w, transposeB: c.tB, bias, activation: c.act ?? "linear" });
          outs.push(y.dataSync() as Float32Array);
          y.dispose();
        }
        tf.dispose([a, w, ...(bias ? [bias] : [])]);
        return outs;
      };
      await initBackend({ backend: "cpu" });
      const want = run()[0];
      const got = await onWasm(() => {
        wasmMatMulStats(true);
        const r = run();
        return { r, stats: wasmMatMulStats(true) };
      });
      const what = JSON.stringify(c);
      assertEquals(got.stats.packs, 1, `${what}: packed once`);
      assertEquals(got.stats.packed, 3, `${what}: every product ran on the packed GEMM`);
      for (const out of got.r) assert(maxDiff(out, want) <= 1e-4, `${what}: ${maxDiff(out, want)}`);
      assertEquals(got.r[1], got.r[0], `${what}: the first product (which packed) equals the next`);
      assertEquals(wasmPackedBytes(), 0, `${what}: the copy went with its tensor`);
    }
  },
});

Deno.test({
  name: "native GEMM: gradients, transposed left operands and large products keep the other paths",
  ignore,
  fn: async () => {
    await onWasm(() => {
      const w = tf.variable(tf.tensor(values(40 * 24, 5), [40, 24]));
      const big = tf.tensor(values((MAX_PACKED_ROWS + 1) * 40, 6), [MAX_PACKED_ROWS + 1, 40]);
      const at = tf.tensor(values(40 * 9, 7), [40, 9]);
      wasmMatMulStats(true);
      for (let i = 0; i < 3; i++) tf.tidy(() => tf.matMul(big, w).dataSync()); // too many rows
      for (let i = 0; i < 3; i++) tf.tidy(() => tf.matMul(at, w, true).dataSync()); // A transposed
      const s = wasmMatMulStats(true);
      assertEquals(s.packed, 0);
      assertEquals(s.packs, 0);
      // The gradient of a loss through a packed weight equals the one without the native GEMM.
      const x = tf.tensor(values(6 * 40, 8), [6, 40]);
      const grad = () =>
        tf.tidy(() => tf.grad((v: tf.Tensor) => tf.matMul(x, v).square().sum())(w).dataSync());
      grad();
      const packedGrad = grad();
      assert(wasmMatMulStats().packed > 0, "the forward ran on the packed copy");
      setWasmNativeKernels(null);
      const plain = grad();
      assert(maxDiff(packedGrad, plain) <= 1e-3, `gradient: ${maxDiff(packedGrad, plain)}`);
      tf.dispose([w, big, at, x]);
    });
  },
});

Deno.test({
  name: "native GEMM: an in-place write drops the packed copy, and the next product sees the new values",
  ignore,
  fn: async () => {
    await onWasm(() => {
      // A [1, 1, C, hd] cache buffer is a one-batch right operand (q · Kᵀ), so it can be packed.
      const buf = tf.tensor(values(6 * 4, 9), [1, 1, 6, 4]) as tf.Tensor4D;
      const q = tf.tensor(values(4, 10), [1, 1, 1, 4]);
      const product = () => tf.tidy(() => Array.from(tf.matMul(q, buf, false, true).dataSync()));
      const before = product();
      assert(wasmPackedBytes() > 0, "packed by the first product");
      assert(writeColumnsInPlace(buf, tf.ones([1, 1, 1, 4]) as tf.Tensor4D, 2));
      assertEquals(wasmPackedBytes(), 0, "the write dropped the copy");
      const after = product();
      const sumQ = Array.from(q.dataSync()).reduce((s, v) => s + v, 0);
      assert(Math.abs(after[2] - sumQ) < 1e-5, `column 2 is now q · 1: ${after[2]} vs ${sumQ}`);
      assertEquals(after[0], before[0], "the other columns are unchanged");
      tf.dispose([buf, q]);
    });
  },
});

Deno.test({
  name: "native GEMM: generation through the packed weights matches the backend without it",
  ignore,
  fn: async () => {
    const config = gpt2SmallConfig({ nLayers: 2, dModel: 32, nHeads: 4, vocabSize: 61 });
    const run = async (nativeKernels: string | false) => {
      await initBackend({ backend: "wasm", nativeKernels });
      wasmMatMulStats(true);
      const model = createDecoder(config, { seed: 3 });
      const outs: number[][][] = [];
      let before = 0;
      for (let i = 0; i < 3; i++) {
        if (i === 1) before = tf.memory().numTensors; // after the first run's lasting transposed head copy
        const run = await generate(model, [[1, 2, 3, 4], [5, 6, 7, 8]], { maxNewTokens: 12 }).collect();
        outs.push(run.rows.map((r) => r.tokens));
      }
      const stats = wasmMatMulStats(true);
      assertEquals(tf.memory().numTensors, before, "no tensors left behind");
      model.dispose();
      return { outs, stats };
    };
    const plain = await run(false);
    const packed = await run(built);
    assert(packed.stats.packed > 0 && packed.stats.packs > 0, JSON.stringify(packed.stats));
    assertEquals(plain.stats.packed, 0);
    assertEquals(packed.outs, plain.outs);
    assertEquals(wasmPackedBytes(), 0, "the model's copies went with it");
  },
});

Deno.test({
  name: "native GEMM: packedWeightBytes caps the kept copies (past it, operands are packed per product)",
  ignore,
  fn: async () => {
    const w = () => tf.tensor(values(64 * 64, 11), [64, 64]);
    const x = () => tf.tensor(values(4 * 64, 12), [4, 64]);
    // Two 64 x 64 weights (16 KiB packed each), each multiplied twice.
    for (const [limit, packs] of [[0, 4], [20_000, 3], [2 ** 30, 2]] as const) {
      await initBackend({ backend: "wasm", nativeKernels: built, packedWeightBytes: limit });
      const ws = [w(), w()], xs = x();
      wasmMatMulStats(true);
      const outs = [];
      for (let i = 0; i < 2; i++) for (const wi of ws) outs.push(tf.tidy(() => tf.matMul(xs, wi).dataSync()));
      const s = wasmMatMulStats(true);
      assertEquals([s.packs, s.packed], [packs, 4], `limit ${limit}`);
      assertEquals(outs[2], outs[0], `limit ${limit}: kept or not, the same bits`);
      assert(wasmPackedBytes() <= limit);
      tf.dispose([...ws, xs]);
    }
    await initBackend({ backend: "wasm" }); // back to the default limit
  },
});

Deno.test({
  name: "native GEMM: clear errors for a bad path, a stale build, FFI-less loads and bad options",
  ignore,
  fn: async () => {
    assertThrows(() => loadNativeKernels(`${dir}/missing.so`), Error, "deno task build-native");
    const stale = `${dir}/stale.so`;
    const src = new URL("../../lib/backend/native_kernels.c", import.meta.url).pathname;
    const cc = await new Deno.Command("cc", {
      args: ["-O1", "-fPIC", "-shared", "-DCL_SOURCE_HASH=1u", "-o", stale, src],
      stderr: "piped",
    }).output();
    assert(cc.success, new TextDecoder().decode(cc.stderr));
    assertThrows(() => loadNativeKernels(stale), Error, "stale");
    await assertRejects(() => initBackend({ backend: "wasm", packedWeightBytes: -1 }), "packedWeightBytes");
    await assertRejects(() => initBackend({ backend: "wasm", nativeKernels: stale }), "stale");
    const info = await initBackend({ backend: "wasm", nativeKernels: false });
    assertEquals(info.native, undefined);
    assert(info.notes.some((n) => n.includes("no native kernels (switched off)")), info.notes.join("; "));
    assertEquals(wasmNativeKernels(), null);
    const on = await initBackend({ backend: "wasm", nativeKernels: built });
    assertEquals(on.native, built);
    await initBackend({ backend: "wasm" });
  },
});

Deno.test({
  name: "native GEMM: without the FFI permission nothing loads, and the default path says why",
  ignore,
  fn: async () => {
    const script = `${dir}/no_ffi.ts`;
    Deno.writeTextFileSync(
      script,
      `import { loadNativeKernels, nativeKernelsMissing } from "${new URL(
        "../../lib/backend/native_kernels.ts",
        import.meta.url,
      )}";
      console.log(JSON.stringify({ lib: loadNativeKernels() === null, why: nativeKernelsMissing }));`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-check", "--allow-read", script],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(out.success, new TextDecoder().decode(out.stderr));
    const r = JSON.parse(new TextDecoder().decode(out.stdout));
    assertEquals(r, { lib: true, why: "FFI is not permitted" });
  },
});

Deno.test({
  name: "native GELU: within 2e-7 of float64 over [-20, 20], exact at 0, NaN kept; inference only on wasm",
  ignore,
  fn: async () => {
    const n = 40_003; // not a multiple of the vector width: the tail runs too
    const x = Float32Array.from({ length: n }, (_, i) => -20 + (40 * i) / (n - 1));
    x[7] = 0;
    x[8] = NaN;
    const c1 = 2 * Math.sqrt(2 / Math.PI), c2 = 0.044715 * c1;
    const ref = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
    const lib = loadNativeKernels(built)!;
    const y = new Float32Array(n);
    lib.geluTanh(ptr(x), ptr(y), n, Math.fround(c1), Math.fround(c2));
    lib.close();
    let worst = 0;
    for (let i = 0; i < n; i++) {
      if (i === 8) continue;
      worst = Math.max(worst, Math.abs(y[i] - ref(x[i])) / Math.max(1, Math.abs(x[i])));
    }
    assert(worst <= 2e-7, `max relative error ${worst}`);
    assertEquals([y[7], Number.isNaN(y[8])], [0, true]);
    // Through the library: the same values as cpu's stock ops to 1e-6, and the stock ops under a tape.
    await initBackend({ backend: "cpu" });
    const want = tf.tidy(() => geluTanh(tf.tensor(x.subarray(0, 1000), [10, 100])).dataSync());
    await initBackend({ backend: "wasm", nativeKernels: built });
    const xs = tf.tensor(x.subarray(0, 1000), [10, 100]);
    const fast = nativeGeluTanh(xs, c1, c2)!;
    assert(fast !== null, "the native kernel applies");
    const got = fast.dataSync();
    let d = 0;
    for (let i = 0; i < want.length; i++) if (i !== 8) d = Math.max(d, Math.abs(got[i] - want[i]));
    assert(d <= 1e-5, `against cpu: ${d}`); // |x| up to 20
    const taped = tf.grad((v: tf.Tensor) => {
      assertEquals(nativeGeluTanh(v, c1, c2), null, "no native kernel under a tape");
      return geluTanh(v).sum();
    })(xs);
    tf.dispose([xs, fast, taped]);
  },
});
