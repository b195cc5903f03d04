/**
 * GPT-NeoX / Pythia (`model_type: "gpt_neox"`): LayerNorm, partial rotary (`rotary_pct` in older configs,
 * `rope_parameters.partial_rotary_factor` in newer ones), parallel or sequential residual, and a fused
 * `query_key_value` projection laid out per head as (q, k, v).
 *
 * @module
 */
import { tf } from "../deps.ts";
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

const ACTIVATIONS: Record<string, DecoderConfig["mlp"]> = {
  gelu: "gelu",
  gelu_new: "gelu_new",
  gelu_fast: "gelu_new",
  gelu_pytorch_tanh: "gelu_tanh",
  relu: "relu",
};

/**
 * Translates a GPT-NeoX `config.json` into a DecoderConfig.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gptNeoxConfig } from "./gpt_neox.ts";
 * const c = gptNeoxConfig({
 *   model_type: "gpt_neox", hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 2,
 *   intermediate_size: 256, vocab_size: 512, rotary_pct: 0.25,
 * });
 * assert.equal(c.rotaryDim, 4); // 25% of the head width 16
 * assert.equal(c.parallelResidual, true);
 * ```
 *
 * @category Models
 */
export function gptNeoxConfig(hf: HFConfig, file = "config.json"): DecoderConfig {
  const d = hfField(hf, "hidden_size", "number", file);
  const h = hfField(hf, "num_attention_heads", "number", file);
  if (d % h !== 0) {
    throw new Error(`${file}: hidden_size (${d}) must be divisible by num_attention_heads (${h})`);
  }
  const act = hfField(hf, "hidden_act", "string", file, "gelu");
  const mlp = ACTIVATIONS[act];
  if (!mlp) {
    throw new Error(
      `${file}: hidden_act '${act}' is not supported (use ${Object.keys(ACTIVATIONS).join(", ")})`,
    );
  }
  const headDim = d / h;
  const rope = hfRope(hf, file);
  const rotaryDim = Math.floor(headDim * (rope.partialFactor ?? 1));
  if (rotaryDim < 2 || rotaryDim % 2) {
    throw new Error(`${file}: rotary dims ${rotaryDim} (head ${headDim} x partial factor) must be even`);
  }
  const bias = hfField(hf, "attention_bias", "boolean", file, true);
  return {
    family: "gpt_neox",
    vocabSize: hfField(hf, "vocab_size", "number", file),
    dModel: d,
    nLayers: hfField(hf, "num_hidden_layers", "number", file),
    nHeads: h,
    nKvHeads: h,
    headDim,
    dMlp: hfField(hf, "intermediate_size", "number", file),
    maxPositions: hfField(hf, "max_position_embeddings", "number", file, 2048),
    norm: "layernorm",
    normEps: hfField(hf, "layer_norm_eps", "number", file, 1e-5),
    positional: "rotary",
    rotaryDim,
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    mlp,
    parallelResidual: hfField(hf, "use_parallel_residual", "boolean", file, true),
    qkvBias: bias,
    attnOutBias: bias,
    mlpBias: true,
    normBias: true,
    tieEmbeddings: hfField(hf, "tie_word_embeddings", "boolean", file, false),
  };
}

/**
 * Splits NeoX's fused `query_key_value` (`[H * 3 * hd, ...]`, per head q then k then v) into q, k and v
 * `[H * hd, ...]` each.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { splitNeoxQkv } from "./gpt_neox.ts";
 * await tf.ready();
 * const [q, k, v] = splitNeoxQkv(tf.range(0, 12), 2, 2); // heads 2, head width 2
 * assert.deepEqual(await q.array(), [0, 1, 6, 7]);
 * assert.deepEqual(await k.array(), [2, 3, 8, 9]);
 * ```
 *
 * @category Models
 * @internal Used inside the library; not part of the stable API.
 */
export function splitNeoxQkv(
  t: Tensor,
  heads: number,
  headDim: number,
): [Tensor, Tensor, Tensor] {
  const rows = (part: number) =>
    Int32Array.from(
      { length: heads * headDim },
      (_, i) => Math.floor(i / headDim) * 3 * headDim + part * headDim + (i % headDim),
    );
  return tf.tidy(() => [0, 1, 2].map((part) => tf.gather(t, tf.tensor1d(rows(part), "int32"), 0))) as [
    Tensor,
    Tensor,
    Tensor,
  ];
}

