/**
 * Canonical parameter names and shapes of the generic decoder (TransformerLens-style names, `[in, out]`
 * matrices). Loaders map checkpoint names onto these; `createDecoder` initialises them.
 *
 * @module
 */
import type { DecoderConfig } from "./types.ts";

/**
 * Every parameter of a decoder built from `config`, in a stable order, with its shape:
 * `embed.W_E [V, d]`, `pos_embed.W_pos [P, d]` (learned positions), per block `blocks.{l}.ln1.w/b`,
 * `attn.W_Q [d, H*hd]`, `attn.W_K`, `attn.W_V [d, Hkv*hd]`, `attn.W_O [H*hd, d]` and their `b_*`,
 * `ln2.w/b`, `mlp.W_in [d, F]`, `mlp.W_gate [d, F]` (SwiGLU), `mlp.W_out [F, d]`, `mlp.b_in/b_out` (+ `mlp.b_gate` for SwiGLU);
 * then `ln_final.w/b` and `unembed.W_U [d, V]` when the head is untied.
 *
 * @example
 * ```ts
 * import { decoderParameterShapes } from "./params.ts";
 * import { gpt2SmallConfig } from "./scratch.ts";
 * const shapes = decoderParameterShapes(gpt2SmallConfig({ nLayers: 1 }));
 * console.log(shapes.get("blocks.0.attn.W_Q")); // [768, 768]
 * ```
 */
export function decoderParameterShapes(config: DecoderConfig): Map<string, number[]> {
  validateDecoderConfig(config);
  const { vocabSize: v, dModel: d, nHeads: h, nKvHeads: hkv, headDim: hd, dMlp: f } = config;
  const s = new Map<string, number[]>();
  s.set("embed.W_E", [v, d]);
  if (config.positional === "learned") s.set("pos_embed.W_pos", [config.maxPositions, d]);
  const norm = (prefix: string) => {
    s.set(`${prefix}.w`, [d]);
    if (config.normBias) s.set(`${prefix}.b`, [d]);
  };
  for (let l = 0; l < config.nLayers; l++) {
    const p = `blocks.${l}`;
    norm(`${p}.ln1`);
    s.set(`${p}.attn.W_Q`, [d, h * hd]);
    if (config.qkvBias) s.set(`${p}.attn.b_Q`, [h * hd]);
    s.set(`${p}.attn.W_K`, [d, hkv * hd]);
    if (config.qkvBias) s.set(`${p}.attn.b_K`, [hkv * hd]);
    s.set(`${p}.attn.W_V`, [d, hkv * hd]);
    if (config.qkvBias) s.set(`${p}.attn.b_V`, [hkv * hd]);
    s.set(`${p}.attn.W_O`, [h * hd, d]);
    if (config.attnOutBias) s.set(`${p}.attn.b_O`, [d]);
    norm(`${p}.ln2`);
    if (config.mlp === "swiglu") s.set(`${p}.mlp.W_gate`, [d, f]);
    s.set(`${p}.mlp.W_in`, [d, f]);
    if (config.mlpBias && config.mlp === "swiglu") s.set(`${p}.mlp.b_gate`, [f]);
    if (config.mlpBias) s.set(`${p}.mlp.b_in`, [f]);
    s.set(`${p}.mlp.W_out`, [f, d]);
    if (config.mlpBias) s.set(`${p}.mlp.b_out`, [d]);
  }
  norm("ln_final");
  if (!config.tieEmbeddings) s.set("unembed.W_U", [d, v]);
  return s;
}

/**
 * Checks a DecoderConfig for missing or inconsistent fields and throws an error naming the field.
 *
 * @example
 * ```ts
 * import { validateDecoderConfig } from "./params.ts";
 * import { gpt2SmallConfig } from "./scratch.ts";
 * validateDecoderConfig(gpt2SmallConfig()); // passes silently
 * ```
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
