/**
 * The five reFlow model variants as {@linkcode DecoderConfig} data (spec §1.3–1.4): `reflow` (factorised
 * tied embedding, RMSNorm, RoPE, SwiGLU, no biases), `reflow-topk` (the same with ReLU + top-k recipe
 * rows), `reflow-lite` (grouped-query attention), and the two baselines `gpt2` (nanoGPT form) and
 * `gpt2-new` (RMSNorm, RoPE, SwiGLU, tied table). Each is built from the library's blocks; only the
 * embedding is new.
 *
 * @module
 */
import { checkChoice, checkOptionKeys } from "../options.ts";
import { gpt2NewConfig, gpt2SmallConfig, swigluHidden } from "../models/scratch.ts";
import type { DecoderConfig } from "../models/types.ts";
import { reflowEmbeddingOptions, type SparsifyPlacement } from "./embedding.ts";

/**
 * A reFlow model file name (upstream `models/<variant>.py`, the checkpoint's `model_config`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ReflowVariant, reflowVariantConfig } from "./variants.ts";
 * const v: ReflowVariant = "reflow-lite";
 * assert.equal(reflowVariantConfig(v).embedding?.kind, "reflow");
 * ```
 *
 * @category reFlow
 */
export type ReflowVariant = "reflow" | "reflow-topk" | "reflow-lite" | "gpt2" | "gpt2-new";

/**
 * Every {@linkcode ReflowVariant}, in the order of the seed README.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { REFLOW_VARIANTS } from "./variants.ts";
 * assert.equal(REFLOW_VARIANTS.length, 5);
 * ```
 *
 * @category reFlow
 */
export const REFLOW_VARIANTS: readonly ReflowVariant[] = [
  "reflow",
  "reflow-topk",
  "reflow-lite",
  "gpt2",
  "gpt2-new",
];

/**
 * Sizes and switches of a variant; every field is optional (defaults: the 36-layer, d = 1024 model of the
 * spec, S = d, 64-wide heads, V = 50304, 1024 positions).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reflowVariantConfig, type ReflowVariantOptions } from "./variants.ts";
 * const o: ReflowVariantOptions = { nLayers: 2, dModel: 64, nSignals: 32 };
 * assert.equal(reflowVariantConfig("reflow", o).embedding?.signals, 32);
 * ```
 *
 * @category reFlow
 */
export interface ReflowVariantOptions {
  /** Blocks L. */
  nLayers?: number;
  /** Residual width d. */
  dModel?: number;
  /** Signal count S (reFlow variants only); default d. */
  nSignals?: number;
  /** Query heads H; default d / 64. */
  nHeads?: number;
  /** Key/value heads; default H (H / 4 for `reflow-lite`). */
  nKvHeads?: number;
  /** MLP hidden width; default 4d for `gpt2`, else 256·ceil(8d/3/256). */
  dMlp?: number;
  /** Top-k of `reflow-topk`; default 64. */
  topK?: number;
  /** Where top-k acts (`reflow-topk`); default "recipe". */
  sparsify?: SparsifyPlacement;
  /** Vocabulary V; default 50304 (GPT-2 BPE padded to a multiple of 64). */
  vocabSize?: number;
  /** Context T_max; default 1024. */
  maxPositions?: number;
  /** Norm epsilon; default 1e-5. */
  normEps?: number;
  /** Dropout (training only); default 0. */
  dropout?: number;
  /** Std of R at init (reFlow variants); default 0.02. */
  recipeStd?: number;
  /** Std of Φ at init (reFlow variants); default 1/√S. */
  basisStd?: number;
}

const VARIANT_OPTION_KEYS: readonly (keyof ReflowVariantOptions)[] = [
  "nLayers",
  "dModel",
  "nSignals",
  "nHeads",
  "nKvHeads",
  "dMlp",
  "topK",
  "sparsify",
  "vocabSize",
  "maxPositions",
  "normEps",
  "dropout",
  "recipeStd",
  "basisStd",
];

/**
 * The padded GPT-2 vocabulary of every reFlow config (50257 real tokens + 47 pad rows).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { REFLOW_VOCAB_SIZE } from "./variants.ts";
 * assert.equal(REFLOW_VOCAB_SIZE % 64, 0);
 * ```
 *
 * @category reFlow
 */
export const REFLOW_VOCAB_SIZE = 50304;

/**
 * The config of a reFlow variant. Unknown variants and option keys are refused with a did-you-mean;
 * S, k and the head counts are checked. `reflow-topk` keeps k = 64 unless `topK` says otherwise;
 * `reflow-lite` uses H_kv = H / 4 and F = 256·ceil(8d/3/256) (spec §1.4, count-equivalent readings).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { countParameters } from "../models/params.ts";
 * import { reflowVariantConfig } from "./variants.ts";
 * assert.equal(countParameters(reflowVariantConfig("reflow", { nLayers: 36 })), 515_056_640);
 * assert.equal(reflowVariantConfig("reflow-lite").nKvHeads, 4);
 * assert.throws(() => reflowVariantConfig("reflow-topc"), /did you mean reflow-topk/);
 * assert.throws(() => reflowVariantConfig("reflow", { nSignal: 8 } as never), /did you mean nSignals/);
 * assert.throws(() => reflowVariantConfig("reflow-lite", { dModel: 384, nHeads: 6 }), /set nKvHeads/);
 * ```
 *
 * @category reFlow
 */
