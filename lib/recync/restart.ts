/**
 * Recync v4, response-level checkpoint restart (spec §4.1-4.4), as a per-row controller plus a
 * per-step policy for `generate()`.
 *
 * On a confirmed crisis with onset t_c (generated-step coordinates: h_t produced y_t, cosim(t) exists
 * for t ≥ 1) the row rewinds to r = t_c − `rewindOffset` (3, "onset_m3"): tokens y_r, y_{r+1}, … are
 * dropped and y_r is resampled from h_r, which is unchanged (it came from feeding y_{r−1}); so cosim(r)
 * and everything before stays, and the monitor is restored to its state just after step r. The row is
 * reseeded with seed + k·`seedOffset` for its k-th restart (10000, 20000, …) and samples at temperature
 * 1.0, top-p 0.9 from then on. At most `maxRestarts` restarts per row (1 = "1R", 2 = "2R"); later
 * crises are recorded but not acted on. Rows are independent: each has its own monitor and counter.
 *
 * The earliest onset under the default full warm-up is 21, so r ≥ 18; with a partial warm-up r is
 * clamped at 0 (resample y_0 from the prefill state).
 *
 * @module
 */
import type { GenerationControl, GenerationPolicy, GenerationStep } from "../generate/generate.ts";
import { CosimMonitor, type CosimMonitorOptions, type CrisisEvent } from "./monitor.ts";

/**
 * Options of the v4 restart policy; defaults follow the spec ([R]/[P2] values, [TS] where open).
 *
 * @category Recync
 */
export interface RestartOptions {
  /** Rewind r = onset − rewindOffset. Default 3 ("onset_m3") [R][P2]. */
  rewindOffset?: number;
  /** Reseed with seed + k·seedOffset at the k-th restart. Default 10000 [R][P2]. */
  seedOffset?: number;
  /** Restarts allowed per row: 1 ("1R", default) or 2 ("2R"); 0 makes the policy monitor-only. */
  maxRestarts?: number;
  /** Sampling after a restart: temperature (default 1.0), top-p (default 0.9), top-k (default 0 = off). */
  temperature?: number;
  /** Top-p after a restart. */
  topP?: number;
  /** Top-k after a restart (0 = off, the [TS] default; HF's do_sample default would be 50). */
  topK?: number;
  /** Options of each row's crisis monitor (spec §2 defaults). */
  monitor?: CosimMonitorOptions;
}

/**
 * What a row must do after a step: nothing, or rewind and reseed.
 *
 * @category Recync
 */
export interface RestartDecision {
  /** The row. */
  row: number;
  /** Generated index to rewind to: keep y_0 … y_{r−1}, resample y_r. */
  r: number;
  /** The new seed of the row's sampling stream. */
  seed: number;
  /** Sampling parameters from y_r on. */
  sampling: { temperature: number; topP: number; topK: number };
  /** 1-based restart number of this row. */
  restart: number;
  /** The crisis that triggered it. */
  event: CrisisEvent;
}

/**
 * Resolved restart options.
 *
 * @category Recync
 */
export interface ResolvedRestartOptions {
  /** See {@link RestartOptions}. */
  rewindOffset: number;
  /** See {@link RestartOptions}. */
  seedOffset: number;
  /** See {@link RestartOptions}. */
  maxRestarts: number;
  /** See {@link RestartOptions}. */
  temperature: number;
  /** See {@link RestartOptions}. */
  topP: number;
  /** See {@link RestartOptions}. */
  topK: number;
}

/**
 * Fills in the defaults of {@link RestartOptions} and checks them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveRestartOptions } from "./restart.ts";
 * assert.equal(resolveRestartOptions({ maxRestarts: 2 }).seedOffset, 10000);
 * ```
 *
 * @category Recync
 */
export function resolveRestartOptions(options: RestartOptions = {}): ResolvedRestartOptions {
  const o = {
    rewindOffset: options.rewindOffset ?? 3,
    seedOffset: options.seedOffset ?? 10000,
    maxRestarts: options.maxRestarts ?? 1,
    temperature: options.temperature ?? 1.0,
    topP: options.topP ?? 0.9,
    topK: options.topK ?? 0,
  };
  if (!Number.isInteger(o.rewindOffset) || o.rewindOffset < 0) {
    throw new Error(`restart: rewindOffset must be an integer >= 0, got ${o.rewindOffset}`);
  }
  if (!Number.isInteger(o.seedOffset)) {
    throw new Error(`restart: seedOffset must be an integer, got ${o.seedOffset}`);
  }
  if (!Number.isInteger(o.maxRestarts) || o.maxRestarts < 0) {
    throw new Error(`restart: maxRestarts must be an integer >= 0, got ${o.maxRestarts}`);
  }
  if (!(o.temperature >= 0)) throw new Error(`restart: temperature must be >= 0, got ${o.temperature}`);
  if (!(o.topP > 0 && o.topP <= 1)) throw new Error(`restart: topP must be in (0, 1], got ${o.topP}`);
  return o;
}

/**
 * One row's restart history.
 *
 * @category Recync
 */
export interface RowRestartLog {
  /** The row's original seed. */
  seed: number;
  /** Restarts performed, in order. */
  restarts: RestartDecision[];
  /** Every crisis confirmed on this row, including ones later rewound away and ones past the limit. */
  allEvents: CrisisEvent[];
}

