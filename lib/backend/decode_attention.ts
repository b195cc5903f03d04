/**
 * One-token decode attention over a preallocated KV cache (wasm and webgpu), and in-place writes into the
 * cache's buffers: the parts of the backend adapter that work on tfjs' own memory.
 *
 * tfjs-wasm runs attention's per-head products on its scalar loop (each head's product is a batch of
 * matrix-vector products, which XNNPACK does not take), and a cache grown by concatenation copies every
 * cached column on every step. Here the cache is a preallocated `[B, Hkv, capacity, hd]` buffer that
 * {@linkcode writeColumnsInPlace} fills column by column, and {@linkcode decodeAttention} reads its first
 * L columns where they lie. With the native kernels (`./native_kernels.ts`) one call does it all, reading
 * each of K and V once; without them, two small SIMD kernels (`wasm_kernels.wat`, instantiated over
 * tfjs-wasm's memory) compute the scores and the weighted values per (row, key/value head), and the mask and
 * the softmax are tfjs-wasm's own kernels. On webgpu two WGSL programs do the same over the device buffers
 * (`webgpu_attention.ts`). The op is registered as the kernel `CoherenceDecodeAttention` of each backend.
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Tensor3D, Tensor4D } from "../tensor_types.ts";
import { WASM_KERNELS_BASE64 } from "./wasm_kernels_bytes.ts";
import { webgpuDecodeAttentionKernel } from "./webgpu_attention.ts";
import { decodeAttentionCall, type KernelArgs, maskedSoftmax, registerOwnKernel } from "./stock_kernels.ts";
import { webgpuKernelsEnabled } from "./backend.ts";
import { forgetPackedOperand, wasmNativeKernels } from "./wasm_matmul.ts";

/** The kernel's name in tfjs' registry. */
const KERNEL = "CoherenceDecodeAttention";

type TensorInfo = tf.TensorInfo;
type DataId = TensorInfo["dataId"];

/** The slice of tfjs-wasm's `BackendWasm` this module uses. */
interface WasmBackend {
  wasm: { HEAPF32: Float32Array; asm: { memory: WebAssembly.Memory } };
  dataIdMap: { get(id: DataId): { memoryOffset: number; refCount?: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  disposeData(dataId: DataId): boolean;
}

/** The slice of tfjs-cpu's `MathBackendCPU` this module uses. */
interface CpuBackend {
  data: { get(id: DataId): { values?: ArrayLike<number>; refCount?: number } | undefined };
}

/** The slice of tfjs-webgpu's `WebGPUBackend` this module uses. */
interface WebGPUBackend {
  tensorMap: {
    get(id: DataId): { resource?: GPUBuffer | null; values?: unknown; refCount?: number } | undefined;
  };
  commandEncoder: GPUCommandEncoder | null;
  commandQueueOwnedIds: WeakSet<object>;
  uploadToGPU(id: DataId): void;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
}

interface Kernels {
  memory: WebAssembly.Memory;
  scores(q: number, k: number, out: number, l: number, hd: number, g: number, scale: number): void;
  values(p: number, v: number, out: number, l: number, hd: number, g: number): void;
}

let kernels: Kernels | null = null;
let calls = 0;

/**
 * How many times the fused decode kernel ran since the last reset (tests use it to check that generation
 * takes the fast path).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeAttentionCalls } from "./decode_attention.ts";
 * decodeAttentionCalls(true); // reset
 * assert.equal(decodeAttentionCalls(), 0);
 * ```
 *
 * @category Backend
 */
export function decodeAttentionCalls(reset = false): number {
  const n = calls;
  if (reset) calls = 0;
  return n;
}

function instantiate(be: WasmBackend): Kernels {
  const memory = be.wasm.asm.memory;
  if (kernels && kernels.memory === memory) return kernels;
  const bytes = Uint8Array.from(atob(WASM_KERNELS_BASE64), (c) => c.charCodeAt(0));
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  const e = inst.exports as unknown as Omit<Kernels, "memory">;
  kernels = { memory, scores: e.scores, values: e.values };
  return kernels;
}

/**
 * Calls `f` once per (row, key/value head) group: `head` is the group's first query head (b·H + j·G) and `kv`
 * its key/value block (b·Hkv + j); the G query heads of a group are contiguous.
 */
function eachGroup(b: number, h: number, hkv: number, f: (head: number, kv: number) => void): void {
  const g = h / hkv;
  for (let r = 0; r < b; r++) for (let j = 0; j < hkv; j++) f(r * h + j * g, r * hkv + j);
}

function offset(be: WasmBackend, t: TensorInfo): number {
  const d = be.dataIdMap.get(t.dataId);
  if (!d) throw new Error("decodeAttention: tensor has no wasm data (disposed?)");
  return d.memoryOffset;
}

/**
 * The kernel: q `[B, H, hd]`, k and v `[B, Hkv, C, hd]` (C ≥ length), optional additive mask `[B, 1, length]`;
 * attrs `length` (columns attended) and `scale`. Returns z `[B, H, hd]`.
 */
function decodeAttentionKernel(
  args: KernelArgs,
): TensorInfo {
  const be = args.backend as WasmBackend;
  const { q, k, v, mask, length, scale, b, h, hd, hkv, cap } = decodeAttentionCall(args);
  const g = h / hkv;
  const native = wasmNativeKernels();
  if (native) {
    // One native pass over each of K and V (3x the wasm kernels' rate at context 1000: BENCHMARKS.md).
    const z = be.makeOutput([b, h, hd], "float32");
    const heap = be.wasm.HEAPF32.buffer as ArrayBuffer; // after the allocation (it may grow the heap)
    const base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(heap)));
    const at = (t: TensorInfo) => base + BigInt(offset(be, t));
    native.decodeAttention(
      { b, h, hkv, cap, length, hd, scale },
      at(q),
      at(k),
      at(v),
      mask ? at(mask) : 0n,
      at(z),
    );
    return z;
  }
  const mod = instantiate(be);
  const temps: TensorInfo[] = [];
  try {
    const scores = be.makeOutput([b, h, length], "float32");
    temps.push(scores);
    const qo = offset(be, q), ko = offset(be, k), vo = offset(be, v), so = offset(be, scores);
    eachGroup(
      b,
      h,
      hkv,
      (head, kv) =>
        mod.scores(qo + head * hd * 4, ko + kv * cap * hd * 4, so + head * length * 4, length, hd, g, scale),
    );
    const p = maskedSoftmax(be, "wasm", scores, mask, { b, h, length }, temps);
    const z = be.makeOutput([b, h, hd], "float32");
    const po = offset(be, p), zo = offset(be, z);
    eachGroup(
      b,
      h,
      hkv,
      (head, kv) =>
        mod.values(po + head * length * 4, vo + kv * cap * hd * 4, zo + head * hd * 4, length, hd, g),
    );
    return z;
  } finally {
    for (const t of temps) be.disposeData(t.dataId);
  }
}

