/**
 * Loading the original PhaseGPT checkpoints: `tools/convert_phasegpt.py CKPT OUTDIR` turns a PyTorch
 * pickle written by the original's `save_checkpoint` into `config.json` (`model_type: "phasegpt"`) and
 * `model.safetensors` (the original's tensors under normalised names); this module registers that
 * `model_type` with `loadModel`, which then builds the faithful model and reproduces the original's
 * logits.
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Tensor } from "../tensor_types.ts";
import {
  type HFConfig,
  type HFFamily,
  hfField,
  type HFWeightReader,
  linearToInOut,
} from "../models/hf_common.ts";
import { registerModelFamily } from "../models/load.ts";
import type { DecoderConfig } from "../models/types.ts";
import { phaseGPTConfig } from "./presets.ts";

/**
 * The faithful model a converted checkpoint's `config.json` describes (dropout as trained, off at eval).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { phaseGPTHFConfig } from "../../mod.ts";
 * const c = phaseGPTHFConfig({ model_type: "phasegpt", vocab_size: 65, d_model: 768, n_layers: 12, n_heads: 12, d_ff: 3072, max_seq_len: 512, phase_layer_idx: [7], num_oscillators: 32 }, "config.json");
 * assert.deepEqual(c.mixers?.[1], { kind: "kuramoto", layers: [7], preset: "faithful", numOscillators: 32, steps: 10 });
 * ```
 *
 * @category PhaseGPT
 */
export function phaseGPTHFConfig(hf: HFConfig, file: string): DecoderConfig {
  const layers = hf.phase_layer_idx ?? [];
  if (!Array.isArray(layers) || !layers.every((l) => Number.isInteger(l))) {
    throw new Error(
      `${file}: phase_layer_idx must be a list of block indices, got ${JSON.stringify(layers)}`,
    );
  }
  const model = {
    vocabSize: hfField(hf, "vocab_size", "number", file),
    dModel: hfField(hf, "d_model", "number", file),
    nLayers: hfField(hf, "n_layers", "number", file),
    nHeads: hfField(hf, "n_heads", "number", file),
    dMlp: hfField(hf, "d_ff", "number", file),
    maxPositions: hfField(hf, "max_seq_len", "number", file),
    dropout: hfField(hf, "dropout", "number", file, 0.1),
    normEps: hfField(hf, "layer_norm_eps", "number", file, 1e-5),
  };
  try {
    return phaseGPTConfig({
      phaseLayers: layers as number[],
      model,
      mixer: layers.length
        ? {
          preset: "faithful",
          numOscillators: hfField(hf, "num_oscillators", "number", file),
          steps: hfField(hf, "phase_iterations", "number", file, 10),
        }
        : undefined,
    });
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
}

/** Reads a PyTorch Linear (`[out, in]`) as this library's `[in, out]`. */
async function linearWeight(
  r: HFWeightReader,
  name: string,
  inDim: number,
  outDim: number,
): Promise<Tensor | null> {
  const w = await r.take(name, [outDim, inDim]);
  return w ? linearToInOut(w) : null;
}

/**
 * Reads a converted checkpoint's tensors into this library's names: the fused `qkv_proj` is split into
 * W_Q/W_K/W_V, Linears are transposed, `to_phase`/`natural_freq`/`coupling_matrix`/`from_phase` become
 * `W_phase`/`omega`/`coupling`/`W_out`.
 *
 * @category PhaseGPT
 */
export async function phaseGPTWeights(r: HFWeightReader, c: DecoderConfig): Promise<Map<string, Tensor>> {
  const d = c.dModel, f = c.dMlp;
  const out = new Map<string, Tensor>();
  const put = (name: string, t: Tensor | null) => t && out.set(name, t);
  const phase = new Set((c.mixers?.[1]?.layers as number[] | undefined) ?? []);
  const n = (c.mixers?.[1]?.numOscillators as number | undefined) ?? 0;
  const hn = c.nHeads * n;
  put("embed.W_E", await r.take("token_embedding.weight", [c.vocabSize, d]));
  put("pos_embed.W_pos", await r.take("position_embedding.weight", [c.maxPositions, d]));
  for (let l = 0; l < c.nLayers; l++) {
    const src = `blocks.${l}`, dst = src, a = `${src}.attention`;
    // The fused qkv projection, split into the Q, K and V thirds along `axis`.
    const putThirds = (kind: "W" | "b", fused: Tensor | null, axis: number) => {
      if (!fused) return;
      const [q, k, v] = tf.split(fused, 3, axis);
      fused.dispose();
      put(`${dst}.attn.${kind}_Q`, q);
      put(`${dst}.attn.${kind}_K`, k);
      put(`${dst}.attn.${kind}_V`, v);
    };
    put(`${dst}.ln1.w`, await r.take(`${src}.ln1.weight`, [d]));
    put(`${dst}.ln1.b`, await r.take(`${src}.ln1.bias`, [d]));
    if (phase.has(l)) {
      put(`${dst}.attn.W_phase`, await linearWeight(r, `${a}.to_phase.weight`, d, hn));
      put(`${dst}.attn.b_phase`, await r.take(`${a}.to_phase.bias`, [hn]));
      put(`${dst}.attn.omega`, await r.take(`${a}.natural_freq`, [c.nHeads, n]));
      put(`${dst}.attn.coupling`, await r.take(`${a}.coupling_matrix`, [c.nHeads]));
      put(`${dst}.attn.W_out`, await linearWeight(r, `${a}.from_phase.weight`, hn, d));
      put(`${dst}.attn.b_out`, await r.take(`${a}.from_phase.bias`, [d]));
    } else {
      putThirds("W", await linearWeight(r, `${a}.qkv_proj.weight`, d, 3 * d), 1);
      putThirds("b", await r.take(`${a}.qkv_proj.bias`, [3 * d]), 0);
      put(`${dst}.attn.W_O`, await linearWeight(r, `${a}.out_proj.weight`, d, d));
      put(`${dst}.attn.b_O`, await r.take(`${a}.out_proj.bias`, [d]));
    }
    put(`${dst}.ln2.w`, await r.take(`${src}.ln2.weight`, [d]));
    put(`${dst}.ln2.b`, await r.take(`${src}.ln2.bias`, [d]));
    put(`${dst}.mlp.W_in`, await linearWeight(r, `${src}.ffn.fc1.weight`, d, f));
    put(`${dst}.mlp.b_in`, await r.take(`${src}.ffn.fc1.bias`, [f]));
    put(`${dst}.mlp.W_out`, await linearWeight(r, `${src}.ffn.fc2.weight`, f, d));
    put(`${dst}.mlp.b_out`, await r.take(`${src}.ffn.fc2.bias`, [d]));
  }
  put("ln_final.w", await r.take("ln_f.weight", [d]));
  put("ln_final.b", await r.take("ln_f.bias", [d]));
  return r.finish(out);
}

/**
 * The `phasegpt` family of `loadModel` (registered when this module is imported).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { familyForModelType } from "../../mod.ts";
 * assert.equal(familyForModelType("phasegpt").modelTypes[0], "phasegpt");
 * ```
 *
 * @category PhaseGPT
 */
export const phaseGPTFamily: HFFamily = {
  modelTypes: ["phasegpt"],
  config: phaseGPTHFConfig,
  weights: (r, c) => phaseGPTWeights(r, c),
};

registerModelFamily(phaseGPTFamily);
