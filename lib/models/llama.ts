/**
 * Llama (`model_type: "llama"`): RMSNorm, SwiGLU, rotary positions, grouped-query attention, optional
 * biases (`attention_bias`, `mlp_bias`), explicit `head_dim`, tied or untied head. Qwen2 reuses the weight
 * mapping ({@linkcode llamaStyleWeights}).
 *
 * @module
 */
import type { Tensor } from "../tensor_types.ts";
import {
  type HFConfig,
  type HFFamily,
  hfField,
  hfRope,
  type HFWeightReader,
  linearToInOut,
} from "./hf_common.ts";
import type { DecoderConfig } from "./types.ts";

/**
 * The fields Llama and Qwen2 share, read from `config.json`; `family`-specific biases are filled by the
 * caller.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { llamaStyleConfig } from "./llama.ts";
 * const c = llamaStyleConfig({ hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2,
 *   num_hidden_layers: 2, intermediate_size: 176, vocab_size: 512 }, "config.json", "llama");
 * assert.equal(c.nKvHeads, 2);
 * assert.equal(c.headDim, 16);
 * ```
 *
 * @category Models
 */
export function llamaStyleConfig(hf: HFConfig, file: string, family: string): DecoderConfig {
  const d = hfField(hf, "hidden_size", "number", file);
  const h = hfField(hf, "num_attention_heads", "number", file);
  const hkv = hfField(hf, "num_key_value_heads", "number", file, h);
  if (h % hkv !== 0) {
    throw new Error(`${file}: num_attention_heads (${h}) must be a multiple of num_key_value_heads (${hkv})`);
  }
  const headDim = hfField(hf, "head_dim", "number", file, Math.floor(d / h));
  const act = hfField(hf, "hidden_act", "string", file, "silu");
  if (act !== "silu") {
    throw new Error(`${file}: hidden_act '${act}' is not supported for ${family} (only "silu" SwiGLU)`);
  }
  const rope = hfRope(hf, file);
  const rotaryDim = Math.floor(headDim * (rope.partialFactor ?? 1));
  return {
    family,
    vocabSize: hfField(hf, "vocab_size", "number", file),
    dModel: d,
    nLayers: hfField(hf, "num_hidden_layers", "number", file),
    nHeads: h,
    nKvHeads: hkv,
    headDim,
    dMlp: hfField(hf, "intermediate_size", "number", file),
    maxPositions: hfField(hf, "max_position_embeddings", "number", file, 2048),
    norm: "rmsnorm",
    normEps: hfField(hf, "rms_norm_eps", "number", file, 1e-6),
    positional: "rotary",
    rotaryDim,
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    mlp: "swiglu",
    parallelResidual: false,
    qkvBias: false,
    attnOutBias: false,
    mlpBias: false,
    normBias: false,
    tieEmbeddings: hfField(hf, "tie_word_embeddings", "boolean", file, false),
  };
}

/**
 * Translates a Llama `config.json` into a DecoderConfig (`attention_bias` sets q/k/v/o biases, `mlp_bias`
 * the MLP biases).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { llamaConfig } from "./llama.ts";
 * const c = llamaConfig({ hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 2,
 *   intermediate_size: 176, vocab_size: 512, rope_theta: 500000 });
 * assert.equal(c.ropeTheta, 500000);
 * assert.equal(c.qkvBias, false);
 * ```
 *
 * @category Models
 */
export function llamaConfig(hf: HFConfig, file = "config.json"): DecoderConfig {
  const c = llamaStyleConfig(hf, file, "llama");
  const bias = hfField(hf, "attention_bias", "boolean", file, false);
  return { ...c, qkvBias: bias, attnOutBias: bias, mlpBias: hfField(hf, "mlp_bias", "boolean", file, false) };
}

