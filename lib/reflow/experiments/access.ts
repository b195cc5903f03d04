/**
 * The reFlow primitives the experiments share (spec §4.0): the recipe matrix R and basis Φ of a model,
 * probe-word lookup (leading-space, single-token), residual-stream capture after each layer, the
 * signal read-out σ = RMSNorm_f(h)·Φᵀ, the logit lens softmax(σ·Rᵀ) and residual injection hooks.
 *
 * Works on any decoder whose embedding declares `embed.W_recipe` [V, S] and `embed.W_basis` [S, d]
 * (the `reflow` kinds and the test-only `test-factorised`).
 *
 * @module
 */
import { tf } from "../../deps.ts";
import type { Tensor, Tensor1D, Tensor2D, Tensor3D, Variable } from "../../tensor_types.ts";
import { applyNorm } from "../../nn/norm.ts";
import { topKRows } from "../embedding.ts";
import type { CausalLM, Hooks } from "../../models/types.ts";
import type { TextTokenizer } from "../../tokenizers/types.ts";

/**
 * Parameter name of the recipe matrix R.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RECIPE_PARAM } from "./access.ts";
 * assert.equal(RECIPE_PARAM, "embed.W_recipe");
 * ```
 *
 * @category reFlow
 */
export const RECIPE_PARAM = "embed.W_recipe";
/**
 * Parameter name of the signal basis Φ.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BASIS_PARAM } from "./access.ts";
 * assert.equal(BASIS_PARAM, "embed.W_basis");
 * ```
 *
 * @category reFlow
 */
export const BASIS_PARAM = "embed.W_basis";

/**
 * The pieces of a reFlow model the experiments read.
 *
 * @category reFlow
 */
export interface ReflowParts {
  /** The recipe variable R [V, S] (edited in place by the genetic hijack). */
  recipeVar: Variable;
  /** The basis Φ [S, d]. */
  basis: Tensor2D;
  /** Vocabulary rows V. */
  vocab: number;
  /** Signals S. */
  signals: number;
  /** Residual width d. */
  dModel: number;
  /** Layers L (residual states are indexed 0..L, 0 = embedding output). */
  layers: number;
  /** Top-k applied to ReLU(R) row-wise (reFlow-TopK, recipe placement: its effective recipe), else null. */
  topK: number | null;
  /** Top-k applied to ReLU(σ) per position (reFlow-TopK, signal placement), else null. */
  signalTopK: number | null;
  /** The signal hook name when the model has one (`unembed.hook_signals` or `hook_signals`). */
  signalsHook: string | null;
}

/**
 * Finds R, Φ and the shape facts of a reFlow model; a model without them is an error naming what is
 * missing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { reflowParts } from "./access.ts";
 * const { model } = tinyReflowModel();
 * const p = reflowParts(model);
 * assert.deepEqual([p.vocab, p.signals, p.dModel], [model.config.vocabSize, 8, 16]);
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export function reflowParts(model: CausalLM): ReflowParts {
  const params = model.parameters();
  const r = params.get(RECIPE_PARAM), phi = params.get(BASIS_PARAM);
  if (!r || !phi) {
    throw new Error(
      `not a reFlow model: parameters ${RECIPE_PARAM} and ${BASIS_PARAM} are required ` +
        `(embedding kind '${model.config.embedding?.kind ?? "standard"}')`,
    );
  }
  const spec = model.config.embedding as Record<string, unknown> | undefined;
  const topK = typeof spec?.topK === "number" ? spec.topK : null;
  const placement = spec?.sparsify === "signals" ? "signals" : "recipe";
  const sig = model.hookNames.find((h) => h === "unembed.hook_signals") ??
    model.hookNames.find((h) => h.endsWith("hook_signals")) ?? null;
  return {
    recipeVar: r,
    basis: phi as unknown as Tensor2D,
    vocab: r.shape[0],
    signals: r.shape[1] as number,
    dModel: phi.shape[1] as number,
    layers: model.config.nLayers,
    topK: topK !== null && placement === "recipe" ? topK : null,
    signalTopK: topK !== null && placement === "signals" ? topK : null,
    signalsHook: sig,
  };
}

/**
 * The effective recipe matrix [V, S]: R itself, or TopK_k(ReLU(R)) row-wise for reFlow-TopK with recipe
 * placement (what both ends of that model use). The caller disposes it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { recipeMatrix, reflowParts } from "./access.ts";
 * const { model } = tinyReflowModel();
 * const r = recipeMatrix(reflowParts(model));
 * assert.deepEqual(r.shape, [model.config.vocabSize, 8]);
 * r.dispose();
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export function recipeMatrix(parts: ReflowParts): Tensor2D {
  return tf.tidy(() => {
    const r = parts.recipeVar as unknown as Tensor2D;
    // The same sparsifier the model's forward uses, so recipe-space results match what it computes.
    return parts.topK === null ? tf.clone(r) : topKRows(r, parts.topK);
  });
}

/**
 * Host copy of the effective recipe, one Float32Array per row (for the recipe-space experiments).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { recipeRows, reflowParts } from "./access.ts";
 * const { model } = tinyReflowModel();
 * const rows = await recipeRows(reflowParts(model));
 * assert.equal(rows[0].length, 8);
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export async function recipeRows(parts: ReflowParts): Promise<Float32Array[]> {
  const r = recipeMatrix(parts);
  const data = await r.data() as Float32Array;
  r.dispose();
  const rows: Float32Array[] = [];
  for (let v = 0; v < parts.vocab; v++) rows.push(data.subarray(v * parts.signals, (v + 1) * parts.signals));
  return rows;
}

/**
 * Options shared by the word probes.
 *
 * @category reFlow
 */
