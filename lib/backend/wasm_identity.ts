/**
 * A zero-copy `Identity` for the wasm backend.
 *
 * tfjs' engine clones every tensor a gradient saves for the backward pass through the `Identity` kernel,
 * and tfjs-wasm's `Identity` copies the buffer (the cpu and webgpu backends share it instead): 487 copies in
 * one training step of the 1M bench model, 12 % of the step (`bench/profile_train_step.ts`). Here `Identity` shares the buffer and counts a
 * reference, as tfjs-wasm's own `Reshape` does. Nothing in tfjs-wasm writes a buffer in place, and the one
 * place in this library that does (`writeColumnsInPlace`, the KV cache) refuses shared buffers.
 *
 * @module
 */
import type { tf } from "../deps.ts";
import { type KernelArgs, KernelOverride } from "./stock_kernels.ts";

type TensorInfo = tf.TensorInfo;

const override = new KernelOverride("wasm", { Identity: identity });

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
  return override.install();
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
  override.uninstall();
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
  return override.installed;
}

function identity(args: KernelArgs): TensorInfo {
  const x = args.inputs.x!;
  // Strings live outside the heap: the stock kernel handles them.
  if (x.dtype === "string") return override.stock("Identity")(args);
  (args.backend as WasmBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}
