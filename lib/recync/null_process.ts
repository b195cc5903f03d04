/**
 * The Recync design's null distribution without a model (issue 13): the detector, the v4 rewind rule
 * and the outcome computation run on synthetic cosim series in which a "restart" changes nothing but
 * the draw. Whatever d this produces is the design's own (selection of units with a baseline crisis,
 * then a fresh draw after r), not an effect of the intervention.
 *
 * Per unit u (u = 0 … N−1), with the run's seed S:
 * - the baseline series cosim(1) … cosim(T−1) is drawn from `new Prng(S, 2u)`;
 * - the monitor (same options as a real run) finds the first crisis; r = max(0, onset − rewindOffset);
 * - the "intervention" keeps cosim(1) … cosim(r) and redraws cosim(r+1) … cosim(T−1) from
 *   `new Prng(S, 2u + 1)` (AR(1): continuing from cosim(r));
 * - both series go through a fresh monitor (1R: later crises are recorded, not acted on) and
 *   {@link computeUnitMetrics} with the chosen outcome window.
 *
 * Processes: `iid` N(mean, std²); `ar1` stationary AR(1) with lag-1 autocorrelation phi and marginal
 * N(mean, std²); `block`: concatenated blocks of `block` consecutive values drawn uniformly (with
 * replacement) from real traces (e.g. the baseline cosims of a results file).
 *
 * @module
 */
import { Prng } from "../random/prng.ts";
import { pairedComparison } from "../stats/paired.ts";
import { type ProportionInterval, wilsonInterval } from "../stats/binomial.ts";
import type { BootstrapInterval } from "../stats/bootstrap.ts";
import {
  computeUnitMetrics,
  outcomeWindowStart,
  type RecyncArmTrace,
  type RecyncOutcomeWindow,
} from "./metrics.ts";
import { CosimMonitor, type CosimMonitorOptions } from "./monitor.ts";

/**
 * A synthetic cosim process.
 *
 * @category Recync
 */
export type NullProcess =
  | { kind: "iid"; mean: number; std: number }
  | { kind: "ar1"; mean: number; std: number; phi: number }
  | { kind: "block"; traces: number[][]; block: number };

/**
 * Options of {@link simulateNull}.
 *
 * @category Recync
 */
export interface NullSimOptions {
  /** The process. */
  process: NullProcess;
  /** Units. */
  N: number;
  /** Generated tokens per arm (series cosim(1) … cosim(T−1)). */
  T: number;
  /** Seed S (default 0). */
  seed?: number;
  /** Monitor options (spec defaults). */
  monitor?: CosimMonitorOptions;
  /** v4 rewind offset (default 3). */
  rewindOffset?: number;
  /** Outcome window (default from-rewind). */
  window?: RecyncOutcomeWindow;
  /** Bootstrap resamples of the d CI (default 2000) and seed (default 0). */
  resamples?: number;
}

/**
 * One simulated unit with a baseline crisis.
 *
 * @category Recync
 */
export interface NullUnit {
  /** Unit index. */
  unit: number;
  /** Rewind point. */
  r: number;
  /** Primary outcome (crisis fraction) of the baseline and the redraw over the window. */
  baseline: number;
  /** See baseline. */
  intervention: number;
  /** The redraw's window holds no crisis. */
  crisisFree: boolean;
  /** The redraw is strictly worse. */
  strictWorse: boolean;
}

/**
 * What {@link simulateNull} reports.
 *
 * @category Recync
 */
export interface NullSimResult {
  /** Units simulated. */
  N: number;
  /** Units whose baseline had a crisis and whose window is non-empty (the d denominator). */
  nCrisis: number;
  /** Null d_z of the crisis fraction (positive = the redraw "helped"). */
  dz: number;
  /** Bootstrap CI of d_z over units. */
  dzCi: BootstrapInterval | null;
  /** Crisis-free rate of the redraws, Wilson 95 % CI. */
  crisisFree: ProportionInterval;
  /** Strictly worse redraws, Wilson 95 % CI. */
  strictWorse: ProportionInterval;
  /** Outcome window used. */
  window: RecyncOutcomeWindow;
  /** Per-unit values. */
  units: NullUnit[];
}

/**
 * A draw source for one series: `next(prev)` gives the next value (prev: the previous value, or null).
 */
function sampler(process: NullProcess, rng: Prng): (prev: number | null) => number {
  if (process.kind === "iid") return () => process.mean + process.std * rng.nextNormal();
  if (process.kind === "ar1") {
    const { mean, std, phi } = process;
    if (!(Math.abs(phi) < 1)) throw new RangeError(`null process: AR(1) needs |phi| < 1, got ${phi}`);
    const innov = std * Math.sqrt(1 - phi * phi);
    return (prev) =>
      prev === null ? mean + std * rng.nextNormal() : mean + phi * (prev - mean) + innov * rng.nextNormal();
  }
  const blocks: number[][] = [];
  for (const tr of process.traces) {
    for (let i = 0; i + process.block <= tr.length; i += process.block) {
      blocks.push(tr.slice(i, i + process.block));
    }
  }
  if (blocks.length === 0) {
    throw new RangeError(`null process: no block of ${process.block} values in the traces`);
  }
  let cur: number[] = [], pos = 0;
  return () => {
    if (pos >= cur.length) {
      cur = blocks[rng.nextInt(blocks.length)];
      pos = 0;
    }
    return cur[pos++];
  };
}

/**
 * Draws values for steps from..T−1 into `series` (index = step; series[0] stays null).
 *
 * @example
 * ```ts
 * import { Prng } from "../random/prng.ts";
 * import { drawSeries } from "./null_process.ts";
 * const s = drawSeries({ kind: "iid", mean: 0.9, std: 0.01 }, new Prng(1), 5);
 * console.log(s.length, s[0]); // 5 null
 * ```
 *
 * @category Recync
 */
