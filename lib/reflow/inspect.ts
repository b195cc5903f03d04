/**
 * Reading a reFlow model: its recipe and basis tensors, the implicit embedding E = R·Φ, signal
 * activations at every layer, and a parameter table with group subtotals (what `check` prints).
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Tensor2D, Tensor3D, Variable } from "../tensor_types.ts";
import { applyNorm } from "../nn/norm.ts";
import { decoderParameterSpecs } from "../models/params.ts";
import type { CausalLM, DecoderConfig } from "../models/types.ts";
import { reflowEmbeddingOptions, topKRows } from "./embedding.ts";

/**
 * The factorisation of a reFlow model: the live parameters (not copies) and its sparsifier settings.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../deps.ts";
 * import { createDecoder } from "../models/scratch.ts";
 * import { modelPreset } from "../models/presets.ts";
 * import { type ReflowWeights, reflowWeights } from "./inspect.ts";
 * import "./presets.ts";
 * await tf.setBackend("cpu");
 * const model = createDecoder(modelPreset("reflow-topk-tiny", { nLayers: 1, vocabSize: 20 }), { seed: 2 });
 * const w: ReflowWeights = reflowWeights(model);
 * assert.deepEqual([w.signals, w.topK, w.sparsify], [128, 8, "recipe"]);
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export interface ReflowWeights {
  /** R `[V, S]` (`embed.W_recipe`), the live variable. */
  recipe: Variable;
  /** Φ `[S, d]` (`embed.W_basis`), the live variable. */
  basis: Variable;
  /** Signal count S. */
  signals: number;
  /** Top-k of reFlow-TopK, when the model has one. */
  topK?: number;
  /** Where top-k acts. */
  sparsify: "recipe" | "signals";
}

/**
 * The recipe and basis of a reFlow model; a model without the `reflow` embedding is an error naming
 * its embedding kind.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../deps.ts";
 * import { createDecoder } from "../models/scratch.ts";
 * import { modelPreset } from "../models/presets.ts";
 * import { reflowWeights } from "./inspect.ts";
 * import "./presets.ts";
 * await tf.setBackend("cpu");
 * const model = createDecoder(modelPreset("reflow-tiny", { nLayers: 1, vocabSize: 50 }), { seed: 1 });
 * const w = reflowWeights(model);
 * assert.deepEqual([w.recipe.shape, w.basis.shape], [[50, 128], [128, 128]]);
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export function reflowWeights(model: CausalLM): ReflowWeights {
  const spec = model.config.embedding;
  if (spec?.kind !== "reflow") {
    throw new Error(
      `reflowWeights: this model's embedding is '${
        spec?.kind ?? "standard"
      }', not 'reflow' (no recipe or basis)`,
    );
  }
  const o = reflowEmbeddingOptions(spec);
  const params = model.parameters();
  return {
    recipe: params.get("embed.W_recipe")!,
    basis: params.get("embed.W_basis")!,
    signals: o.signals,
    topK: o.topK,
    sparsify: o.sparsify,
  };
}

/**
 * The recipe rows the model actually uses: R itself, or TopK(ReLU(R)) for reFlow-TopK with recipe
 * placement. A new tensor (the caller disposes it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../deps.ts";
 * import { createDecoder } from "../models/scratch.ts";
 * import { modelPreset } from "../models/presets.ts";
 * import { effectiveRecipe } from "./inspect.ts";
 * import "./presets.ts";
 * await tf.setBackend("cpu");
 * const model = createDecoder(modelPreset("reflow-topk-tiny", { nLayers: 1, vocabSize: 50 }), { seed: 1 });
 * const r = effectiveRecipe(model);
 * const nonZero = tf.sum(tf.cast(tf.notEqual(r, 0), "int32"), 1).dataSync();
 * assert.ok(Array.from(nonZero).every((n) => n <= 8));
 * r.dispose();
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export function effectiveRecipe(model: CausalLM): Tensor2D {
  const w = reflowWeights(model);
  return tf.tidy(() =>
    w.topK !== undefined && w.sparsify === "recipe"
      ? topKRows(w.recipe as Tensor2D, w.topK)
      : tf.clone(w.recipe) as Tensor2D
  );
}

/**
 * The implicit embedding matrix E = R̃·Φ `[V, d]` (input rows and output projection); a new tensor.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../deps.ts";
 * import { createDecoder } from "../models/scratch.ts";
 * import { modelPreset } from "../models/presets.ts";
 * import { embeddingMatrix } from "./inspect.ts";
 * import "./presets.ts";
 * await tf.setBackend("cpu");
 * const model = createDecoder(modelPreset("reflow-tiny", { nLayers: 1, vocabSize: 50 }), { seed: 1 });
 * const e = embeddingMatrix(model);
 * assert.deepEqual(e.shape, [50, 128]);
 * const std = tf.moments(e).variance.sqrt().dataSync()[0];
 * assert.ok(std > 0.015 && std < 0.025); // ≈ 0.02, like a nanoGPT embedding
 * e.dispose();
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export function embeddingMatrix(model: CausalLM): Tensor2D {
  const w = reflowWeights(model);
  return tf.tidy(() => {
    const r = effectiveRecipe(model);
    return tf.matMul(r, w.basis as Tensor2D);
  });
}

/**
 * One row of {@linkcode parameterTable}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { modelPreset } from "../models/presets.ts";
 * import { type ParameterRow, parameterTable } from "./inspect.ts";
 * import "./presets.ts";
 * const row: ParameterRow = parameterTable(modelPreset("reflow-tiny")).rows[0];
 * assert.deepEqual([row.name, row.group, row.count], ["embed.W_recipe", "recipe", 50304 * 128]);
 * ```
 *
 * @category reFlow
 */
