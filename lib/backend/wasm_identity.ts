/**
 * A zero-copy `Identity` for the wasm backend.
 *
 * tfjs' engine clones every tensor a gradient saves for the backward pass through the `Identity` kernel,
 * and tfjs-wasm's `Identity` copies the buffer (the cpu and webgpu backends share it instead): 487 copies in
 * one training step of the 1M bench model, 12 % of the step. Here `Identity` shares the buffer and counts a
 * reference, as tfjs-wasm's own `Reshape` does. Nothing in tfjs-wasm writes a buffer in place, and the one
 * place in this library that does (`writeColumnsInPlace`, the KV cache) refuses shared buffers.
 *
 * @module
 */
import { tf } from "../deps.ts";

type TensorInfo = tf.TensorInfo;

let stock: tf.KernelConfig | null = null;

/** The slice of tfjs-wasm's `BackendWasm` this module uses. */
interface WasmBackend {
  incRef(id: TensorInfo["dataId"]): void;
}

/**
 * Registers the zero-copy `Identity` for wasm (idempotent); false when the wasm kernels are not registered.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { installWasmIdentity, uninstallWasmIdentity, wasmIdentityInstalled } from "./wasm_identity.ts";
 * if (installWasmIdentity()) assert.equal(wasmIdentityInstalled(), true);
 * uninstallWasmIdentity();
 * assert.equal(wasmIdentityInstalled(), false);
 * ```
 *
 * @category Backend
 */
export function installWasmIdentity(): boolean {
  if (stock) return true;
  const k = tf.getKernel("Identity", "wasm");
  if (!k) return false;
  stock = k;
  tf.unregisterKernel("Identity", "wasm");
  tf.registerKernel({ ...k, kernelFunc: identity as unknown as tf.KernelFunc });
  return true;
}

/**
 * Restores tfjs-wasm's copying `Identity` (idempotent).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { uninstallWasmIdentity, wasmIdentityInstalled } from "./wasm_identity.ts";
 * uninstallWasmIdentity();
 * assert.equal(wasmIdentityInstalled(), false);
 * ```
 *
 * @category Backend
 */
export function uninstallWasmIdentity(): void {
  if (!stock) return;
  tf.unregisterKernel("Identity", "wasm");
  tf.registerKernel(stock);
  stock = null;
}

/**
 * Whether the zero-copy `Identity` is registered now.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { wasmIdentityInstalled } from "./wasm_identity.ts";
 * assert.equal(typeof wasmIdentityInstalled(), "boolean");
 * ```
 *
 * @category Backend
 */
export function wasmIdentityInstalled(): boolean {
  return stock !== null;
}

function identity(args: { inputs: { x: TensorInfo }; backend: unknown }): TensorInfo {
  const { x } = args.inputs;
  // Strings live outside the heap: the stock kernel handles them.
  if (x.dtype === "string") return (stock!.kernelFunc as unknown as (a: typeof args) => TensorInfo)(args);
  (args.backend as WasmBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}
