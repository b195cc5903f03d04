/**
 * Per-unit outcomes of a Recync experiment (spec §4.5, §4.6, §8.13), computed from plain per-step
 * traces of the two arms of a unit, so they can be recomputed from a results file at any time.
 *
 * Coordinates: generated steps t = 0 … T−1. Token y_t is sampled from h_t; cosim(t) = cos(h_t, h_{t−1})
 * exists for t ≥ 1 (index 0 holds null). The comparison segment is [from, T) with from = r, the rewind
 * point onset − 3 of the first baseline crisis (option `segment: "whole"` uses [1, T) instead).
 *
 * Crisis extent: a confirmed crisis covers the steps from its onset up to (not including) the first
 * later step that is no longer in crisis (the re-arming value), exactly the monitor's `inCrisis` flags.
 *
 * Outcomes, each named (all "lower is better" except `meanCosim`):
 * - `crisisFraction` (default PIR, spec (a)): share of steps of the segment inside a confirmed crisis.
 * - `crisisCount` (spec (b)): confirmed crises whose extent overlaps the segment.
 * - `shortfall` (spec (c)): Σ max(0, thr − cosim) over tested steps of the segment / segment length.
 * - `meanCosim` (spec (d), higher is better): mean cosim over the segment.
 *
 * Per-unit improvement Δ_u (positive = the intervention helped): baseline − intervention for the
 * lower-is-better outcomes, intervention − baseline for `meanCosim`.
 *
 * Iatrogenic flags (on the primary outcome): `strictWorse` Δ_u < 0 (primary), `worseBy` Δ_u < −δ
 * (δ = 0.05 default), `newCrisis` the intervention has a crisis in the segment while the baseline has
 * none there (vacuous over [r, T), where the baseline's own crisis starts at r + 3: spec §4.6).
 * Crisis-free: the intervention's segment holds no confirmed crisis.
 *
 * @module
 */

/**
 * The fields of a crisis event the metrics need (a subset of the monitor's `CrisisEvent`).
 *
 * @category Recync
 */
export interface RecyncEventLike {
  /** First step of the low run. */
  onset: number;
  /** Step of the k-th low value. */
  confirmedAt: number;
}

/**
 * One arm's per-step record, index = generated step t (JSON-safe: null where undefined).
 *
 * @category Recync
 */
export interface RecyncArmTrace {
  /** Generated tokens y_0 … y_{T−1}. */
  tokens: number[];
  /** cosim(t); null at t = 0 (and wherever it was not finite). */
  cosim: (number | null)[];
  /** Threshold cosim(t) was compared with; null during warm-up. */
  thr: (number | null)[];
  /** cosim(t) < thr(t). */
  low: boolean[];
  /** Step t lies inside a confirmed crisis. */
  inCrisis: boolean[];
  /** Confirmed crises of this (final) sequence, in order. */
  events: RecyncEventLike[];
}

/**
 * The names of the outcome variants (spec §4.5 a-d).
 *
 * @category Recync
 */
export type RecyncOutcomeName = "crisisFraction" | "crisisCount" | "shortfall" | "meanCosim";

/**
 * All outcome variant names, primary first.
 *
 * @category Recync
 */
export const RECYNC_OUTCOMES: readonly RecyncOutcomeName[] = [
  "crisisFraction",
  "crisisCount",
  "shortfall",
  "meanCosim",
];

/**
 * Text-quality proxies of one arm's segment.
 *
 * @category Recync
 */
export interface RecyncTextMetrics {
  /** Unique unigrams / unigrams. */
  distinct1: number;
  /** Unique bigrams / bigrams. */
  distinct2: number;
  /** Unique trigrams / trigrams. */
  distinct3: number;
  /**
   * Share of segment positions whose trigram (ending there) already occurred earlier in the generated
   * sequence, prefix included: a looping measure.
   */
  repetitionRate: number;
}

/**
 * One arm's outcomes over the segment.
 *
 * @category Recync
 */
export interface RecyncArmMetrics extends RecyncTextMetrics {
  /** Share of segment steps inside a confirmed crisis. */
  crisisFraction: number;
  /** Confirmed crises overlapping the segment. */
  crisisCount: number;
  /** Mean shortfall below the threshold. */
  shortfall: number;
  /** Mean cosim over the segment. */
  meanCosim: number;
  /** Confirmed crises over the whole sequence. */
  crisesTotal: number;
}

/**
 * Where the outcome window of a unit starts (issue 13), the same for both arms:
 * - `from-rewind` (default): [r, T), r the intervention arm's first rewind point (the spec's window).
 * - `after-confirm`: from the baseline's confirmation of its first crisis + 1 (or r, if later).
 * - `after-crisis`: from the end of the baseline's first crisis (the first step after its extent; or r,
 *   if later), so the window no longer holds the crisis that selected the unit.
 * Units whose baseline has no crisis (sham-random) use r under every mode.
 *
 * @category Recync
 */
