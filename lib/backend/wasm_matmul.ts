/**
 * The wasm backend adapter for matrix products: the one module that touches tfjs-wasm internals (kernel
 * registry, the backend's heap and data map).
 *
 * tfjs-wasm 4.22 sends a `BatchMatMul` or `_FusedMatMul` to XNNPACK only when both operands are plain 2-D
 * (batch 1, no transpose flag); anything else (every backward dX/dW, attention's per-head products, a
 * tied head) runs a scalar loop about 14x slower. {@linkcode installWasmMatMul} re-registers both kernels
 * so that such products with at least {@linkcode MIN_ROUTED_ROWS} output rows are rewritten as XNNPACK
 * 2-D products: transposed operands are materialised with the Transpose kernel, a shared right operand is
 * multiplied against all left batches stacked as one matrix, a shared left operand against all right
 * batches laid side by side, and a true batch is split into per-batch 2-D products. Matrix-vector shapes
 * (fewer rows) keep the stock kernel, which is the faster one for them.
 *
 * Fused products that are not on XNNPACK never reach stock's scalar fused kernel, which indexes the bias
 * as `bias[i * N + j]` (wrong for any M > 1): the product is computed unfused, then the bias is added and
 * the activation applied with the stock elementwise kernels.
 *
 * @module
 */
import type { tf } from "../deps.ts";
import type { NativeBlas } from "./native_blas.ts";
import { type NativeKernels, type PackedOperand, packOperand } from "./native_kernels.ts";
import { type KernelArgs, KernelOverride, type OwnKernel, stockKernel } from "./stock_kernels.ts";

/**
 * Output rows (M) from which a transposed or batched product is rerouted through XNNPACK.
 *
 * @category Backend
 * @internal Used inside the library; not part of the stable API.
 */
export const MIN_ROUTED_ROWS = 8;

/**
 * Output rows (all left batches stacked) up to which a product whose right operand is packed runs on the
 * native packed GEMM (`./native_kernels.ts`): 1.7x OpenBLAS at 16 rows and 1.2x at 128 over a GPT-2-small
 * forward's weights (`bench/gemm_ceiling.ts`), but level with it at 512 rows (a C timing harness run during
 * development), so larger products stay on OpenBLAS, which blocks its rows for the cache.
 *
 * @category Backend
 * @internal Used inside the library; not part of the stable API.
 */
export const MAX_PACKED_ROWS = 256;

type TensorInfo = tf.TensorInfo;
type DataId = TensorInfo["dataId"];

/** The slice of tfjs-wasm's `BackendWasm` this module uses. */
interface WasmBackend {
  wasm: { HEAPF32: Float32Array };
  dataIdMap: { get(id: DataId): { memoryOffset: number }; has(id: DataId): boolean };
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  disposeData(dataId: DataId, force?: boolean): boolean;
}

type Kernel = OwnKernel;

const override = new KernelOverride("wasm", { BatchMatMul: batchMatMul, _FusedMatMul: fusedMatMul });
const noStats = () => ({ routed: 0, stock: 0, native: 0, packed: 0, packs: 0 });
let stats = noStats();
let blas: NativeBlas | null = null;
let gemm: NativeKernels | null = null;

/** Packed copies of right operands, by the tensor data they were packed from, one per orientation. */
interface PackedEntry {
  plain?: PackedOperand;
  trans?: PackedOperand;
}
const packed = new Map<DataId, PackedEntry>();
let packedBytes = 0;
let packedLimit = 2 * 2 ** 30;
const hooked = new WeakSet<object>();

/**
 * Sends every product with one right operand, an untransposed left one and at most
 * {@linkcode MAX_PACKED_ROWS} rows to a native packed GEMM (`./native_kernels.ts`), or stops with null (and
 * frees every packed copy). The right operand is packed the first time it is seen and the copy kept, in
 * memory outside the wasm heap, until its tensor's data is freed, so a weight is packed once; past
 * `limitBytes` of kept copies (default 2 GiB; 0 keeps none) operands are packed for one product only. Which
 * kernel runs depends only on the shapes, never on what was packed before, so results do not change from
 * the first call to the next. `initBackend` calls it (its `nativeKernels` and `packedWeightBytes` options).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { setWasmNativeKernels, wasmNativeKernels } from "./wasm_matmul.ts";
 * setWasmNativeKernels(null);
 * assert.equal(wasmNativeKernels(), null);
 * ```
 *
 * @category Backend
 */
