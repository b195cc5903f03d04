/**
 * The cosim crisis detector of Recync (spec §2): a streaming monitor of the cosine similarity between
 * consecutive final hidden states, raising a "crisis" when k consecutive values fall strictly below
 * mean − α·std of a causal baseline window.
 *
 * It is a **coherence-dip trigger**, not a failure classifier: on i.i.d. Gaussian noise with the default
 * settings it fires in about 86 % of 100-step generations (spec §2.6; checked in the tests).
 *
 * Conventions, in one place:
 * - **Steps.** cosim(t) compares h_t with h_{t−1}, so the first value is step 1; `push` numbers steps
 *   1, 2, 3, … when no step is given.
 * - **Cosine.** `cosineSimilarity(a, b) = ⟨a, b⟩ / max(‖a‖·‖b‖, 1e-8)`, accumulated in float64. A
 *   zero-norm vector therefore gives cosine 0 (a maximal dip, not NaN). Any non-finite entry gives NaN.
 * - **Non-finite cosim.** A NaN or ±Infinity value pushed into the monitor never enters the window. By
 *   default (`nonFinite: "throw"`) it throws an error naming the step; `"low"` counts it as a
 *   below-threshold value (a numerically broken state is treated as a dip; its severity is +Infinity);
 *   `"skip"` consumes the step without changing any state.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CosimMonitor } from "./monitor.ts";
 * const monitor = new CosimMonitor();
 * const trace = [...Array(20).fill(0).map((_, i) => 0.9 + (i % 2 ? 0.01 : -0.01)), 0.5, 0.5, 0.5];
 * const events = trace.map((v) => monitor.push(v)).filter((e) => e !== null);
 * assert.deepEqual(events.map((e) => [e.onset, e.confirmedAt]), [[21, 23]]);
 * ```
 *
 * @module
 */

/**
 * Which values enter the baseline window (spec §2.2).
 *
 * @category Recync
 */
export type CosimWindowMode = "excludeConfirmed" | "all" | "acceptNonLow";

/**
 * Severity bucket of a crisis (spec §2.5; the edges are placeholders).
 *
 * @category Recync
 */
export type SeverityBucket = "low" | "mid" | "high";

/**
 * Options of {@link CosimMonitor}; every default is the spec's [TS] choice.
 *
 * @category Recync
 */
export interface CosimMonitorOptions {
  /** Baseline window length W. Default 20 [R]. */
  window?: number;
  /** Threshold factor α in mean − α·std. Default 0.6 [R]. */
  alpha?: number;
  /** Consecutive below-threshold values that raise a crisis. Default 3 [R]. */
  k?: number;
  /** Default `"excludeConfirmed"` [TS]. `"acceptNonLow"` drifts upward; avoid it (spec §2.2). */
  windowMode?: CosimWindowMode;
  /** `"full"` (default): no test before the window holds W values; `"partial"`: test from 2 values. */
  warmup?: "full" | "partial";
  /** Standard-deviation estimator: 0 (population, default) or 1 (sample). */
  stdDdof?: 0 | 1;
  /** Severity bucket edges [low/mid, mid/high]. Default [1, 2] (placeholders, spec §2.5). */
  severityEdges?: [number, number];
  /** Policy for NaN/±Infinity values (see the module doc). Default `"throw"`. */
  nonFinite?: "throw" | "low" | "skip";
  /** Keep a {@link CosimStepRecord} per step in {@link CosimMonitor.trace} (for plots). Default true. */
  recordTrace?: boolean;
}

/**
 * A confirmed crisis (spec §2.4).
 *
 * @category Recync
 */
