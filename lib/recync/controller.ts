/**
 * Recync v3, token-level control (spec §3.3): a severity-adaptive temperature / top-p controller with a
 * recovery gate and a frequency cap, optionally passed through the CBF safety filter (spec §3.2).
 *
 * Rule (every constant a [TS] PLACEHOLDER in {@link V3Config}; upstream's are unknown):
 * - On a crisis confirmed at step t, look up its severity bucket
 *   (low: T 0.85 / p 0.90, mid: T 0.75 / p 0.85, high: T 0.65 / p 0.80) and sample the next
 *   `holdSteps` = 5 tokens (t+1 … t+5) with it, then return to T 1.0 / p 0.9.
 * - **Recovery gate**: skip the intervention, or stop it early, when the model is already recovering:
 *   cosim(t) ≥ thr(t), or the 2-step slope cosim(t) − cosim(t−2) > 0.5 · windowStd.
 * - **Frequency cap**: at most one intervention start per 10 tokens ("harm threshold in intervention
 *   frequency").
 * - **CBF filter** (off by default): the bucket's u_ref = (T − T₀, p − p₀) is replaced by the nearest safe
 *   u given the step's order parameters Z = [λ, λ_sem, z]; each held step is filtered again with the new Z.
 *
 * Timing: cosim(t) is read back with y_t, so a decision taken after step t applies from y_{t+1} on.
 * Every decision is logged ({@link V3LogEntry}) for analysis (notebook 12).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { V3Controller } from "./controller.ts";
 * const ctl = new V3Controller();
 * const series = [...Array(20).fill(0).map((_, i) => 0.9 + (i % 2 ? 0.01 : -0.01)), 0.89, 0.885, 0.88];
 * let s = { temperature: 1, topP: 0.9 };
 * series.forEach((c) => (s = ctl.observe(c)));
 * assert.deepEqual(s, { temperature: 0.75, topP: 0.85 }); // mid bucket, from step 24 on
 * ```
 *
 * @module
 */
import { CosimMonitor, type CosimMonitorOptions, type CrisisEvent, type SeverityBucket } from "./monitor.ts";
import { type CbfConfig, type CbfFilterResult, CbfSafetyFilter } from "./cbf.ts";

/**
 * Sampling parameters the controller sets for a row.
 *
 * @category Recync
 */
export interface V3Sampling {
  /** Softmax temperature. */
  temperature: number;
  /** Nucleus threshold. */
  topP: number;
}

/**
 * Configuration of the v3 controller; defaults are the spec's [TS] placeholders.
 *
 * @category Recync
 */
export interface V3Config {
  /** Sampling outside interventions. Default T 1.0, p 0.9. */
  base?: V3Sampling;
  /** Sampling per severity bucket. Default low 0.85/0.90, mid 0.75/0.85, high 0.65/0.80. */
  buckets?: Record<SeverityBucket, V3Sampling>;
  /** Tokens an intervention lasts. Default 5. */
  holdSteps?: number;
  /** Recovery gate on/off. Default true. */
  gate?: boolean;
  /** Gate slope factor: recovering if cosim(t) − cosim(t − slopeLag) > factor · windowStd. Default 0.5. */
  gateSlopeFactor?: number;
  /** Lag of the gate slope. Default 2. */
  gateSlopeLag?: number;
  /**
   * Steps after an intervention's start (its decision step t) before the gate may stop it early.
   * Default 2: the sampling changes from y_{t+1}, which is fed to make h_{t+2}, so cosim(t+2) is the
   * first value the intervention can affect (cosim(t+1) compares h_{t+1} and h_t, both made before).
   * 1 is the earlier behaviour (gate read one step after the start).
   */
  gateDelay?: number;
  /** Minimum steps between intervention starts (frequency cap). Default 10. */
  minInterval?: number;
  /**
   * CBF safety filter configuration, or false (default) for none. With `controlDim: 3` the filter may
   * also ask for a hidden-state correction η; the controller logs it (`u[2]`) but does not apply it (the
   * hidden-state channel is off, spec §3.2).
   */
  cbf?: CbfConfig | false;
  /** Options of each row's crisis monitor (spec §2 defaults, except `nonFinite: "low"`). */
  monitor?: CosimMonitorOptions;
}

/**
 * {@link V3Config} with every default filled in.
 *
 * @category Recync
 */
