/**
 * The webgpu backend adapter for matrix products: our own WGSL kernels for `BatchMatMul` and
 * `_FusedMatMul`, registered over tfjs-webgpu's stock ones.
 *
 * Two programs cover every float32 product (any transpose flags, batch dims equal or broadcast from 1):
 *
 * - **Matrix-vector** (at most {@linkcode GEMV_MAX_ROWS} output rows per batch: decode's linear layers and
 *   tied head). Bandwidth bound, so every weight is read once, by contiguous lanes: for `[K, N]` weights a
 *   workgroup owns 64 adjacent columns and 4 slices of K; for transposed `[N, K]` weights (a tied head) it
 *   owns 32 columns and reads each row with 8 adjacent lanes. Partial sums meet in workgroup memory. When
 *   a product has too few columns to keep the device busy, K is split across workgroups and a second
 *   small program adds the partial sums.
 * - **Tiled** (everything else: prefill, training): a 64 × 64 output tile per workgroup of 256 threads,
 *   each accumulating a 4 × 4 block over K in steps of 16 staged through workgroup memory, loads laid out
 *   so that adjacent threads read adjacent addresses whatever the transpose flags.
 *
 * Bias (a length-N vector) and the activations tfjs fuses (`linear`, `relu`, `relu6`, `elu`, `sigmoid`,
 * `leakyrelu`) are applied where the result is written. Anything else (other dtypes, `prelu`, other bias
 * shapes, dispatches over the device limit) goes to the stock kernel. fp32 accumulation throughout; the
 * sums run in a different order from stock's, so results agree to rounding, not bitwise.
 *
 * @module
 */
import { tf } from "../deps.ts";
import { type KernelArgs, KernelOverride, stockKernel, type WebGPUProgramBackend } from "./stock_kernels.ts";

/**
 * Output rows per batch up to which a product takes the matrix-vector program.
 *
 * @category Backend
 * @internal Used inside the library; not part of the stable API.
 */
export const GEMV_MAX_ROWS = 16;

type TensorInfo = tf.TensorInfo;

const override = new KernelOverride("webgpu", {
  BatchMatMul: matMulKernel("BatchMatMul"),
  _FusedMatMul: matMulKernel("_FusedMatMul"),
});
let stats = { gemv: 0, tiled: 0, stock: 0 };

/**
 * Whether our webgpu matmul kernels are registered now.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { installWebGPUMatMul, uninstallWebGPUMatMul, webgpuMatMulInstalled } from "./webgpu_matmul.ts";
 * if (installWebGPUMatMul()) { // false where the webgpu kernels are not registered at all
 *   assert.equal(webgpuMatMulInstalled(), true);
 *   uninstallWebGPUMatMul();
 * }
 * assert.equal(webgpuMatMulInstalled(), false);
 * ```
 *
 * @category Backend
 */
export function webgpuMatMulInstalled(): boolean {
  return override.installed;
}

/**
 * Counts of products run by each program (and left to stock) since the last reset.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { webgpuMatMulStats } from "./webgpu_matmul.ts";
 * webgpuMatMulStats(true); // reset
 * assert.deepEqual(webgpuMatMulStats(), { gemv: 0, tiled: 0, stock: 0 });
 * ```
 *
 * @category Backend
 */
export function webgpuMatMulStats(reset = false): { gemv: number; tiled: number; stock: number } {
  const s = { ...stats };
  if (reset) stats = { gemv: 0, tiled: 0, stock: 0 };
  return s;
}

/**
 * Registers our `BatchMatMul` and `_FusedMatMul` for the webgpu backend (idempotent); returns false when
 * the webgpu kernels are not registered at all. `initBackend` calls it unless told `webgpuKernels: false`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { installWebGPUMatMul, webgpuMatMulInstalled } from "./webgpu_matmul.ts";
 * assert.equal(installWebGPUMatMul(), webgpuMatMulInstalled());
 * ```
 *
 * @category Backend
 */
export function installWebGPUMatMul(): boolean {
  return override.install();
}

