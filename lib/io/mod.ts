/**
 * File input/output: safetensors checkpoints, crash-safe atomic writes and JSONL logs, Hugging Face
 * cache resolution and downloads.
 *
 * @example
 * ```ts
 * import { openCheckpoint } from "./mod.ts";
 * const ckpt = await openCheckpoint("../shared/fixtures/hf/tiny-gpt2");
 * console.log(ckpt.names().length);
 * ckpt.close();
 * ```
 *
 * @module
 */
export * from "./safetensors.ts";
export * from "./safetensors_tf.ts";
export * from "./atomic.ts";
export * from "./paths.ts";
export * from "./hub.ts";
export * from "./lock.ts";