export function setWasmNativeKernels(lib: NativeKernels | null, limitBytes: number = 2 * 2 ** 30): void {
  if (!(limitBytes >= 0)) {
    throw new RangeError(`setWasmNativeKernels: limitBytes must be >= 0, got ${limitBytes}`);
  }
  gemm = lib;
  packedLimit = limitBytes;
  packed.clear();
  packedBytes = 0;
}

/**
 * The native packed GEMM the wasm matmuls use now, or null.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { wasmNativeKernels } from "./wasm_matmul.ts";
 * const lib = wasmNativeKernels();
 * assert.ok(lib === null || typeof lib.path === "string");
 * ```
 *
 * @category Backend
 */
export function wasmNativeKernels(): NativeKernels | null {
  return gemm;
}

/**
 * Bytes held by packed weight copies now (outside the wasm heap; see {@linkcode setWasmNativeKernels}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { wasmPackedBytes } from "./wasm_matmul.ts";
 * assert.ok(wasmPackedBytes() >= 0);
 * ```
 *
 * @category Backend
 */
export function wasmPackedBytes(): number {
  return packedBytes;
}

/**
 * Drops the packed copy of `dataId`'s tensor data, if any. Anything that writes a wasm tensor's memory in
 * place (the KV cache's column writes) must call it, since a packed copy would go stale.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../deps.ts";
 * import { forgetPackedOperand, wasmPackedBytes } from "./wasm_matmul.ts";
 * await tf.setBackend("cpu");
 * const before = wasmPackedBytes();
 * forgetPackedOperand(tf.zeros([2]).dataId); // nothing was packed for it: a no-op
 * assert.equal(wasmPackedBytes(), before);
 * ```
 *
 * @category Backend
 */
export function forgetPackedOperand(dataId: object): void {
  const e = packed.get(dataId);
  if (!e) return;
  packedBytes -= (e.plain?.bytes ?? 0) + (e.trans?.bytes ?? 0);
  packed.delete(dataId);
}

/** Frees a packed copy when tfjs frees the data it was packed from (reshapes share data: wait for the last). */
function hookDisposal(be: WasmBackend) {
  if (hooked.has(be)) return;
  hooked.add(be);
  const dispose = be.disposeData.bind(be);
  be.disposeData = (dataId: DataId, force?: boolean) => {
    const freed = dispose(dataId, force);
    if (packed.size && !be.dataIdMap.has(dataId)) forgetPackedOperand(dataId);
    return freed;
  };
}

/**
 * Sends the rerouted kernels' float32 products of 8 or more rows to a native CBLAS (`./native_blas.ts`), or
 * back to XNNPACK with null. `initBackend` calls it (its `nativeBlas` option).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { setWasmNativeBlas, wasmNativeBlas } from "./wasm_matmul.ts";
 * setWasmNativeBlas(null);
 * assert.equal(wasmNativeBlas(), null);
 * ```
 *
 * @category Backend
 */
export function setWasmNativeBlas(lib: NativeBlas | null): void {
  blas = lib;
}

/**
 * The native CBLAS the wasm matmuls use now, or null (XNNPACK).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { wasmNativeBlas } from "./wasm_matmul.ts";
 * const lib = wasmNativeBlas();
 * assert.ok(lib === null || typeof lib.path === "string");
 * ```
 *
 * @category Backend
 */
export function wasmNativeBlas(): NativeBlas | null {
  return blas;
}

/**
 * Whether the rerouted kernels are registered now.
 *
 * @category Backend
 */
export function wasmMatMulInstalled(): boolean {
  return override.installed;
}

/**
 * Counts since the last reset: products sent through the rerouting (XNNPACK), to the native CBLAS, to the
 * native packed GEMM (`packed`), and left to the stock kernels; and operands packed (`packs`, whether the
 * copy was kept or not).
 *
 * @category Backend
 */
export function wasmMatMulStats(
  reset = false,
): { routed: number; stock: number; native: number; packed: number; packs: number } {
  const s = { ...stats };
  if (reset) stats = noStats();
  return s;
}

