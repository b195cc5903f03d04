/**
 * Every third-party dependency of the library, pinned to an exact version.
 *
 * Source files import npm packages only through this module, so that the library works when imported
 * by URL (a library's own import map is ignored then) and a version bump touches one line.
 *
 * @module
 */

// The umbrella package: under Deno, `@tensorflow/tfjs-core` alone lacks gradients and chained ops.
export * as tf from "npm:@tensorflow/tfjs@4.22.0";
export { setWasmPaths } from "npm:@tensorflow/tfjs-backend-wasm@4.22.0";
// Side-effect import: registers the "webgpu" backend factory with tfjs.
// deno-lint-ignore no-import-prefix -- this module is where full npm specifiers live, by design
import "npm:@tensorflow/tfjs-backend-webgpu@4.22.0";
// Hugging Face tokenizer.json runtime (pure JS, zero deps; the code transformers.js uses).
export { Tokenizer as HFTokenizerRuntime } from "npm:@huggingface/tokenizers@0.2.0";
// GPT-2 BPE with its ranks shipped in the package (works offline once cached): reFlow's tokenizer.
export { Tiktoken } from "npm:js-tiktoken@1.0.21/lite";
export { default as GPT2_BPE_RANKS } from "npm:js-tiktoken@1.0.21/ranks/gpt2";

/**
 * A file URL inside an npm package; "" where npm specifiers do not resolve (a `deno bundle` output, as
 * carried to the GPU machine), so that importing this module never throws there.
 */
function npmFileUrl(path: string, resolve: () => string): string {
  // The specifier is a literal at each call site, so `deno publish` can analyse it.
  try {
    return new URL(path, resolve()).href;
  } catch {
    return "";
  }
}

/** File URL of the wasm backend's `dist/` folder, where its `.wasm` binaries live ("" in a bundle). */
export const WASM_DIST_URL: string = npmFileUrl(
  "./",
  () => import.meta.resolve("npm:@tensorflow/tfjs-backend-wasm@4.22.0"),
);

// Charts: Observable Plot renders into a linkedom document outside the browser; resvg turns SVG into PNG.
export * as Plot from "npm:@observablehq/plot@0.6.17";
export { parseHTML } from "npm:linkedom@0.18.15";
export { initWasm as initResvgWasm, Resvg } from "npm:@resvg/resvg-wasm@2.6.2";
/** File URL of resvg's `index_bg.wasm`, which {@linkcode initResvgWasm} must be given once ("" in a bundle). */
export const RESVG_WASM_URL: string = npmFileUrl(
  "./index_bg.wasm",
  () => import.meta.resolve("npm:@resvg/resvg-wasm@2.6.2"),
);
