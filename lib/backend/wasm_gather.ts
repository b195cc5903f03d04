/**
 * A row-copying `GatherV2` for the wasm backend: an embedding lookup in one copy per row.
 *
 * tfjs-wasm's `GatherV2` walks every output element with a strided index computation, about 20 µs per
 * 768-float row on the build machine: 2.6 ms to embed a 128-token prompt, twice per forward (tokens and
 * positions), and 40 ms per table for a batch of 16 such prompts. Gathering whole rows along the first axis
 * (the embedding case) is a `copyWithin` per index here; every other gather keeps the stock kernel.
 *
 * @module
 */
import type { tf } from "../deps.ts";
import { type KernelArgs, KernelOverride } from "./stock_kernels.ts";

type TensorInfo = tf.TensorInfo;

/** The slice of tfjs-wasm's `BackendWasm` this module uses. */
interface WasmBackend {
  wasm: { HEAPF32: Float32Array };
  dataIdMap: { get(id: TensorInfo["dataId"]): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
}

const override = new KernelOverride("wasm", { GatherV2: gather });

/**
 * Registers the row-copying `GatherV2` for wasm (idempotent); false when the wasm kernels are not
 * registered. `initBackend` installs it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { installWasmGather, uninstallWasmGather } from "./wasm_gather.ts";
 * assert.equal(typeof installWasmGather(), "boolean");
 * uninstallWasmGather(); // back to tfjs-wasm's own kernel
 * ```
 *
 * @category Backend
 */
export function installWasmGather(): boolean {
  return override.install();
}

/**
 * Restores tfjs-wasm's `GatherV2` (idempotent).
 *
 * @example
 * ```ts
 * import { uninstallWasmGather } from "./wasm_gather.ts";
 * uninstallWasmGather();
 * ```
 *
 * @category Backend
 */
export function uninstallWasmGather(): void {
  override.uninstall();
}

function gather(args: KernelArgs): TensorInfo {
  const { x, indices } = args.inputs as { x: TensorInfo; indices: TensorInfo };
  const axis = Number(args.attrs?.axis ?? 0), batchDims = Number(args.attrs?.batchDims ?? 0);
  const normAxis = axis < 0 ? axis + x.shape.length : axis;
  // 4-byte elements in the heap, gathered along the first axis: the embedding lookup.
  const simple = normAxis === 0 && batchDims === 0 && x.shape.length >= 1 &&
    (x.dtype === "float32" || x.dtype === "int32") && indices.dtype === "int32";
  if (!simple) return override.stock("GatherV2")(args);
  const be = args.backend as WasmBackend;
  const rows = x.shape[0], width = x.shape.slice(1).reduce((a, b) => a * b, 1);
  const count = indices.shape.reduce((a, b) => a * b, 1);
  const ids = new Int32Array(be.wasm.HEAPF32.buffer, be.dataIdMap.get(indices.dataId).memoryOffset, count)
    .slice(); // a copy: the allocation below may grow the heap, which detaches views of the old one
  for (const r of ids) {
    if (!(r >= 0 && r < rows)) throw new Error(`GatherV2: the index value ${r} is not in [0, ${rows - 1}]`);
  }
  const out = be.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
  const heap = be.wasm.HEAPF32;
  const from = be.dataIdMap.get(x.dataId).memoryOffset >>> 2;
  const to = be.dataIdMap.get(out.dataId).memoryOffset >>> 2;
  for (let i = 0; i < count; i++) {
    heap.copyWithin(to + i * width, from + ids[i] * width, from + (ids[i] + 1) * width);
  }
  return out;
}
