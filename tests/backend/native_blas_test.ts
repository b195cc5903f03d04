/**
 * The native CBLAS path of the wasm matmuls (lib/backend/native_blas.ts through lib/backend/wasm_matmul.ts):
 * products over shapes, transposes and batch broadcasts, fused bias and activations, and gradients against
 * the cpu backend; training on it; the fallbacks and errors of `initBackend`'s `nativeBlas`. Skipped, with
 * a message, where no CBLAS is installed (Debian: apt-get install libopenblas0).
 */
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import { initBackend } from "../../lib/backend/backend.ts";
import { loadNativeBlas } from "../../lib/backend/native_blas.ts";
import { wasmMatMulStats, wasmNativeBlas } from "../../lib/backend/wasm_matmul.ts";

const probe = loadNativeBlas();
probe?.close();
const ignore = probe === null;
if (ignore) console.warn("native_blas_test: no CBLAS found (apt-get install libopenblas0): tests skipped");

/** Flat values of `f()` on `backend`, from inputs made there out of the same host arrays. */
async function on(
  backend: "cpu" | "wasm",
  inputs: { shape: number[]; values: Float32Array }[],
  f: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[],
): Promise<Float32Array[]> {
  await initBackend({ backend, nativeKernels: false }); // the CBLAS path, not the packed GEMM (native_kernels_test)
  const xs = inputs.map((i) => tf.tensor(i.values, i.shape));
  const r = f(...xs);
  const list = Array.isArray(r) ? r : [r];
  const out = await Promise.all(list.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose([...xs, ...list]);
  return out;
}

function values(shape: number[], seed: number): { shape: number[]; values: Float32Array } {
  const n = shape.reduce((a, b) => a * b, 1), v = new Float32Array(n);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    v[i] = x / 2 ** 31 - 1;
  }
  return { shape, values: v };
}

function close(a: Float32Array, b: Float32Array, tol: number, what: string): void {
  assertEquals(a.length, b.length, what);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  assert(m <= tol, `${what}: max |diff| ${m} > ${tol}`);
}

Deno.test({
  name: "native BLAS: products equal the cpu backend over shapes, transposes and batch broadcasts",
  ignore,
  fn: async () => {
    const cases: [number[], number[], boolean, boolean][] = [];
    for (const [m, k, n] of [[8, 1, 1], [8, 64, 300], [9, 5, 3], [64, 130, 17], [200, 33, 70]]) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) cases.push([ta ? [k, m] : [m, k], tb ? [n, k] : [k, n], ta, tb]);
      }
    }
    cases.push([[3, 8, 6], [3, 6, 5], false, false]);
    cases.push([[3, 40, 7], [5, 7], false, true]);
    cases.push([[7, 40], [3, 7, 9], true, false]);
    cases.push([[2, 3, 8, 6], [2, 3, 6, 70], false, false]);
    let seed = 1;
    for (const [sa, sb, ta, tb] of cases) {
      const inputs = [values(sa, seed++), values(sb, seed++)];
      const f = (a: tf.Tensor, b: tf.Tensor) => tf.matMul(a, b, ta, tb);
      const [want] = await on("cpu", inputs, f);
      wasmMatMulStats(true);
      const [got] = await on("wasm", inputs, f);
      assert(wasmMatMulStats().native >= 1, "the product ran on the native CBLAS");
      const k = ta ? sa[sa.length - 2] : sa[sa.length - 1];
      close(got, want, 2e-6 * k + 1e-6, `${sa} x ${sb} (ta ${ta}, tb ${tb})`);
    }
  },
});

Deno.test({
  name: "native BLAS: fused bias and activations, and gradients, equal the cpu backend",
  ignore,
  fn: async () => {
    let seed = 100;
    for (const activation of ["linear", "relu", "elu", "sigmoid", "leakyrelu"] as const) {
      const inputs = [values([9, 20], seed++), values([30, 20], seed++), values([30], seed++)]; // 9 rows: BLAS
      const f = (a: tf.Tensor, b: tf.Tensor, bias: tf.Tensor) =>
        tf.fused.matMul({ a, b, transposeB: true, bias, activation });
      close((await on("wasm", inputs, f))[0], (await on("cpu", inputs, f))[0], 1e-5, activation);
    }
    // Batched rows with a bias (the GEMM accumulates it into rows prefilled with it), and a relu after.
    const batched = [values([3, 9, 20], 50), values([20, 30], 51), values([30], 52)];
    const fb = (a: tf.Tensor, b: tf.Tensor, bias: tf.Tensor) =>
      tf.fused.matMul({ a, b, bias, activation: "relu" });
    close((await on("wasm", batched, fb))[0], (await on("cpu", batched, fb))[0], 1e-5, "batched bias");
    const inputs = [values([2, 12, 30], 7), values([2, 30, 8], 8), values([2, 12, 8], 9)];
    const g = (a: tf.Tensor, b: tf.Tensor, r: tf.Tensor) =>
      tf.grads((x: tf.Tensor, w: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, w), r)))([a, b]);
    const want = await on("cpu", inputs, g), got = await on("wasm", inputs, g);
    for (let i = 0; i < 2; i++) close(got[i], want[i], 1e-4, `gradient ${i}`);
  },
});

Deno.test({
  name: "native BLAS: initBackend uses it by default, nativeBlas: false keeps XNNPACK, bad requests say why",
  ignore,
  fn: async () => {
    const info = await initBackend({ backend: "wasm" });
    assert(info.blas && wasmNativeBlas()?.path === info.blas, "on by default where a CBLAS loads");
    assert(info.notes.some((n) => n.includes("native CBLAS")));
    const off = await initBackend({ backend: "wasm", nativeBlas: false, nativeKernels: false });
    assertEquals([off.blas, wasmNativeBlas()], [undefined, null]);
    wasmMatMulStats(true);
    tf.tidy(() => tf.matMul(tf.ones([16, 8]), tf.ones([4, 8]), false, true));
    assertEquals(wasmMatMulStats().native, 0);
    // One-row products stay on XNNPACK even with the CBLAS on (its matrix-vector kernel is faster).
    await initBackend({ backend: "wasm", nativeKernels: false });
    wasmMatMulStats(true);
    tf.tidy(() => tf.matMul(tf.ones([1, 8]), tf.ones([8, 4])));
    assertEquals(wasmMatMulStats().native, 0);
    await assertRejects(
      () => initBackend({ backend: "wasm", nativeBlas: "/nonexistent/libnope.so" }),
      Error,
      "apt-get install libopenblas0",
    );
    await assertRejects(() => initBackend({ backend: "wasm", blasThreads: 0 }), RangeError, "blasThreads");
    const two = await initBackend({ backend: "wasm", blasThreads: 2 });
    assert(two.notes.some((n) => n.includes("(2 threads)")));
    await initBackend({ backend: "wasm" });
  },
});

Deno.test("native BLAS: without the FFI permission nothing loads, and a named library says to allow it", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/probe.ts`;
  const lib = new URL("../../lib/backend/native_blas.ts", import.meta.url).href;
  await Deno.writeTextFile(
    file,
    `import { loadNativeBlas } from ${JSON.stringify(lib)};
console.log(JSON.stringify(loadNativeBlas()));
try { loadNativeBlas("libopenblas.so.0"); } catch (e) { console.log((e as Error).message); }
`,
  );
  try {
    // No permission flags: FFI is not granted.
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-check", "--no-prompt", file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assertEquals(text.split("\n")[0], "null", text + new TextDecoder().decode(out.stderr));
    assert(text.includes("--allow-ffi"), text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