export interface CrisisEvent {
  /** Step of the first of the k consecutive low values. */
  onset: number;
  /** Step at which the k-th low value arrived (onset + k − 1). */
  confirmedAt: number;
  /** Threshold in force at the onset step. */
  thresholdAtOnset: number;
  /** The k low values, onset first. */
  runValues: number[];
  /** Threshold in force at each run step (constant in `excludeConfirmed`/`acceptNonLow` modes). */
  runThresholds: number[];
  /** Window mean at the onset step. */
  windowMean: number;
  /** Window standard deviation (with the chosen ddof) at the onset step. */
  windowStd: number;
  /** (thresholdAtOnset − min(runValues)) / max(windowStd, 1e-6); +Infinity if a run value is non-finite. */
  severity: number;
  /** Bucket of `severity` under the monitor's `severityEdges`. */
  bucket: SeverityBucket;
}

/**
 * What the monitor saw at one step; `thr`, `windowMean`, `windowStd` are null while warming up.
 *
 * @category Recync
 */
export interface CosimStepRecord {
  /** Generated-step index (cosim(step) compares h_step with h_{step−1}). */
  step: number;
  /** The value pushed. */
  cosim: number;
  /** Threshold the value was compared with (null during warm-up or for a skipped non-finite value). */
  thr: number | null;
  /** Window mean behind `thr`. */
  windowMean: number | null;
  /** Window standard deviation behind `thr`. */
  windowStd: number | null;
  /** cosim < thr (strict); false during warm-up. */
  low: boolean;
  /** Whether this step lies inside a confirmed crisis (from its onset until re-arming). */
  inCrisis: boolean;
  /** The event confirmed at this step, if any. */
  event: CrisisEvent | null;
}

/** A low value waiting for the run to reach k. */
interface PendingLow {
  step: number;
  value: number;
  thr: number;
  mean: number;
  std: number;
}

/**
 * Complete, JSON-serialisable detector state ({@link CosimMonitor.snapshot}).
 *
 * @category Recync
 */
export interface CosimMonitorState {
  /** Window contents, oldest first. */
  window: number[];
  /** The current run of low values (not yet confirmed), oldest first. */
  pending: { step: number; value: number; thr: number; mean: number; std: number }[];
  /** True between a confirmation and the next value ≥ thr. */
  inCrisis: boolean;
  /** Last step pushed (0 before the first). */
  lastStep: number;
}

/**
 * {@link CosimMonitorOptions} with every default filled in.
 *
 * @category Recync
 */
export type ResolvedCosimMonitorOptions = Required<CosimMonitorOptions>;

/**
 * The eps of the cosine convention (spec §2.1).
 *
 * @category Recync
 */
export const COSIM_EPS = 1e-8;

/**
 * Cosine similarity ⟨a, b⟩ / max(‖a‖·‖b‖, 1e-8), accumulated in float64. Zero-norm input gives 0; any
 * non-finite entry gives NaN (which {@link CosimMonitor} refuses by default).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cosineSimilarity } from "./monitor.ts";
 * assert.ok(Math.abs(cosineSimilarity(new Float32Array([1, 0]), new Float32Array([1, 1])) - Math.SQRT1_2) < 1e-6);
 * assert.equal(cosineSimilarity(new Float32Array([0, 0]), new Float32Array([1, 1])), 0); // zero vector: 0
 * ```
 *
 * @category Recync
 */
export function cosineSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) {
    throw new Error(`cosineSimilarity: vectors differ in length (${a.length} vs ${b.length})`);
  }
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i], y = b[i];
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  if (!Number.isFinite(ab) || !Number.isFinite(aa) || !Number.isFinite(bb)) return NaN;
  return ab / Math.max(Math.sqrt(aa) * Math.sqrt(bb), COSIM_EPS);
}

/**
 * Mean and standard deviation of `values` with the given ddof (0 = population, 1 = sample).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { windowStats } from "./monitor.ts";
 * const w = windowStats([1, 2, 3, 4], 0);
 * assert.equal(w.mean, 2.5);
 * assert.ok(Math.abs(w.std - Math.sqrt(1.25)) < 1e-12); // 1.118…
 * ```
 *
 * @category Recync
 */
