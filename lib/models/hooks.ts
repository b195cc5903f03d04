/**
 * TransformerLens-style helpers: `runWithCache` (every or selected activations of one forward, in an
 * {@linkcode ActivationCache}) and `runWithHooks` (a forward with activation edits).
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Tensor, Tensor3D } from "../tensor_types.ts";
import { JUPYTER_DISPLAY } from "../display.ts";
import type { CausalLM, ForwardOptions, ForwardResult, Hooks, ModelInputIds } from "./types.ts";

/**
 * Activations captured from one forward, by hook name. Owns its tensors: call `dispose()` when done.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { ActivationCache } from "./hooks.ts";
 * await tf.ready();
 * const cache = new ActivationCache(new Map([["hook_embed", tf.zeros([1, 2, 4])]]));
 * assert.deepEqual(cache.get("hook_embed").shape, [1, 2, 4]);
 * cache.dispose();
 * ```
 *
 * @category Hooks
 */
export class ActivationCache {
  #acts: Map<string, Tensor>;

  /** Wraps captured activations (takes ownership). */
  constructor(activations: Map<string, Tensor>) {
    this.#acts = activations;
  }

  /** Captured hook names, in execution order. */
  get names(): string[] {
    return [...this.#acts.keys()];
  }

  /** Whether `name` was captured. */
  has(name: string): boolean {
    return this.#acts.has(name);
  }

  /** The activation at `name`; throws (listing what was captured) when absent. */
  get(name: string): Tensor {
    const t = this.#acts.get(name);
    if (!t) {
      throw new Error(
        `ActivationCache: '${name}' was not captured (captured: ${this.names.slice(0, 12).join(", ")}` +
          (this.#acts.size > 12 ? `, ... ${this.#acts.size} in all)` : ")"),
      );
    }
    return t;
  }

  /**
   * The activation at `blocks.{layer}.{suffix}` for every layer that has it, in layer order (e.g.
   * `stack("hook_resid_post")`).
   */
  stack(suffix: string): Tensor[] {
    const re = new RegExp(`^blocks\\.\\d+\\.${suffix.replace(/\./g, "\\.")}$`);
    return this.names.filter((n) => re.test(n)).map((n) => this.get(n));
  }

  /** Frees every captured tensor. */
  dispose(): void {
    for (const t of this.#acts.values()) t.dispose();
    this.#acts.clear();
  }

  /** What `console.log(cache)` prints: the hook names and shapes (not the tensors' internals). */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }

  /** `ActivationCache (n activations)` and one `name [shape]` line per activation. */
  toString(): string {
    const rows = [...this.#acts].map(([n, t]) => `  ${n} [${t.shape.join(", ")}] ${t.dtype}`);
    return `ActivationCache (${rows.length} activations)` + (rows.length ? `\n${rows.join("\n")}` : "");
  }

  /** Jupyter rich display: a table of hook names and shapes. */
  [JUPYTER_DISPLAY](): Record<string, string> {
    const rows = [...this.#acts].map(([n, t]) => [n, `[${t.shape.join(", ")}]`]);
    const text = `ActivationCache (${rows.length} activations)\n` +
      rows.map(([n, s]) => `  ${n} ${s}`).join("\n");
    const html =
      `<table><thead><tr><th style="text-align:left">hook</th><th style="text-align:left">shape</th></tr></thead><tbody>` +
      rows.map(([n, s]) => `<tr><td><code>${n}</code></td><td>${s}</td></tr>`).join("") + "</tbody></table>";
    return { "text/plain": text, "text/html": html };
  }
}

/**
 * Options for {@linkcode runWithCache}.
 *
 * @category Hooks
 */
export interface RunWithCacheOptions extends Omit<ForwardOptions, "capture"> {
  /** Hook names to capture (default: all). */
  names?: string[];
}

/**
 * Runs the model once and captures activations (all, or `names`). The caller disposes `logits` and the
 * cache.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { runWithCache } from "./hooks.ts";
 * import { createDecoder, gpt2SmallConfig } from "./scratch.ts";
 * await tf.ready();
 * const model = createDecoder(gpt2SmallConfig({ nLayers: 1, dModel: 32, nHeads: 2, vocabSize: 50 }), { seed: 0 });
 * const ids = tf.tensor2d([[1, 2, 3]], [1, 3], "int32");
 * const { logits, cache } = runWithCache(model, ids, { names: ["blocks.0.attn.hook_pattern"] });
 * assert.deepEqual(cache.get("blocks.0.attn.hook_pattern").shape, [1, 2, 3, 3]);
 * tf.dispose([ids, logits]);
 * cache.dispose();
 * model.dispose();
 * ```
 *
 * @category Hooks
 */
export function runWithCache(
  model: CausalLM,
  ids: ModelInputIds,
  options: RunWithCacheOptions = {},
): { logits: Tensor3D; cache: ActivationCache } {
  const { names, ...rest } = options;
  const r = model.forward(ids, { ...rest, capture: names ?? true });
  disposeUnreturned(r);
  return { logits: r.logits, cache: new ActivationCache(r.activations ?? new Map()) };
}

/**
 * Runs the model with hooks that may edit activations; returns the logits (caller disposes).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { runWithHooks } from "./hooks.ts";
 * import { createDecoder, gpt2SmallConfig } from "./scratch.ts";
 * await tf.ready();
 * const model = createDecoder(gpt2SmallConfig({ nLayers: 1, dModel: 32, nHeads: 2, vocabSize: 50 }), { seed: 0 });
 * const ids = tf.tensor2d([[1, 2, 3]], [1, 3], "int32");
 * // Zero-ablate the MLP of block 0.
 * const logits = runWithHooks(model, ids, { "blocks.0.hook_mlp_out": (x) => tf.zerosLike(x) });
 * assert.deepEqual(logits.shape, [1, 3, 50]);
 * tf.dispose([ids, logits]);
 * model.dispose();
 * ```
 *
 * @category Hooks
 */
export function runWithHooks(
  model: CausalLM,
  ids: ModelInputIds,
  hooks: Hooks,
  options: Omit<ForwardOptions, "hooks"> = {},
): Tensor3D {
  const r = model.forward(ids, { ...options, hooks });
  disposeUnreturned(r);
  if (r.activations) { for (const t of r.activations.values()) t.dispose(); }
  return r.logits;
}

/** Frees what the run* helpers do not return: hidden, residual, a loss, and aux terms and metrics (mixers
 * such as PhaseGPT's report some). */
function disposeUnreturned(r: ForwardResult): void {
  tf.dispose([
    r.hidden,
    r.residual,
    r.loss,
    ...Object.values(r.aux ?? {}),
    ...Object.values(r.metrics ?? {}),
  ]);
}
