/**
 * Shared pieces of the Hugging Face family adapters: reading config fields with clear errors, and a
 * checkpoint reader that records every missing or mis-shaped tensor so one error lists them all.
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Tensor } from "../tensor_types.ts";
import type { SafetensorsCheckpoint } from "../io/safetensors.ts";
import { toTfTensor } from "../io/safetensors_tf.ts";
import type { RopeScaling } from "../nn/rotary.ts";
import type { DecoderConfig } from "./types.ts";

/**
 * A parsed `config.json`.
 *
 * @category Models
 */
export type HFConfig = Record<string, unknown>;

/**
 * One Hugging Face architecture: how its `config.json` maps to a DecoderConfig and its weights to the
 * decoder's canonical parameter names.
 *
 * @category Models
 */
export interface HFFamily {
  /** The `model_type` values it handles. */
  modelTypes: string[];
  /** Translates `config.json` (named `file` in errors). */
  config(hf: HFConfig, file: string): DecoderConfig;
  /** Reads and converts the weights into canonical tensors (`[in, out]` matrices). */
  weights(reader: HFWeightReader, config: DecoderConfig, hf: HFConfig): Promise<Map<string, Tensor>>;
}

/**
 * Config fields that size an allocation: each must be a positive integer, at most {@link HF_MAX_SIZE}.
 *
 * @category Models
 * @internal Used inside the library; not part of the stable API.
 */
export const HF_SIZE_FIELDS: ReadonlySet<string> = new Set([
  "n_embd",
  "n_head",
  "n_layer",
  "n_positions",
  "n_inner",
  "vocab_size",
  "hidden_size",
  "num_attention_heads",
  "num_key_value_heads",
  "num_hidden_layers",
  "head_dim",
  "intermediate_size",
  "max_position_embeddings",
  "sliding_window",
  // reFlow / nanoGPT-style fields
  "block_size",
  "n_kv_head",
  "d_mlp",
  "n_signals",
  "top_k",
]);

/**
 * Upper bound of any size field (2^31 - 1): larger values cannot index a tensor.
 *
 * @category Models
 * @internal Used inside the library; not part of the stable API.
 */
export const HF_MAX_SIZE = 2 ** 31 - 1;

/**
 * Checks that `config.json` parsed to a JSON object (not `null`, an array or a scalar).
 *
 * @example
 * ```ts
 * import { hfConfigObject } from "./hf_common.ts";
 * console.log(hfConfigObject({ model_type: "gpt2" }, "config.json").model_type); // gpt2
 * ```
 *
 * @category Models
 * @internal Used inside the library; not part of the stable API.
 */
export function hfConfigObject(value: unknown, file: string): HFConfig {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    const got = value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`;
    throw new Error(`${file}: expected a JSON object with the model's settings, got ${got}`);
  }
  return value as HFConfig;
}

/**
 * Reads a required config field and checks its type, with an error naming the file and the field.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hfField } from "./hf_common.ts";
 * assert.equal(hfField({ n_embd: 64 }, "n_embd", "number", "config.json"), 64);
 * ```
 *
 * @category Models
 */
export function hfField<T extends "number" | "string" | "boolean">(
  hf: HFConfig,
  key: string,
  type: T,
  file: string,
  fallback?: T extends "number" ? number : T extends "string" ? string : boolean,
): T extends "number" ? number : T extends "string" ? string : boolean {
  const v = hf[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new Error(`${file}: required field '${key}' is missing`);
  }
  const actual: string = typeof v;
  if (actual !== type) {
    throw new Error(`${file}: field '${key}' must be a ${type}, got ${JSON.stringify(v)}`);
  }
  if (type === "number") {
    const n = v as number;
    if (!Number.isFinite(n)) throw new Error(`${file}: field '${key}' must be a finite number, got ${n}`);
    if (HF_SIZE_FIELDS.has(key) && !(Number.isSafeInteger(n) && n > 0 && n <= HF_MAX_SIZE)) {
      throw new Error(
        `${file}: field '${key}' must be a positive whole number (at most ${HF_MAX_SIZE}), got ${
          JSON.stringify(v)
        }`,
      );
    }
  }
  return v as T extends "number" ? number : T extends "string" ? string : boolean;
}

