/**
 * Qwen2 (`model_type: "qwen2"`): the Llama layout plus biases on the q, k and v projections (none on o),
 * usually tied embeddings in small sizes. Sliding-window attention is refused when it would apply.
 *
 * @module
 */
import { type HFConfig, type HFFamily, hfField } from "./hf_common.ts";
import { llamaStyleConfig, llamaStyleWeights } from "./llama.ts";
import type { DecoderConfig } from "./types.ts";

/**
 * Translates a Qwen2 `config.json` into a DecoderConfig.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { qwen2Config } from "./qwen2.ts";
 * const c = qwen2Config({ hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2,
 *   intermediate_size: 128, vocab_size: 512, tie_word_embeddings: true, rope_theta: 1000000 });
 * assert.deepEqual([c.qkvBias, c.attnOutBias, c.tieEmbeddings], [true, false, true]);
 * ```
 *
 * @category Models
 */
export function qwen2Config(hf: HFConfig, file = "config.json"): DecoderConfig {
  const c = llamaStyleConfig(hf, file, "qwen2");
  const window = hfField(hf, "sliding_window", "number", file, c.maxPositions);
  if (hfField(hf, "use_sliding_window", "boolean", file, false)) {
    if (window < c.maxPositions) {
      throw new Error(
        `${file}: use_sliding_window with sliding_window=${window} is not supported (full attention only)`,
      );
    }
  }
  return { ...c, qkvBias: true, attnOutBias: false, mlpBias: false };
}

/**
 * The Qwen2 family adapter used by `loadModel` (Llama weight layout, q/k/v biases).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { qwen2Family } from "./qwen2.ts";
 * assert.deepEqual(qwen2Family.modelTypes, ["qwen2"]);
 * ```
 *
 * @category Models
 */
export const qwen2Family: HFFamily = {
  modelTypes: ["qwen2"],
  config: qwen2Config,
  weights: (r, c: DecoderConfig, hf?: HFConfig) => llamaStyleWeights(r, c, hf),
};