export function drawSeries(
  process: NullProcess,
  rng: Prng,
  T: number,
  prefix: readonly (number | null)[] = [null],
): (number | null)[] {
  const next = sampler(process, rng);
  const out = prefix.slice(0, T);
  if (out.length === 0) out.push(null);
  while (out.length < T) out.push(next((out[out.length - 1] ?? null) as number | null));
  return out;
}

/**
 * Runs a fresh monitor over a series (index = step, [0] null) and returns the arm trace the metrics use.
 *
 * @example
 * ```ts
 * import { armFromSeries } from "./null_process.ts";
 * const a = armFromSeries([null, ...Array(30).fill(0.9)]);
 * console.log(a.events.length, a.inCrisis.length); // 0 31
 * ```
 *
 * @category Recync
 */
export function armFromSeries(
  series: readonly (number | null)[],
  monitor: CosimMonitorOptions = {},
): RecyncArmTrace {
  const T = series.length;
  const m = new CosimMonitor({ nonFinite: "low", ...monitor, recordTrace: true });
  for (let t = 1; t < T; t++) m.push(series[t] as number, t);
  const thr: (number | null)[] = Array(T).fill(null),
    low = Array(T).fill(false),
    inCrisis = Array(T).fill(false);
  for (const rec of m.trace) {
    thr[rec.step] = rec.thr;
    low[rec.step] = rec.low;
    inCrisis[rec.step] = rec.inCrisis;
  }
  return {
    tokens: Array(T).fill(0),
    cosim: [...series],
    thr,
    low,
    inCrisis,
    events: m.events.map((e) => ({ onset: e.onset, confirmedAt: e.confirmedAt })),
  };
}

/**
 * Simulates the design under a null process (see the module notes).
 *
 * @example
 * ```ts
 * import { simulateNull } from "./null_process.ts";
 * const res = simulateNull({ process: { kind: "iid", mean: 0.9, std: 0.02 }, N: 50, T: 100, seed: 1, resamples: 200 });
 * console.log(res.nCrisis > 0, res.dz > 0); // true true: the selection alone makes d positive
 * ```
 *
 * @category Recync
 */
export function simulateNull(options: NullSimOptions): NullSimResult {
  const { process, N, T } = options;
  const seed = options.seed ?? 0, off = options.rewindOffset ?? 3;
  const window = options.window ?? "from-rewind";
  if (!Number.isInteger(N) || N < 1) {
    throw new RangeError(`simulateNull: N must be an integer >= 1, got ${N}`);
  }
  if (!Number.isInteger(T) || T < 2) {
    throw new RangeError(`simulateNull: T must be an integer >= 2, got ${T}`);
  }
  const units: NullUnit[] = [];
  for (let u = 0; u < N; u++) {
    const base = drawSeries(process, new Prng(seed, 2 * u), T);
    const b = armFromSeries(base, options.monitor);
    if (b.events.length === 0) continue;
    const r = Math.max(0, b.events[0].onset - off);
    if (outcomeWindowStart(window, r, b) >= T) continue;
    const redraw = drawSeries(process, new Prng(seed, 2 * u + 1), T, base.slice(0, r + 1));
    const i = armFromSeries(redraw, options.monitor);
    const m = computeUnitMetrics(b, i, r, { window });
    units.push({
      unit: u,
      r,
      baseline: m.baseline.crisisFraction,
      intervention: m.intervention.crisisFraction,
      crisisFree: m.crisisFree,
      strictWorse: m.iatrogenic.strictWorse,
    });
  }
  const n = units.length;
  const cmp = n >= 2
    ? pairedComparison(units.map((x) => x.baseline), units.map((x) => x.intervention), {
      effect: "dz",
      bootstrap: { resamples: options.resamples ?? 2000, seed: 0 },
    })
    : null;
  return {
    N,
    nCrisis: n,
    dz: cmp ? cmp.dz : NaN,
    dzCi: cmp ? cmp.effectCi : null,
    crisisFree: wilsonInterval(units.filter((x) => x.crisisFree).length, n),
    strictWorse: wilsonInterval(units.filter((x) => x.strictWorse).length, n),
    window,
    units,
  };
}

/**
 * Moments of real cosim traces: mean, std (ddof 1) and pooled lag-1 autocorrelation.
 *
 * @category Recync
 */
export interface TraceMoments {
  /** Mean of all values. */
  mean: number;
  /** Standard deviation of all values. */
  std: number;
  /** Lag-1 autocorrelation, pooled over traces (pairs within a trace only). */
  phi: number;
  /** Values used. */
  n: number;
}

/**
 * Estimates mean, std and lag-1 autocorrelation from traces (non-finite values dropped).
 *
 * @example
 * ```ts
 * import { traceMoments } from "./null_process.ts";
 * console.log(traceMoments([[1, 2, 3, 4]]).mean); // 2.5
 * ```
 *
 * @category Recync
 */
export function traceMoments(traces: readonly (readonly (number | null)[])[]): TraceMoments {
  const clean = traces.map((t) => t.filter((x): x is number => x !== null && Number.isFinite(x)));
  const all = clean.flat();
  const n = all.length;
  if (n < 3) throw new RangeError(`traceMoments: need at least 3 values, got ${n}`);
  const mean = all.reduce((s, x) => s + x, 0) / n;
  const ss = all.reduce((s, x) => s + (x - mean) ** 2, 0);
  let cross = 0;
  for (const t of clean) for (let i = 1; i < t.length; i++) cross += (t[i] - mean) * (t[i - 1] - mean);
  return { mean, std: Math.sqrt(ss / (n - 1)), phi: ss > 0 ? cross / ss : 0, n };
}