/**
 * Per-row restart state machine, independent of any model: feed it each row's cosim(t) and it answers
 * with a rewind decision when a crisis calls for one. Each row owns a {@link CosimMonitor}; after a
 * decision the monitor is already restored to its state just after step r.
 *
 * A step t ≤ the monitor's last step is ignored, so a generator that reports the re-fed step r again
 * after a rewind (its cosim is unchanged) does not disturb the detector.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RecyncRestartController } from "./restart.ts";
 * const ctl = new RecyncRestartController([7]);
 * const series = [...Array(20).fill(0).map((_, i) => 0.9 + (i % 2 ? 0.01 : -0.01)), 0.5, 0.5, 0.5];
 * let decision = null as ReturnType<typeof ctl.observe>;
 * for (let t = 1; t <= series.length; t++) decision = ctl.observe(0, t, series[t - 1]) ?? decision;
 * assert.equal(decision?.r, 18);
 * assert.equal(decision?.seed, 10007);
 * ```
 *
 * @category Recync
 */
export class RecyncRestartController {
  /** Resolved options. */
  readonly options: ResolvedRestartOptions;
  /** One monitor per row. */
  readonly monitors: CosimMonitor[];
  /** One log per row. */
  readonly logs: RowRestartLog[];

  /** Restarts allowed per row (default: `options.maxRestarts` for every row). */
  readonly rowMaxRestarts: number[];

  /**
   * `seeds[i]` is row i's original sampling seed. `rowMaxRestarts` overrides `maxRestarts` per row
   * (0 = monitor only), e.g. for the baseline rows of a paired batch.
   */
  constructor(seeds: number[], options: RestartOptions = {}, rowMaxRestarts?: number[]) {
    this.options = resolveRestartOptions(options);
    this.monitors = seeds.map(() => new CosimMonitor({ nonFinite: "low", ...options.monitor }));
    this.logs = seeds.map((seed) => ({ seed, restarts: [], allEvents: [] }));
    if (rowMaxRestarts && rowMaxRestarts.length !== seeds.length) {
      throw new RangeError(
        `RecyncRestartController: ${rowMaxRestarts.length} rowMaxRestarts for ${seeds.length} rows`,
      );
    }
    this.rowMaxRestarts = rowMaxRestarts ? [...rowMaxRestarts] : seeds.map(() => this.options.maxRestarts);
  }

  /**
   * Feeds cosim(t) of `row` (t = generated index of the token h_t produced; t ≥ 1). Returns a rewind
   * decision or null. Non-finite cosims count as low (a numerically broken state is a dip).
   */
  observe(row: number, t: number, cosim: number): RestartDecision | null {
    const monitor = this.monitors[row];
    if (!monitor) {
      throw new RangeError(`RecyncRestartController: no row ${row} (rows: ${this.monitors.length})`);
    }
    if (t < 1 || t <= monitor.lastStep) return null;
    const event = monitor.push(cosim, t);
    if (!event) return null;
    const log = this.logs[row];
    log.allEvents.push(event);
    if (log.restarts.length >= this.rowMaxRestarts[row]) return null;
    const r = Math.max(0, event.onset - this.options.rewindOffset);
    const k = log.restarts.length + 1;
    const o = this.options;
    const decision: RestartDecision = {
      row,
      r,
      seed: log.seed + k * o.seedOffset,
      sampling: { temperature: o.temperature, topP: o.topP, topK: o.topK },
      restart: k,
      event,
    };
    log.restarts.push(decision);
    monitor.restoreAfterStep(Math.min(r, monitor.lastStep));
    return decision;
  }

  /** Restarts performed on `row`. */
  restartCount(row: number): number {
    return this.logs[row].restarts.length;
  }
}

/**
 * The v4 restart as a `generate()` policy: after every step it feeds each row's cosim(t) to the
 * controller and, on a decision, rewinds that row to r with the new seed and switches it to the restart
 * sampling (temperature 1.0, top-p 0.9, top-k off; other settings such as banned tokens are kept).
 * Rows act independently in the batch. Steps that re-produce an index after a rewind are skipped (their
 * cosim is the recorded one, already in the monitor).
 *
 * @example
 * ```ts
 * import { createDecoder, gpt2NewConfig } from "../models/scratch.ts";
 * import { generate } from "../generate/generate.ts";
 * import { RecyncRestartController, recyncRestartPolicy } from "./restart.ts";
 * import { initBackend } from "../backend/backend.ts";
 * await initBackend({ backend: "cpu" });
 * const model = createDecoder(gpt2NewConfig({ nLayers: 1, dModel: 32, nHeads: 2, vocabSize: 40, maxPositions: 256 }), {
 *   seed: 1,
 * });
 * const controller = new RecyncRestartController([3, 4]);
 * const run = generate(model, [[1, 2, 3], [4, 5]], {
 *   maxNewTokens: 60, seeds: [3, 4], sampling: { topP: 0.9 }, policies: [recyncRestartPolicy(controller)],
 * });
 * const trace = await run.collect();
 * console.log(trace.rows.map((r) => r.rewinds.length), controller.logs.map((l) => l.restarts.length));
 * model.dispose();
 * ```
 *
 * @category Recync
 */
export function recyncRestartPolicy(controller: RecyncRestartController): GenerationPolicy {
  return {
    name: "recync-v4-restart",
    onStep(step: GenerationStep, control: GenerationControl): void {
      for (const row of step.rows) {
        if (row.afterRewind || row.t < 1) continue;
        const d = controller.observe(row.row, row.t, row.cosim);
        if (!d) continue;
        control.rewind(row.row, d.r, d.seed);
        control.setSampling(row.row, {
          ...control.getSampling(row.row),
          temperature: d.sampling.temperature,
          topP: d.sampling.topP,
          topK: d.sampling.topK,
        });
      }
    },
  };
}