/**
 * Registers the rerouted `BatchMatMul` and `_FusedMatMul` for the wasm backend (idempotent). Call before or
 * after the backend is initialised; returns false when the wasm kernels are not registered at all.
 *
 * @category Backend
 */
export function installWasmMatMul(): boolean {
  return override.install();
}

/**
 * Restores the stock wasm matmul kernels (idempotent).
 *
 * @category Backend
 */
export function uninstallWasmMatMul(): void {
  override.uninstall();
  packed.clear();
  packedBytes = 0;
}

function kernel(name: string): Kernel {
  return stockKernel(name, "wasm") as unknown as Kernel;
}

function size(shape: number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Product geometry: M x K times K x N over flattened batch dims, or null if not routable. */
interface Geometry {
  m: number;
  k: number;
  n: number;
  batchA: number;
  batchB: number;
  outShape: number[];
}

function geometry(a: TensorInfo, b: TensorInfo, tA: boolean, tB: boolean): Geometry | null {
  const ra = a.shape.length, rb = b.shape.length;
  const m = tA ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = tA ? a.shape[ra - 2] : a.shape[ra - 1];
  const n = tB ? b.shape[rb - 2] : b.shape[rb - 1];
  const outerA = a.shape.slice(0, -2), outerB = b.shape.slice(0, -2);
  const batchA = size(outerA), batchB = size(outerB);
  // Only the broadcasts that flatten cleanly: equal outer dims, or one side without batch.
  let outer: number[];
  if (batchA === 1) outer = outerB.length >= outerA.length ? outerB : outerA;
  else if (batchB === 1) outer = outerA.length >= outerB.length ? outerA : outerB;
  else if (outerA.length === outerB.length && outerA.every((d, i) => d === outerB[i])) outer = outerA;
  else return null;
  if (outer.length < Math.max(outerA.length, outerB.length)) {
    // e.g. a [1, 1, M, K] against b [K, N]: pad with ones to the longer rank
    outer = [...new Array(Math.max(outerA.length, outerB.length) - outer.length).fill(1), ...outer];
  }
  return { m, k, n, batchA, batchB, outShape: [...outer, m, n] };
}

function needsRoute(g: Geometry, tA: boolean, tB: boolean): boolean {
  if (g.m < MIN_ROUTED_ROWS) return false;
  return tA || tB || g.batchA > 1 || g.batchB > 1;
}

/** [batch, rows, cols] of x in the untransposed orientation, via the Transpose kernel when flagged. */
function orient(
  be: WasmBackend,
  x: TensorInfo,
  batch: number,
  rows: number,
  cols: number,
  transposed: boolean,
  temps: TensorInfo[],
): TensorInfo {
  const reshape = kernel("Reshape");
  if (!transposed) {
    const r = reshape({ inputs: { x }, backend: be, attrs: { shape: [batch, rows, cols] } });
    temps.push(r);
    return r;
  }
  const r = reshape({ inputs: { x }, backend: be, attrs: { shape: [batch, cols, rows] } });
  temps.push(r);
  const t = kernel("Transpose")({ inputs: { x: r }, backend: be, attrs: { perm: [0, 2, 1] } });
  temps.push(t);
  return t;
}

/** Copies `count` floats of tensor `from` (at element `fromAt`) into tensor `to` (at `toAt`). */
function copy(
  be: WasmBackend,
  from: TensorInfo,
  fromAt: number,
  to: TensorInfo,
  toAt: number,
  count: number,
) {
  const heap = be.wasm.HEAPF32; // re-read: allocations may have grown (and replaced) the heap
  const src = (be.dataIdMap.get(from.dataId).memoryOffset >>> 2) + fromAt;
  const dst = (be.dataIdMap.get(to.dataId).memoryOffset >>> 2) + toAt;
  heap.copyWithin(dst, src, src + count);
}

/**
 * The product through XNNPACK 2-D calls; `epilogue` (bias, activation), when given, is applied by the stock
 * fused kernel on the single 2-D call where possible, else returned false and left to the caller.
 */
function routedProduct(be: WasmBackend, a: TensorInfo, b: TensorInfo, g: Geometry, tA: boolean, tB: boolean) {
  const temps: TensorInfo[] = [];
  const stockBatch = override.stock("BatchMatMul");
  const reshape = kernel("Reshape");
  const { m, k, n, batchA, batchB } = g;
  try {
    const an = orient(be, a, batchA, m, k, tA, temps); // [batchA, m, k]
    const bn = orient(be, b, batchB, k, n, tB, temps); // [batchB, k, n]
    let out: TensorInfo;
    if (batchB === 1) {
      // One right operand: stack every left batch into one (batchA * m) x k matrix.
      const a2 = reshape({ inputs: { x: an }, backend: be, attrs: { shape: [batchA * m, k] } });
      temps.push(a2);
      const b2 = reshape({ inputs: { x: bn }, backend: be, attrs: { shape: [k, n] } });
      temps.push(b2);
      out = stockBatch({
        inputs: { a: a2, b: b2 },
        backend: be,
        attrs: { transposeA: false, transposeB: false },
      });
    } else if (batchA === 1) {
      // One left operand: lay the right batches side by side, k x (batchB * n), and unstack after.
      const bs = kernel("Transpose")({ inputs: { x: bn }, backend: be, attrs: { perm: [1, 0, 2] } });
      temps.push(bs);
      const b2 = reshape({ inputs: { x: bs }, backend: be, attrs: { shape: [k, batchB * n] } });
      temps.push(b2);
      const a2 = reshape({ inputs: { x: an }, backend: be, attrs: { shape: [m, k] } });
      temps.push(a2);
      const wide = stockBatch({
        inputs: { a: a2, b: b2 },
        backend: be,
        attrs: { transposeA: false, transposeB: false },
      });
      temps.push(wide);
      const w3 = reshape({ inputs: { x: wide }, backend: be, attrs: { shape: [m, batchB, n] } });
      temps.push(w3);
      out = kernel("Transpose")({ inputs: { x: w3 }, backend: be, attrs: { perm: [1, 0, 2] } });
    } else {
      // A true batch: one 2-D product per batch on fresh operand buffers (XNNPACK caches packed weights by
      // tensor id, so a buffer must never be refilled and reused as a right operand).
      out = be.makeOutput([batchA, m, n], "float32");
      for (let i = 0; i < batchA; i++) {
        const ai = be.makeOutput([m, k], "float32");
        const bi = be.makeOutput([k, n], "float32");
        copy(be, an, i * m * k, ai, 0, m * k);
        copy(be, bn, i * k * n, bi, 0, k * n);
        const oi = stockBatch({
          inputs: { a: ai, b: bi },
          backend: be,
          attrs: { transposeA: false, transposeB: false },
        });
        copy(be, oi, 0, out, i * m * n, m * n);
        be.disposeData(ai.dataId);
        be.disposeData(bi.dataId);
        be.disposeData(oi.dataId);
      }
    }
    const shaped = reshape({ inputs: { x: out }, backend: be, attrs: { shape: g.outShape } });
    be.disposeData(out.dataId);
    return shaped;
  } finally {
    for (const t of temps) be.disposeData(t.dataId);
  }
}

/**
 * The product by the native CBLAS, in place on the heap: one `sgemm` per output batch (a batch of one
 * operand broadcast by offset 0), transposes as flags. A length-N `bias` is written into every output row
 * first and accumulated by the GEMM itself (beta = 1), which saves the separate bias pass.
 */
function nativeProduct(
  be: WasmBackend,
  a: TensorInfo,
  b: TensorInfo,
  g: Geometry,
  tA: boolean,
  tB: boolean,
  bias?: TensorInfo,
) {
  const { m, k, n, batchA, batchB } = g;
  const batch = Math.max(batchA, batchB);
  const out = be.makeOutput([batch, m, n], "float32");
  if (bias) {
    const h = be.wasm.HEAPF32; // re-read after the allocation
    const from = be.dataIdMap.get(bias.dataId).memoryOffset >>> 2;
    const to = be.dataIdMap.get(out.dataId).memoryOffset >>> 2;
    for (let r = 0; r < batch * m; r++) h.copyWithin(to + r * n, from, from + n);
  }
  // The heap's address after the allocation above (growing the heap replaces its buffer).
  const heap = be.wasm.HEAPF32.buffer as ArrayBuffer;
  const base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(heap)));
  const at = (t: TensorInfo) => base + BigInt(be.dataIdMap.get(t.dataId).memoryOffset);
  const pa = at(a), pb = at(b), pc = at(out);
  for (let i = 0; i < batch; i++) {
    blas!.sgemm(
      tA,
      tB,
      m,
      n,
      k,
      pa + BigInt((batchA === 1 ? 0 : i) * m * k * 4),
      tA ? m : k,
      pb + BigInt((batchB === 1 ? 0 : i) * k * n * 4),
      tB ? k : n,
      pc + BigInt(i * m * n * 4),
      n,
      bias ? 1 : 0,
    );
  }
  const shaped = kernel("Reshape")({ inputs: { x: out }, backend: be, attrs: { shape: g.outShape } });
  be.disposeData(out.dataId);
  return shaped;
}

