/**
 * The reFlow model presets, registered in the library's preset registry on import (so a training config's
 * `model.preset` and {@linkcode modelPreset} both see them): the seven configs of the seed README with
 * their exact parameter counts (spec §1.5), and small CPU-trainable presets of the same proportions.
 *
 * @module
 */
import { registerPreset } from "../models/presets.ts";
import { DECODER_CONFIG_FIELDS, type DecoderConfig } from "../models/types.ts";
import { checkOptionKeys } from "../options.ts";
import { type ReflowVariant, reflowVariantConfig, type ReflowVariantOptions } from "./variants.ts";

/**
 * One reFlow preset: its variant and sizes, and the total parameter count the spec gives (when it is one
 * of the seven upstream configs).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { REFLOW_PRESETS, type ReflowPresetInfo } from "./presets.ts";
 * const big: ReflowPresetInfo = REFLOW_PRESETS.find((p) => p.name === "reflow-1-big")!;
 * assert.equal(big.expectedParameters, 515_056_640);
 * ```
 *
 * @category reFlow
 */
export interface ReflowPresetInfo {
  /** The registered preset name. */
  name: string;
  /** The model file it uses. */
  variant: ReflowVariant;
  /** Its sizes. */
  options: ReflowVariantOptions;
  /** Upstream config file it mirrors (`config/train_*.py`), for the seven released configs. */
  upstream?: string;
  /** The exact total of spec §1.5 (upstream configs only). */
  expectedParameters?: number;
  /** One line for listings. */
  description: string;
}

/**
 * The reFlow presets: the seven upstream configs (36/32/6 layers, d 1024/512), then the small ones
 * (`-tiny`: 4 layers, d 128; `-mini`: 6 layers, d 256; S = d and k = S/16 as in the big configs).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { REFLOW_PRESETS } from "./presets.ts";
 * assert.deepEqual(REFLOW_PRESETS.filter((p) => p.upstream).map((p) => p.name), [
 *   "reflow-1-small", "reflow-1", "reflow-1-big", "reflow-1-topk-big", "reflow-1-lite", "reflow-gpt2", "reflow-gpt2-new",
 * ]);
 * ```
 *
 * @category reFlow
 */
export const REFLOW_PRESETS: readonly ReflowPresetInfo[] = [
  {
    name: "reflow-1-small",
    variant: "reflow",
    options: { nLayers: 6, dModel: 512, nSignals: 512, nHeads: 8 },
    upstream: "train_reflow_1_small.py",
    expectedParameters: 46_471_680,
    description: "reFlow-1-Small (46.47M): 6 layers, d 512, S 512",
  },
  {
    name: "reflow-1",
    variant: "reflow",
    options: { nLayers: 32, dModel: 1024, nSignals: 1024, nHeads: 16 },
    upstream: "train_reflow_1.py",
    expectedParameters: 463_668_224,
    description: "reFlow-1 (463.67M): 32 layers, d 1024, S 1024 (trained with a constant lr)",
  },
  {
    name: "reflow-1-big",
    variant: "reflow",
    options: { nLayers: 36, dModel: 1024, nSignals: 1024, nHeads: 16 },
    upstream: "train_reflow_1_big.py",
    expectedParameters: 515_056_640,
    description: "reFlow-1-Big (515.06M): 36 layers, d 1024, S 1024 (lr decay)",
  },
  {
    name: "reflow-1-topk-big",
    variant: "reflow-topk",
    options: { nLayers: 36, dModel: 1024, nSignals: 1024, nHeads: 16, topK: 64 },
    upstream: "train_reflow_1_topk_big.py",
    expectedParameters: 515_056_640,
    description: "reFlow-1-TopK-Big (515.06M): Big with ReLU + top-64 recipe rows",
  },
  {
    name: "reflow-1-lite",
    variant: "reflow-lite",
    options: { nLayers: 32, dModel: 1024, nSignals: 1024, nHeads: 16, nKvHeads: 4, dMlp: 2816 },
    upstream: "train_reflow_1_lite.py",
    expectedParameters: 413_336_576,
    description: "reFlow-1-Lite (413.34M): 32 layers, GQA 16/4 heads, F 2816",
  },
  {
    name: "reflow-gpt2",
    variant: "gpt2",
    options: { nLayers: 36, dModel: 1024, nHeads: 16 },
    upstream: "train_gpt2.py",
    expectedParameters: 505_619_456,
    description: "GPT-2 baseline (505.62M, nanoGPT form): bias-free LayerNorm, GELU, learned positions, tied",
  },
  {
    name: "reflow-gpt2-new",
    variant: "gpt2-new",
    options: { nLayers: 36, dModel: 1024, nHeads: 16 },
    upstream: "train_gpt2_new.py",
    expectedParameters: 514_008_064,
    description: "GPT-2-New baseline (514.01M): RMSNorm, RoPE, SwiGLU, tied table",
  },
  ...smallPresets("tiny", { nLayers: 4, dModel: 128, nSignals: 128, nHeads: 2 }, { nHeads: 4, nKvHeads: 1 }),
  ...smallPresets("mini", { nLayers: 6, dModel: 256, nSignals: 256, nHeads: 4 }, { nKvHeads: 1 }),
];