/**
 * RoPE settings from a config, accepting both layouts: older top-level `rope_theta` / `rope_scaling`
 * (and NeoX's `rotary_emb_base` / `rotary_pct`) and newer `rope_parameters` (`rope_theta`, `rope_type`,
 * `partial_rotary_factor`, scaling fields). Scaling types "linear" and "llama3" are supported; others
 * (dynamic, yarn, longrope, ...) are refused clearly.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hfRope } from "./hf_common.ts";
 * const rope = hfRope({ rope_parameters: { rope_theta: 500000, rope_type: "default" } }, "config.json");
 * assert.deepEqual(rope, { theta: 500000, partialFactor: undefined, scaling: undefined });
 * ```
 *
 * @category Models
 */
export function hfRope(
  hf: HFConfig,
  file: string,
): { theta: number; partialFactor?: number; scaling?: RopeScaling } {
  const objectOrNone = (key: string): Record<string, unknown> | undefined => {
    const v = hf[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "object" || Array.isArray(v)) {
      throw new Error(
        `${file}: field '${key}' must be an object like {"rope_type": "linear", "factor": 2}, got ` +
          JSON.stringify(v),
      );
    }
    return v as Record<string, unknown>;
  };
  const params = objectOrNone("rope_parameters");
  const legacy = objectOrNone("rope_scaling");
  let scaling: RopeScaling | undefined;
  for (const [where, p] of [["rope_parameters", params], ["rope_scaling", legacy]] as const) {
    if (!p) continue;
    const type = p.rope_type ?? p.type ?? "default";
    if (typeof type !== "string") {
      throw new Error(`${file}: ${where}.rope_type must be a string, got ${JSON.stringify(type)}`);
    }
    const num = (key: string): number => {
      const v = p[key];
      if (typeof v !== "number" || !Number.isFinite(v)) {
        throw new Error(`${file}: ${where}.${key} must be a number for rope_type '${type}'`);
      }
      return v;
    };
    if (type === "default") continue;
    if (type === "linear") scaling = { type: "linear", factor: num("factor") };
    else if (type === "llama3") {
      scaling = {
        type: "llama3",
        factor: num("factor"),
        lowFreqFactor: num("low_freq_factor"),
        highFreqFactor: num("high_freq_factor"),
        originalMaxPositions: num("original_max_position_embeddings"),
      };
    } else {
      throw new Error(
        `${file}: ${where}.rope_type '${type}' is not supported (supported: default, linear, llama3); ` +
          "use a checkpoint without this RoPE scaling",
      );
    }
  }
  const theta = (params?.rope_theta ?? hf.rope_theta ?? hf.rotary_emb_base ?? 10000) as number;
  if (typeof theta !== "number" || !(theta > 0) || !Number.isFinite(theta)) {
    throw new Error(`${file}: rope_theta must be a positive number, got ${JSON.stringify(theta)}`);
  }
  const partial = (params?.partial_rotary_factor ?? hf.partial_rotary_factor ?? hf.rotary_pct) as
    | number
    | undefined;
  if (partial !== undefined && (typeof partial !== "number" || !(partial > 0 && partial <= 1))) {
    throw new Error(
      `${file}: partial_rotary_factor / rotary_pct must be in (0, 1], got ${JSON.stringify(partial)}`,
    );
  }
  return { theta, partialFactor: partial, scaling };
}