export interface ResolvedV3Config {
  /** See {@link V3Config.base}. */
  base: V3Sampling;
  /** See {@link V3Config.buckets}. */
  buckets: Record<SeverityBucket, V3Sampling>;
  /** See {@link V3Config.holdSteps}. */
  holdSteps: number;
  /** See {@link V3Config.gate}. */
  gate: boolean;
  /** See {@link V3Config.gateSlopeFactor}. */
  gateSlopeFactor: number;
  /** See {@link V3Config.gateSlopeLag}. */
  gateSlopeLag: number;
  /** See {@link V3Config.gateDelay}. */
  gateDelay: number;
  /** See {@link V3Config.minInterval}. */
  minInterval: number;
  /** See {@link V3Config.cbf}. */
  cbf: CbfConfig | false;
  /** See {@link V3Config.monitor}. */
  monitor: CosimMonitorOptions;
}

/**
 * The spec §3.3 placeholder constants.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveV3Config } from "./controller.ts";
 * assert.deepEqual(resolveV3Config({ holdSteps: 3 }).buckets.high, { temperature: 0.65, topP: 0.8 });
 * ```
 *
 * @category Recync
 */
export function resolveV3Config(config: V3Config = {}): ResolvedV3Config {
  const r: ResolvedV3Config = {
    base: config.base ?? { temperature: 1.0, topP: 0.9 },
    buckets: config.buckets ?? {
      low: { temperature: 0.85, topP: 0.9 },
      mid: { temperature: 0.75, topP: 0.85 },
      high: { temperature: 0.65, topP: 0.8 },
    },
    holdSteps: config.holdSteps ?? 5,
    gate: config.gate ?? true,
    gateSlopeFactor: config.gateSlopeFactor ?? 0.5,
    gateSlopeLag: config.gateSlopeLag ?? 2,
    gateDelay: config.gateDelay ?? 2,
    minInterval: config.minInterval ?? 10,
    cbf: config.cbf ?? false,
    // A non-finite cosim (numerically broken state) counts as a dip rather than aborting generation.
    monitor: { nonFinite: "low", ...config.monitor },
  };
  const checkSampling = (s: V3Sampling, where: string) => {
    if (!(s.temperature > 0) || !Number.isFinite(s.temperature)) {
      throw new Error(`V3Config.${where}.temperature must be a finite number > 0, got ${s.temperature}`);
    }
    if (!(s.topP > 0 && s.topP <= 1)) {
      throw new Error(`V3Config.${where}.topP must be in (0, 1], got ${s.topP}`);
    }
  };
  checkSampling(r.base, "base");
  for (const b of ["low", "mid", "high"] as const) {
    if (!r.buckets[b]) throw new Error(`V3Config.buckets.${b} is missing`);
    checkSampling(r.buckets[b], `buckets.${b}`);
  }
  if (!Number.isInteger(r.holdSteps) || r.holdSteps < 1) {
    throw new Error(`V3Config.holdSteps must be an integer ≥ 1, got ${r.holdSteps}`);
  }
  if (!Number.isInteger(r.minInterval) || r.minInterval < 0) {
    throw new Error(`V3Config.minInterval must be an integer ≥ 0, got ${r.minInterval}`);
  }
  if (!Number.isInteger(r.gateDelay) || r.gateDelay < 1) {
    throw new Error(`V3Config.gateDelay must be an integer ≥ 1, got ${r.gateDelay}`);
  }
  if (!Number.isInteger(r.gateSlopeLag) || r.gateSlopeLag < 1) {
    throw new Error(`V3Config.gateSlopeLag must be an integer ≥ 1, got ${r.gateSlopeLag}`);
  }
  return r;
}

/**
 * What the controller did at a step.
 *
 * @category Recync
 */
export type V3Action =
  | "apply" // an intervention started
  | "skipGate" // a crisis was confirmed but the model was recovering on its own
  | "skipCap" // a crisis was confirmed within minInterval of the last start
  | "refilter" // a held step re-filtered through the CBF
  | "stopEarly" // the gate ended an intervention before holdSteps
  | "end"; // an intervention ran its holdSteps

/**
 * One logged controller decision.
 *
 * @category Recync
 */
export interface V3LogEntry {
  /** Batch row (0 for a single controller). */
  row: number;
  /** Step whose cosim led to the decision; the new sampling applies from step + 1. */
  step: number;
  /** What happened. */
  action: V3Action;
  /** Severity bucket of the crisis behind the intervention. */
  bucket: SeverityBucket | null;
  /** Severity value of that crisis. */
  severity: number | null;
  /** Sampling in force from step + 1. */
  temperature: number;
  /** Top-p in force from step + 1. */
  topP: number;
  /** Whether the CBF filter changed the bucket's u (null: no filter ran). */
  qpChanged: boolean | null;
  /** Whether the CBF fell back to its least-violating relaxation. */
  qpRelaxed: boolean | null;
  /** The filtered control u = (ΔT, Δp[, η]), when the filter ran. */
  u: number[] | null;
  /** Order parameters the filter saw, when it ran. */
  Z: number[] | null;
  /** The crisis (on apply/skip actions). */
  event: CrisisEvent | null;
}