export function windowStats(values: readonly number[], ddof: 0 | 1): { mean: number; std: number } {
  const n = values.length;
  if (n === 0) return { mean: NaN, std: NaN };
  let mean = 0;
  for (const v of values) mean += v;
  mean /= n;
  let ss = 0;
  for (const v of values) ss += (v - mean) * (v - mean);
  const denom = n - ddof;
  return { mean, std: denom > 0 ? Math.sqrt(ss / denom) : 0 };
}

/**
 * Severity bucket of a severity value under edges [e1, e2]: low < e1 ≤ mid < e2 ≤ high.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { severityBucket } from "./monitor.ts";
 * assert.equal(severityBucket(1.5), "mid");
 * ```
 *
 * @category Recync
 */
export function severityBucket(severity: number, edges: [number, number] = [1, 2]): SeverityBucket {
  if (severity < edges[0]) return "low";
  if (severity < edges[1]) return "mid";
  return "high";
}

/**
 * Streaming cosim crisis detector (spec §2). Feed one cosim value per generated step with
 * {@link CosimMonitor.push} (or a hidden state with {@link CosimMonitor.pushHidden}); it returns the
 * {@link CrisisEvent} confirmed at that step, or null.
 *
 * For a restart that rewinds to step r, {@link CosimMonitor.restoreAfterStep} brings the detector back to
 * its state just after step r was processed (by replaying the recorded values, O(r·W)).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CosimMonitor } from "./monitor.ts";
 * const m = new CosimMonitor({ windowMode: "all", stdDdof: 1 });
 * for (let t = 1; t <= 20; t++) m.push(0.9 + 0.01 * Math.sin(t));
 * const saved = m.snapshot();
 * m.push(0.1); m.push(0.1);
 * const e = m.push(0.1);
 * assert.equal(e?.onset, 21);
 * assert.equal(e?.bucket, "high");
 * m.restore(saved); // back to just after step 20
 * ```
 *
 * @category Recync
 */
export class CosimMonitor {
  /** The resolved options. */
  readonly options: Readonly<ResolvedCosimMonitorOptions>;
  /** Every event confirmed so far (events after a rewind point are removed by `restoreAfterStep`). */
  readonly events: CrisisEvent[] = [];
  /** Per-step records when `recordTrace` is on (truncated by `restoreAfterStep`). */
  readonly trace: CosimStepRecord[] = [];

  #window: number[] = [];
  #pending: PendingLow[] = [];
  #inCrisis = false;
  #lastStep = 0;
  /** (step, cosim) of every pushed value, for replay. */
  #history: { step: number; cosim: number }[] = [];
  #previousHidden: Float32Array | null = null;

  /** Creates a monitor; throws on invalid options. */
  constructor(options: CosimMonitorOptions = {}) {
    const o: ResolvedCosimMonitorOptions = {
      window: options.window ?? 20,
      alpha: options.alpha ?? 0.6,
      k: options.k ?? 3,
      windowMode: options.windowMode ?? "excludeConfirmed",
      warmup: options.warmup ?? "full",
      stdDdof: options.stdDdof ?? 0,
      severityEdges: options.severityEdges ?? [1, 2],
      nonFinite: options.nonFinite ?? "throw",
      recordTrace: options.recordTrace ?? true,
    };
    if (!Number.isInteger(o.window) || o.window < 2) {
      throw new Error(`CosimMonitor: options.window must be an integer ≥ 2, got ${o.window}`);
    }
    if (!Number.isInteger(o.k) || o.k < 1) {
      throw new Error(`CosimMonitor: options.k must be an integer ≥ 1, got ${o.k}`);
    }
    if (!Number.isFinite(o.alpha)) {
      throw new Error(`CosimMonitor: options.alpha must be finite, got ${o.alpha}`);
    }
    if (!["excludeConfirmed", "all", "acceptNonLow"].includes(o.windowMode)) {
      throw new Error(
        `CosimMonitor: options.windowMode must be "excludeConfirmed", "all" or "acceptNonLow", got ${o.windowMode}`,
      );
    }
    if (o.warmup !== "full" && o.warmup !== "partial") {
      throw new Error(`CosimMonitor: options.warmup must be "full" or "partial", got ${o.warmup}`);
    }
    if (o.stdDdof !== 0 && o.stdDdof !== 1) throw new Error(`CosimMonitor: options.stdDdof must be 0 or 1`);
    if (!(o.severityEdges[0] <= o.severityEdges[1])) {
      throw new Error(`CosimMonitor: options.severityEdges must be ascending, got [${o.severityEdges}]`);
    }
    if (!["throw", "low", "skip"].includes(o.nonFinite)) {
      throw new Error(`CosimMonitor: options.nonFinite must be "throw", "low" or "skip", got ${o.nonFinite}`);
    }
    this.options = o;
  }

