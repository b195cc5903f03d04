/**
 * Coherence Lab: watch and steer what happens inside transformer language models, from Deno scripts and
 * Jupyter notebooks. TensorFlow.js (webgpu, wasm or cpu) underneath, Observable Plot for charts.
 *
 * @example
 * ```ts
 * import { initBackend } from "./mod.ts";
 * const backend = await initBackend(); // webgpu on a real GPU, else wasm, else cpu
 * console.log(backend.name);
 * ```
 *
 * @module
 */
import { tf as tfjs } from "./lib/deps.ts";
/**
 * The TensorFlow.js instance the library runs on (the very module it uses internally), so scripts that
 * import the library by URL build their tensors with the same tfjs.
 */
export const tf: typeof tfjs = tfjs;
export * from "./lib/tensor_types.ts";
export * from "./lib/random/mod.ts";
export * from "./lib/backend/mod.ts";
export * from "./lib/io/mod.ts";
export * from "./lib/nn/mod.ts";
export * from "./lib/models/mod.ts";
export * from "./lib/tokenizers/mod.ts";
export * from "./lib/generate/mod.ts";
export * from "./lib/plot/mod.ts";
export * from "./lib/notebook/mod.ts";
export * from "./lib/data/mod.ts";
export * from "./lib/train/mod.ts";
export * from "./lib/stats/mod.ts";
export * from "./lib/recync/mod.ts";
