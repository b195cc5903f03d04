/**
 * `loadModel`: a Hugging Face checkpoint folder (or `hf:org/name[@rev]`) to a native {@linkcode Decoder}.
 *
 * @module
 */
import { resolveModelSource, type ResolveModelSourceOptions } from "../io/hub.ts";
import { notRegularFileReason } from "../io/paths.ts";
import { openCheckpoint } from "../io/safetensors.ts";
import { Decoder } from "./decoder.ts";
import { gpt2Family } from "./gpt2.ts";
import { gptNeoxFamily } from "./gpt_neox.ts";
import { HF_SIZE_FIELDS, type HFConfig, hfConfigObject, type HFFamily, HFWeightReader } from "./hf_common.ts";
import { llamaFamily } from "./llama.ts";
import { qwen2Family } from "./qwen2.ts";

/**
 * Whether `source` names a Hugging Face model: an `hf:` reference, or a folder whose `config.json` has a
 * `model_type`. A training run written by this library's trainer also has a `config.json`, but without
 * `model_type`, so the file's existence alone does not decide.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isHuggingFaceModel } from "./load.ts";
 * assert.equal(await isHuggingFaceModel("../shared/fixtures/hf/tiny-gpt2"), true);
 * assert.equal(await isHuggingFaceModel("data/models/shakespeare-char"), false); // a trainer run
 * ```
 *
 * @category Models
 */
export async function isHuggingFaceModel(source: string): Promise<boolean> {
  if (source.startsWith("hf:")) return true;
  try {
    const config = JSON.parse(await Deno.readTextFile(`${source.replace(/\/+$/, "")}/config.json`));
    return typeof config?.model_type === "string";
  } catch {
    return false;
  }
}

const FAMILIES: HFFamily[] = [gpt2Family, gptNeoxFamily, llamaFamily, qwen2Family];

/**
 * The architectures `loadModel` knows, by `model_type` (the four Hugging Face families, then those that
 * research folders registered with {@linkcode registerModelFamily}, e.g. reFlow's `reflow`).
 *
 * @category Models
 */
export const HF_FAMILIES: readonly HFFamily[] = FAMILIES;

/**
 * Registers a family adapter for more `model_type` values (a research folder calls this on import, so
 * `loadModel` opens its converted checkpoints). A `model_type` already handled is an error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { familyForModelType, registerModelFamily } from "./load.ts";
 * import { qwen2Family } from "./qwen2.ts";
 * registerModelFamily({ ...qwen2Family, modelTypes: ["doc-qwen"] });
 * assert.deepEqual(familyForModelType("doc-qwen").modelTypes, ["doc-qwen"]);
 * ```
 *
 * @category Models
 */
export function registerModelFamily(family: HFFamily): void {
  if (FAMILIES.includes(family)) return;
  const taken = family.modelTypes.filter((t) => FAMILIES.some((f) => f.modelTypes.includes(t)));
  if (taken.length) throw new Error(`registerModelFamily: model_type ${taken.join(", ")} is already handled`);
  FAMILIES.push(family);
}

/**
 * Options for {@linkcode loadModel}.
 *
 * @category Models
 */
export interface LoadModelOptions {
  /** How `hf:` sources are resolved (cache folder, `allowDownload`, endpoint, token, progress). */
  hub?: ResolveModelSourceOptions;
}

/**
 * The family adapter for a `model_type`, or an error listing the supported ones.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { familyForModelType } from "./load.ts";
 * assert.deepEqual(familyForModelType("qwen2").modelTypes, ["qwen2"]);
 * ```
 *
 * @category Models
 */
export function familyForModelType(modelType: unknown, file = "config.json"): HFFamily {
  const fam = FAMILIES.find((f) => f.modelTypes.includes(String(modelType)));
  if (!fam) {
    const known = FAMILIES.flatMap((f) => f.modelTypes).join(", ");
    throw new Error(`${file}: model_type '${modelType}' is not supported (supported: ${known})`);
  }
  return fam;
}

/**
 * Checks the sizes of `config.json` against what the weights hold (tensor names in the safetensors
 * header), before anything is allocated: a config that asks for more layers than the checkpoint has
 * would otherwise loop and allocate per missing layer.
 */
function checkSizesAgainstWeights(
  hf: HFConfig,
  config: { nLayers: number },
  names: string[],
  file: string,
  dir: string,
): void {
  let layers = 0;
  for (const n of names) {
    const m = n.match(/(?:^|\.)(?:h|layers|blocks)\.(\d+)\./);
    if (m) layers = Math.max(layers, Number(m[1]) + 1);
  }
  const field = hf.n_layer !== undefined ? "n_layer" : "num_hidden_layers";
  if (config.nLayers > layers) {
    throw new Error(
      `${file}: ${field} is ${config.nLayers} but the weights in ${dir} hold ${layers} layer(s); fix ` +
        `${field} or use the matching weights`,
    );
  }
}

/**
 * Loads a Hugging Face causal LM (gpt2, gpt_neox, llama, qwen2) from a local folder holding `config.json`
 * and `model.safetensors` (or a sharded index) onto the current tfjs backend. `hf:org/name[@rev]` sources
 * are resolved through the local Hugging Face cache, downloading only with `hub.allowDownload`
 * (see `resolveModelSource`). The tokenizer is loaded separately
 * (lib/tokenizers) from `model.source`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../deps.ts";
 * import { loadModel } from "./load.ts";
 * await tf.ready();
 * const model = await loadModel("../shared/fixtures/hf/tiny-qwen2");
 * const ids = tf.tensor2d([[1, 2, 3]], [1, 3], "int32");
 * const { logits } = model.forward(ids, { lastOnly: true });
 * assert.equal(model.config.family, "qwen2");
 * assert.deepEqual(logits.shape, [1, 1, 512]);
 * model.dispose();
 * ```
 *
 * @category Models
 */
export async function loadModel(source: string, options: LoadModelOptions = {}): Promise<Decoder> {
  const dir = (await resolveModelSource(source, options.hub)).replace(/\/+$/, "");
  const file = `${dir}/config.json`;
  const why = await notRegularFileReason(file);
  if (why && why !== "does not exist") throw new Error(`loadModel: ${file} ${why}; expected a JSON file`);
  let hf: HFConfig;
  try {
    hf = JSON.parse(await Deno.readTextFile(file));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`loadModel: ${file} not found; pass a folder with config.json and model.safetensors`);
    }
    throw new Error(`loadModel: cannot parse ${file}: ${(e as Error).message}`);
  }
  hf = hfConfigObject(hf, file);
  const family = familyForModelType(hf.model_type, file);
  const config = family.config(hf, file);
  const ckpt = await openCheckpoint(dir);
  try {
    checkSizesAgainstWeights(hf, config, ckpt.names(), file, dir);
    const tensors = await family.weights(new HFWeightReader(ckpt, config.family, dir), config, hf);
    return new Decoder(config, tensors, { source: dir });
  } catch (e) {
    if (e instanceof RangeError) {
      // An allocation failed: name the fields of this file that size the model.
      const sizes = [...HF_SIZE_FIELDS].filter((k) => typeof hf[k] === "number").map((k) => `${k}=${hf[k]}`);
      throw new Error(
        `loadModel: allocating the model failed (${e.message}); the sizes come from ${file}: ${
          sizes.join(", ")
        }`,
      );
    }
    throw e;
  } finally {
    ckpt.close();
  }
}