/**
 * The v3 controller for one sequence. Feed it cosim(t) (and optionally Z(t)) after every step; it returns
 * the sampling parameters for the next token.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { V3Controller } from "./controller.ts";
 * const ctl = new V3Controller({ holdSteps: 2, gate: false });
 * for (let t = 1; t <= 20; t++) ctl.observe(0.9 + (t % 2 ? 0.01 : -0.01));
 * [0.5, 0.5, 0.5, 0.5, 0.5, 0.91].forEach((c) => ctl.observe(c));
 * assert.deepEqual(ctl.log.map((e) => `${e.step}:${e.action}`), ["23:apply", "25:end"]);
 * ```
 *
 * @category Recync
 */
export class V3Controller {
  /** Resolved configuration. */
  readonly config: ResolvedV3Config;
  /** The row's crisis monitor. */
  readonly monitor: CosimMonitor;
  /** Every decision, in order. */
  readonly log: V3LogEntry[] = [];
  readonly #row: number;
  readonly #filter: CbfSafetyFilter | null;
  #current: V3Sampling;
  #holdEnd = -1; // last step whose cosim is observed under the intervention
  #active: { bucket: SeverityBucket; severity: number; event: CrisisEvent } | null = null;
  #lastStart = -Infinity;
  #recent: { step: number; cosim: number }[] = [];

  /** Creates a controller; `row` labels its log entries. */
  constructor(config: V3Config = {}, row = 0) {
    this.config = resolveV3Config(config);
    this.monitor = new CosimMonitor(this.config.monitor);
    this.#filter = this.config.cbf === false ? null : new CbfSafetyFilter(this.config.cbf);
    this.#row = row;
    this.#current = { ...this.config.base };
  }

  /** Sampling parameters currently in force. */
  get sampling(): V3Sampling {
    return { ...this.#current };
  }

  /** Whether an intervention is in force. */
  get intervening(): boolean {
    return this.#active !== null;
  }

  /**
   * Observes cosim(step) (and Z(step) for the CBF filter) and returns the sampling for step + 1.
   *
   * @param cosim cosine of h_step with h_{step−1}
   * @param Z order parameters [λ, λ_sem, z] at this step (needed only with a CBF filter)
   * @param step step index; default previous + 1
   */
  observe(cosim: number, Z?: readonly number[] | null, step?: number): V3Sampling {
    const rec = this.monitor.observe(cosim, step);
    const t = rec.step;
    this.#recent.push({ step: t, cosim });
    if (this.#recent.length > this.config.gateSlopeLag + 1) this.#recent.shift();
    const recovering = this.#recovering(rec.cosim, rec.thr, rec.windowStd, t);

    if (this.#active !== null) {
      if (this.config.gate && recovering && t - this.#lastStart >= this.config.gateDelay) {
        this.#stop(t, "stopEarly");
      } else if (t >= this.#holdEnd) {
        this.#stop(t, "end");
      } else if (this.#filter !== null && Z) {
        this.#applyBucket(t, "refilter", this.#active.bucket, this.#active.severity, null, Z);
      }
    }

    const event = rec.event;
    if (event !== null) {
      if (t - this.#lastStart < this.config.minInterval) {
        this.#logEntry(t, "skipCap", event.bucket, event.severity, event, null, null);
      } else if (this.config.gate && recovering) {
        this.#logEntry(t, "skipGate", event.bucket, event.severity, event, null, null);
      } else {
        this.#lastStart = t;
        this.#holdEnd = t + this.config.holdSteps;
        this.#active = { bucket: event.bucket, severity: event.severity, event };
        this.#applyBucket(t, "apply", event.bucket, event.severity, event, Z ?? null);
      }
    }
    return this.sampling;
  }

  /** Recovery: cosim ≥ thr, or the slope over gateSlopeLag steps exceeds factor · windowStd. */
  #recovering(cosim: number, thr: number | null, windowStd: number | null, t: number): boolean {
    if (thr === null || windowStd === null || !Number.isFinite(cosim)) return false;
    if (cosim >= thr) return true;
    const lagged = this.#recent.find((r) => r.step === t - this.config.gateSlopeLag);
    if (!lagged || !Number.isFinite(lagged.cosim)) return false;
    return cosim - lagged.cosim > this.config.gateSlopeFactor * windowStd;
  }

  #applyBucket(
    t: number,
    action: V3Action,
    bucket: SeverityBucket,
    severity: number,
    event: CrisisEvent | null,
    Z: readonly number[] | null,
  ): void {
    const target = this.config.buckets[bucket];
    let next = { ...target };
    let filtered: CbfFilterResult | null = null;
    if (this.#filter !== null && Z) {
      const uRef = this.#filter.fromSampling(target.temperature, target.topP);
      filtered = this.#filter.filter(Z, uRef);
      next = { temperature: filtered.sampling.temperature, topP: filtered.sampling.topP };
    }
    const same = next.temperature === this.#current.temperature && next.topP === this.#current.topP;
    this.#current = next;
    // A held step is logged only when the filter changed u or the sampling moved.
    if (action === "refilter" && filtered !== null && !filtered.changed && same) return;
    this.#logEntry(t, action, bucket, severity, event, filtered, Z);
  }

