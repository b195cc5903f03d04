/**
 * GPT-2 (`model_type: "gpt2"`): learned positions, LayerNorm, Conv1D weights stored `[in, out]` with a fused
 * `c_attn` (q, k, v side by side along the output axis), tied LM head by default.
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Tensor } from "../tensor_types.ts";
import { type HFConfig, type HFFamily, hfField, type HFWeightReader } from "./hf_common.ts";
import type { DecoderConfig } from "./types.ts";

const ACTIVATIONS: Record<string, DecoderConfig["mlp"]> = {
  gelu: "gelu",
  gelu_new: "gelu_new",
  gelu_fast: "gelu_new", // same function as gelu_new, written differently
  gelu_pytorch_tanh: "gelu_tanh",
  relu: "relu",
};

/**
 * Translates a GPT-2 `config.json` into a DecoderConfig.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gpt2Config } from "./gpt2.ts";
 * const c = gpt2Config({ model_type: "gpt2", n_embd: 64, n_head: 4, n_layer: 2, n_positions: 128, vocab_size: 512 });
 * assert.equal(c.dMlp, 256); // 4 × n_embd
 * assert.equal(c.mlp, "gelu_new");
 * ```
 *
 * @category Models
 */
export function gpt2Config(hf: HFConfig, file = "config.json"): DecoderConfig {
  const d = hfField(hf, "n_embd", "number", file);
  const h = hfField(hf, "n_head", "number", file);
  const act = hfField(hf, "activation_function", "string", file, "gelu_new");
  const mlp = ACTIVATIONS[act];
  if (!mlp) {
    throw new Error(
      `${file}: activation_function '${act}' is not supported (use ${Object.keys(ACTIVATIONS).join(", ")})`,
    );
  }
  if (hf.scale_attn_weights === false) throw new Error(`${file}: scale_attn_weights=false is not supported`);
  if (hf.scale_attn_by_inverse_layer_idx === true) {
    throw new Error(`${file}: scale_attn_by_inverse_layer_idx=true is not supported`);
  }
  if (hf.add_cross_attention === true) {
    throw new Error(`${file}: cross-attention GPT-2 is not a decoder-only model`);
  }
  if (d % h !== 0) throw new Error(`${file}: n_embd (${d}) must be divisible by n_head (${h})`);
  const inner = hfField(hf, "n_inner", "number", file, 4 * d);
  return {
    family: "gpt2",
    vocabSize: hfField(hf, "vocab_size", "number", file),
    dModel: d,
    nLayers: hfField(hf, "n_layer", "number", file),
    nHeads: h,
    nKvHeads: h,
    headDim: d / h,
    dMlp: inner,
    maxPositions: hfField(hf, "n_positions", "number", file, 1024),
    norm: "layernorm",
    normEps: hfField(hf, "layer_norm_epsilon", "number", file, 1e-5),
    positional: "learned",
    mlp,
    parallelResidual: false,
    qkvBias: true,
    attnOutBias: true,
    mlpBias: true,
    normBias: true,
    tieEmbeddings: hfField(hf, "tie_word_embeddings", "boolean", file, true),
  };
}

/**
 * Reads GPT-2 weights (with or without the `transformer.` prefix) into canonical tensors: `c_attn` is
 * split into W_Q/W_K/W_V along its output axis; Conv1D matrices are already `[in, out]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { openCheckpoint } from "../io/safetensors.ts";
 * import { HFWeightReader } from "./hf_common.ts";
 * import { gpt2Config, gpt2Weights } from "./gpt2.ts";
 * await tf.ready();
 * const dir = "data/models/tiny-gpt2";
 * const hf = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
 * const ckpt = await openCheckpoint(dir);
 * const w = await gpt2Weights(new HFWeightReader(ckpt, "gpt2", dir), gpt2Config(hf), hf);
 * assert.deepEqual(w.get("blocks.0.attn.W_Q")?.shape, [32, 32]);
 * ckpt.close();
 * ```
 *
 * @category Models
 */
export async function gpt2Weights(
  r: HFWeightReader,
  c: DecoderConfig,
  _hf?: HFConfig,
): Promise<Map<string, Tensor>> {
  const pre = r.has("transformer.wte.weight") ? "transformer." : "";
  const d = c.dModel, f = c.dMlp;
  const out = new Map<string, Tensor>();
  const put = (name: string, t: Tensor | null) => t && out.set(name, t);
  put("embed.W_E", await r.take(`${pre}wte.weight`, [c.vocabSize, d]));
  put("pos_embed.W_pos", await r.take(`${pre}wpe.weight`, [c.maxPositions, d]));
  for (let l = 0; l < c.nLayers; l++) {
    const h = `${pre}h.${l}`, p = `blocks.${l}`;
    put(`${p}.ln1.w`, await r.take(`${h}.ln_1.weight`, [d]));
    put(`${p}.ln1.b`, await r.take(`${h}.ln_1.bias`, [d]));
    const qkv = await r.take(`${h}.attn.c_attn.weight`, [d, 3 * d]);
    if (qkv) {
      const [q, k, v] = tf.split(qkv, 3, 1);
      qkv.dispose();
      put(`${p}.attn.W_Q`, q);
      put(`${p}.attn.W_K`, k);
      put(`${p}.attn.W_V`, v);
    }
    const qkvB = await r.take(`${h}.attn.c_attn.bias`, [3 * d]);
    if (qkvB) {
      const [q, k, v] = tf.split(qkvB, 3, 0);
      qkvB.dispose();
      put(`${p}.attn.b_Q`, q);
      put(`${p}.attn.b_K`, k);
      put(`${p}.attn.b_V`, v);
    }
    put(`${p}.attn.W_O`, await r.take(`${h}.attn.c_proj.weight`, [d, d]));
    put(`${p}.attn.b_O`, await r.take(`${h}.attn.c_proj.bias`, [d]));
    put(`${p}.ln2.w`, await r.take(`${h}.ln_2.weight`, [d]));
    put(`${p}.ln2.b`, await r.take(`${h}.ln_2.bias`, [d]));
    put(`${p}.mlp.W_in`, await r.take(`${h}.mlp.c_fc.weight`, [d, f]));
    put(`${p}.mlp.b_in`, await r.take(`${h}.mlp.c_fc.bias`, [f]));
    put(`${p}.mlp.W_out`, await r.take(`${h}.mlp.c_proj.weight`, [f, d]));
    put(`${p}.mlp.b_out`, await r.take(`${h}.mlp.c_proj.bias`, [d]));
  }
  put("ln_final.w", await r.take(`${pre}ln_f.weight`, [d]));
  put("ln_final.b", await r.take(`${pre}ln_f.bias`, [d]));
  if (c.tieEmbeddings) {
    r.ignore("lm_head.weight"); // some exports store the tied copy
  } else {
    const head = await r.take("lm_head.weight", [c.vocabSize, d]);
    if (head) {
      put("unembed.W_U", tf.transpose(head));
      head.dispose();
    }
  }
  return r.finish(out);
}

/**
 * The GPT-2 family adapter used by `loadModel`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gpt2Family } from "./gpt2.ts";
 * assert.deepEqual(gpt2Family.modelTypes, ["gpt2"]);
 * ```
 *
 * @category Models
 */
export const gpt2Family: HFFamily = { modelTypes: ["gpt2"], config: gpt2Config, weights: gpt2Weights };
