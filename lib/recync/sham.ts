/**
 * Sham and control arms of the Recync design (issue 13): restarts that are not triggered by the row's own
 * crisis, so that the effect of *any* redraw after a rewind point can be told from the effect of a redraw
 * at a crisis.
 *
 * - `sham-random`: rewind at a step drawn uniformly from the eligible range, no crisis required.
 * - `sham-matched`: for a unit whose baseline has a crisis, rewind at a step drawn uniformly from the
 *   non-crisis steps earlier than the v4 rewind point (onset − rewindOffset); units without a baseline
 *   crisis are not restarted.
 *
 * Eligible range [lo, hi]: the rewind points a v4 restart can produce under the same monitor settings,
 * lo = max(1, W + 1 − rewindOffset) (earliest onset after a full warm-up of W values, minus the offset;
 * 1 with a partial warm-up) and hi = T − k − rewindOffset (the latest onset whose k-th low value is still
 * inside T, minus the offset). With the defaults (W = 20, k = 3, offset 3): [18, T − 6].
 *
 * Every draw comes from a {@link Prng} seeded with the unit's seed on a stream derived from the prompt
 * id and the policy name ({@link shamStream}), so a unit's sham point does not depend on the batch, the
 * shard or which other policies run beside it.
 *
 * @module
 */
import { Prng } from "../random/prng.ts";

/**
 * The sham policies.
 *
 * @category Recync
 */
export type ShamKind = "sham-random" | "sham-matched";

/**
 * The eligible range of rewind points [lo, hi] (inclusive).
 *
 * @category Recync
 */
export interface ShamRange {
  /** Smallest rewind point. */
  lo: number;
  /** Largest rewind point. */
  hi: number;
}

/**
 * What the range depends on (monitor and restart settings).
 *
 * @category Recync
 */
export interface ShamRangeOptions {
  /** Generated tokens per arm. */
  T: number;
  /** Monitor window W (default 20). */
  window?: number;
  /** Consecutive lows k (default 3). */
  k?: number;
  /** v4 rewind offset (default 3). */
  rewindOffset?: number;
  /** Monitor warm-up (default "full"). */
  warmup?: "full" | "partial";
}

/**
 * The eligible rewind range for a sham restart (see the module notes); hi < lo when T is too short.
 *
 * @example
 * ```ts
 * import { shamEligibleRange } from "./sham.ts";
 * console.log(shamEligibleRange({ T: 100 })); // { lo: 18, hi: 94 }
 * ```
 *
 * @category Recync
 */
export function shamEligibleRange(options: ShamRangeOptions): ShamRange {
  const W = options.window ?? 20, k = options.k ?? 3, off = options.rewindOffset ?? 3;
  const lo = (options.warmup ?? "full") === "full" ? Math.max(1, W + 1 - off) : 1;
  return { lo, hi: options.T - k - off };
}

/**
 * A 32-bit stream id from a prompt id and a policy name (FNV-1a), so each (prompt, policy) of a seed
 * draws from its own stream.
 *
 * @example
 * ```ts
 * import { shamStream } from "./sham.ts";
 * console.log(shamStream("p1", "sham-random") === shamStream("p1", "sham-random")); // true
 * ```
 *
 * @category Recync
 */