/** The five variants at one small size (k = S/16 like 64 of 1024; Lite gets four query heads per kv head). */
function smallPresets(
  size: string,
  o: ReflowVariantOptions,
  lite: ReflowVariantOptions,
): ReflowPresetInfo[] {
  const s = `${o.nLayers} layers, d ${o.dModel}`;
  const base = { nLayers: o.nLayers, dModel: o.dModel, nHeads: o.nHeads };
  return [
    { name: `reflow-${size}`, variant: "reflow", options: o, description: `reFlow, ${s}, S ${o.nSignals}` },
    {
      name: `reflow-topk-${size}`,
      variant: "reflow-topk",
      options: { ...o, topK: o.nSignals! / 16 },
      description: `reFlow-TopK, ${s}, S ${o.nSignals}, k ${o.nSignals! / 16}`,
    },
    {
      name: `reflow-lite-${size}`,
      variant: "reflow-lite",
      options: { ...o, ...lite },
      description: `reFlow-Lite, ${s}, S ${o.nSignals}, GQA`,
    },
    {
      name: `reflow-gpt2-${size}`,
      variant: "gpt2",
      options: base,
      description: `GPT-2 baseline (nanoGPT), ${s}`,
    },
    {
      name: `reflow-gpt2-new-${size}`,
      variant: "gpt2-new",
      options: base,
      description: `GPT-2-New baseline, ${s}`,
    },
  ];
}

/** DecoderConfig fields that map onto variant options (so derived widths follow them). */
const SIZE_FIELDS = [
  "nLayers",
  "dModel",
  "nHeads",
  "nKvHeads",
  "dMlp",
  "vocabSize",
  "maxPositions",
  "normEps",
  "dropout",
] as const;

/** Variant options that are not DecoderConfig fields: as preset overrides they go in `embedding`. */
const EMBEDDING_OPTIONS: Record<string, string> = {
  nSignals: "signals",
  topK: "topK",
  sparsify: "sparsify",
  recipeStd: "recipeStd",
  basisStd: "basisStd",
};