/**
 * Attention of one query per head over the first `length` columns of key/value buffers, with the wasm
 * backend's SIMD kernels or the webgpu backend's WGSL programs: `q` `[B, H, hd]`, `k` and `v` `[B, Hkv, C, hd]` with C ≥ `length` (columns past
 * `length` are ignored, so a preallocated cache is read in place), `mask` an optional additive
 * `[B, 1, length]` (0 = attend, -1e9 = not). Query head h reads key/value head `floor(h / (H / Hkv))`.
 * Returns z `[B, H, hd]` = softmax(q·kᵀ·scale + mask)·v, or null where the kernel does not apply (another
 * backend, on wasm a head width that is not a multiple of 4, non-float32 inputs, or a gradient tape: the
 * kernel has no gradient), so the caller takes the generic path.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../deps.ts";
 * import { decodeAttention } from "./decode_attention.ts";
 * await tf.setBackend("cpu");
 * const q = tf.ones([1, 2, 4]), kv = tf.ones([1, 1, 8, 4]);
 * assert.equal(decodeAttention(q as tf.Tensor3D, kv as tf.Tensor4D, kv as tf.Tensor4D, 3), null); // cpu: not here
 * ```
 *
 * @category Backend
 */
export function decodeAttention(
  q: Tensor3D,
  k: Tensor4D,
  v: Tensor4D,
  length: number,
  mask?: Tensor3D,
  scale: number = 1 / Math.sqrt(q.shape[2]),
): Tensor3D | null {
  const backend = tf.getBackend();
  if (backend !== "wasm" && backend !== "webgpu") return null;
  if (backend === "webgpu" && !webgpuKernelsEnabled()) return null; // stock only, for comparisons
  const [b, h, hd] = q.shape;
  const [kb, hkv, cap, khd] = k.shape;
  if (khd !== hd || kb !== b || h % hkv !== 0 || length < 1 || length > cap) return null;
  if (backend === "wasm" && hd % 4 !== 0) return null; // the SIMD kernels step 4 floats at a time
  if (v.shape.some((d, i) => d !== k.shape[i])) return null;
  if (q.dtype !== "float32" || k.dtype !== "float32" || v.dtype !== "float32") return null;
  if (mask && (mask.shape[0] !== b || mask.shape[2] !== length || mask.dtype !== "float32")) return null;
  const engine = tf.engine() as unknown as { isTapeOn?: () => boolean };
  if (engine.isTapeOn?.()) return null;
  registerOwnKernel(
    KERNEL,
    backend,
    backend === "wasm" ? decodeAttentionKernel : webgpuDecodeAttentionKernel,
  );
  calls++;
  const inputs: Record<string, tf.Tensor> = { q, k, v };
  if (mask) inputs.mask = mask;
  return tf.engine().runKernel(KERNEL, inputs, { length, scale }) as Tensor3D;
}