export interface ProbeOptions {
  /** Prefix bare words with a space, as GPT-2 BPE spells words inside text (default true). */
  leadingSpace?: boolean;
}

/**
 * The single token id of a probe word, using its leading-space form (" king") unless the word already
 * starts with a space or `leadingSpace` is false. A word that is not one known token is an error that
 * says which word, what it encodes to and, when it helps, suggests the leading-space form.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { WordTokenizer } from "./word_tokenizer.ts";
 * import { probeToken } from "./access.ts";
 * const tok = new WordTokenizer(["king", "queen"]);
 * assert.equal(probeToken(tok, "queen"), tok.encode(" queen")[0]);
 * assert.throws(() => probeToken(tok, "kingdom"), /not a single token/);
 * ```
 *
 * @category reFlow
 */
export function probeToken(tokenizer: TextTokenizer, word: string, options: ProbeOptions = {}): number {
  const form = options.leadingSpace === false || word.startsWith(" ") ? word : ` ${word}`;
  const ids = tokenizer.encode(form, { addSpecialTokens: false });
  const unk = tokenizer.special.unk;
  if (ids.length === 1 && ids[0] !== unk) return ids[0];
  let hint = "";
  if (!form.startsWith(" ")) {
    const spaced = tokenizer.encode(` ${form}`, { addSpecialTokens: false });
    if (spaced.length === 1 && spaced[0] !== unk) {
      hint = `; its leading-space form ${JSON.stringify(` ${form}`)} is one token: use that`;
    }
  }
  if (!hint) {
    hint = form.startsWith(" ")
      ? '; probe words must be single tokens in their leading-space form (GPT-2 BPE spells words inside text as " word"): pick another word'
      : `; try the leading-space form ${JSON.stringify(` ${form}`)} or another word`;
  }
  const what = ids.length === 1 ? "the unknown token" : `${ids.length} tokens [${ids.join(", ")}]`;
  throw new Error(
    `probe word ${JSON.stringify(word)} is not a single token: ${
      JSON.stringify(form)
    } encodes to ${what}${hint}`,
  );
}

/**
 * Token ids of several probe words, in order; the error names every word that fails.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { WordTokenizer } from "./word_tokenizer.ts";
 * import { probeTokens } from "./access.ts";
 * const tok = new WordTokenizer(["king", "queen"]);
 * assert.deepEqual(probeTokens(tok, ["king", "queen"]), [1, 2]);
 * assert.throws(() => probeTokens(tok, ["duke", "earl"]), /"duke"[^]*"earl"/);
 * ```
 *
 * @category reFlow
 */
export function probeTokens(
  tokenizer: TextTokenizer,
  words: readonly string[],
  options: ProbeOptions = {},
): number[] {
  const errors: string[] = [];
  const ids = words.map((w) => {
    try {
      return probeToken(tokenizer, w, options);
    } catch (e) {
      errors.push((e as Error).message);
      return -1;
    }
  });
  if (errors.length) throw new Error(errors.join("\n"));
  return ids;
}

/**
 * Token ids of a prompt (no special tokens added); an empty prompt is an error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { WordTokenizer } from "./word_tokenizer.ts";
 * import { promptIds } from "./access.ts";
 * assert.deepEqual(promptIds(new WordTokenizer(["the", "king"]), "the king"), [1, 2]);
 * assert.throws(() => promptIds(new WordTokenizer(["a"]), " "), /no tokens/);
 * ```
 *
 * @category reFlow
 */
