/**
 * Token-level cross-entropy and the evaluation metrics built on it.
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Tensor, Tensor1D } from "../tensor_types.ts";
import { gatherRows } from "../nn/embedding.ts";

/**
 * Mean cross-entropy over every position: logits [B, T, V] (or [N, V]) against integer targets [B, T]
 * (or [N]). Uses a numerically stable log-softmax and gathers the target column, so no one-hot matrix
 * of size N × V is built.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../deps.ts";
 * import { crossEntropy } from "./loss.ts";
 * import { initBackend } from "../backend/backend.ts";
 * await initBackend({ backend: "cpu" });
 * const logits = tf.zeros([1, 2, 4]) as tf.Tensor3D; // uniform over 4 tokens
 * const loss = crossEntropy(logits, tf.tensor2d([[0, 3]], [1, 2], "int32"));
 * assert.ok(Math.abs(loss.dataSync()[0] - Math.log(4)) < 1e-5); // ln 4 ≈ 1.386
 * ```
 *
 * @category Training
 */
export function crossEntropy(logits: Tensor, targets: Tensor): Tensor {
  return tf.tidy(() => tokenLosses(logits, targets).mean() as Tensor);
}

/**
 * Per-position cross-entropy, shape [N] for N = B·T positions (row-major over batch then time).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../deps.ts";
 * import { tokenLosses } from "./loss.ts";
 * import { initBackend } from "../backend/backend.ts";
 * await initBackend({ backend: "cpu" });
 * const l = tokenLosses(tf.tensor2d([[0, 0]]), tf.tensor1d([1], "int32"));
 * assert.deepEqual(l.shape, [1]);
 * ```
 *
 * @category Training
 */
export function tokenLosses(logits: Tensor, targets: Tensor): Tensor1D {
  const V = logits.shape[logits.rank - 1];
  const N = targets.size;
  if (logits.size !== N * V) {
    throw new Error(`crossEntropy: logits [${logits.shape}] do not match targets [${targets.shape}]`);
  }
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits.reshape([N, V]));
    const flatIdx = tf.range(0, N, 1, "int32").mul(tf.scalar(V, "int32")).add(targets.reshape([N]).toInt());
    return gatherRows(logp.reshape([N * V]), flatIdx as Tensor1D).neg() as Tensor1D;
  });
}

/**
 * How to turn per-batch evaluation losses into the reported numbers.
 * - `"token_mean"` (default): loss = total token CE / total tokens; perplexity = exp(loss).
 * - `"batch_mean_exp"`: loss = mean of per-batch mean CE; perplexity = mean of exp(per-batch mean CE)
 *   (PhaseGPT's `val_perplexity`; ≥ exp(loss) by Jensen).
 * - `"batch_mean"`: loss = mean of per-batch mean CE; perplexity = exp(loss) (nanoGPT's `estimate_loss`).
 * - PhaseGPT's three (spec §4.4), by the script that computes them: `"phasegpt_train"` (`src/train.py`,
 *   every Phase A number) = `batch_mean_exp`; `"phasegpt_evaluate"` (`src/evaluate.py`, one example per
 *   line) and `"phasegpt_generalize"` (`scripts/train_generalize.py`) = `token_mean` (exp of Σ CE / Σ tokens).
 *
 * @category Training
 */
export type PerplexityDefinition =
  | "token_mean"
  | "batch_mean_exp"
  | "batch_mean"
  | "phasegpt_train"
  | "phasegpt_evaluate"
  | "phasegpt_generalize";

/**
 * Perplexity definition names, for validation messages.
 *
 * @category Training
 */
export const PERPLEXITY_DEFINITIONS: readonly PerplexityDefinition[] = [
  "token_mean",
  "batch_mean_exp",
  "batch_mean",
  "phasegpt_train",
  "phasegpt_evaluate",
  "phasegpt_generalize",
];

/** The PhaseGPT names resolve to the arithmetic they use. */
const PERPLEXITY_ALIASES: Partial<Record<PerplexityDefinition, PerplexityDefinition>> = {
  phasegpt_train: "batch_mean_exp",
  phasegpt_evaluate: "token_mean",
  phasegpt_generalize: "token_mean",
};

/**
 * The loss and perplexity of an evaluation.
 *
 * @category Training
 */
export interface EvalSummary {
  /** Mean token loss (nats) under the chosen definition. */
  loss: number;
  /** Perplexity under the chosen definition. */
  perplexity: number;
  /** Tokens scored. */
  tokens: number;
  /** Mean of each auxiliary loss term over the batches (variants whose components report some). */
  terms?: Record<string, number>;
  /** Mean of each component metric over the batches. */
  metrics?: Record<string, number>;
}

/**
 * Combines per-batch mean losses (each over `tokensPerBatch[i]` tokens) under one definition.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { summariseEval } from "./loss.ts";
 * assert.equal(summariseEval([1, 3], [10, 10], "token_mean").loss, 2);
 * const ppl = summariseEval([1, 3], [10, 10], "batch_mean_exp").perplexity;
 * assert.ok(Math.abs(ppl - (Math.E + Math.E ** 3) / 2) < 1e-9); // mean of per-batch exp(loss)
 * assert.equal(summariseEval([1, 3], [10, 30], "phasegpt_train").perplexity, ppl); // src/train.py's
 * assert.equal(summariseEval([1, 3], [10, 30], "phasegpt_generalize").loss, 2.5); // token-weighted
 * ```
 *
 * @category Training
 */
export function summariseEval(
  batchLosses: number[],
  tokensPerBatch: number[],
  definition: PerplexityDefinition = "token_mean",
): EvalSummary {
  if (batchLosses.length === 0) throw new Error("summariseEval: no batches were evaluated");
  const tokens = tokensPerBatch.reduce((a, b) => a + b, 0);
  switch (PERPLEXITY_ALIASES[definition] ?? definition) {
    case "token_mean": {
      const loss = batchLosses.reduce((a, l, i) => a + l * tokensPerBatch[i], 0) / tokens;
      return { loss, perplexity: Math.exp(loss), tokens };
    }
    case "batch_mean": {
      const loss = batchLosses.reduce((a, b) => a + b, 0) / batchLosses.length;
      return { loss, perplexity: Math.exp(loss), tokens };
    }
    case "batch_mean_exp": {
      const loss = batchLosses.reduce((a, b) => a + b, 0) / batchLosses.length;
      const perplexity = batchLosses.reduce((a, b) => a + Math.exp(b), 0) / batchLosses.length;
      return { loss, perplexity, tokens };
    }
    default:
      throw new Error(
        `unknown perplexity definition '${definition}': use one of ${PERPLEXITY_DEFINITIONS.join(", ")}`,
      );
  }
}
