/**
 * Diagnostics the original lacks: a future-token leak test for any causal language model.
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { CausalLM } from "../models/types.ts";
import { Prng } from "../random/prng.ts";

/**
 * Options of {@linkcode causalityCheck}.
 *
 * @category PhaseGPT
 */
export interface CausalityCheckOptions {
  /** The token ids to probe (one row); default `length` seeded random ids. */
  ids?: number[];
  /** Length of the random probe (default 16, at most the model's maxPositions). */
  length?: number;
  /** Seed of the random probe (default 0). */
  seed?: number;
}

/**
 * What {@linkcode causalityCheck} found.
 *
 * @category PhaseGPT
 */
export interface CausalityReport {
  /** Largest |Δ logit| over every earlier position (0 for a causal model). */
  maxEarlierChange: number;
  /** Largest |Δ logit| at each position 0..T−1 (the last one changes by design). */
  perPosition: number[];
  /** Whether no earlier position changed at all. */
  causal: boolean;
}

/**
 * Changes only the last input token and reports the largest logit change at the earlier positions,
 * exactly 0 for a causal model. Runs in eval mode (no dropout) without a cache.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { causalityCheck, createPhaseGPT, initBackend, phaseGPTConfig } from "../../mod.ts";
 * await initBackend({ backend: "cpu" });
 * const model = { nLayers: 2, dModel: 32, nHeads: 2, maxPositions: 16 };
 * const leaky = createPhaseGPT(phaseGPTConfig({ phaseLayers: [0], model, mixer: { numOscillators: 4 } }), 1);
 * assert.ok(causalityCheck(leaky).maxEarlierChange > 0); // the faithful mixer sees the future
 * const fixed = createPhaseGPT(phaseGPTConfig({ phaseLayers: [0], model, mixer: { preset: "corrected", numOscillators: 4 } }), 1);
 * assert.equal(causalityCheck(fixed).maxEarlierChange, 0);
 * leaky.dispose();
 * fixed.dispose();
 * ```
 *
 * @category PhaseGPT
 */
export function causalityCheck(model: CausalLM, options: CausalityCheckOptions = {}): CausalityReport {
  const v = model.config.vocabSize;
  if (v < 2) throw new Error("causalityCheck: the vocabulary needs at least 2 tokens");
  const length = options.ids?.length ?? Math.min(options.length ?? 16, model.config.maxPositions);
  if (!Number.isInteger(length) || length < 2) {
    throw new Error(`causalityCheck: the probe needs at least 2 tokens, got ${length}`);
  }
  const rng = new Prng(options.seed ?? 0);
  const ids = options.ids ?? Array.from({ length }, () => rng.nextInt(v));
  const changed = ids.slice();
  changed[length - 1] = (ids[length - 1] + 1 + rng.nextInt(v - 1)) % v;
  const diff = tf.tidy(() => {
    const run = (row: number[]) => {
      const x = tf.tensor2d([row], [1, length], "int32");
      const out = model.forward(x);
      tf.dispose([
        out.hidden,
        out.residual,
        ...Object.values(out.aux ?? {}),
        ...Object.values(out.metrics ?? {}),
      ]);
      return out.logits;
    };
    return tf.max(tf.abs(tf.sub(run(ids), run(changed))), [0, 2]);
  });
  const perPosition = Array.from(diff.dataSync());
  diff.dispose();
  const maxEarlierChange = Math.max(0, ...perPosition.slice(0, -1));
  return { maxEarlierChange, perPosition, causal: maxEarlierChange === 0 };
}