/** The packed copy of `b` for this orientation: kept from an earlier product, or made now (and kept). */
function packedOperandFor(be: WasmBackend, b: TensorInfo, g: Geometry, tB: boolean): PackedOperand {
  const e = packed.get(b.dataId);
  const have = tB ? e?.trans : e?.plain;
  if (have) return have;
  const heap = be.wasm.HEAPF32.buffer as ArrayBuffer;
  const base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(heap)));
  const at = base + BigInt(be.dataIdMap.get(b.dataId).memoryOffset);
  const p = packOperand(gemm!, at, tB ? g.k : g.n, tB, g.k, g.n);
  stats.packs++;
  if (packedBytes + p.bytes > packedLimit) return p; // over the limit: for this product only
  hookDisposal(be);
  const entry = e ?? {};
  if (tB) entry.trans = p;
  else entry.plain = p;
  packed.set(b.dataId, entry);
  packedBytes += p.bytes;
  return p;
}

/**
 * The product on the native packed GEMM when it applies (one right operand, `a` untransposed, at most
 * {@linkcode MAX_PACKED_ROWS} rows in all); null to take another path. A fused bias along the rows is
 * added by the GEMM.
 */
function packedProduct(
  be: WasmBackend,
  a: TensorInfo,
  b: TensorInfo,
  tA: boolean,
  tB: boolean,
  bias?: TensorInfo,
): TensorInfo | null {
  if (!gemm || tA || a.dtype !== "float32" || b.dtype !== "float32") return null;
  const g = geometry(a, b, tA, tB);
  if (!g || g.batchB !== 1 || g.n * g.k === 0) return null;
  const rows = g.batchA * g.m;
  if (rows < 1 || rows > MAX_PACKED_ROWS || (bias && size(bias.shape) !== g.n)) return null;
  const p = packedOperandFor(be, b, g, tB);
  const out = be.makeOutput([rows, g.n], "float32");
  const heap = be.wasm.HEAPF32.buffer as ArrayBuffer; // after the allocation (it may grow the heap)
  const base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(heap)));
  const at = (t: TensorInfo) => base + BigInt(be.dataIdMap.get(t.dataId).memoryOffset);
  gemm.gemm(rows, g.n, g.k, at(a), g.k, p.address, at(out), g.n, bias ? at(bias) : 0n);
  stats.packed++;
  const shaped = kernel("Reshape")({ inputs: { x: out }, backend: be, attrs: { shape: g.outShape } });
  be.disposeData(out.dataId);
  return shaped;
}

