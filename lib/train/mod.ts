/**
 * Training language models from scratch: AdamW with rule-based parameter groups, learning-rate
 * schedules, global-norm clipping, gradient accumulation, evaluation, JSONL metrics, atomic checkpoints
 * with exact resume, a JSON config format, and `trainFromConfig` / `loadTrainedModel` for scripts and
 * notebooks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadTrainedModel } from "./mod.ts";
 * import { initBackend } from "../backend/backend.ts";
 * await initBackend({ backend: "cpu" });
 * const { model, tokenizer, step } = await loadTrainedModel("data/models/shakespeare-char");
 * assert.equal(step, 2000); // the step of the checkpoint it loaded
 * assert.equal(tokenizer.vocabSize, 65); // the characters of tiny Shakespeare
 * model.dispose();
 * ```
 *
 * @module
 */
export * from "./adamw.ts";
export * from "./schedule.ts";
export * from "./clip.ts";
export * from "./loss.ts";
export * from "./checkpoint.ts";
export * from "./config.ts";
export * from "./trainer.ts";
export * from "./run.ts";
export * from "./display.ts";