/**
 * Restores the stock webgpu matmul kernels (idempotent).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { uninstallWebGPUMatMul, webgpuMatMulInstalled } from "./webgpu_matmul.ts";
 * uninstallWebGPUMatMul();
 * assert.equal(webgpuMatMulInstalled(), false);
 * ```
 *
 * @category Backend
 */
export function uninstallWebGPUMatMul(): void {
  override.uninstall();
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** `tfjs activation name -> WGSL expression of v` for the activations we fuse. */
const ACTIVATIONS: Record<string, string> = {
  linear: "v",
  relu: "max(v, 0.0)",
  relu6: "clamp(v, 0.0, 6.0)",
  elu: "select(exp(v) - 1.0, v, v >= 0.0)",
  sigmoid: "1.0 / (1.0 + exp(-v))",
  leakyrelu: "select(uniforms.alpha * v, v, v >= 0.0)",
};

/** A product as our programs see it: batch × (M × K) · (K × N), batches broadcast from 1. */
interface Product {
  a: TensorInfo;
  b: TensorInfo;
  bias?: TensorInfo;
  ta: boolean;
  tb: boolean;
  m: number;
  k: number;
  n: number;
  batchA: number;
  batchB: number;
  batch: number;
  outShape: number[];
  activation: string;
  alpha: number;
}

/** The product's geometry, or null when our programs do not take it (stock does). */
function product(args: KernelArgs, fused: boolean): Product | null {
  const { a, b, bias, preluActivationWeights } = args.inputs;
  if (!a || !b || a.dtype !== "float32" || b.dtype !== "float32") return null;
  if (a.shape.length < 2 || b.shape.length < 2) return null;
  const attrs = args.attrs ?? {};
  const ta = !!attrs.transposeA, tb = !!attrs.transposeB;
  const activation = fused ? String(attrs.activation ?? "linear") : "linear";
  if (!(activation in ACTIVATIONS) || preluActivationWeights) return null;
  const ra = a.shape.length, rb = b.shape.length;
  const m = ta ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = ta ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = tb ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = tb ? b.shape[rb - 2] : b.shape[rb - 1];
  if (k !== kb) return null; // stock raises the error users know
  const outerA = a.shape.slice(0, -2), outerB = b.shape.slice(0, -2);
  const batchA = size(outerA), batchB = size(outerB);
  if (batchA !== batchB && batchA !== 1 && batchB !== 1) return null;
  let outer: number[];
  try {
    outer = tf.backend_util.assertAndGetBroadcastShape(outerA, outerB);
  } catch {
    return null;
  }
  if (
    bias && (bias.dtype !== "float32" || size(bias.shape) !== n || bias.shape[bias.shape.length - 1] !== n)
  ) {
    return null;
  }
  if (m * n * Math.max(batchA, batchB) === 0 || k === 0) return null;
  return {
    a,
    b,
    bias,
    ta,
    tb,
    m,
    k,
    n,
    batchA,
    batchB,
    batch: Math.max(batchA, batchB),
    outShape: [...outer, m, n],
    activation,
    alpha: Number(attrs.leakyreluAlpha ?? 0.2),
  };
}

const UNIFORMS = "m : i32, n : i32, k : i32, batchA : i32, batchB : i32, kChunk : i32, alpha : f32,";

function uniformsOf(p: Product, kChunk: number): { type: string; data: number[] }[] {
  return [
    ...[p.m, p.n, p.k, p.batchA, p.batchB, kChunk].map((x) => ({ type: "int32", data: [x] })),
    { type: "float32", data: [p.alpha] },
  ];
}

/** WGSL helpers every program shares: operand reads with the transpose flags baked in. */
function operandReads(ta: boolean, tb: boolean): string {
  return `
    fn readA(z : i32, i : i32, kk : i32) -> f32 {
      let base = select(z, 0, uniforms.batchA == 1) * uniforms.m * uniforms.k;
      return a[base + ${ta ? "kk * uniforms.m + i" : "i * uniforms.k + kk"}];
    }
    fn readB(z : i32, kk : i32, j : i32) -> f32 {
      let base = select(z, 0, uniforms.batchB == 1) * uniforms.k * uniforms.n;
      return b[base + ${tb ? "j * uniforms.k + kk" : "kk * uniforms.n + j"}];
    }`;
}

/** The epilogue: bias and activation on value `v` of column `j`. */
function epilogue(p: Product, v: string, j: string): string {
  const biased = p.bias ? `${v} + bias[${j}]` : v;
  return `activate(${biased})`;
}

function activateFn(activation: string): string {
  return `fn activate(v : f32) -> f32 { return ${ACTIVATIONS[activation]}; }`;
}

function variableNames(p: Product): string[] {
  return p.bias ? ["a", "b", "bias"] : ["a", "b"];
}

/** A tfjs-webgpu program object with our own workgroup layout (the index argument is unused). */
function programOf(
  key: string,
  names: string[],
  outputShape: number[],
  dispatch: number[],
  code: string,
): object {
  return {
    variableNames: names,
    outputShape,
    shaderKey: key,
    dispatchLayout: { x: outputShape.map((_, i) => i) },
    dispatch,
    workgroupSize: [256, 1, 1],
    uniforms: UNIFORMS,
    getUserCode: () => code,
  };
}

/** The 64 × 64-tile program. */
function tiledProgram(p: Product): object {
  // Loads: 1,024 elements per operand tile, 4 per thread; the index split follows the operand's memory
  // order so that adjacent threads read adjacent addresses.
  const loadA = p.ta
    ? "let kk = idx / 64; let r = idx % 64;" // A is [K, M]: contiguous along m
    : "let r = idx / 16; let kk = idx % 16;"; // A is [M, K]: contiguous along k
  const loadB = p.tb
    ? "let c = idx / 16; let kk = idx % 16;" // B is [N, K]: contiguous along k
    : "let kk = idx / 64; let c = idx % 64;"; // B is [K, N]: contiguous along n
  const code = `
    var<workgroup> tileA : array<f32, 1024>; // [16 k][64 rows]
    var<workgroup> tileB : array<f32, 1024>; // [16 k][64 cols]
    ${operandReads(p.ta, p.tb)}
    ${activateFn(p.activation)}
    fn main(index : i32) {
      let tid = i32(localIndex);
      let tx = tid % 16;
      let ty = tid / 16;
      let row0 = i32(workgroupId.y) * 64;
      let col0 = i32(workgroupId.x) * 64;
      let z = i32(workgroupId.z);
      var acc : array<f32, 16>;
      for (var k0 = 0; k0 < uniforms.k; k0 = k0 + 16) {
        for (var e = 0; e < 4; e = e + 1) {
          let idx = tid + e * 256;
          {
            ${loadA}
            var va = 0.0;
            if (row0 + r < uniforms.m && k0 + kk < uniforms.k) { va = readA(z, row0 + r, k0 + kk); }
            tileA[kk * 64 + r] = va;
          }
          {
            ${loadB}
            var vb = 0.0;
            if (col0 + c < uniforms.n && k0 + kk < uniforms.k) { vb = readB(z, k0 + kk, col0 + c); }
            tileB[kk * 64 + c] = vb;
          }
        }
        workgroupBarrier();
        for (var kk = 0; kk < 16; kk = kk + 1) {
          var ra : array<f32, 4>;
          var rb : array<f32, 4>;
          for (var i = 0; i < 4; i = i + 1) {
            ra[i] = tileA[kk * 64 + ty + 16 * i];
            rb[i] = tileB[kk * 64 + tx + 16 * i];
          }
          for (var i = 0; i < 4; i = i + 1) {
            for (var j = 0; j < 4; j = j + 1) {
              acc[i * 4 + j] = fma(ra[i], rb[j], acc[i * 4 + j]);
            }
          }
        }
        workgroupBarrier();
      }
      for (var i = 0; i < 4; i = i + 1) {
        let r = row0 + ty + 16 * i;
        for (var j = 0; j < 4; j = j + 1) {
          let c = col0 + tx + 16 * j;
          if (r < uniforms.m && c < uniforms.n) {
            result[(z * uniforms.m + r) * uniforms.n + c] = ${epilogue(p, "acc[i * 4 + j]", "c")};
          }
        }
      }
    }`;
  const key = `coherenceMatMulTiled_${p.ta}_${p.tb}_${p.activation}_${!!p.bias}`;
  const dispatch = [Math.ceil(p.n / 64), Math.ceil(p.m / 64), p.batch];
  return programOf(key, variableNames(p), [p.batch, p.m, p.n], dispatch, code);
}

/**
 * The matrix-vector program over `splits` K-slices (of `uniforms.kChunk`); with `partial`, writes raw partial sums
 * `[splits, batch·M, N]` for {@linkcode sumProgram}, else the finished output.
 */
function gemvProgram(p: Product, splits: number, partial: boolean): object {
  const rows = p.m;
  const { cols, lanes } = gemvLayout(p.tb);
  // Lanes run along K; with tb they are adjacent threads (adjacent addresses of a row of B).
  const colOf = p.tb ? `tid / ${lanes}` : `tid % ${cols}`;
  const laneOf = p.tb ? `tid % ${lanes}` : `tid / ${cols}`;
  const tidOf = p.tb ? `col * ${lanes} + l` : `l * ${cols} + col`;
  const write = partial
    ? "result[(s * batchRows + z * uniforms.m + m) * uniforms.n + c] = v;"
    : `result[(z * uniforms.m + m) * uniforms.n + c] = ${epilogue(p, "v", "c")};`;
  // The partial sums of up to 8 rows meet in workgroup memory at once: two barriers per 8 rows (barriers
  // are what a tree reduction pays for, on GPUs and far more on CPU renderers such as llvmpipe).
  const code = `
    const ROWS = ${rows};
    const LANES = ${lanes};
    const COLS = ${cols};
    var<workgroup> red : array<f32, 2048>;
    ${operandReads(p.ta, p.tb)}
    ${activateFn(p.activation)}
    fn main(index : i32) {
      let tid = i32(localIndex);
      let col = ${colOf};
      let lane = ${laneOf};
      let c = i32(workgroupId.x) * COLS + col;
      let s = i32(workgroupId.y);
      let z = i32(workgroupId.z);
      let batchRows = max(uniforms.batchA, uniforms.batchB) * uniforms.m;
      let kBegin = s * uniforms.kChunk;
      let kEnd = min(uniforms.k, kBegin + uniforms.kChunk);
      var acc : array<f32, ${rows}>;
      if (c < uniforms.n) {
        for (var kk = kBegin + lane; kk < kEnd; kk = kk + LANES) {
          let w = readB(z, kk, c);
          for (var m = 0; m < ROWS; m = m + 1) {
            acc[m] = fma(readA(z, m, kk), w, acc[m]);
          }
        }
      }
      for (var m0 = 0; m0 < ROWS; m0 = m0 + 8) {
        for (var i = 0; i < 8; i = i + 1) {
          if (m0 + i < ROWS) { red[i * 256 + tid] = acc[m0 + i]; }
        }
        workgroupBarrier();
        if (lane == 0 && c < uniforms.n) {
          for (var i = 0; i < 8; i = i + 1) {
            let m = m0 + i;
            if (m < ROWS) {
              var v = 0.0;
              for (var l = 0; l < LANES; l = l + 1) { v = v + red[i * 256 + ${tidOf}]; }
              ${write}
            }
          }
        }
        workgroupBarrier();
      }
    }`;
  const key = `coherenceMatMulGemv_${rows}_${p.ta}_${p.tb}_${p.activation}_${!!p.bias}_${partial}`;
  const dispatch = [Math.ceil(p.n / cols), splits, p.batch];
  const outputShape = partial ? [splits, p.batch * p.m, p.n] : [p.batch, p.m, p.n];
  return programOf(key, partial ? ["a", "b"] : variableNames(p), outputShape, dispatch, code);
}

/** Columns per workgroup and lanes along K of the matrix-vector program (256 threads). */
function gemvLayout(tb: boolean): { cols: number; lanes: number } {
  return tb ? { cols: 32, lanes: 8 } : { cols: 64, lanes: 4 };
}

/** Adds `splits` partial sums `[splits, batch·M, N]`, then bias and activation. */
function sumProgram(p: Product, splits: number): object {
  const names = p.bias ? ["partial", "bias"] : ["partial"];
  const total = p.batch * p.m * p.n;
  const code = `
    ${activateFn(p.activation)}
    fn main(index : i32) {
      let flat = i32(workgroupId.x) * 256 + i32(localIndex);
      let total = max(uniforms.batchA, uniforms.batchB) * uniforms.m * uniforms.n;
      if (flat < total) {
        var v = 0.0;
        for (var s = 0; s < ${splits}; s = s + 1) { v = v + partial[s * total + flat]; }
        let c = flat % uniforms.n;
        result[flat] = ${epilogue(p, "v", "c")};
      }
    }`;
  const key = `coherenceMatMulSum_${splits}_${p.activation}_${!!p.bias}`;
  return programOf(key, names, [p.batch, p.m, p.n], [Math.ceil(total / 256), 1, 1], code);
}

/** Workgroups below which a matrix-vector product splits K across more of them. */
const TARGET_WORKGROUPS = 256;

function run(p: Product, be: WebGPUProgramBackend): TensorInfo | null {
  const limit = be.device?.limits.maxComputeWorkgroupsPerDimension ?? 65535;
  const temps: TensorInfo[] = [];
  const reshape = (x: TensorInfo, shape: number[]) => {
    const r = stockKernel("Reshape", "webgpu")({ inputs: { x }, backend: be, attrs: { shape } });
    temps.push(r);
    return r;
  };
  try {
    // Our reads index flat buffers; rank-3 views keep the uniform struct small whatever the caller's rank.
    const a = reshape(p.a, [p.batchA, p.ta ? p.k : p.m, p.ta ? p.m : p.k]);
    const b = reshape(p.b, [p.batchB, p.tb ? p.n : p.k, p.tb ? p.k : p.n]);
    const inputs = p.bias ? [a, b, p.bias] : [a, b];
    let out: TensorInfo;
    if (p.m <= GEMV_MAX_ROWS) {
      const groups = Math.ceil(p.n / gemvLayout(p.tb).cols);
      if (groups > limit || p.batch > limit) return null;
      const want = Math.ceil(TARGET_WORKGROUPS / (groups * p.batch));
      const splits = Math.max(1, Math.min(want, Math.floor(p.k / 256), 64));
      const kChunk = Math.ceil(p.k / splits);
      const used = Math.ceil(p.k / kChunk);
      // The sum program indexes by workgroup x alone: decline before any work when it would not fit.
      if (used > 1 && Math.ceil((p.batch * p.m * p.n) / 256) > limit) return null;
      if (used === 1) {
        out = be.runWebGPUProgram(gemvProgram(p, 1, false), inputs, "float32", uniformsOf(p, kChunk));
      } else {
        const partial = be.runWebGPUProgram(
          gemvProgram(p, used, true),
          [a, b],
          "float32",
          uniformsOf(p, kChunk),
        );
        temps.push(partial);
        const sumInputs = p.bias ? [partial, p.bias] : [partial];
        out = be.runWebGPUProgram(sumProgram(p, used), sumInputs, "float32", uniformsOf(p, kChunk));
      }
      stats.gemv++;
    } else {
      if (Math.ceil(p.n / 64) > limit || Math.ceil(p.m / 64) > limit || p.batch > limit) return null;
      out = be.runWebGPUProgram(tiledProgram(p), inputs, "float32", uniformsOf(p, p.k));
      stats.tiled++;
    }
    temps.push(out);
    return stockKernel("Reshape", "webgpu")({
      inputs: { x: out },
      backend: be,
      attrs: { shape: p.outShape },
    });
  } finally {
    for (const t of temps) be.disposeData(t.dataId);
  }
}

/** Our kernel for `name` (the fused one also takes bias and activation); stock where we decline. */
function matMulKernel(name: "BatchMatMul" | "_FusedMatMul"): (args: KernelArgs) => TensorInfo {
  return (args) => {
    const p = product(args, name === "_FusedMatMul");
    const out = p && run(p, args.backend as WebGPUProgramBackend);
    if (out) return out;
    stats.stock++;
    return override.stock(name)(args);
  };
}
