/**
 * The reFlow factorised tied embedding, registered as embedding kind `reflow`: a recipe matrix
 * `embed.W_recipe` R `[V, S]` and a signal basis `embed.W_basis` Φ `[S, d]` whose product E = R·Φ is both
 * the input embedding and the output projection (no LM head, no output bias, no position table).
 *
 * Input: x0 = R[ids]·Φ (hook `hook_embed`). Output: σ = RMSNorm(h)·Φᵀ `[B, T, S]` (hook
 * `unembed.hook_signals`, which may be read or replaced), logits = σ·Rᵀ. With `topK`, rows of R are
 * replaced by TopK(ReLU(row)) in both paths (or σ is, with `sparsify: "signals"`).
 *
 * At inference (no gradient tape, no hooks) E is computed once per weight version and kept, so a decode
 * step costs one gather and one `[d, V]` product, never the V·S·d product.
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Scalar, Tensor, Tensor1D, Tensor2D, Tensor3D, Variable } from "../tensor_types.ts";
import { gatherRows, unembed } from "../nn/embedding.ts";
import { chunkedHeadCrossEntropy, headLossChunkRows } from "../nn/chunked_loss.ts";
import { checkChoice } from "../options.ts";
import {
  type ComponentContext,
  type EmbeddingComponent,
  type EmbeddingKind,
  type ParameterSpec,
  registerEmbedding,
} from "../models/components.ts";
import { requireParameter } from "../models/standard_components.ts";
import type { ComponentSpec, DecoderConfig } from "../models/types.ts";

/**
 * Where the reFlow-TopK sparsifier acts: `"recipe"` (default, spec §1.4: each recipe row, identically at
 * input and output) or `"signals"` (the signal activations σ of each position, output side only).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { SparsifyPlacement } from "./embedding.ts";
 * const placement: SparsifyPlacement = "signals";
 * assert.equal(placement, "signals");
 * ```
 *
 * @category reFlow
 */
export type SparsifyPlacement = "recipe" | "signals";

/**
 * The placements of {@linkcode SparsifyPlacement}, for validation messages.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SPARSIFY_PLACEMENTS } from "./embedding.ts";
 * assert.deepEqual(SPARSIFY_PLACEMENTS, ["recipe", "signals"]);
 * ```
 *
 * @category reFlow
 */
export const SPARSIFY_PLACEMENTS: readonly SparsifyPlacement[] = ["recipe", "signals"];

/**
 * The options of embedding kind `reflow` (besides `kind`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ReflowEmbeddingOptions } from "./embedding.ts";
 * import { countParameters } from "../models/params.ts";
 * import { gpt2NewConfig } from "../models/scratch.ts";
 * import "./embedding.ts";
 * const options: ReflowEmbeddingOptions = { signals: 16, topK: 4 };
 * const c = gpt2NewConfig({ nLayers: 1, dModel: 32, nHeads: 2, vocabSize: 50, embedding: { kind: "reflow", ...options } });
 * assert.equal(countParameters(c), 50 * 16 + 16 * 32 + (4 * 32 * 32 + 3 * 32 * 256 + 2 * 32) + 32);
 * ```
 *
 * @category reFlow
 */
export interface ReflowEmbeddingOptions {
  /** Signal count S (columns of R, rows of Φ), 1..65536. */
  signals: number;
  /** Keep only the k largest entries of ReLU(·) per row (reFlow-TopK); absent = dense. 1 ≤ k ≤ S. */
  topK?: number;
  /** Where top-k acts; default `"recipe"`. Only with `topK`. */
  sparsify?: SparsifyPlacement;
  /** Std of R at init; default 0.02. */
  recipeStd?: number;
  /** Std of Φ at init; default 1/√S, so rows of E start with per-coordinate std ≈ recipeStd. */
  basisStd?: number;
  /**
   * Positions per chunk of the training loss. Default: chunk only when B·T·V exceeds 2^27 values, in
   * chunks of 2^24 / V positions; set it to force a chunk size.
   */
  lossChunk?: number;
}

/**
 * {@linkcode ReflowEmbeddingOptions} with the defaults filled in.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ResolvedReflowOptions, reflowEmbeddingOptions } from "./embedding.ts";
 * const o: ResolvedReflowOptions = reflowEmbeddingOptions({ kind: "reflow", signals: 64 });
 * assert.deepEqual([o.topK, o.basisStd], [undefined, 0.125]);
 * ```
 *
 * @category reFlow
 */