export function promptIds(tokenizer: TextTokenizer, text: string): number[] {
  const ids = tokenizer.encode(text, { addSpecialTokens: false });
  if (ids.length === 0) throw new Error(`prompt ${JSON.stringify(text)} encodes to no tokens`);
  return ids;
}

/**
 * The hook where "the residual stream after layer ℓ" lives: `blocks.ℓ.hook_resid_pre` for ℓ < L
 * (ℓ = 0 is the embedding output) and `blocks.{L−1}.hook_resid_post` for ℓ = L.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { residualHook } from "./access.ts";
 * assert.equal(residualHook(0, 4), "blocks.0.hook_resid_pre");
 * assert.equal(residualHook(4, 4), "blocks.3.hook_resid_post");
 * ```
 *
 * @category reFlow
 */
export function residualHook(layer: number, layers: number): string {
  if (!Number.isInteger(layer) || layer < 0 || layer > layers) {
    throw new Error(
      `layer ${layer} is not a residual index of this ${layers}-layer model (use 0..${layers})`,
    );
  }
  return layer < layers ? `blocks.${layer}.hook_resid_pre` : `blocks.${layers - 1}.hook_resid_post`;
}

/**
 * Runs the model on one prompt and returns the residual stream at the last position after every layer
 * 0..L, [L+1, d] (kept; the caller disposes). Hooks (e.g. an injection) apply during the run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { lastResiduals } from "./access.ts";
 * const { model } = tinyReflowModel();
 * const h = lastResiduals(model, [1, 2, 3]);
 * assert.deepEqual(h.shape, [3, 16]); // layers 0..2, d = 16
 * h.dispose();
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export function lastResiduals(model: CausalLM, ids: number[], hooks?: Hooks): Tensor2D {
  const L = model.config.nLayers;
  const names = Array.from({ length: L + 1 }, (_, l) => residualHook(l, L));
  const input = tf.tensor2d([ids], [1, ids.length], "int32");
  const r = model.forward(input, { capture: names, hooks });
  input.dispose();
  const acts = r.activations ?? new Map<string, Tensor>();
  const out = tf.tidy(() =>
    tf.stack(names.map((n) => tf.reshape(tf.slice(acts.get(n)!, [0, ids.length - 1, 0], [1, 1, -1]), [-1])))
  ) as Tensor2D;
  tf.dispose([r.logits, r.hidden, r.residual, ...acts.values()]);
  return out;
}

/**
 * σ = norm_f(h)·Φᵀ for residual states h [N, d] → [N, S], with the model's final norm.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { lastResiduals, reflowParts, signalsOf } from "./access.ts";
 * const { model } = tinyReflowModel();
 * const h = lastResiduals(model, [1, 2]);
 * const s = signalsOf(model, reflowParts(model), h);
 * assert.deepEqual(s.shape, [3, 8]);
 * s.dispose();
 * h.dispose();
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export function signalsOf(model: CausalLM, parts: ReflowParts, h: Tensor2D): Tensor2D {
  return tf.tidy(() => {
    const p = model.parameters();
    const c = model.config;
    const y = applyNorm(c.norm, h, p.get("ln_final.w")!, p.get("ln_final.b"), c.normEps);
    const sig = tf.matMul(y, parts.basis, false, true) as Tensor2D;
    return parts.signalTopK === null ? sig : topKRows(sig, parts.signalTopK);
  });
}

/**
 * Next-token probabilities from signals, softmax(σ·R̃ᵀ), [N, V] (the logit lens when σ comes from an
 * intermediate layer).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../deps.ts";
 * import { probsFromSignals } from "./access.ts";
 * await tf.setBackend("cpu");
 * const p = probsFromSignals(tf.tensor2d([[1, 0], [0, 1]]), tf.tensor2d([[5, 0]]));
 * assert.ok(p.dataSync()[0] > 0.99);
 * p.dispose();
 * ```
 *
 * @category reFlow
 */
export function probsFromSignals(recipe: Tensor2D, sig: Tensor2D): Tensor2D {
  return tf.tidy(() => tf.softmax(tf.matMul(sig, recipe, false, true)) as Tensor2D);
}

