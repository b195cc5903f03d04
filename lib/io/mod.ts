/**
 * File input/output: safetensors checkpoints, crash-safe atomic writes and JSONL logs, Hugging Face
 * cache resolution and downloads.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openCheckpoint } from "./mod.ts";
 * const ckpt = await openCheckpoint("data/models/tiny-gpt2");
 * assert.equal(ckpt.names().length, 28); // 2 blocks × 12 tensors, plus embeddings and final norm
 * ckpt.close();
 * ```
 *
 * @module
 */
export * from "./safetensors.ts";
export * from "./safetensors_tf.ts";
export * from "./atomic.ts";
export * from "./atomic_dir.ts";
export * from "./paths.ts";
export * from "./hub.ts";
export * from "./lock.ts";
export * from "./shard.ts";