  /** Last step pushed (0 before the first push). */
  get lastStep(): number {
    return this.#lastStep;
  }

  /** True between a confirmed crisis and the next value at or above the threshold. */
  get inCrisis(): boolean {
    return this.#inCrisis;
  }

  /** Whether the next value will be tested against a threshold (the warm-up is over). */
  get ready(): boolean {
    return this.#window.length >= (this.options.warmup === "full" ? this.options.window : 2);
  }

  /** The threshold the next value will be compared with, or null during warm-up. */
  get threshold(): number | null {
    if (!this.ready) return null;
    const { mean, std } = windowStats(this.#window, this.options.stdDdof);
    return mean - this.options.alpha * std;
  }

  /** Current window contents, oldest first (a copy). */
  get windowValues(): number[] {
    return [...this.#window];
  }

  /**
   * Pushes cosim(step) and returns the crisis confirmed at this step, or null.
   *
   * @param cosim the cosine between h_step and h_{step−1}
   * @param step the step index; default: previous step + 1 (so 1, 2, 3, …). Must increase.
   */
  push(cosim: number, step?: number): CrisisEvent | null {
    return this.observe(cosim, step).event;
  }

  /**
   * Like {@link CosimMonitor.push} but returns the full per-step record {cosim, thr, low, …} (spec §7.2).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { CosimMonitor } from "./monitor.ts";
   * const m = new CosimMonitor({ warmup: "partial" });
   * m.observe(0.9); m.observe(0.92);
   * const o = m.observe(0.5);
   * assert.deepEqual([o.step, o.cosim, +o.thr!.toFixed(3), o.low], [3, 0.5, 0.904, true]);
   * ```
   */
  observe(cosim: number, step?: number): CosimStepRecord {
    const t = step ?? this.#lastStep + 1;
    if (!Number.isInteger(t) || t <= this.#lastStep) {
      throw new Error(
        `CosimMonitor.push: step must be an integer > ${this.#lastStep} (the last step), got ${t}`,
      );
    }
    if (typeof cosim !== "number") throw new Error(`CosimMonitor.push: cosim at step ${t} is not a number`);
    const finite = Number.isFinite(cosim);
    if (!finite && this.options.nonFinite === "throw") {
      throw new Error(
        `CosimMonitor.push: cosim at step ${t} is ${cosim} (non-finite hidden state?); ` +
          `set options.nonFinite to "low" or "skip" to continue past such steps`,
      );
    }
    this.#lastStep = t;
    this.#history.push({ step: t, cosim });
    const record = this.#advance(cosim, t, finite);
    if (this.options.recordTrace) this.trace.push(record);
    return record;
  }

  /**
   * Pushes the newest hidden state: the first call only stores it, later calls push the cosine with the
   * previous one (as step previous + 1). Returns the record, or null for the first call.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { CosimMonitor } from "./monitor.ts";
   * const m = new CosimMonitor();
   * m.pushHidden(new Float32Array([1, 0])); // h_0: nothing to compare yet
   * const o = m.pushHidden(new Float32Array([1, 1])); // step 1
   * assert.ok(Math.abs(o!.cosim - Math.SQRT1_2) < 1e-6);
   * ```
   */
  pushHidden(hidden: Float32Array, step?: number): CosimStepRecord | null {
    const previous = this.#previousHidden;
    this.#previousHidden = Float32Array.from(hidden);
    if (previous === null) return null;
    return this.observe(cosineSimilarity(hidden, previous), step);
  }

  #stats(): { thr: number; mean: number; std: number } {
    const { mean, std } = windowStats(this.#window, this.options.stdDdof);
    return { thr: mean - this.options.alpha * std, mean, std };
  }

  #addToWindow(v: number): void {
    this.#window.push(v);
    if (this.#window.length > this.options.window) this.#window.shift();
  }

  #advance(x: number, t: number, finite: boolean): CosimStepRecord {
    const o = this.options;
    const base = { step: t, cosim: x, event: null };
    if (!finite && o.nonFinite === "skip") {
      return { ...base, thr: null, windowMean: null, windowStd: null, low: false, inCrisis: this.#inCrisis };
    }
    if (!this.ready) {
      // Warm-up values enter the window unconditionally (spec §2.3); a non-finite one never does.
      if (finite) this.#addToWindow(x);
      return { ...base, thr: null, windowMean: null, windowStd: null, low: false, inCrisis: false };
    }
    const { thr, mean, std } = this.#stats();
    const low = !finite || x < thr;
    const rec = { ...base, thr, windowMean: mean, windowStd: std, low };

    if (this.#inCrisis) {
      if (low) {
        // Inside a confirmed crisis: only the plain rolling window keeps these values.
        if (o.windowMode === "all" && finite) this.#addToWindow(x);
        return { ...rec, inCrisis: true };
      }
      this.#inCrisis = false; // re-arm; the re-arming value is not part of the crisis
      this.#addToWindow(x);
      return { ...rec, inCrisis: false };
    }

    if (low) {
      this.#pending.push({ step: t, value: x, thr, mean, std });
      if (o.windowMode === "all" && finite) this.#addToWindow(x);
      if (this.#pending.length < o.k) return { ...rec, inCrisis: false };
      const first = this.#pending[0];
      const runValues = this.#pending.map((p) => p.value);
      const minRun = Math.min(...runValues);
      const severity = runValues.every(Number.isFinite)
        ? (first.thr - minRun) / Math.max(first.std, 1e-6)
        : Infinity;
      const event: CrisisEvent = {
        onset: first.step,
        confirmedAt: t,
        thresholdAtOnset: first.thr,
        runValues,
        runThresholds: this.#pending.map((p) => p.thr),
        windowMean: first.mean,
        windowStd: first.std,
        severity,
        bucket: severityBucket(severity, o.severityEdges),
      };
      // excludeConfirmed drops the pending values; acceptNonLow never had them; all already added them.
      this.#pending = [];
      this.#inCrisis = true;
      this.events.push(event);
      if (o.recordTrace) {
        // The run steps before confirmation belong to the crisis too.
        for (const r of this.trace) if (r.step >= first.step) r.inCrisis = true;
      }
      return { ...rec, inCrisis: true, event };
    }

    // A value at or above the threshold ends any short run.
    if (o.windowMode === "excludeConfirmed") {
      for (const p of this.#pending) if (Number.isFinite(p.value)) this.#addToWindow(p.value);
    }
    this.#pending = [];
    this.#addToWindow(x);
    return { ...rec, inCrisis: false };
  }

  /**
   * The complete detector state, JSON-serialisable (the per-step trace, events and replay history are
   * not part of it).
   */
  snapshot(): CosimMonitorState {
    return {
      window: [...this.#window],
      pending: this.#pending.map((p) => ({ ...p })),
      inCrisis: this.#inCrisis,
      lastStep: this.#lastStep,
    };
  }

  /**
   * Restores a {@link CosimMonitor.snapshot}. Trace, events and replay history after the snapshot's
   * step are dropped, so later pushes continue from `state.lastStep + 1`.
   */
  restore(state: CosimMonitorState): void {
    if (!Array.isArray(state.window) || !Array.isArray(state.pending) || !Number.isInteger(state.lastStep)) {
      throw new Error("CosimMonitor.restore: state must come from snapshot() (window, pending, lastStep)");
    }
    if (state.window.length > this.options.window) {
      throw new Error(
        `CosimMonitor.restore: state window holds ${state.window.length} values, more than options.window = ${this.options.window}`,
      );
    }
    this.#window = [...state.window];
    this.#pending = state.pending.map((p) => ({ ...p }));
    this.#inCrisis = state.inCrisis;
    this.#lastStep = state.lastStep;
    this.#truncateLogs(state.lastStep);
  }

  /**
   * Brings the detector to its state just after step `r` was processed, by replaying the recorded
   * values up to r (spec §4.4). Events confirmed after r and trace records after r are removed.
   * The stored previous hidden state (for `pushHidden`) is cleared: pass h_r again with `setPreviousHidden`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { CosimMonitor } from "./monitor.ts";
   * const m = new CosimMonitor();
   * for (let t = 1; t <= 30; t++) m.push(0.9 + 0.001 * (t % 3));
   * m.restoreAfterStep(18);
   * assert.equal(m.lastStep, 18);
   * ```
   */
  restoreAfterStep(r: number): void {
    if (!Number.isInteger(r) || r < 0) {
      throw new Error(`CosimMonitor.restoreAfterStep: r must be an integer ≥ 0`);
    }
    if (r > this.#lastStep) {
      throw new Error(
        `CosimMonitor.restoreAfterStep: step ${r} is after the last step pushed (${this.#lastStep})`,
      );
    }
    const replay = this.#history.filter((h) => h.step <= r);
    this.#truncateLogs(r);
    this.events.length = 0; // the replay confirms the kept events again
    this.#window = [];
    this.#pending = [];
    this.#inCrisis = false;
    this.#lastStep = 0;
    this.#history = [];
    this.#previousHidden = null;
    for (const h of replay) {
      this.#lastStep = h.step;
      this.#history.push(h);
      this.#advance(h.cosim, h.step, Number.isFinite(h.cosim));
    }
    this.#lastStep = Math.max(this.#lastStep, r);
  }

  /** Sets the hidden state that the next `pushHidden` compares with (after a rewind: h_r). */
  setPreviousHidden(hidden: Float32Array | null): void {
    this.#previousHidden = hidden === null ? null : Float32Array.from(hidden);
  }

  /** Forgets everything: empty window, no events, step counter back to 0. */
  reset(): void {
    this.#window = [];
    this.#pending = [];
    this.#inCrisis = false;
    this.#lastStep = 0;
    this.#history = [];
    this.#previousHidden = null;
    this.trace.length = 0;
    this.events.length = 0;
  }

  #truncateLogs(step: number): void {
    this.#history = this.#history.filter((h) => h.step <= step);
    const keptTrace = this.trace.filter((r) => r.step <= step);
    this.trace.splice(0, this.trace.length, ...keptTrace);
    const keptEvents = this.events.filter((e) => e.confirmedAt <= step);
    // A crisis confirmed after `step` had marked its earlier run steps retroactively: unmark them.
    for (const e of this.events) {
      if (e.confirmedAt <= step) continue;
      for (const r of this.trace) if (r.step >= e.onset) r.inCrisis = false;
    }
    this.events.splice(0, this.events.length, ...keptEvents);
    this.#previousHidden = null;
  }
}

/**
 * Runs a fresh monitor over a whole cosim series (steps 1..n) and returns its events.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { detectCrises } from "./monitor.ts";
 * const series = [...Array(20).fill(0.9).map((v, i) => v + (i % 2) * 0.01), 0.1, 0.1, 0.1];
 * assert.deepEqual(detectCrises(series).map((e) => e.onset), [21]);
 * ```
 *
 * @category Recync
 */
export function detectCrises(series: readonly number[], options: CosimMonitorOptions = {}): CrisisEvent[] {
  const m = new CosimMonitor({ ...options, recordTrace: false });
  for (const v of series) m.push(v);
  return [...m.events];
}
