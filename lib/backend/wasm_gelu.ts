/**
 * GELU (tanh form) in one native pass on the wasm backend (`cl_gelu_tanh` of `./native_kernels.ts`),
 * registered as the kernel `CoherenceGeluTanh`.
 *
 * tfjs-wasm computes `x · sigmoid(x (c1 + c2 x²))` as five kernels, each a scalar loop over the whole
 * activation: 18 ms of a 245 ms GPT-2-small prefill of 128 tokens on the build machine, against 2.5 ms
 * here. Used without a gradient tape only (inference): the kernel has no gradient, and training keeps the
 * stock ops, so gradients are unchanged.
 *
 * @module
 */
import { tf } from "../deps.ts";
import { type KernelArgs, registerOwnKernel } from "./stock_kernels.ts";
import type { Tensor } from "../tensor_types.ts";
import { wasmNativeKernels } from "./wasm_matmul.ts";

type TensorInfo = tf.TensorInfo;

/** The slice of tfjs-wasm's `BackendWasm` this module uses. */
interface WasmBackend {
  wasm: { HEAPF32: Float32Array };
  dataIdMap: { get(id: TensorInfo["dataId"]): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
}

const KERNEL = "CoherenceGeluTanh";

function geluKernel(args: KernelArgs): TensorInfo {
  const be = args.backend as WasmBackend;
  const x = args.inputs.x!;
  const { c1, c2 } = args.attrs as { c1: number; c2: number };
  const out = be.makeOutput(x.shape, "float32");
  const heap = be.wasm.HEAPF32.buffer as ArrayBuffer; // after the allocation (it may grow the heap)
  const base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(heap)));
  const at = (t: TensorInfo) => base + BigInt(be.dataIdMap.get(t.dataId).memoryOffset);
  const n = x.shape.reduce((a, b) => a * b, 1);
  wasmNativeKernels()!.geluTanh(at(x), at(out), n, c1, c2);
  return out;
}

/**
 * `x · sigmoid(x (c1 + c2 x²))` on the native kernels, or null where they do not apply (another backend,
 * no native library, not float32, or a gradient tape recording), so the caller takes the stock ops.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../deps.ts";
 * import { nativeGeluTanh } from "./wasm_gelu.ts";
 * await tf.setBackend("cpu");
 * assert.equal(nativeGeluTanh(tf.ones([2]), 1.5957691, 0.0713548), null); // cpu: the stock ops
 * ```
 *
 * @category Backend
 */
export function nativeGeluTanh<T extends Tensor>(x: T, c1: number, c2: number): T | null {
  if (tf.getBackend() !== "wasm" || x.dtype !== "float32" || !wasmNativeKernels()) return null;
  const engine = tf.engine() as unknown as { isTapeOn?: () => boolean };
  if (engine.isTapeOn?.() ?? true) return null;
  registerOwnKernel(KERNEL, "wasm", geluKernel);
  return tf.engine().runKernel(KERNEL, { x }, { c1, c2 }) as T;
}
