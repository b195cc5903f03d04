/**
 * Opening converted reFlow checkpoints: `tools/convert_reflow.py CKPT OUTDIR` writes `config.json`
 * (`model_type: "reflow"`, `model_config` = the variant, nanoGPT size fields) and `model.safetensors`
 * (canonical names, `[in, out]` matrices). This module registers the `reflow` family with `loadModel`.
 *
 * @module
 */
import type { Tensor } from "../tensor_types.ts";
import { type HFConfig, type HFFamily, hfField } from "../models/hf_common.ts";
import { registerModelFamily } from "../models/load.ts";
import { decoderParameterShapes } from "../models/params.ts";
import type { DecoderConfig } from "../models/types.ts";
import { checkChoice } from "../options.ts";
import { SPARSIFY_PLACEMENTS } from "./embedding.ts";
import { REFLOW_VARIANTS, reflowVariantConfig, type ReflowVariantOptions } from "./variants.ts";

/**
 * The DecoderConfig of a converted checkpoint's `config.json`; a missing field, an unknown variant or a
 * RoPE layout other than half-split is one message naming the file and field.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reflowConfigFromJson } from "./load.ts";
 * const c = reflowConfigFromJson({ model_type: "reflow", model_config: "reflow-topk", n_layer: 2, n_head: 4,
 *   n_embd: 32, vocab_size: 40, block_size: 32, n_signals: 24, top_k: 5 });
 * assert.deepEqual([c.embedding?.signals, c.embedding?.topK, c.dMlp], [24, 5, 256]);
 * ```
 *
 * @category reFlow
 */
export function reflowConfigFromJson(hf: HFConfig, file = "config.json"): DecoderConfig {
  const variant = checkChoice(
    hfField(hf, "model_config", "string", file),
    REFLOW_VARIANTS,
    `${file}: model_config`,
  );
  const layout = hfField(hf, "rope_layout", "string", file, "half");
  if (layout !== "half") {
    throw new Error(
      `${file}: rope_layout '${layout}' is not supported; convert with tools/convert_reflow.py --rope-layout ` +
        `${layout}, which reorders q/k into the half-split layout`,
    );
  }
  const num = (key: string) => hf[key] === undefined ? undefined : hfField(hf, key, "number", file);
  const o: ReflowVariantOptions = {
    nLayers: hfField(hf, "n_layer", "number", file),
    dModel: hfField(hf, "n_embd", "number", file),
    nHeads: hfField(hf, "n_head", "number", file),
    vocabSize: hfField(hf, "vocab_size", "number", file),
    maxPositions: hfField(hf, "block_size", "number", file),
    nKvHeads: num("n_kv_head"),
    dMlp: num("d_mlp"),
    normEps: num("norm_eps"),
  };
  if (variant.startsWith("reflow")) o.nSignals = hfField(hf, "n_signals", "number", file);
  if (variant === "reflow-topk") {
    o.topK = hfField(hf, "top_k", "number", file);
    const s = hf.sparsify;
    if (s !== undefined) o.sparsify = checkChoice(s, SPARSIFY_PLACEMENTS, `${file}: sparsify placement`);
  }
  try {
    const c = reflowVariantConfig(variant, o);
    const theta = num("rope_theta");
    return theta !== undefined && c.positional === "rotary" ? { ...c, ropeTheta: theta } : c;
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
}

/**
 * The `reflow` family for `loadModel`: reads every canonical parameter with the shape the config
 * implies; a missing, misshapen or extra tensor is one error listing them all.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { familyForModelType } from "../models/load.ts";
 * import "./load.ts";
 * assert.deepEqual(familyForModelType("reflow").modelTypes, ["reflow"]);
 * ```
 *
 * @category reFlow
 */
export const reflowFamily: HFFamily = {
  modelTypes: ["reflow"],
  config: reflowConfigFromJson,
  async weights(reader, config): Promise<Map<string, Tensor>> {
    const out = new Map<string, Tensor>();
    for (const [name, shape] of decoderParameterShapes(config)) {
      const t = await reader.take(name, shape);
      if (t) out.set(name, t);
    }
    return reader.finish(out);
  },
};

registerModelFamily(reflowFamily);
