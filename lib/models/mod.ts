/**
 * Native transformer language models: one generic decoder (with TransformerLens hook points and a
 * per-row-rewindable KV cache), Hugging Face adapters for gpt2, gpt_neox, llama and qwen2, `loadModel`,
 * from-scratch presets and seeded initialisation, and `runWithCache` / `runWithHooks`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { loadModel, runWithCache } from "./mod.ts";
 * await tf.ready();
 * const model = await loadModel("data/models/tiny-gpt2");
 * const ids = tf.tensor2d([[1, 2, 3]], [1, 3], "int32");
 * const { logits, cache } = runWithCache(model, ids);
 * assert.deepEqual(logits.shape, [1, 3, 266]); // [batch, positions, vocab]
 * assert.equal(cache.names[0], "hook_embed"); // every hook point, in forward order
 * assert.equal(cache.names.length, 33);
 * cache.dispose();
 * model.dispose();
 * ```
 *
 * @module
 */
export * from "./types.ts";
export * from "./components.ts";
export * from "./standard_components.ts";
export * from "./decoder.ts";
export * from "./kv_cache.ts";
export * from "./params.ts";
export * from "./scratch.ts";
export * from "./presets.ts";
export * from "./hooks.ts";
export * from "./hf_common.ts";
export * from "./gpt2.ts";
export * from "./gpt_neox.ts";
export * from "./llama.ts";
export * from "./qwen2.ts";
export * from "./load.ts";
export * from "./open.ts";
