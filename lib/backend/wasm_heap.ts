/**
 * Telling a full wasm heap apart from other failures. tfjs-wasm is a wasm32 module: all its tensors live in
 * one heap of at most 4 GiB, and when an allocation no longer fits, tfjs-wasm does not throw an allocation
 * error but fails later with a bare `RuntimeError` ("memory access out of bounds", "Aborted()"). After
 * that the backend's memory is corrupt: later calls, disposals included, may fail the same way.
 *
 * @module
 */
import { tf } from "../deps.ts";

/**
 * Whether `e` is the way tfjs-wasm fails when its heap is exhausted, while the wasm backend is active: a
 * `WebAssembly.RuntimeError` (out of bounds access, abort, unreachable), or the `RangeError` of a single
 * tensor too large to copy into the heap.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../deps.ts";
 * import { isWasmHeapError } from "./wasm_heap.ts";
 * await tf.setBackend("cpu");
 * assert.equal(isWasmHeapError(new Error("shapes do not match")), false);
 * ```
 *
 * @category Backend
 */
export function isWasmHeapError(e: unknown): boolean {
  if (tf.getBackend() !== "wasm") return false;
  if (e instanceof WebAssembly.RuntimeError) {
    return /memory access out of bounds|Aborted|unreachable|Cannot enlarge memory|out of memory/i.test(
      e.message,
    );
  }
  // A single tensor larger than the heap can hold fails earlier, when tfjs copies its values in.
  return e instanceof RangeError && /offset is out of bounds|Array buffer allocation failed/.test(e.message);
}

/**
 * `e` itself, or, when it is a full wasm heap ({@linkcode isWasmHeapError}), an `Error` that says so and
 * how to fix it, with `e` as its `cause`. `what` names the work that failed ("training step 12").
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { explainWasmHeapError } from "./wasm_heap.ts";
 * const e = new TypeError("not a heap problem");
 * assert.equal(explainWasmHeapError(e, "a training step"), e); // passed through unchanged
 * ```
 *
 * @category Backend
 */
export function explainWasmHeapError(e: unknown, what: string): unknown {
  if (!isWasmHeapError(e)) return e;
  const heap = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.length;
  const size = heap ? ` (its heap had grown to ${(heap / 2 ** 30).toFixed(2)} GiB)` : "";
  return new Error(
    `${what} ran the wasm backend out of memory${size}: tfjs-wasm keeps every tensor in one wasm32 heap of at ` +
      `most 4 GiB. Use a smaller batch or block size (training: a smaller batchSize with gradAccum keeps the ` +
      `effective batch; generation: fewer rows or a shorter prompt), or the webgpu backend. The wasm backend ` +
      `is unusable in this process now: restart it.`,
    { cause: e },
  );
}