/**
 * Reads GPT-NeoX weights into canonical tensors.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { openCheckpoint } from "../io/safetensors.ts";
 * import { HFWeightReader } from "./hf_common.ts";
 * import { gptNeoxConfig, gptNeoxWeights } from "./gpt_neox.ts";
 * await tf.ready();
 * const dir = "../shared/fixtures/hf/tiny-gpt-neox"; // the test fixtures beside the repository
 * if (await Deno.stat(dir).then(() => true, () => false)) {
 *   const hf = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
 *   const ckpt = await openCheckpoint(dir);
 *   const w = await gptNeoxWeights(new HFWeightReader(ckpt, "gpt_neox", dir), gptNeoxConfig(hf));
 *   assert.deepEqual(w.get("unembed.W_U")?.shape, [64, 512]);
 *   ckpt.close();
 * } else console.log(`skipped: ${dir} is absent`);
 * ```
 *
 * @category Models
 */
export async function gptNeoxWeights(
  r: HFWeightReader,
  c: DecoderConfig,
  _hf?: HFConfig,
): Promise<Map<string, Tensor>> {
  const pre = r.has("gpt_neox.embed_in.weight") ? "gpt_neox." : "";
  const d = c.dModel, f = c.dMlp, h = c.nHeads, hd = c.headDim;
  const out = new Map<string, Tensor>();
  const put = (name: string, t: Tensor | null) => t && out.set(name, t);
  const linear = async (name: string, shape: number[]) => {
    const t = await r.take(name, shape);
    return t ? linearToInOut(t) : null;
  };
  put("embed.W_E", await r.take(`${pre}embed_in.weight`, [c.vocabSize, d]));
  for (let l = 0; l < c.nLayers; l++) {
    const s = `${pre}layers.${l}`, p = `blocks.${l}`;
    put(`${p}.ln1.w`, await r.take(`${s}.input_layernorm.weight`, [d]));
    put(`${p}.ln1.b`, await r.take(`${s}.input_layernorm.bias`, [d]));
    const qkv = await r.take(`${s}.attention.query_key_value.weight`, [3 * h * hd, d]);
    if (qkv) {
      const parts = splitNeoxQkv(qkv, h, hd);
      qkv.dispose();
      ["W_Q", "W_K", "W_V"].forEach((n, i) => put(`${p}.attn.${n}`, linearToInOut(parts[i])));
    }
    if (c.qkvBias) {
      const qkvB = await r.take(`${s}.attention.query_key_value.bias`, [3 * h * hd]);
      if (qkvB) {
        const parts = splitNeoxQkv(qkvB, h, hd);
        qkvB.dispose();
        ["b_Q", "b_K", "b_V"].forEach((n, i) => put(`${p}.attn.${n}`, parts[i]));
      }
    }
    put(`${p}.attn.W_O`, await linear(`${s}.attention.dense.weight`, [d, h * hd]));
    if (c.attnOutBias) put(`${p}.attn.b_O`, await r.take(`${s}.attention.dense.bias`, [d]));
    put(`${p}.ln2.w`, await r.take(`${s}.post_attention_layernorm.weight`, [d]));
    put(`${p}.ln2.b`, await r.take(`${s}.post_attention_layernorm.bias`, [d]));
    put(`${p}.mlp.W_in`, await linear(`${s}.mlp.dense_h_to_4h.weight`, [f, d]));
    put(`${p}.mlp.b_in`, await r.take(`${s}.mlp.dense_h_to_4h.bias`, [f]));
    put(`${p}.mlp.W_out`, await linear(`${s}.mlp.dense_4h_to_h.weight`, [d, f]));
    put(`${p}.mlp.b_out`, await r.take(`${s}.mlp.dense_4h_to_h.bias`, [d]));
  }
  put("ln_final.w", await r.take(`${pre}final_layer_norm.weight`, [d]));
  put("ln_final.b", await r.take(`${pre}final_layer_norm.bias`, [d]));
  if (c.tieEmbeddings) r.ignore("embed_out.weight");
  else put("unembed.W_U", await linear("embed_out.weight", [c.vocabSize, d]));
  return r.finish(out);
}

/**
 * The GPT-NeoX family adapter used by `loadModel`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gptNeoxFamily } from "./gpt_neox.ts";
 * assert.deepEqual(gptNeoxFamily.modelTypes, ["gpt_neox"]);
 * ```
 *
 * @category Models
 */
export const gptNeoxFamily: HFFamily = {
  modelTypes: ["gpt_neox"],
  config: gptNeoxConfig,
  weights: gptNeoxWeights,
};