/**
 * Next-token probabilities at the last position of a prompt, [V] (host copy), with optional hooks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { nextTokenProbs } from "./access.ts";
 * const { model } = tinyReflowModel();
 * const p = nextTokenProbs(model, [1, 2]);
 * assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-4);
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export function nextTokenProbs(model: CausalLM, ids: number[], hooks?: Hooks): Float32Array {
  return tf.tidy(() => {
    const input = tf.tensor2d([ids], [1, ids.length], "int32");
    const r = model.forward(input, { hooks, lastOnly: true });
    if (r.activations) { for (const a of r.activations.values()) a.dispose(); }
    return tf.softmax(tf.reshape(r.logits, [-1])).dataSync() as Float32Array;
  });
}

/**
 * A hook map that adds `vector` [d] to the residual stream after layer ℓ at every position.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../deps.ts";
 * import { injectionHooks } from "./access.ts";
 * await tf.setBackend("cpu");
 * const v = tf.tensor1d([1, 2]);
 * assert.deepEqual(Object.keys(injectionHooks(1, 4, v)), ["blocks.1.hook_resid_pre"]);
 * v.dispose();
 * ```
 *
 * @category reFlow
 */
export function injectionHooks(layer: number, layers: number, vector: Tensor1D): Hooks {
  return { [residualHook(layer, layers)]: (x) => tf.add(x, vector) as Tensor3D };
}

/**
 * Greedy continuation (full recompute each step, so hooks apply to every position); `excluded` ids are
 * never chosen.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { greedyContinuation } from "./access.ts";
 * const { model, tokenizer } = tinyReflowModel();
 * const text = greedyContinuation(model, tokenizer, [1, 2], 2, undefined, tokenizer.vocabSize, [0]);
 * assert.equal(text.trim().split(" ").length, 2);
 * assert.ok(!text.includes("<unk>"));
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export function greedyContinuation(
  model: CausalLM,
  tokenizer: TextTokenizer,
  ids: number[],
  tokens: number,
  hooks?: Hooks,
  realVocab?: number,
  excluded: number[] = [],
): string {
  const seq = [...ids];
  const out: number[] = [];
  for (let i = 0; i < tokens && seq.length < model.config.maxPositions; i++) {
    const p = nextTokenProbs(model, seq, hooks);
    for (const x of excluded) p[x] = -Infinity;
    let best = 0;
    const limit = realVocab ?? p.length;
    for (let v = 1; v < limit; v++) if (p[v] > p[best]) best = v;
    seq.push(best);
    out.push(best);
  }
  return tokenizer.decode(out);
}

/**
 * Index of the largest entry among the first `limit` entries (the real vocabulary).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { argmax } from "./access.ts";
 * assert.equal(argmax([0.1, 0.7, 0.9], 2), 1); // only the first two entries count
 * ```
 *
 * @category reFlow
 */
export function argmax(values: ArrayLike<number>, limit = values.length): number {
  let best = 0;
  for (let i = 1; i < limit; i++) if (values[i] > values[best]) best = i;
  return best;
}

/**
 * 1-based rank of entry `index` among the first `limit` entries by descending value.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rankOf } from "./access.ts";
 * assert.equal(rankOf([0.1, 0.7, 0.5], 2), 2);
 * ```
 *
 * @category reFlow
 */
export function rankOf(values: ArrayLike<number>, index: number, limit = values.length): number {
  let r = 1;
  for (let i = 0; i < limit; i++) if (i !== index && values[i] > values[index]) r++;
  return r;
}

/**
 * The real (non-pad) vocabulary size: the ids the tokenizer can produce (50257 for GPT-2 BPE, whose
 * `vocabSize` is the padded 50304; a tokenizer may also say `realVocabSize`), capped by the model's rows. Rows past it are
 * pad rows that never saw a token and are excluded from every search (spec §7.1).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { realVocabSize, reflowParts } from "./access.ts";
 * const { model, tokenizer } = tinyReflowModel();
 * // The tiny model has two pad rows past its tokenizer.
 * assert.equal(realVocabSize(reflowParts(model), tokenizer), model.config.vocabSize - 2);
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export function realVocabSize(parts: ReflowParts, tokenizer: TextTokenizer, override?: number): number {
  // GPT-2 BPE reports the padded 50304 as its size and its realVocabSize (50257) as the ids it produces.
  const own = (tokenizer as { realVocabSize?: unknown }).realVocabSize;
  const produced = typeof own === "number" ? own : tokenizer.vocabSize;
  const v = override ?? Math.min(produced, parts.vocab);
  if (!Number.isInteger(v) || v < 2 || v > parts.vocab) {
    throw new Error(`realVocab must be an integer in 2..${parts.vocab}, got ${v}`);
  }
  return v;
}