export function reflowVariantConfig(variant: string, options: ReflowVariantOptions = {}): DecoderConfig {
  const v = checkChoice(variant, REFLOW_VARIANTS, "reFlow variant");
  checkOptionKeys(options, VARIANT_OPTION_KEYS, `reFlow variant '${v}'`);
  const isReflow = v.startsWith("reflow");
  const only = (key: keyof ReflowVariantOptions, ok: boolean, why: string): void => {
    if (options[key] !== undefined && !ok) throw new Error(`reFlow variant '${v}': option ${key} ${why}`);
  };
  only("nSignals", isReflow, "applies to the reFlow variants only (the baselines have no signal basis)");
  only("recipeStd", isReflow, "applies to the reFlow variants only");
  only("basisStd", isReflow, "applies to the reFlow variants only");
  only("topK", v === "reflow-topk", "applies to reflow-topk only");
  only("sparsify", v === "reflow-topk", "applies to reflow-topk only");
  const dModel = options.dModel ?? 1024;
  const nHeads = options.nHeads ?? Math.max(1, Math.round(dModel / 64));
  if (!Number.isInteger(dModel) || dModel < 1 || dModel % nHeads !== 0) {
    // A head count the caller did not give: say where it came from and which values fit.
    throw new Error(
      options.nHeads === undefined && Number.isInteger(dModel) && dModel > 0
        ? `reFlow variant '${v}': nHeads defaults to round(dModel / 64) = ${nHeads}, which does not divide ` +
          `dModel ${dModel}: set nHeads (e.g. ${divisors(dModel).slice(0, 5).join(", ")})`
        : `reFlow variant '${v}': dModel ${dModel} must be a positive multiple of nHeads ${nHeads}`,
    );
  }
  const nKvHeads = options.nKvHeads ?? (v === "reflow-lite" ? Math.max(1, nHeads / 4) : nHeads);
  if (!Number.isInteger(nKvHeads) || nKvHeads < 1 || nHeads % nKvHeads !== 0) {
    throw new Error(
      options.nKvHeads === undefined && Number.isInteger(nHeads) && nHeads > 0
        ? `reFlow variant '${v}': the default nKvHeads = nHeads / 4 = ${nKvHeads} is not a whole number: ` +
          `set nKvHeads to a divisor of ${nHeads} (${divisors(nHeads).join(", ")})`
        : `reFlow variant '${v}': nKvHeads ${nKvHeads} must divide nHeads ${nHeads} (grouped-query attention)`,
    );
  }
  const common: Partial<DecoderConfig> = {
    family: "reflow",
    vocabSize: options.vocabSize ?? REFLOW_VOCAB_SIZE,
    nLayers: options.nLayers ?? 36,
    maxPositions: options.maxPositions ?? 1024,
    normEps: options.normEps ?? 1e-5,
    dropout: options.dropout ?? 0,
    dModel,
    nHeads,
    nKvHeads,
  };
  if (v === "gpt2") {
    // nanoGPT's GPT with bias=False: LayerNorm weight only, exact-erf GELU (nn.GELU()), learned positions.
    return gpt2SmallConfig({
      ...common,
      dMlp: options.dMlp ?? 4 * dModel,
      mlp: "gelu",
      qkvBias: false,
      attnOutBias: false,
      mlpBias: false,
      normBias: false,
      tieEmbeddings: true,
    });
  }
  const config = gpt2NewConfig({ ...common, dMlp: options.dMlp ?? swigluHidden(dModel) });
  if (!isReflow) return config;
  const embedding: Record<string, unknown> = { kind: "reflow", signals: options.nSignals ?? dModel };
  if (options.recipeStd !== undefined) embedding.recipeStd = options.recipeStd;
  if (options.basisStd !== undefined) embedding.basisStd = options.basisStd;
  if (v === "reflow-topk") {
    embedding.topK = options.topK ?? 64;
    if (options.sparsify !== undefined) embedding.sparsify = options.sparsify;
  }
  config.embedding = { kind: "reflow", ...embedding };
  reflowEmbeddingOptions(config.embedding); // S and k ranges, with messages naming the field
  return config;
}

/** The divisors of a positive integer n, ascending (for messages that suggest a head count). */
function divisors(n: number): number[] {
  const out: number[] = [];
  for (let i = 1; i <= n && out.length < 12; i++) if (n % i === 0) out.push(i);
  return out;
}

/**
 * The variant a config describes: the inverse of {@linkcode reflowVariantConfig}, read from its
 * embedding, attention and MLP fields (what a checkpoint's `model_config` would say).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reflowVariantConfig, reflowVariantOf } from "./variants.ts";
 * for (const v of ["reflow", "reflow-topk", "reflow-lite", "gpt2", "gpt2-new"] as const) {
 *   assert.equal(reflowVariantOf(reflowVariantConfig(v)), v);
 * }
 * ```
 *
 * @category reFlow
 */
export function reflowVariantOf(config: DecoderConfig): ReflowVariant {
  if (config.embedding?.kind === "reflow") {
    if (config.embedding.topK !== undefined) return "reflow-topk";
    return config.nKvHeads < config.nHeads ? "reflow-lite" : "reflow";
  }
  return config.positional === "learned" ? "gpt2" : "gpt2-new";
}