  #stop(t: number, action: "stopEarly" | "end"): void {
    const a = this.#active!;
    this.#active = null;
    this.#current = { ...this.config.base };
    this.#logEntry(t, action, a.bucket, a.severity, null, null, null);
  }

  #logEntry(
    t: number,
    action: V3Action,
    bucket: SeverityBucket | null,
    severity: number | null,
    event: CrisisEvent | null,
    filtered: CbfFilterResult | null,
    Z: readonly number[] | null | undefined,
  ): void {
    this.log.push({
      row: this.#row,
      step: t,
      action,
      bucket,
      severity,
      temperature: this.#current.temperature,
      topP: this.#current.topP,
      qpChanged: filtered ? filtered.changed : null,
      qpRelaxed: filtered ? filtered.relaxed : null,
      u: filtered ? [...filtered.u] : null,
      Z: filtered && Z ? [...Z] : null,
      event,
    });
  }

  /** Back to the initial state (fresh monitor, base sampling, empty log). */
  reset(): void {
    this.monitor.reset();
    this.log.length = 0;
    this.#current = { ...this.config.base };
    this.#holdEnd = -1;
    this.#active = null;
    this.#lastStart = -Infinity;
    this.#recent = [];
  }
}

/**
 * The v3 controller for a batch: one {@link V3Controller} (monitor and state) per row. After each
 * generation step, pass the rows' cosims (and optionally Z as [B][3] or a flat [B·3] array, as read back
 * from the order-parameter probe); it returns the per-row sampling for the next token.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { V3BatchController } from "./controller.ts";
 * const policy = new V3BatchController(2);
 * const next = policy.observe([0.9, 0.8]);
 * assert.deepEqual(Array.from(next.temperature), [1, 1]);
 * assert.deepEqual(Array.from(next.topP), [0.9, 0.9]);
 * ```
 *
 * @category Recync
 */
export class V3BatchController {
  /** One controller per row. */
  readonly rows: V3Controller[];

  /** Creates `batchSize` independent controllers sharing `config`. */
  constructor(batchSize: number, config: V3Config = {}) {
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new Error(`V3BatchController: batchSize must be a positive integer, got ${batchSize}`);
    }
    this.rows = Array.from({ length: batchSize }, (_, i) => new V3Controller(config, i));
  }

  /**
   * Observes one step for every row. `active` (optional, one flag per row) skips finished rows: their
   * controller is not advanced and their sampling is left as it was.
   */
  observe(
    cosims: ArrayLike<number>,
    Z?: ArrayLike<number> | readonly (readonly number[])[] | null,
    step?: number,
    active?: ArrayLike<boolean | number>,
  ): { temperature: number[]; topP: number[] } {
    const b = this.rows.length;
    if (cosims.length !== b) {
      throw new Error(`V3BatchController.observe: ${cosims.length} cosims for ${b} rows`);
    }
    const rowZ = (i: number): number[] | null => {
      if (!Z) return null;
      if (Array.isArray(Z[0])) return [...(Z as readonly (readonly number[])[])[i]];
      const flat = Z as ArrayLike<number>;
      if (flat.length % b !== 0) {
        throw new Error(`V3BatchController.observe: Z has ${flat.length} values for ${b} rows`);
      }
      const w = flat.length / b;
      return Array.from({ length: w }, (_, k) => flat[i * w + k]);
    };
    const temperature: number[] = [];
    const topP: number[] = [];
    for (let i = 0; i < b; i++) {
      const s = active && !active[i] ? this.rows[i].sampling : this.rows[i].observe(cosims[i], rowZ(i), step);
      temperature.push(s.temperature);
      topP.push(s.topP);
    }
    return { temperature, topP };
  }

  /** Every row's log entries, ordered by step then row. */
  interventions(): V3LogEntry[] {
    return this.rows.flatMap((r) => r.log).sort((a, b) => a.step - b.step || a.row - b.row);
  }
}