export type RecyncOutcomeWindow = "from-rewind" | "after-confirm" | "after-crisis";

/**
 * All outcome window names, default first.
 *
 * @category Recync
 */
export const RECYNC_OUTCOME_WINDOWS: readonly RecyncOutcomeWindow[] = [
  "from-rewind",
  "after-confirm",
  "after-crisis",
];

/**
 * The first step of a unit's outcome window (may be ≥ T: then the unit has no outcome under that mode).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { outcomeWindowStart } from "./metrics.ts";
 * const baseline = { events: [{ onset: 5, confirmedAt: 7 }], inCrisis: [0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0].map(Boolean) };
 * const starts = ["from-rewind", "after-confirm", "after-crisis"].map((w) => outcomeWindowStart(w as never, 2, baseline));
 * assert.deepEqual(starts, [2, 8, 9]);
 * ```
 *
 * @category Recync
 */
export function outcomeWindowStart(
  window: RecyncOutcomeWindow,
  r: number,
  baseline: Pick<RecyncArmTrace, "events" | "inCrisis">,
): number {
  if (window === "from-rewind" || baseline.events.length === 0) return r;
  if (window === "after-confirm") return Math.max(r, baseline.events[0].confirmedAt + 1);
  if (window === "after-crisis") return Math.max(r, crisisExtents(baseline)[0][1]);
  throw new RangeError(`unknown outcome window "${window}": use ${RECYNC_OUTCOME_WINDOWS.join(", ")}`);
}

/**
 * Options of {@link computeUnitMetrics}.
 *
 * @category Recync
 */
export interface UnitMetricsOptions {
  /** `"afterRewind"` (default): the outcome window below; `"whole"`: [1, T). */
  segment?: "afterRewind" | "whole";
  /** Outcome window of the `"afterRewind"` segment (default `"from-rewind"`, [r, T)). */
  window?: RecyncOutcomeWindow;
  /** Primary outcome for the iatrogenic flags (default `"crisisFraction"`). */
  primary?: RecyncOutcomeName;
  /** Margin δ of `worseBy` (default 0.05). */
  worseByDelta?: number;
}

/**
 * All per-unit metrics of an intervened unit.
 *
 * @category Recync
 */
export interface RecyncUnitMetrics {
  /** Segment start (r, or 1 for "whole"). */
  from: number;
  /** Segment end (exclusive), T. */
  to: number;
  /** Which segment the outcomes cover. */
  segment: "afterRewind" | "whole";
  /** The outcome window mode (of the "afterRewind" segment). */
  window: RecyncOutcomeWindow;
  /** Outcomes of the baseline arm. */
  baseline: RecyncArmMetrics;
  /** Outcomes of the intervention arm. */
  intervention: RecyncArmMetrics;
  /** Δ_u per outcome variant (positive = improvement). */
  delta: Record<RecyncOutcomeName, number>;
  /** Which outcome the iatrogenic flags use. */
  primary: RecyncOutcomeName;
  /** Iatrogenic flags. */
  iatrogenic: { strictWorse: boolean; newCrisis: boolean; worseBy: boolean; worseByDelta: number };
  /** The intervention's segment has no confirmed crisis. */
  crisisFree: boolean;
}

/**
 * Extents [start, end) of the confirmed crises of an arm, from its events and `inCrisis` flags.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { crisisExtents } from "./metrics.ts";
 * const inCrisis = [false, false, true, true, true, true, false];
 * assert.deepEqual(crisisExtents({ events: [{ onset: 2, confirmedAt: 4 }], inCrisis }), [[2, 6]]);
 * ```
 *
 * @category Recync
 */
export function crisisExtents(arm: Pick<RecyncArmTrace, "events" | "inCrisis">): [number, number][] {
  const T = arm.inCrisis.length;
  return arm.events.map((e) => {
    let end = e.confirmedAt + 1;
    while (end < T && arm.inCrisis[end]) end++;
    return [e.onset, end] as [number, number];
  });
}

/**
 * distinct-n and the trigram repetition rate of tokens[from, to), with the earlier tokens as history.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { textMetrics } from "./metrics.ts";
 * const m = textMetrics([1, 2, 3, 1, 2, 3, 1, 2, 3], 0, 9);
 * assert.ok(Math.abs(m.distinct1 - 1 / 3) < 1e-12);
 * assert.ok(Math.abs(m.repetitionRate - 4 / 7) < 1e-12); // 4 of 7 trigrams repeat
 * ```
 *
 * @category Recync
 */
