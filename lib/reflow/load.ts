/**
 * Opening converted reFlow checkpoints: `tools/convert_reflow.py CKPT OUTDIR` writes `config.json`
 * (`model_type: "reflow"`, `model_config` = the variant, nanoGPT size fields) and `model.safetensors`
 * (canonical names, `[in, out]` matrices). This module registers the `reflow` family with `loadModel`.
 *
 * @module
 */
import type { Tensor } from "../tensor_types.ts";
import { type HFConfig, hfConfigObject, type HFFamily, hfField } from "../models/hf_common.ts";
import { openCheckpoint } from "../io/safetensors.ts";
import { registerModelFamily } from "../models/load.ts";
import { decoderParameterShapes } from "../models/params.ts";
import type { DecoderConfig } from "../models/types.ts";
import { checkChoice } from "../options.ts";
import { SPARSIFY_PLACEMENTS } from "./embedding.ts";
import { REFLOW_VARIANTS, reflowVariantConfig, type ReflowVariantOptions } from "./variants.ts";
import { type ParameterTable, parameterTable } from "./inspect.ts";

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

/**
 * What `check` prints for a converted checkpoint folder: the variant and config from `config.json`, the
 * stored `iter_num` / `best_val_loss` / `model_args`, the grouped parameter table of the config, and every
 * tensor of `model.safetensors` whose name or shape disagrees with it (empty when they match).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ReflowCheckpointReport } from "./load.ts";
 * const empty: Pick<ReflowCheckpointReport, "mismatches"> = { mismatches: [] };
 * assert.equal(empty.mismatches.length, 0); // a folder whose tensors match its config.json
 * ```
 *
 * @category reFlow
 */
export interface ReflowCheckpointReport {
  /** The folder read. */
  dir: string;
  /** `model_config` of config.json. */
  variant: string;
  /** The config it describes. */
  config: DecoderConfig;
  /** Iterations trained, when stored. */
  iterNum?: number;
  /** Best validation loss, when stored. */
  bestValLoss?: number;
  /** The original nanoGPT `model_args`, when the converter kept them. */
  modelArgs?: Record<string, unknown>;
  /** Parameters by name and group, with the total. */
  table: ParameterTable;
  /** One line per tensor that is missing, unexpected or misshapen. */
  mismatches: string[];
}

/**
 * Inspects a converted checkpoint folder without loading its weights (header only).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeSafetensors } from "../io/safetensors.ts";
 * import { inspectReflowCheckpoint } from "./load.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify({ model_type: "reflow", model_config: "gpt2-new",
 *   n_layer: 1, n_head: 2, n_embd: 8, vocab_size: 10, block_size: 16, iter_num: 5 }));
 * await Deno.writeFile(`${dir}/model.safetensors`, encodeSafetensors({ "embed.W_E": { dtype: "F32", shape: [10, 8], data: new Float32Array(80) } }));
 * const r = await inspectReflowCheckpoint(dir);
 * assert.equal(r.iterNum, 5);
 * assert.equal(r.table.total, 10 * 8 + (4 * 64 + 3 * 8 * 256 + 16) + 8);
 * assert.ok(r.mismatches.some((m) => m.startsWith("missing blocks.0.attn.W_Q")));
 * ```
 *
 * @category reFlow
 */
export async function inspectReflowCheckpoint(dir: string): Promise<ReflowCheckpointReport> {
  const folder = dir.replace(/\/+$/, "");
  const file = `${folder}/config.json`;
  let hf: HFConfig;
  try {
    hf = hfConfigObject(JSON.parse(await Deno.readTextFile(file)), file);
  } catch (e) {
    throw new Error(`inspectReflowCheckpoint: cannot read ${file}: ${(e as Error).message}`);
  }
  const config = reflowConfigFromJson(hf, file);
  const table = parameterTable(config);
  const mismatches: string[] = [];
  const ckpt = await openCheckpoint(folder);
  try {
    const expected = new Map(table.rows.map((r) => [r.name, r.shape]));
    for (const [name, shape] of expected) {
      if (!ckpt.has(name)) mismatches.push(`missing ${name} [${shape}]`);
      else {
        const got = ckpt.info(name).shape;
        if (got.length !== shape.length || got.some((s, i) => s !== shape[i])) {
          mismatches.push(`${name}: expected [${shape}], found [${got}]`);
        }
      }
    }
    for (const name of ckpt.names()) if (!expected.has(name)) mismatches.push(`unexpected ${name}`);
  } finally {
    ckpt.close();
  }
  const num = (k: string) => typeof hf[k] === "number" ? hf[k] as number : undefined;
  const source = hf.source as { model_args?: Record<string, unknown> } | undefined;
  return {
    dir: folder,
    variant: String(hf.model_config),
    config,
    iterNum: num("iter_num"),
    bestValLoss: num("best_val_loss"),
    modelArgs: source?.model_args,
    table,
    mismatches,
  };
}