/**
 * Reads Llama-layout weights (`model.layers.{l}.self_attn.{q,k,v,o}_proj`, `mlp.{gate,up,down}_proj`,
 * `model.norm`, `lm_head`) into canonical tensors; used by Llama and Qwen2.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { openCheckpoint } from "../io/safetensors.ts";
 * import { HFWeightReader } from "./hf_common.ts";
 * import { llamaConfig, llamaStyleWeights } from "./llama.ts";
 * await tf.ready();
 * const dir = "../shared/fixtures/hf/tiny-llama"; // the test fixtures beside the repository
 * if (await Deno.stat(dir).then(() => true, () => false)) {
 *   const hf = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
 *   const ckpt = await openCheckpoint(dir);
 *   const w = await llamaStyleWeights(new HFWeightReader(ckpt, "llama", dir), llamaConfig(hf));
 *   assert.deepEqual(w.get("blocks.0.attn.W_K")?.shape, [64, 32]);
 *   ckpt.close();
 * } else console.log(`skipped: ${dir} is absent`);
 * ```
 *
 * @category Models
 */
export async function llamaStyleWeights(
  r: HFWeightReader,
  c: DecoderConfig,
  _hf?: HFConfig,
): Promise<Map<string, Tensor>> {
  const pre = r.has("model.embed_tokens.weight") ? "model." : "";
  const d = c.dModel, f = c.dMlp, q = c.nHeads * c.headDim, kv = c.nKvHeads * c.headDim;
  const out = new Map<string, Tensor>();
  const put = (name: string, t: Tensor | null) => t && out.set(name, t);
  const linear = async (name: string, shape: number[]) => {
    const t = await r.take(name, shape);
    return t ? linearToInOut(t) : null;
  };
  put("embed.W_E", await r.take(`${pre}embed_tokens.weight`, [c.vocabSize, d]));
  for (let l = 0; l < c.nLayers; l++) {
    const s = `${pre}layers.${l}`, p = `blocks.${l}`;
    put(`${p}.ln1.w`, await r.take(`${s}.input_layernorm.weight`, [d]));
    put(`${p}.attn.W_Q`, await linear(`${s}.self_attn.q_proj.weight`, [q, d]));
    put(`${p}.attn.W_K`, await linear(`${s}.self_attn.k_proj.weight`, [kv, d]));
    put(`${p}.attn.W_V`, await linear(`${s}.self_attn.v_proj.weight`, [kv, d]));
    if (c.qkvBias) {
      put(`${p}.attn.b_Q`, await r.take(`${s}.self_attn.q_proj.bias`, [q]));
      put(`${p}.attn.b_K`, await r.take(`${s}.self_attn.k_proj.bias`, [kv]));
      put(`${p}.attn.b_V`, await r.take(`${s}.self_attn.v_proj.bias`, [kv]));
    }
    put(`${p}.attn.W_O`, await linear(`${s}.self_attn.o_proj.weight`, [d, q]));
    if (c.attnOutBias) put(`${p}.attn.b_O`, await r.take(`${s}.self_attn.o_proj.bias`, [d]));
    put(`${p}.ln2.w`, await r.take(`${s}.post_attention_layernorm.weight`, [d]));
    put(`${p}.mlp.W_gate`, await linear(`${s}.mlp.gate_proj.weight`, [f, d]));
    put(`${p}.mlp.W_in`, await linear(`${s}.mlp.up_proj.weight`, [f, d]));
    put(`${p}.mlp.W_out`, await linear(`${s}.mlp.down_proj.weight`, [d, f]));
    if (c.mlpBias) {
      put(`${p}.mlp.b_gate`, await r.take(`${s}.mlp.gate_proj.bias`, [f]));
      put(`${p}.mlp.b_in`, await r.take(`${s}.mlp.up_proj.bias`, [f]));
      put(`${p}.mlp.b_out`, await r.take(`${s}.mlp.down_proj.bias`, [d]));
    }
  }
  put("ln_final.w", await r.take(`${pre}norm.weight`, [d]));
  if (c.tieEmbeddings) r.ignore("lm_head.weight");
  else put("unembed.W_U", await linear("lm_head.weight", [c.vocabSize, d]));
  return r.finish(out);
}

/**
 * The Llama family adapter used by `loadModel`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { llamaFamily } from "./llama.ts";
 * assert.deepEqual(llamaFamily.modelTypes, ["llama"]);
 * ```
 *
 * @category Models
 */
export const llamaFamily: HFFamily = {
  modelTypes: ["llama"],
  config: llamaConfig,
  weights: llamaStyleWeights,
};