export function shamStream(promptId: string, policy: string): number {
  let h = 0x811c9dc5;
  for (const ch of `${promptId}|${policy}`) {
    h ^= ch.codePointAt(0)!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * The seeded generator of one unit's sham draws.
 *
 * @category Recync
 */
export function shamRng(seed: number, promptId: string, policy: string): Prng {
  return new Prng(seed, shamStream(promptId, policy));
}

/**
 * sham-random: a rewind point drawn uniformly from [lo, hi], or null when the range is empty.
 *
 * @example
 * ```ts
 * import { Prng } from "../random/prng.ts";
 * import { shamRandomPoint } from "./sham.ts";
 * const s = shamRandomPoint(new Prng(1), { lo: 18, hi: 94 });
 * console.log(s !== null && s >= 18 && s <= 94); // true
 * ```
 *
 * @category Recync
 */
export function shamRandomPoint(rng: Prng, range: ShamRange): number | null {
  if (range.hi < range.lo) return null;
  return range.lo + rng.nextInt(range.hi - range.lo + 1);
}

/**
 * sham-matched: a rewind point drawn uniformly from the steps s in [lo, onset − rewindOffset) with
 * `inCrisis[s]` false (steps the baseline had not flagged; all of them before its first crisis), or null
 * when there is none.
 *
 * @example
 * ```ts
 * import { Prng } from "../random/prng.ts";
 * import { shamMatchedPoint } from "./sham.ts";
 * const s = shamMatchedPoint(new Prng(1), 30, Array(60).fill(false), { lo: 18, rewindOffset: 3 });
 * console.log(s !== null && s >= 18 && s < 27); // true
 * ```
 *
 * @category Recync
 */
export function shamMatchedPoint(
  rng: Prng,
  onset: number,
  inCrisis: readonly boolean[],
  options: { lo: number; rewindOffset?: number },
): number | null {
  const end = onset - (options.rewindOffset ?? 3);
  const candidates: number[] = [];
  for (let s = Math.max(0, options.lo); s < end; s++) if (!inCrisis[s]) candidates.push(s);
  if (candidates.length === 0) return null;
  return candidates[rng.nextInt(candidates.length)];
}

/**
 * A scheduled rewind for one sham row: where to, and from which step on it may act.
 *
 * @category Recync
 */
export interface ShamDecision {
  /** Rewind point. */
  r: number;
  /** The baseline crisis it is matched to (sham-matched), or null. */
  onset: number | null;
  /** The step at which the decision was taken. */
  decidedAt: number;
}

/**
 * The per-row state machine of a sham arm. Feed it each step t with the baseline row's first confirmed
 * crisis (if any yet) and the baseline's `inCrisis` flags; it returns the rewind to perform once, at the
 * first step t ≥ s (sham-random) or at the step the baseline's crisis is confirmed (sham-matched).
 *
 * @example
 * ```ts
 * import { ShamScheduler } from "./sham.ts";
 * const sched = new ShamScheduler("sham-random", 7, "p", { T: 100 });
 * let d = null;
 * for (let t = 1; t < 100 && !d; t++) d = sched.observe(t, null, []);
 * console.log(d?.r === sched.plannedPoint); // true
 * ```
 *
 * @category Recync
 */
export class ShamScheduler {
  /** The sham kind. */
  readonly kind: ShamKind;
  /** Eligible range. */
  readonly range: ShamRange;
  /** sham-random: the drawn point (null if the range is empty); sham-matched: set once drawn. */
  plannedPoint: number | null = null;
  /** The decision, once taken. */
  decision: ShamDecision | null = null;
  readonly #rng: Prng;
  readonly #rewindOffset: number;

  /** A scheduler for the unit (seed, promptId) under the range options. */
  constructor(kind: ShamKind, seed: number, promptId: string, options: ShamRangeOptions) {
    this.kind = kind;
    this.range = shamEligibleRange(options);
    this.#rewindOffset = options.rewindOffset ?? 3;
    this.#rng = shamRng(seed, promptId, kind);
    if (kind === "sham-random") this.plannedPoint = shamRandomPoint(this.#rng, this.range);
  }

  /**
   * Step t of the sham row. `baselineEvent` is the baseline's first confirmed crisis so far (null if none
   * yet); `baselineInCrisis` its flags up to t. Returns a decision exactly once, else null.
   */
  observe(
    t: number,
    baselineEvent: { onset: number; confirmedAt: number } | null,
    baselineInCrisis: readonly boolean[],
  ): ShamDecision | null {
    if (this.decision) return null;
    if (this.kind === "sham-random") {
      if (this.plannedPoint === null || t < this.plannedPoint) return null;
      this.decision = { r: this.plannedPoint, onset: null, decidedAt: t };
      return this.decision;
    }
    if (!baselineEvent || t < baselineEvent.confirmedAt) return null;
    const s = shamMatchedPoint(this.#rng, baselineEvent.onset, baselineInCrisis, {
      lo: this.range.lo,
      rewindOffset: this.#rewindOffset,
    });
    this.plannedPoint = s;
    if (s === null) {
      this.decision = { r: -1, onset: baselineEvent.onset, decidedAt: t };
      return null;
    }
    this.decision = { r: s, onset: baselineEvent.onset, decidedAt: t };
    return this.decision;
  }
}
