/**
 * Canonical parameter names and shapes of the generic decoder (TransformerLens-style names, `[in, out]`
 * matrices). Loaders map checkpoint names onto these; `createDecoder` initialises them.
 *
 * @module
 */
import type { DecoderConfig } from "./types.ts";
import { embeddingKind, embeddingSpec, layerMixers, mixerKind, type ParameterSpec } from "./components.ts";
import "./standard_components.ts";

/**
 * Every parameter of a decoder built from `config`, with its shape and initialiser, derived from the
 * component declarations: the embedding's input-side parameters, then per block `ln1`, the layer's mixer
 * (standard attention: `attn.W_Q [d, H*hd]`, `attn.W_K`, `attn.W_V [d, Hkv*hd]`, `attn.W_O [H*hd, d]` and
 * their `b_*`), `ln2`, `mlp.W_in [d, F]`, `mlp.W_gate [d, F]` (SwiGLU), `mlp.W_out [F, d]` and their
 * biases; then `ln_final` and the embedding's output-side (`unembed.*`) parameters. Nothing is allocated.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decoderParameterSpecs } from "./params.ts";
 * import { gpt2SmallConfig } from "./scratch.ts";
 * const specs = decoderParameterSpecs(gpt2SmallConfig({ nLayers: 1 }));
 * assert.deepEqual(specs.get("blocks.0.attn.W_O"), { shape: [768, 768], init: "residual" });
 * ```
 *
 * @category Models
 */
export function decoderParameterSpecs(config: DecoderConfig): Map<string, ParameterSpec> {
  validateDecoderConfig(config);
  const embSpec = embeddingSpec(config);
  const emb = embeddingKind(embSpec.kind).parameters(embSpec, config);
  const mixers = layerMixers(config);
  const { dModel: d, dMlp: f } = config;
  const s = new Map<string, ParameterSpec>();
  const add = (name: string, spec: ParameterSpec) => {
    if (s.has(name)) throw new Error(`decoder parameters: '${name}' is declared twice`);
    s.set(name, spec);
  };
  for (const [n, p] of emb) if (!n.startsWith("unembed.")) add(n, p);
  const norm = (prefix: string) => {
    add(`${prefix}.w`, { shape: [d], init: "ones" });
    if (config.normBias) add(`${prefix}.b`, { shape: [d], init: "zeros" });
  };
  for (let l = 0; l < config.nLayers; l++) {
    const p = `blocks.${l}`;
    norm(`${p}.ln1`);
    for (const [n, spec] of mixerKind(mixers[l].kind).parameters(mixers[l], config, l)) add(n, spec);
    norm(`${p}.ln2`);
    if (config.mlp === "swiglu") add(`${p}.mlp.W_gate`, { shape: [d, f], init: "normal" });
    add(`${p}.mlp.W_in`, { shape: [d, f], init: "normal" });
    if (config.mlpBias && config.mlp === "swiglu") add(`${p}.mlp.b_gate`, { shape: [f], init: "zeros" });
    if (config.mlpBias) add(`${p}.mlp.b_in`, { shape: [f], init: "zeros" });
    add(`${p}.mlp.W_out`, { shape: [f, d], init: "residual" });
    if (config.mlpBias) add(`${p}.mlp.b_out`, { shape: [d], init: "zeros" });
  }
  norm("ln_final");
  for (const [n, p] of emb) if (n.startsWith("unembed.")) add(n, p);
  return s;
}

/**
 * Every parameter's shape, in the order of {@linkcode decoderParameterSpecs}: what loaders check
 * checkpoints against.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decoderParameterShapes } from "./params.ts";
 * import { gpt2SmallConfig } from "./scratch.ts";
 * const shapes = decoderParameterShapes(gpt2SmallConfig({ nLayers: 1 }));
 * assert.deepEqual(shapes.get("blocks.0.attn.W_Q"), [768, 768]);
 * ```
 *
 * @category Models
 */
export function decoderParameterShapes(config: DecoderConfig): Map<string, number[]> {
  return new Map([...decoderParameterSpecs(config)].map(([n, p]) => [n, p.shape]));
}

/**
 * The exact number of parameter values of any decoder variant: the sum of the declared shapes, computed
 * without allocating a tensor (so 500M-parameter configs cost microseconds).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { countParameters } from "./params.ts";
 * import { gpt2SmallConfig } from "./scratch.ts";
 * assert.equal(countParameters(gpt2SmallConfig()), 124_439_808);
 * ```
 *
 * @category Models
 */
export function countParameters(config: DecoderConfig): number {
  let n = 0;
  for (const p of decoderParameterSpecs(config).values()) n += p.shape.reduce((a, b) => a * b, 1);
  return n;
}