/**
 * The geometry when the native CBLAS takes the product (float32, non-empty, at least
 * {@linkcode MIN_ROUTED_ROWS} rows), else null. Matrix-vector shapes stay on XNNPACK, whose bandwidth-bound
 * kernel measured twice OpenBLAS's `sgemm` at one row (BENCHMARKS.md).
 */
function nativeGeometry(a: TensorInfo, b: TensorInfo, tA: boolean, tB: boolean): Geometry | null {
  if (!blas || a.dtype !== "float32" || b.dtype !== "float32") return null;
  const g = geometry(a, b, tA, tB);
  return g && g.m >= MIN_ROUTED_ROWS && g.n * g.k > 0 ? g : null;
}

function batchMatMul(args: KernelArgs): TensorInfo {
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const tA = Boolean(args.attrs?.transposeA), tB = Boolean(args.attrs?.transposeB);
  const viaPacked = packedProduct(args.backend as WasmBackend, a, b, tA, tB);
  if (viaPacked) return viaPacked;
  const ng = nativeGeometry(a, b, tA, tB);
  if (ng) {
    stats.native++;
    return nativeProduct(args.backend as WasmBackend, a, b, ng, tA, tB);
  }
  const g = a.dtype === "float32" && b.dtype === "float32" ? geometry(a, b, tA, tB) : null;
  if (!g || !needsRoute(g, tA, tB)) {
    stats.stock++;
    return override.stock("BatchMatMul")(args);
  }
  stats.routed++;
  return routedProduct(args.backend as WasmBackend, a, b, g, tA, tB);
}