export interface ResolvedReflowOptions {
  /** Signal count S. */
  signals: number;
  /** Top-k, or undefined when dense. */
  topK: number | undefined;
  /** Where top-k acts. */
  sparsify: SparsifyPlacement;
  /** Std of R at init. */
  recipeStd: number;
  /** Std of Φ at init. */
  basisStd: number;
  /** Positions per loss chunk, or undefined for automatic. */
  lossChunk: number | undefined;
}

/** The option keys of kind `reflow`. */
const OPTION_KEYS = ["signals", "topK", "sparsify", "recipeStd", "basisStd", "lossChunk"] as const;
/** Largest S accepted (a sanity bound: S beyond 64k has no use and is most likely a typo). */
const MAX_SIGNALS = 65536;

/**
 * The reFlow options of a config's embedding spec, checked: one message naming the field for S or k out
 * of range, an unknown placement or a non-positive std.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reflowEmbeddingOptions } from "./embedding.ts";
 * assert.deepEqual(reflowEmbeddingOptions({ kind: "reflow", signals: 8, topK: 2 }), {
 *   lossChunk: undefined, signals: 8, topK: 2, sparsify: "recipe", recipeStd: 0.02, basisStd: 1 / Math.sqrt(8),
 * });
 * assert.throws(() => reflowEmbeddingOptions({ kind: "reflow", signals: 8, topK: 9 }), /topK.*1\.\.8/);
 * ```
 *
 * @category reFlow
 */