/**
 * Sampling fields of a generation row (structurally `SamplingParams` of lib/generate/sampling.ts).
 *
 * @category Recync
 */
export interface V3SamplingParamsLike {
  /** Softmax temperature. */
  temperature?: number;
  /** Top-k (kept as is). */
  topK?: number;
  /** Nucleus threshold. */
  topP?: number;
  /** Repetition penalty (kept as is). */
  repetitionPenalty?: number;
  /** Banned tokens (kept as is). */
  bannedTokens?: number[];
}

/**
 * The parts of a generation step the v3 policy reads (structurally `GenerationStep`).
 *
 * @category Recync
 */
export interface V3StepView {
  /** Rows that produced a token in this step. */
  rows: {
    row: number;
    t: number;
    cosim: number;
    probes: Record<string, number[]>;
    afterRewind?: boolean;
  }[];
}

/**
 * The row control the v3 policy uses (structurally `GenerationControl`).
 *
 * @category Recync
 */
export interface V3ControlView {
  /** Current sampling params of a row. */
  getSampling(row: number): V3SamplingParamsLike;
  /** Replaces a row's sampling params from the next step on. */
  setSampling(row: number, params: V3SamplingParamsLike): void;
}

/**
 * Options of {@link V3GenerationPolicy}.
 *
 * @category Recync
 */
export interface V3GenerationPolicyOptions {
  /** Name of the order-parameter probe whose values feed the CBF filter (e.g. "recync.Z"). */
  orderParameterProbe?: string;
}

/**
 * The v3 controller as a `generate()` policy (lib/generate/generate.ts): after every step it feeds each
 * row's cosim(t) (and Z(t) from the order-parameter probe, when named) to that row's controller and sets
 * the row's temperature / top-p for the next token, keeping the row's other sampling fields.
 *
 * Rows at t = 0 (no cosim yet), steps that re-produce an index after a rewind, and indices the row's
 * monitor has already seen are skipped, so the policy coexists with a restart policy.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { V3GenerationPolicy } from "./controller.ts";
 * const policy = new V3GenerationPolicy(2, { holdSteps: 5 });
 * // generate(model, prompts, { sampling: { temperature: 1, topP: 0.9 }, policies: [policy] })
 * assert.equal(policy.name, "recync.v3");
 * assert.equal(policy.controller.rows.length, 2);
 * ```
 *
 * @category Recync
 */
export class V3GenerationPolicy {
  /** Policy name for logs. */
  readonly name = "recync.v3";
  /** The per-row controllers. */
  readonly controller: V3BatchController;
  readonly #probe: string | undefined;

  /** One controller per row of a batch of `batchSize`. */
  constructor(batchSize: number, config: V3Config = {}, options: V3GenerationPolicyOptions = {}) {
    this.controller = new V3BatchController(batchSize, config);
    this.#probe = options.orderParameterProbe;
  }

  /** The step callback (bound: the generation loop calls it detached). */
  readonly onStep: (step: V3StepView, control: V3ControlView) => void = (step, control) =>
    this.#onStep(step, control);

  #onStep(step: V3StepView, control: V3ControlView): void {
    for (const r of step.rows) {
      const ctl = this.controller.rows[r.row];
      if (!ctl) {
        throw new Error(
          `V3GenerationPolicy: step has row ${r.row}, policy has ${this.controller.rows.length}`,
        );
      }
      if (r.t < 1 || r.afterRewind || r.t <= ctl.monitor.lastStep) continue;
      let Z: number[] | null = null;
      if (this.#probe !== undefined) {
        Z = r.probes[this.#probe] ?? null;
        if (Z === null) throw new Error(`V3GenerationPolicy: step rows carry no probe "${this.#probe}"`);
      }
      const next = ctl.observe(r.cosim, Z, r.t);
      const cur = control.getSampling(r.row);
      if (cur.temperature !== next.temperature || cur.topP !== next.topP) {
        control.setSampling(r.row, { ...cur, temperature: next.temperature, topP: next.topP });
      }
    }
  }

  /** Every logged decision of every row (for notebook 12). */
  interventions(): V3LogEntry[] {
    return this.controller.interventions();
  }
}
