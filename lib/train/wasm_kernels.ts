/**
 * Kernels the tfjs wasm backend lacks but training needs. tfjs 4.22's wasm backend has no
 * `UnsortedSegmentSum`, which is the gradient of `gather` (embedding lookups), so backprop through an
 * embedding fails there. This registers a plain JavaScript implementation for wasm; the other backends
 * are untouched.
 *
 * @module
 */
import { tf } from "../deps.ts";

interface WasmLikeBackend {
  readSync(dataId: unknown): ArrayLike<number>;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array;
}

let registered = false;

/**
 * Registers the missing training kernels for the wasm backend (idempotent; safe to call before or after
 * the backend is initialised). Returns the kernel names it registered this time.
 *
 * @example
 * ```ts
 * import { registerWasmTrainingKernels } from "./wasm_kernels.ts";
 * registerWasmTrainingKernels();
 * ```
 */
export function registerWasmTrainingKernels(): string[] {
  if (registered || tf.getKernel("UnsortedSegmentSum", "wasm")) {
    registered = true;
    return [];
  }
  tf.registerKernel({
    kernelName: "UnsortedSegmentSum",
    backendName: "wasm",
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
      const numSegments = (attrs as { numSegments: number }).numSegments;
      const b = backend as unknown as WasmLikeBackend;
      const xs = b.readSync(x.dataId);
      const ids = b.readSync(segmentIds.dataId);
      const outer = ids.length;
      const inner = outer === 0 ? 0 : xs.length / outer;
      const shape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
      const out = b.makeOutput(shape, x.dtype);
      const dst = b.typedArrayFromHeap(out);
      dst.fill(0);
      for (let i = 0; i < outer; i++) {
        const seg = ids[i];
        if (seg < 0 || seg >= numSegments) continue; // tf semantics: out-of-range ids are dropped
        const o = seg * inner, s = i * inner;
        for (let j = 0; j < inner; j++) dst[o + j] += xs[s + j];
      }
      return out;
    },
  });
  registered = true;
  return ["UnsortedSegmentSum"];
}