/**
 * Whether the active backend supports {@linkcode writeColumnsInPlace} (wasm, cpu and webgpu).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../deps.ts";
 * import { inPlaceWritesSupported } from "./decode_attention.ts";
 * await tf.setBackend("cpu");
 * assert.equal(inPlaceWritesSupported(), true);
 * ```
 *
 * @category Backend
 */
export function inPlaceWritesSupported(): boolean {
  const name = tf.getBackend();
  return name === "wasm" || name === "cpu" || name === "webgpu";
}

/**
 * Writes `src` `[B, Hh, T, hd]` into columns `at … at + T - 1` of `buf` `[B, Hh, C, hd]`, in place: on wasm
 * and cpu by copying memory (every op has finished when it returns), on webgpu by queueing buffer copies
 * in the backend's command stream after the ops already queued (and dropping any stale CPU copy of `buf`).
 * Returns false (and writes nothing) on other backends, when the shapes do not fit, or when `buf` shares
 * its memory with another tensor (a reshape or clone of it would change too): the caller then builds a new
 * buffer instead. `buf` must be a buffer its owner never hands out (a KV cache's), since tfjs treats
 * tensors as immutable.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../deps.ts";
 * import { writeColumnsInPlace } from "./decode_attention.ts";
 * await tf.setBackend("cpu");
 * const buf = tf.zeros([1, 1, 3, 2]) as tf.Tensor4D;
 * assert.ok(writeColumnsInPlace(buf, tf.ones([1, 1, 1, 2]) as tf.Tensor4D, 1));
 * assert.deepEqual(Array.from(buf.dataSync()), [0, 0, 1, 1, 0, 0]);
 * ```
 *
 * @category Backend
 */
export function writeColumnsInPlace(buf: Tensor4D, src: Tensor4D, at: number): boolean {
  const [b, hh, cap, hd] = buf.shape;
  const [sb, sh, t, shd] = src.shape;
  if (sb !== b || sh !== hh || shd !== hd || at < 0 || at + t > cap) return false;
  if (buf.dtype !== "float32" || src.dtype !== "float32") return false;
  const name = tf.getBackend();
  let dst: Float32Array, from: Float32Array, d0: number, s0: number;
  if (name === "wasm") {
    const be = tf.backend() as unknown as WasmBackend;
    const bd = be.dataIdMap.get(buf.dataId), sd = be.dataIdMap.get(src.dataId);
    if (!bd || !sd || (bd.refCount ?? 1) > 1) return false;
    forgetPackedOperand(buf.dataId); // a packed copy of the old contents would go stale
    dst = from = be.wasm.HEAPF32; // re-read: the heap may have grown
    d0 = bd.memoryOffset >>> 2;
    s0 = sd.memoryOffset >>> 2;
  } else if (name === "cpu") {
    const be = tf.backend() as unknown as CpuBackend;
    const bd = be.data.get(buf.dataId), sd = be.data.get(src.dataId);
    if (!(bd?.values instanceof Float32Array) || !(sd?.values instanceof Float32Array)) return false;
    if ((bd.refCount ?? 1) > 1) return false;
    if (bd.values === sd.values) return false; // the same memory cannot be both
    dst = bd.values;
    from = sd.values;
    d0 = 0;
    s0 = 0;
  } else if (name === "webgpu") {
    return writeColumnsWebGPU(buf, src, at);
  } else {
    return false;
  }
  const block = t * hd;
  for (let i = 0; i < b * hh; i++) {
    const d = d0 + (i * cap + at) * hd, s = s0 + i * block;
    if (dst === from) dst.copyWithin(d, s, s + block);
    else dst.set(from.subarray(s, s + block), d);
  }
  return true;
}

function writeColumnsWebGPU(buf: Tensor4D, src: Tensor4D, at: number): boolean {
  const be = tf.backend() as unknown as WebGPUBackend;
  const bd = be.tensorMap.get(buf.dataId), sd = be.tensorMap.get(src.dataId);
  if (!bd || !sd || (bd.refCount ?? 1) > 1 || buf.dataId === src.dataId) return false;
  be.uploadToGPU(buf.dataId);
  be.uploadToGPU(src.dataId);
  const dst = bd.resource, from = sd.resource;
  if (!(dst && from && "size" in dst && "size" in from)) return false; // a texture or external resource
  const [b, hh, cap, hd] = buf.shape;
  const t = src.shape[2];
  be.ensureCommandEncoderReady();
  be.endComputePassEncoder();
  const block = t * hd * 4;
  for (let i = 0; i < b * hh; i++) {
    be.commandEncoder!.copyBufferToBuffer(from, i * block, dst, ((i * cap + at) * hd) * 4, block);
  }
  // Both stay alive until the queue is submitted, and a CPU copy of buf read earlier is now stale.
  be.commandQueueOwnedIds.add(buf.dataId as object);
  be.commandQueueOwnedIds.add(src.dataId as object);
  bd.values = null;
  return true;
}