export interface ParameterRow {
  /** Canonical name. */
  name: string;
  /** Shape. */
  shape: number[];
  /** Element count. */
  count: number;
  /** Its group: `recipe`, `basis`, `token table`, `positions`, `attention`, `mlp`, `norms`, `head`. */
  group: string;
}

/**
 * A config's parameters (from the declared shapes, nothing allocated), grouped, with subtotals and the
 * total.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { modelPreset } from "../models/presets.ts";
 * import { type ParameterTable, parameterTable } from "./inspect.ts";
 * import "./presets.ts";
 * const t: ParameterTable = parameterTable(modelPreset("reflow-gpt2-new"));
 * assert.equal(t.groups.reduce((a, g) => a + g.count, 0), t.total);
 * ```
 *
 * @category reFlow
 */
export interface ParameterTable {
  /** Every parameter, in declaration order. */
  rows: ParameterRow[];
  /** Subtotal per group, in first-seen order. */
  groups: { group: string; count: number }[];
  /** Total (equals `countParameters(config)`). */
  total: number;
}

/**
 * The parameter table of `config`, grouped for an inspector (`check`): recipe, basis, token table,
 * positions, attention, mlp, norms, head.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { modelPreset } from "../models/presets.ts";
 * import { parameterTable } from "./inspect.ts";
 * import "./presets.ts";
 * const t = parameterTable(modelPreset("reflow-1-big"));
 * assert.equal(t.total, 515_056_640);
 * assert.deepEqual(t.groups.slice(0, 2), [{ group: "recipe", count: 51_511_296 }, { group: "basis", count: 1_048_576 }]);
 * ```
 *
 * @category reFlow
 */
export function parameterTable(config: DecoderConfig): ParameterTable {
  const rows: ParameterRow[] = [];
  const sums = new Map<string, number>();
  let total = 0;
  for (const [name, { shape }] of decoderParameterSpecs(config)) {
    const count = shape.reduce((a, b) => a * b, 1);
    const group = groupOf(name);
    rows.push({ name, shape, count, group });
    sums.set(group, (sums.get(group) ?? 0) + count);
    total += count;
  }
  return { rows, groups: [...sums].map(([group, count]) => ({ group, count })), total };
}

function groupOf(name: string): string {
  if (name === "embed.W_recipe") return "recipe";
  if (name === "embed.W_basis") return "basis";
  if (name.startsWith("embed.")) return "token table";
  if (name.startsWith("pos_embed.")) return "positions";
  if (name.startsWith("unembed.")) return "head";
  if (/\.ln\d\.|^ln_final\./.test(name)) return "norms";
  if (name.includes(".attn.")) return "attention";
  if (name.includes(".mlp.")) return "mlp";
  return "other";
}

/**
 * Signal activations read at intermediate layers (a logit lens in signal space): for each layer l, the
 * residual stream after block l through the final norm and Φᵀ, `[B, T, S]` — what `unembed.hook_signals`
 * would hold if the model stopped after block l. The last layer's equals `unembed.hook_signals` (dense
 * models; reFlow-TopK on σ sparsifies only the real output). New tensors, by layer; the caller disposes
 * them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../deps.ts";
 * import { createDecoder } from "../models/scratch.ts";
 * import { modelPreset } from "../models/presets.ts";
 * import { layerSignals } from "./inspect.ts";
 * import "./presets.ts";
 * await tf.setBackend("cpu");
 * const model = createDecoder(modelPreset("reflow-tiny", { nLayers: 2, vocabSize: 30 }), { seed: 3 });
 * const ids = tf.tensor2d([[1, 2, 3]], [1, 3], "int32");
 * const sig = layerSignals(model, ids);
 * assert.deepEqual([...sig.keys()], [0, 1]);
 * const out = model.forward(ids, { capture: ["unembed.hook_signals"] });
 * const last = out.activations!.get("unembed.hook_signals")!;
 * assert.ok(tf.max(tf.abs(tf.sub(sig.get(1)!, last))).dataSync()[0] < 1e-5);
 * tf.dispose([ids, ...sig.values(), out.logits, out.hidden, out.residual, last]);
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export function layerSignals(model: CausalLM, ids: Tensor2D, layers?: number[]): Map<number, Tensor3D> {
  const w = reflowWeights(model);
  const c = model.config;
  const which = layers ?? Array.from({ length: c.nLayers }, (_, l) => l);
  for (const l of which) {
    if (!Number.isInteger(l) || l < 0 || l >= c.nLayers) {
      throw new Error(`layerSignals: ${l} is not a layer of this ${c.nLayers}-layer model`);
    }
  }
  const names = which.map((l) => `blocks.${l}.hook_resid_post`);
  const out = model.forward(ids, { capture: names });
  const params = model.parameters();
  const lnW = params.get("ln_final.w")!, lnB = params.get("ln_final.b");
  const result = new Map<number, Tensor3D>();
  try {
    which.forEach((l, i) => {
      const resid = out.activations!.get(names[i]) as Tensor3D;
      result.set(
        l,
        tf.tidy(() => {
          const [b, t, d] = resid.shape;
          const y = applyNorm(c.norm, resid, lnW, lnB, c.normEps);
          return tf.reshape(tf.matMul(tf.reshape(y, [b * t, d]), w.basis, false, true), [
            b,
            t,
            -1,
          ]) as Tensor3D;
        }),
      );
    });
  } finally {
    tf.dispose([out.logits, out.hidden, out.residual, ...(out.activations?.values() ?? [])]);
  }
  return result;
}
