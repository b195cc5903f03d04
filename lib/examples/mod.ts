/**
 * The model examples run on (notebooks, `deno task demo`): a folder the user names, else the bundled demo
 * model, else a tiny Hugging Face fixture, opened through `openModel` with a text codec.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadExampleModel } from "./mod.ts";
 * const ex = await loadExampleModel();
 * assert.ok(ex.model.config.nLayers > 0);
 * ex.model.dispose();
 * ```
 *
 * @module
 */
export * from "./example_model.ts";