export function reflowEmbeddingOptions(spec: ComponentSpec): ResolvedReflowOptions {
  const s = spec.signals;
  if (!Number.isInteger(s) || (s as number) < 1 || (s as number) > MAX_SIGNALS) {
    throw new Error(
      `embedding.signals (S) must be an integer in 1..${MAX_SIGNALS}, got ${JSON.stringify(s)}`,
    );
  }
  const signals = s as number;
  const k = spec.topK;
  if (k !== undefined && (!Number.isInteger(k) || (k as number) < 1 || (k as number) > signals)) {
    throw new Error(
      `embedding.topK (k) must be an integer in 1..${signals} (the signal count S), got ${JSON.stringify(k)}`,
    );
  }
  if (spec.sparsify !== undefined && k === undefined) {
    throw new Error("embedding.sparsify needs embedding.topK (it says where top-k acts)");
  }
  const sparsify = spec.sparsify === undefined
    ? "recipe"
    : checkChoice(spec.sparsify, SPARSIFY_PLACEMENTS, "embedding.sparsify placement");
  const std = (name: "recipeStd" | "basisStd", fallback: number): number => {
    const v = spec[name];
    if (v === undefined) return fallback;
    if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) {
      throw new Error(`embedding.${name} must be a positive number, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const chunk = spec.lossChunk;
  if (chunk !== undefined && (!Number.isInteger(chunk) || (chunk as number) < 1)) {
    throw new Error(
      `embedding.lossChunk must be a positive integer (positions), got ${JSON.stringify(chunk)}`,
    );
  }
  return {
    lossChunk: chunk as number | undefined,
    signals,
    topK: k as number | undefined,
    sparsify,
    recipeStd: std("recipeStd", 0.02),
    basisStd: std("basisStd", 1 / Math.sqrt(signals)),
  };
}

/**
 * Row-wise hard sparsity: ReLU, then keep the k largest entries of each row and zero the rest (ties go to
 * the lower index, as `tf.topk` orders them). Rows with fewer than k positive entries keep them all. The
 * mask is built from indices only, so the gradient reaches exactly the kept positive entries.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../deps.ts";
 * import { topKRows } from "./embedding.ts";
 * await tf.setBackend("cpu");
 * const y = topKRows(tf.tensor2d([[3, -1, 2, 5], [-1, -2, 0.5, -3]]), 2);
 * assert.deepEqual(Array.from(y.dataSync()), [3, 0, 0, 5, 0, 0, 0.5, 0]);
 * ```
 *
 * @category reFlow
 */
export function topKRows(x: Tensor2D, k: number): Tensor2D {
  const [n, s] = x.shape;
  if (k >= s) return tf.relu(x);
  // The mask comes from indices inside a custom gradient, so autodiff never walks topk or the scatter.
  const sparsify = tf.customGrad(
    ((row: Tensor, save: tf.GradSaveFunc) => {
      const mask = tf.tidy(() => {
        const pos = tf.relu(row);
        const { indices } = tf.topk(pos, k, true); // [n, k]
        const rows = tf.tile(tf.reshape(tf.range(0, n, 1, "int32"), [n, 1]), [1, k]);
        const coords = tf.stack([tf.reshape(rows, [-1]), tf.reshape(indices, [-1])], 1);
        // Keep only positive entries: a row with fewer than k of them keeps no zeros "by rank".
        return tf.mul(tf.scatterND(coords, tf.ones([n * k]), [n, s]), tf.cast(tf.greater(row, 0), "float32"));
      });
      save([mask]);
      return {
        value: tf.mul(tf.relu(row), mask),
        gradFunc: (dy: Tensor, saved: Tensor[]) => [tf.mul(dy, saved[0])],
      };
    }) as unknown as (...args: (Tensor | tf.GradSaveFunc)[]) => { value: Tensor; gradFunc: () => Tensor[] },
  );
  return sparsify(x) as Tensor2D;
}

/** Whether a gradient tape is recording (a cached product would then cut gradients off). */
function tapeOn(): boolean {
  const engine = tf.engine() as unknown as { isTapeOn?: () => boolean };
  return engine.isTapeOn ? engine.isTapeOn() : true;
}

/**
 * The reFlow embedding component (kind `reflow`), also holding the inference cache of E.
 */
class ReflowEmbedding implements EmbeddingComponent {
  readonly #r: Variable;
  readonly #phi: Variable;
  readonly #opts: ResolvedReflowOptions;
  #e: Tensor2D | null = null;
  #eT: Tensor2D | null = null;
  #version: [object, object] | null = null;

  constructor(opts: ResolvedReflowOptions, params: Map<string, Variable>) {
    this.#opts = opts;
    this.#r = requireParameter(params, "embed.W_recipe");
    this.#phi = requireParameter(params, "embed.W_basis");
  }

  /** Sparsifies recipe rows when the variant asks for it at the recipe. */
  #recipeRows(rows: Tensor2D): Tensor2D {
    const { topK, sparsify } = this.#opts;
    return topK !== undefined && sparsify === "recipe" ? topKRows(rows, topK) : rows;
  }

  /**
   * E = R̃·Φ `[V, d]`, kept until an optimiser step gives R or Φ a new buffer (the weight version). Only
   * called with the tape off.
   */
  embeddingMatrix(): Tensor2D {
    const version: [object, object] = [this.#r.dataId, this.#phi.dataId];
    if (!this.#e || !this.#version || this.#version[0] !== version[0] || this.#version[1] !== version[1]) {
      this.dispose();
      this.#e = tf.keep(
        tf.tidy(() => tf.matMul(this.#recipeRows(this.#r as Tensor2D), this.#phi as Tensor2D)),
      );
      // The wasm backend re-packs a transposed right operand on every product: keep Eᵀ for the head.
      if (tf.getBackend() === "wasm") this.#eT = tf.keep(tf.transpose(this.#e));
      this.#version = version;
    }
    return this.#e;
  }

  embed(ids: Tensor2D, _positions: Tensor2D, { fire }: ComponentContext): Tensor3D {
    const [b, t] = ids.shape;
    const flat = tf.reshape(ids.dtype === "int32" ? ids : tf.cast(ids, "int32"), [b * t]) as Tensor1D;
    let x: Tensor3D;
    if (!tapeOn() && !fire) {
      x = tf.reshape(tf.gather(this.embeddingMatrix(), flat), [b, t, -1]) as Tensor3D;
    } else {
      // Gather the recipe rows first (B·T·S values), then one [B·T, S]·[S, d] product.
      const rows = this.#recipeRows(gatherRows(this.#r, flat) as Tensor2D);
      x = tf.reshape(tf.matMul(rows, this.#phi as Tensor2D), [b, t, -1]) as Tensor3D;
    }
    if (fire) x = fire("hook_embed", undefined, x) as Tensor3D;
    return x;
  }

  unembed(hidden: Tensor3D, { fire }: ComponentContext): Tensor3D {
    const { topK, sparsify } = this.#opts;
    if (!tapeOn() && !fire && sparsify !== "signals") {
      const e = this.embeddingMatrix();
      return this.#eT ? unembed(hidden, this.#eT, false) : unembed(hidden, e, true);
    }
    let sig = unembed(hidden, this.#phi as Tensor2D, true); // σ = y·Φᵀ, [B, T, S]
    if (topK !== undefined && sparsify === "signals") {
      const [b, t, s] = sig.shape;
      sig = tf.reshape(topKRows(tf.reshape(sig, [b * t, s]) as Tensor2D, topK), [b, t, s]) as Tensor3D;
    }
    if (fire) sig = fire("unembed.hook_signals", undefined, sig) as Tensor3D;
    return unembed(sig, this.#recipeRows(this.#r as Tensor2D), true);
  }

  /**
   * The mean CE from σ in chunks of positions when B·T·V is large (or `lossChunk` is set); null otherwise
   * and whenever hooks are active (they must see the whole σ), so the decoder builds the logits.
   */
  loss(hidden: Tensor3D, targets: Tensor2D, { fire }: ComponentContext): Scalar | null {
    const [b, t, d] = hidden.shape;
    const v = this.#r.shape[0];
    const n = b * t;
    const chunk = headLossChunkRows(n, v, this.#opts.lossChunk);
    if (fire || chunk === 0) return null;
    const { topK, sparsify } = this.#opts;
    let sig: Tensor2D = tf.matMul(tf.reshape(hidden, [n, d]) as Tensor2D, this.#phi as Tensor2D, false, true);
    if (topK !== undefined && sparsify === "signals") sig = topKRows(sig, topK);
    const flat = tf.reshape(targets.dtype === "int32" ? targets : tf.cast(targets, "int32"), [n]) as Tensor1D;
    return chunkedHeadCrossEntropy(sig, this.#recipeRows(this.#r as Tensor2D), flat, chunk);
  }

  dispose(): void {
    this.#e?.dispose();
    this.#eT?.dispose();
    this.#e = this.#eT = null;
    this.#version = null;
  }
}

/**
 * Embedding kind `reflow`: parameters `embed.W_recipe` `[V, S]` and `embed.W_basis` `[S, d]`, hooks
 * `hook_embed` and `unembed.hook_signals`. Options: {@linkcode ReflowEmbeddingOptions}. Refuses learned
 * positions and an untied head (reFlow has neither).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reflowEmbedding } from "./embedding.ts";
 * import { gpt2NewConfig } from "../models/scratch.ts";
 * const c = gpt2NewConfig({ nLayers: 1, dModel: 16, nHeads: 2, vocabSize: 40 });
 * const p = reflowEmbedding.parameters({ kind: "reflow", signals: 8 }, c);
 * assert.deepEqual([...p].map(([n, s]) => [n, s.shape]), [["embed.W_recipe", [40, 8]], ["embed.W_basis", [8, 16]]]);
 * assert.deepEqual(reflowEmbedding.hookNames({ kind: "reflow", signals: 8 }, c), ["hook_embed", "unembed.hook_signals"]);
 * ```
 *
 * @category reFlow
 */
export const reflowEmbedding: EmbeddingKind = {
  kind: "reflow",
  options: OPTION_KEYS,
  validate(spec: ComponentSpec, c: DecoderConfig): void {
    reflowEmbeddingOptions(spec);
    if (c.positional === "learned") {
      throw new Error("embedding kind 'reflow' has no position table: use positional: \"rotary\"");
    }
    if (!c.tieEmbeddings) {
      throw new Error(
        "embedding kind 'reflow' is tied by construction (E = R·Φ at both ends): set tieEmbeddings: true",
      );
    }
  },
  parameters(spec: ComponentSpec, c: DecoderConfig): Map<string, ParameterSpec> {
    const o = reflowEmbeddingOptions(spec);
    return new Map<string, ParameterSpec>([
      ["embed.W_recipe", { shape: [c.vocabSize, o.signals], init: { std: o.recipeStd } }],
      ["embed.W_basis", { shape: [o.signals, c.dModel], init: { std: o.basisStd } }],
    ]);
  },
  hookNames(): string[] {
    return ["hook_embed", "unembed.hook_signals"];
  },
  create(spec: ComponentSpec, _c: DecoderConfig, params: Map<string, Variable>): EmbeddingComponent {
    return new ReflowEmbedding(reflowEmbeddingOptions(spec), params);
  },
};

registerEmbedding(reflowEmbedding);