/**
 * Reads checkpoint tensors by name with an expected shape. Problems are collected rather than thrown one
 * at a time; {@linkcode HFWeightReader.finish} throws a single error listing every missing tensor, every
 * shape mismatch (expected vs found) and the names found in the checkpoint.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { openCheckpoint } from "../io/safetensors.ts";
 * import { HFWeightReader } from "./hf_common.ts";
 * await tf.ready();
 * const ckpt = await openCheckpoint("data/models/tiny-gpt2");
 * const r = new HFWeightReader(ckpt, "gpt2", "data/models/tiny-gpt2");
 * const wte = await r.take("transformer.wte.weight", [266, 32]); // a [266, 32] tensor
 * const bad = await r.take("transformer.wpe.weight", [64, 32]); // null: the file holds [128, 32]
 * assert.equal(bad, null);
 * // finish() throws, listing the mismatch and the unused tensors.
 * assert.throws(() => r.finish(new Map([["embed.W_E", wte!]])), /'transformer.wpe.weight': expected shape \[64,32\], found \[128,32\]/);
 * ckpt.close();
 * ```
 *
 * @category Models
 */
export class HFWeightReader {
  #ckpt: SafetensorsCheckpoint;
  #family: string;
  #source: string;
  #problems: string[] = [];
  #used = new Set<string>();

  /** A reader over an open checkpoint; `family` and `source` appear in error messages. */
  constructor(ckpt: SafetensorsCheckpoint, family: string, source: string) {
    this.#ckpt = ckpt;
    this.#family = family;
    this.#source = source;
  }

  /** Whether the checkpoint holds `name`. */
  has(name: string): boolean {
    return this.#ckpt.has(name);
  }

  /** Every tensor name in the checkpoint. */
  names(): string[] {
    return this.#ckpt.names();
  }

  /**
   * Reads `name` as a float32 tensor if it exists with exactly `shape`; otherwise records the problem
   * and returns null.
   */
  async take(name: string, shape: number[]): Promise<Tensor | null> {
    if (!this.#ckpt.has(name)) {
      this.#problems.push(`missing '${name}' (expected shape [${shape}])`);
      return null;
    }
    this.#used.add(name);
    const info = this.#ckpt.info(name);
    if (info.shape.length !== shape.length || info.shape.some((s, i) => s !== shape[i])) {
      this.#problems.push(`'${name}': expected shape [${shape}], found [${info.shape}]`);
      return null;
    }
    const t = toTfTensor(await this.#ckpt.read(name));
    if (t.dtype !== "float32") {
      t.dispose();
      this.#problems.push(`'${name}': expected a float tensor, found ${info.dtype}`);
      return null;
    }
    return t;
  }

  /** Marks a tensor as deliberately unused (e.g. a tied `lm_head.weight` duplicate). */
  ignore(name: string): void {
    this.#used.add(name);
  }

  /**
   * Throws one error listing every problem (freeing `tensors`), or returns `tensors`. Unused checkpoint
   * tensors are an error too, except known non-parameter buffers (causal mask, rotary inv_freq).
   */
  finish(tensors: Map<string, Tensor>): Map<string, Tensor> {
    const buffers =
      /(\.attn\.bias|\.attn\.masked_bias|\.attention\.bias|\.attention\.masked_bias|rotary_emb\.inv_freq)$/;
    const unused = this.#ckpt.names().filter((n) => !this.#used.has(n) && !buffers.test(n));
    const problems = [...this.#problems];
    if (unused.length) {
      problems.push(
        `unexpected tensors not used by the ${this.#family} mapping: ${unused.slice(0, 20).join(", ")}`,
      );
    }
    if (problems.length) {
      tf.dispose([...tensors.values()]);
      const found = this.#ckpt.names();
      throw new Error(
        `${this.#source}: weights do not match a ${this.#family} model with this config.json:\n  ` +
          problems.slice(0, 30).join("\n  ") +
          (problems.length > 30 ? `\n  ... and ${problems.length - 30} more` : "") +
          `\nFound ${found.length} tensors, e.g. ${found.slice(0, 8).join(", ")}`,
      );
    }
    return tensors;
  }
}

/**
 * Transposes a PyTorch Linear weight `[out, in]` to the decoder's `[in, out]`, freeing the input.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { linearToInOut } from "./hf_common.ts";
 * await tf.ready();
 * assert.deepEqual(linearToInOut(tf.zeros([3, 2])).shape, [2, 3]);
 * ```
 *
 * @category Models
 */
export function linearToInOut(t: Tensor): Tensor {
  const out = tf.transpose(t);
  t.dispose();
  return out;
}
