/**
 * Bridges between safetensors tensors and TensorFlow.js tensors. Kept apart from `safetensors.ts` so
 * that reading files does not load tfjs.
 *
 * tfjs has three numeric dtypes: float32, int32 and bool. Floats of every width become float32; integers
 * become int32 (values outside int32 are an error, never a silent wrap); BOOL becomes bool.
 *
 * @example
 * ```ts
 * import { tf } from "../../mod.ts";
 * import { initBackend } from "../backend/backend.ts";
 * import { readTfSafetensors, writeTfSafetensors } from "./safetensors_tf.ts";
 * await initBackend({ backend: "cpu" });
 * const path = (await Deno.makeTempDir()) + "/x.safetensors";
 * const x = tf.tensor2d([[1, 2], [3, 4]]);
 * await writeTfSafetensors(path, { x }, { step: "1" });
 * const back = await readTfSafetensors(path);
 * back.x.print();
 * tf.dispose([x, back.x]);
 * ```
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Tensor } from "../tensor_types.ts";
import type { AtomicWriteOptions } from "./atomic.ts";
import {
  type LoadedTensor,
  readSafetensors,
  type SafetensorsDtype,
  SafetensorsFormatError,
  type SafetensorsReadOptions,
  type SafetensorsTensorInput,
  writeSafetensors,
} from "./safetensors.ts";

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

function toInt32(t: LoadedTensor): Int32Array {
  const { data } = t;
  if (data instanceof Int32Array) return data;
  const out = new Int32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = Number(data[i]);
    if (v < INT32_MIN || v > INT32_MAX) {
      throw new SafetensorsFormatError(
        "<tensor>",
        `${t.dtype} value ${data[i]} at index ${i} does not fit tfjs int32`,
        t.name,
      );
    }
    out[i] = v;
  }
  return out;
}

/**
 * Makes a tfjs tensor from a loaded safetensors tensor: floats -> float32, integers -> int32 (error if a
 * value does not fit), BOOL -> bool. The caller owns (and disposes) the result.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { initBackend } from "../backend/backend.ts";
 * import { toTfTensor } from "./safetensors_tf.ts";
 * await initBackend({ backend: "cpu" });
 * const t = toTfTensor({ name: "w", dtype: "F16", shape: [2], data: new Float32Array([0.5, 1]) });
 * assert.equal(t.dtype, "float32");
 * assert.deepEqual(t.shape, [2]);
 * t.dispose();
 * ```
 *
 * @category IO
 */
export function toTfTensor(loaded: LoadedTensor): Tensor {
  const { dtype, shape, data } = loaded;
  switch (dtype) {
    case "F32":
    case "F16":
    case "BF16":
      return tf.tensor(data as Float32Array, shape, "float32");
    case "F64":
      return tf.tensor(Float32Array.from(data as Float64Array), shape, "float32");
    case "BOOL":
      return tf.tensor(data as Uint8Array, shape, "bool");
    default:
      return tf.tensor(toInt32(loaded), shape, "int32");
  }
}

/**
 * Reads tfjs tensors' values (one async readback each) into writer input: float32 -> F32 (or `floatDtype`,
 * e.g. "BF16" to halve the file), int32 -> I32, bool -> BOOL.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { initBackend } from "../backend/backend.ts";
 * import { tfTensorsToSafetensors } from "./safetensors_tf.ts";
 * await initBackend({ backend: "cpu" });
 * const w = tf.ones([2, 2]);
 * const inputs = await tfTensorsToSafetensors({ w });
 * assert.equal(inputs.w.dtype, "F32");
 * w.dispose();
 * ```
 *
 * @category IO
 */
export async function tfTensorsToSafetensors(
  tensors: Record<string, Tensor>,
  floatDtype: Extract<SafetensorsDtype, "F32" | "F16" | "BF16"> = "F32",
): Promise<Record<string, SafetensorsTensorInput>> {
  const out: Record<string, SafetensorsTensorInput> = {};
  for (const [name, t] of Object.entries(tensors)) {
    const shape = [...t.shape];
    switch (t.dtype) {
      case "float32":
        out[name] = { dtype: floatDtype, shape, data: (await t.data()) as Float32Array };
        break;
      case "int32":
        out[name] = { dtype: "I32", shape, data: (await t.data()) as Int32Array };
        break;
      case "bool":
        out[name] = { dtype: "BOOL", shape, data: (await t.data()) as Uint8Array };
        break;
      default:
        throw new SafetensorsFormatError("<tensors>", `tfjs dtype ${t.dtype} cannot be stored`, name);
    }
  }
  return out;
}

/**
 * Saves tfjs tensors to a safetensors file atomically.
 *
 * @example
 * ```ts
 * import { tf } from "../../mod.ts";
 * import { initBackend } from "../backend/backend.ts";
 * import { writeTfSafetensors } from "./safetensors_tf.ts";
 * await initBackend({ backend: "cpu" });
 * const path = (await Deno.makeTempDir()) + "/w.safetensors";
 * const w = tf.zeros([3]);
 * await writeTfSafetensors(path, { w }, { format: "pt" });
 * w.dispose();
 * ```
 *
 * @category IO
 */
export async function writeTfSafetensors(
  path: string,
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
  options: AtomicWriteOptions & { floatDtype?: "F32" | "F16" | "BF16" } = {},
): Promise<void> {
  await writeSafetensors(path, await tfTensorsToSafetensors(tensors, options.floatDtype), metadata, options);
}

/**
 * Loads every tensor of a safetensors file as tfjs tensors (the caller disposes them).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initBackend } from "../backend/backend.ts";
 * import { readTfSafetensors } from "./safetensors_tf.ts";
 * await initBackend({ backend: "cpu" });
 * const w = await readTfSafetensors("data/models/tiny-gpt2/model.safetensors");
 * assert.deepEqual(w["transformer.wte.weight"].shape, [266, 32]); // [vocab, d_model]
 * ```
 *
 * @category IO
 */
export async function readTfSafetensors(
  path: string,
  options: SafetensorsReadOptions = {},
): Promise<Record<string, Tensor>> {
  const loaded = await readSafetensors(path, { ...options, int64: "int32" });
  const out: Record<string, Tensor> = {};
  try {
    for (const [name, t] of loaded) out[name] = toTfTensor(t);
  } catch (err) {
    tf.dispose(Object.values(out));
    throw err;
  }
  return out;
}