/**
 * The config of a reFlow preset with DecoderConfig `overrides`: size fields (`nLayers`, `dModel`,
 * `nHeads`, ...) go through the variant so that head width, F and S follow `dModel` unless given, and an
 * `embedding` override is merged into the preset's (e.g. `{ embedding: { signals: 64 } }`). A new S, from
 * `dModel` or `embedding.signals`, scales a reflow-topk preset's k with it unless `embedding.topK` is given.
 * A key that is not a DecoderConfig field is refused with a did-you-mean (a variant option such as
 * `nSignals` with the `embedding` form to write instead), never ignored.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reflowPresetConfig, REFLOW_PRESETS } from "./presets.ts";
 * const tiny = REFLOW_PRESETS.find((p) => p.name === "reflow-tiny")!;
 * const c = reflowPresetConfig(tiny, { dModel: 64, nHeads: 2 });
 * assert.deepEqual([c.dMlp, c.embedding?.signals], [256, 64]);
 * assert.throws(() => reflowPresetConfig(tiny, { nSignals: 32 } as never), /embedding: \{ signals: 32 \}/);
 * ```
 *
 * @category reFlow
 */
export function reflowPresetConfig(
  preset: ReflowPresetInfo,
  overrides: Partial<DecoderConfig> = {},
): DecoderConfig {
  const where = `model preset '${preset.name}'`;
  for (const [k, v] of Object.entries(overrides ?? {})) {
    if (k in EMBEDDING_OPTIONS) {
      throw new Error(
        `${where}: ${k} is a reFlow variant option, not a DecoderConfig field; override it as ` +
          `embedding: { ${EMBEDDING_OPTIONS[k]}: ${JSON.stringify(v)} }`,
      );
    }
  }
  checkOptionKeys(overrides, Object.keys(DECODER_CONFIG_FIELDS), where);
  const opts: ReflowVariantOptions = { ...preset.options };
  const rest: Partial<DecoderConfig> = { ...overrides };
  for (const k of SIZE_FIELDS) {
    if (overrides[k] !== undefined) {
      (opts as Record<string, unknown>)[k] = overrides[k];
      delete rest[k];
    }
  }
  if (overrides.dModel !== undefined) {
    // Widths that follow d unless overridden: S = d, heads of 64 (at least 1), F and H_kv from the variant.
    if (preset.options.nSignals !== undefined) opts.nSignals = overrides.dModel;
    if (overrides.nHeads === undefined) opts.nHeads = Math.max(1, Math.round(overrides.dModel / 64));
    if (overrides.dMlp === undefined) delete opts.dMlp;
    if (overrides.nKvHeads === undefined && preset.variant !== "reflow-lite") delete opts.nKvHeads;
  }
  if (opts.nHeads !== preset.options.nHeads && overrides.nKvHeads === undefined) {
    delete opts.nKvHeads; // the variant's own default (H, or H / 4 for Lite)
  }
  const emb = rest.embedding as Record<string, unknown> | undefined;
  if (
    preset.options.nSignals !== undefined && emb?.signals !== undefined &&
    (emb.kind === undefined || emb.kind === "reflow")
  ) {
    // S given in the embedding: the variant sees it, so k follows it as it follows a dModel override.
    opts.nSignals = emb.signals as number;
    if (emb.topK !== undefined && preset.variant === "reflow-topk") opts.topK = emb.topK as number;
  }
  if (
    preset.variant === "reflow-topk" && opts.nSignals !== preset.options.nSignals &&
    opts.topK !== undefined &&
    emb?.topK === undefined
  ) {
    opts.topK = Math.max(1, Math.round(opts.topK * opts.nSignals! / preset.options.nSignals!));
  }
  const base = reflowVariantConfig(preset.variant, opts);
  const { embedding, ...others } = rest;
  const config: DecoderConfig = { ...base, ...others };
  if (embedding !== undefined) {
    if (base.embedding === undefined && embedding.kind === undefined) {
      throw new Error(
        `model preset '${preset.name}': embedding overrides need a kind (this baseline has a plain table)`,
      );
    }
    config.embedding = { ...(base.embedding ?? {}), ...embedding } as DecoderConfig["embedding"];
  }
  return config;
}

for (const p of REFLOW_PRESETS) {
  registerPreset(p.name, { description: p.description, make: (o) => reflowPresetConfig(p, o) });
}