/** Adds the bias and applies a fused activation with the stock elementwise kernels; consumes `x`. */
function epilogue(be: WasmBackend, x: TensorInfo, args: KernelArgs): TensorInfo {
  const { bias, preluActivationWeights } = args.inputs;
  const activation = (args.attrs?.activation as string | undefined) ?? "linear";
  let y = x;
  const step = (next: TensorInfo) => {
    be.disposeData(y.dataId);
    y = next;
  };
  if (bias) step(kernel("Add")({ inputs: { a: y, b: bias }, backend: be }));
  switch (activation) {
    case "linear":
      break;
    case "relu":
      step(kernel("Relu")({ inputs: { x: y }, backend: be }));
      break;
    case "relu6":
      step(kernel("Relu6")({ inputs: { x: y }, backend: be }));
      break;
    case "elu":
      step(kernel("Elu")({ inputs: { x: y }, backend: be }));
      break;
    case "sigmoid":
      step(kernel("Sigmoid")({ inputs: { x: y }, backend: be }));
      break;
    case "leakyrelu":
      step(
        kernel("LeakyRelu")({
          inputs: { x: y },
          backend: be,
          attrs: { alpha: (args.attrs?.leakyreluAlpha as number | undefined) ?? 0.2 },
        }),
      );
      break;
    case "prelu":
      step(kernel("Prelu")({ inputs: { x: y, alpha: preluActivationWeights }, backend: be }));
      break;
    default:
      be.disposeData(y.dataId);
      throw new Error(`wasm_matmul: unsupported fused activation '${activation}'`);
  }
  return y;
}

function fusedMatMul(args: KernelArgs): TensorInfo {
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const be = args.backend as WasmBackend;
  const tA = Boolean(args.attrs?.transposeA), tB = Boolean(args.attrs?.transposeB);
  const bias = args.inputs.bias;
  const rowBias = bias && bias.dtype === "float32" && bias.shape.at(-1) === size(bias.shape)
    ? bias
    : undefined;
  if (!bias || rowBias) {
    const viaPacked = packedProduct(be, a, b, tA, tB, rowBias);
    if (viaPacked) {
      const rest = { ...args, inputs: { ...args.inputs, bias: undefined } }; // the GEMM added the bias
      return epilogue(be, viaPacked, rest);
    }
  }
  const ng = nativeGeometry(a, b, tA, tB);
  if (ng) {
    stats.native++;
    if (bias && bias.dtype === "float32" && size(bias.shape) === ng.n && bias.shape.at(-1) === ng.n) {
      const rest = { ...args, inputs: { ...args.inputs, bias: undefined } }; // the GEMM added the bias
      return epilogue(be, nativeProduct(be, a, b, ng, tA, tB, bias), rest);
    }
    return epilogue(be, nativeProduct(be, a, b, ng, tA, tB), args);
  }
  const g = a.dtype === "float32" && b.dtype === "float32" ? geometry(a, b, tA, tB) : null;
  const stockFused = override.stock("_FusedMatMul");
  if (g && !tA && !tB && g.batchA <= 1 && g.batchB <= 1) {
    stats.stock++;
    return stockFused(args); // the XNNPACK path, bias and activation fused
  }
  if (g && needsRoute(g, tA, tB)) {
    stats.routed++;
    return epilogue(be, routedProduct(be, a, b, g, tA, tB), args);
  }
  // Small or unflattenable products: stock unfused product (correct), then the epilogue; never the stock
  // scalar fused kernel, whose bias indexing is wrong.
  stats.stock++;
  const prod = override.stock("BatchMatMul")({
    inputs: { a, b },
    backend: be,
    attrs: { transposeA: tA, transposeB: tB },
  });
  return epilogue(be, prod, args);
}