export function textMetrics(tokens: readonly number[], from: number, to: number): RecyncTextMetrics {
  const seg = tokens.slice(from, to);
  const distinct = (n: number): number => {
    if (seg.length < n) return NaN;
    const seen = new Set<string>();
    for (let i = 0; i + n <= seg.length; i++) seen.add(seg.slice(i, i + n).join(","));
    return seen.size / (seg.length - n + 1);
  };
  const earlier = new Set<string>();
  let repeats = 0, counted = 0;
  for (let t = 2; t < to; t++) {
    const key = `${tokens[t - 2]},${tokens[t - 1]},${tokens[t]}`;
    if (t >= from) {
      counted++;
      if (earlier.has(key)) repeats++;
    }
    earlier.add(key);
  }
  return {
    distinct1: distinct(1),
    distinct2: distinct(2),
    distinct3: distinct(3),
    repetitionRate: counted > 0 ? repeats / counted : NaN,
  };
}

/**
 * One arm's outcomes over the segment [from, to).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { armMetrics } from "./metrics.ts";
 * const arm = {
 *   tokens: [5, 6, 7, 8], cosim: [null, 0.9, 0.5, 0.95], thr: [null, 0.8, 0.8, 0.8],
 *   low: [false, false, true, false], inCrisis: [false, false, false, false], events: [],
 * };
 * assert.ok(Math.abs(armMetrics(arm, 1, 4).shortfall - 0.1) < 1e-9);
 * ```
 *
 * @category Recync
 */
export function armMetrics(arm: RecyncArmTrace, from: number, to: number): RecyncArmMetrics {
  const len = to - from;
  if (!(len > 0)) throw new RangeError(`armMetrics: empty segment [${from}, ${to})`);
  let inCrisis = 0, shortfall = 0, cosSum = 0, cosN = 0;
  for (let t = from; t < to; t++) {
    if (arm.inCrisis[t]) inCrisis++;
    const c = arm.cosim[t], thr = arm.thr[t];
    if (c !== null && c !== undefined) {
      cosSum += c;
      cosN++;
      if (thr !== null && thr !== undefined) shortfall += Math.max(0, thr - c);
    }
  }
  const extents = crisisExtents(arm);
  return {
    crisisFraction: inCrisis / len,
    crisisCount: extents.filter(([s, e]) => e > from && s < to).length,
    shortfall: shortfall / len,
    meanCosim: cosN > 0 ? cosSum / cosN : NaN,
    crisesTotal: arm.events.length,
    ...textMetrics(arm.tokens, from, to),
  };
}

/**
 * All per-unit metrics for an intervened unit with rewind point `r` (spec §4.5-4.6).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { computeUnitMetrics } from "./metrics.ts";
 * const T = 6;
 * const arm = (inCrisis: boolean[]) => ({
 *   tokens: [1, 2, 3, 4, 5, 6], cosim: [null, 0.9, 0.9, 0.9, 0.9, 0.9], thr: Array(T).fill(null),
 *   low: Array(T).fill(false), inCrisis, events: inCrisis.some(Boolean) ? [{ onset: 3, confirmedAt: 5 }] : [],
 * });
 * const m = computeUnitMetrics(arm([false, false, false, true, true, true]), arm(Array(T).fill(false)), 2);
 * assert.equal(m.delta.crisisFraction, 0.75);
 * assert.equal(m.crisisFree, true);
 * ```
 *
 * @category Recync
 */
export function computeUnitMetrics(
  baseline: RecyncArmTrace,
  intervention: RecyncArmTrace,
  r: number,
  options: UnitMetricsOptions = {},
): RecyncUnitMetrics {
  const segment = options.segment ?? "afterRewind";
  const primary = options.primary ?? "crisisFraction";
  const delta0 = options.worseByDelta ?? 0.05;
  const T = baseline.tokens.length;
  if (intervention.tokens.length !== T) {
    throw new RangeError(
      `computeUnitMetrics: arms differ in length (baseline ${T}, intervention ${intervention.tokens.length}); ` +
        "both arms must be generated to the same T",
    );
  }
  if (!Number.isInteger(r) || r < 0 || r >= T) {
    throw new RangeError(`computeUnitMetrics: r=${r} outside [0, ${T})`);
  }
  const window = options.window ?? "from-rewind";
  const from = segment === "whole" ? 1 : outcomeWindowStart(window, r, baseline);
  if (from >= T) {
    throw new RangeError(`computeUnitMetrics: the ${window} window starts at ${from}, not before T=${T}`);
  }
  const b = armMetrics(baseline, from, T);
  const i = armMetrics(intervention, from, T);
  const delta = {
    crisisFraction: b.crisisFraction - i.crisisFraction,
    crisisCount: b.crisisCount - i.crisisCount,
    shortfall: b.shortfall - i.shortfall,
    meanCosim: i.meanCosim - b.meanCosim,
  };
  const d = delta[primary];
  return {
    from,
    to: T,
    segment,
    window,
    baseline: b,
    intervention: i,
    delta,
    primary,
    iatrogenic: {
      strictWorse: d < 0,
      worseBy: d < -delta0,
      newCrisis: i.crisisCount > 0 && b.crisisCount === 0,
      worseByDelta: delta0,
    },
    crisisFree: i.crisisCount === 0,
  };
}