/**
 * The hook names a decoder built from `config` fires, in execution order, derived from the component
 * declarations (the one place the list is built).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decoderHookNames } from "./params.ts";
 * import { gpt2NewConfig } from "./scratch.ts";
 * const names = decoderHookNames(gpt2NewConfig({ nLayers: 2, dModel: 64, nHeads: 4 }));
 * assert.equal(names[0], "hook_embed");
 * assert.ok(names.includes("blocks.1.attn.hook_rot_q"));
 * assert.equal(names.at(-1), "ln_final.hook_normalized");
 * ```
 *
 * @category Models
 */
export function decoderHookNames(config: DecoderConfig): string[] {
  const embSpec = embeddingSpec(config);
  // Output-side hooks of the embedding (`unembed.*`) fire after the final norm, so they are listed last.
  const embHooks = embeddingKind(embSpec.kind).hookNames(embSpec, config);
  const names = embHooks.filter((n) => !n.startsWith("unembed."));
  const mixers = layerMixers(config);
  for (let l = 0; l < config.nLayers; l++) {
    const p = `blocks.${l}`;
    names.push(`${p}.hook_resid_pre`, `${p}.ln1.hook_normalized`);
    for (const h of mixerKind(mixers[l].kind).hookPoints(mixers[l], config, l)) names.push(`${p}.attn.${h}`);
    names.push(`${p}.hook_attn_out`);
    if (!config.parallelResidual) names.push(`${p}.hook_resid_mid`);
    names.push(`${p}.ln2.hook_normalized`, `${p}.mlp.hook_pre`);
    if (config.mlp === "swiglu") names.push(`${p}.mlp.hook_pre_linear`);
    names.push(`${p}.mlp.hook_post`, `${p}.hook_mlp_out`, `${p}.hook_resid_post`);
  }
  names.push("ln_final.hook_normalized", ...embHooks.filter((n) => n.startsWith("unembed.")));
  return names;
}

/**
 * Checks a DecoderConfig for missing or inconsistent fields and throws an error naming the field.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { validateDecoderConfig } from "./params.ts";
 * import { gpt2SmallConfig } from "./scratch.ts";
 * validateDecoderConfig(gpt2SmallConfig()); // passes silently
 * assert.throws(() => validateDecoderConfig(gpt2SmallConfig({ nHeads: 12, nKvHeads: 5 })), /nKvHeads/);
 * ```
 *
 * @category Models
 */
export function validateDecoderConfig(c: DecoderConfig): void {
  const bad = (field: string, why: string): never => {
    throw new Error(`DecoderConfig.${field}: ${why}`);
  };
  for (
    const k of [
      "vocabSize",
      "dModel",
      "nLayers",
      "nHeads",
      "nKvHeads",
      "headDim",
      "dMlp",
      "maxPositions",
    ] as const
  ) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) bad(k, `must be a positive integer, got ${c[k]}`);
  }
  if (c.nHeads % c.nKvHeads !== 0) {
    bad("nKvHeads", `nHeads (${c.nHeads}) must be a multiple of nKvHeads (${c.nKvHeads})`);
  }
  if (c.norm !== "layernorm" && c.norm !== "rmsnorm") {
    bad("norm", `must be "layernorm" or "rmsnorm", got ${c.norm}`);
  }
  if (c.norm === "rmsnorm" && c.normBias) bad("normBias", "RMSNorm has no bias; set normBias: false");
  if (!(c.normEps > 0)) bad("normEps", `must be > 0, got ${c.normEps}`);
  if (!["gelu", "gelu_new", "gelu_tanh", "relu", "swiglu"].includes(c.mlp)) {
    bad("mlp", `unknown '${c.mlp}' (use gelu, gelu_new, gelu_tanh, relu or swiglu)`);
  }
  if (c.positional !== "learned" && c.positional !== "rotary") {
    bad("positional", `must be "learned" or "rotary", got ${c.positional}`);
  }
  if (c.positional === "rotary") {
    const rd = c.rotaryDim ?? c.headDim;
    if (!Number.isInteger(rd) || rd <= 0 || rd % 2 || rd > c.headDim) {
      bad("rotaryDim", `must be an even integer in (0, headDim=${c.headDim}], got ${rd}`);
    }
    if (c.ropeTheta !== undefined && !(c.ropeTheta > 0)) bad("ropeTheta", `must be > 0, got ${c.ropeTheta}`);
    if (c.ropeScaling && !(c.ropeScaling.factor > 0)) bad("ropeScaling", "factor must be > 0");
  }
  if (c.dropout !== undefined && !(c.dropout >= 0 && c.dropout < 1)) {
    bad("dropout", `must be in [0, 1), got ${c.dropout}`);
  }
}
