/**
 * Diagnostics: a future-token leak test for any causal language model (which the original lacks), and
 * the original's R tracker.
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { CausalLM } from "../models/types.ts";
import { Prng } from "../random/prng.ts";
import type { Tensor } from "../tensor_types.ts";
import { checkChoice, checkOptionKeys } from "../options.ts";
import { ORDER_PARAMETER_DEFINITIONS, orderParameter, type OrderParameterDefinition } from "./primitives.ts";

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

/**
 * Options of {@linkcode CoherenceTracker}.
 *
 * @category PhaseGPT
 */
export interface CoherenceTrackerOptions {
  /** Record R only on steps that are multiples of this (default 100, as the original). */
  logInterval?: number;
  /**
   * The R definition averaged into one number (default `"oscillators"`: R per token and head over the
   * oscillators, then the mean over batch, heads and tokens, as the original's `CoherenceTracker`).
   */
  definition?: OrderParameterDefinition;
}

/**
 * Summary of the R values a {@linkcode CoherenceTracker} recorded.
 *
 * @category PhaseGPT
 */
export interface CoherenceStats {
  /** Number of recorded values. */
  count: number;
  /** Mean of the recorded values. */
  rMean: number;
  /** Population standard deviation (divisor n), as the original's `np.std`. */
  rStd: number;
  /** Smallest recorded value. */
  rMin: number;
  /** Largest recorded value. */
  rMax: number;
  /** The last recorded value. */
  rFinal: number;
}

/**
 * The original's `CoherenceTracker` (spec §3.4): on every `logInterval`-th step, the mean R of a phase
 * tensor is read back and recorded with its step. Steps in between cost nothing (no kernel, no readback);
 * the original computes R on every call and discards it, which gives the same history. Feed it the
 * phases from the `blocks.{L}.attn.hook_phases` hook point, or any `[..., N]` tensor of angles.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CoherenceTracker, initBackend, tf } from "../../mod.ts";
 * await initBackend({ backend: "cpu" });
 * const tracker = new CoherenceTracker({ logInterval: 2 });
 * const inPhase = tf.zeros([1, 1, 3, 8]); // [B, H, T, N], all oscillators aligned: R = 1
 * assert.equal(await tracker.update(inPhase, 0), 1);
 * assert.equal(await tracker.update(inPhase, 1), undefined); // not a logging step
 * assert.deepEqual(tracker.stats(), { count: 1, rMean: 1, rStd: 0, rMin: 1, rMax: 1, rFinal: 1 });
 * tracker.reset();
 * assert.equal(tracker.stats(), undefined);
 * inPhase.dispose();
 * ```
 *
 * @category PhaseGPT
 */
export class CoherenceTracker {
  /** Steps between recorded values. */
  readonly logInterval: number;
  /** The R definition in use. */
  readonly definition: OrderParameterDefinition;
  readonly #steps: number[] = [];
  readonly #values: number[] = [];

  /** A tracker that records every `logInterval`-th step (default 100) under `definition`. */
  constructor(options: CoherenceTrackerOptions = {}) {
    checkOptionKeys(options, ["logInterval", "definition"], "CoherenceTracker");
    const interval = options.logInterval ?? 100;
    if (!Number.isInteger(interval) || interval < 1) {
      throw new Error(`CoherenceTracker: logInterval must be a positive integer, got ${interval}`);
    }
    this.logInterval = interval;
    this.definition = checkChoice(
      options.definition ?? "oscillators",
      ORDER_PARAMETER_DEFINITIONS,
      "CoherenceTracker definition",
    );
  }

  /** Records and returns the mean R of `phases` when `step` is a logging step, else returns undefined. */
  async update(phases: Tensor, step: number): Promise<number | undefined> {
    if (!Number.isInteger(step) || step < 0) {
      throw new Error(`CoherenceTracker.update: step must be a non-negative integer, got ${step}`);
    }
    if (step % this.logInterval !== 0) return undefined;
    const r = tf.tidy(() => tf.mean(orderParameter(phases, this.definition)));
    const value = (await r.data())[0];
    r.dispose();
    this.#steps.push(step);
    this.#values.push(value);
    return value;
  }

  /** Recorded `{ step, r }` pairs, oldest first. */
  get history(): { step: number; r: number }[] {
    return this.#steps.map((step, i) => ({ step, r: this.#values[i] }));
  }

  /** Mean, population std, min, max and last of the recorded values; undefined when none is recorded. */
  stats(): CoherenceStats | undefined {
    const v = this.#values, n = v.length;
    if (n === 0) return undefined;
    const mean = v.reduce((a, b) => a + b, 0) / n;
    const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
    return {
      count: n,
      rMean: mean,
      rStd: Math.sqrt(variance),
      rMin: Math.min(...v),
      rMax: Math.max(...v),
      rFinal: v[n - 1],
    };
  }

  /** Forgets every recorded value. */
  reset(): void {
    this.#steps.length = 0;
    this.#values.length = 0;
  }
}
