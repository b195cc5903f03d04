/**
 * Effect versus artefact (issue 13): the observed d of a policy beside the d of its sham control, their
 * difference with a bootstrap CI that resamples the shared units together, and prompt-clustered CIs
 * (resample prompts, then take every unit of each drawn prompt) beside the unit-level ones.
 *
 * d is d_z = mean(Δ) / sd(Δ) (ddof 1) of the per-unit improvement Δ_u of the primary outcome
 * (positive = the arm's outcome is better than its baseline's), over the units the arm acted on.
 * Arms of a multi-policy run share baseline rows (`pairId`), so one resample of units (or prompts)
 * serves both arms: the difference's CI accounts for the shared baselines. An arm with a different unit
 * set (sham-random also acts on units without a crisis) takes, in every resample, the drawn units it has.
 *
 * @module
 */
import { Prng } from "../random/prng.ts";
import type { RecyncOutcomeName } from "./metrics.ts";
import type { RecyncUnitRecord } from "./harness.ts";

/**
 * One unit's improvement in one arm.
 *
 * @category Recync
 */
export interface ArmUnit {
  /** Pairing key (shared by the arms of one baseline). */
  pairId: string;
  /** Cluster (the prompt id). */
  cluster: string;
  /** Δ_u (positive = improvement). */
  delta: number;
}

/**
 * d_z of a list of improvements (NaN with fewer than 2 values or zero spread).
 *
 * @example
 * ```ts
 * import { dzOf } from "./controls.ts";
 * console.log(dzOf([1, 2, 3])); // 2
 * ```
 *
 * @category Recync
 */
export function dzOf(deltas: readonly number[]): number {
  const n = deltas.length;
  if (n < 2) return NaN;
  const m = deltas.reduce((s, x) => s + x, 0) / n;
  const v = deltas.reduce((s, x) => s + (x - m) ** 2, 0) / (n - 1);
  return v > 0 ? m / Math.sqrt(v) : NaN;
}

/**
 * The arm's units of one (model, policy, T) from records: intervened units with metrics and a finite
 * Δ of `outcome`.
 *
 * @example
 * ```ts
 * import { armUnits } from "./controls.ts";
 * console.log(armUnits([], "m", "v4", 100).length); // 0
 * ```
 *
 * @category Recync
 */
export function armUnits(
  records: readonly RecyncUnitRecord[],
  model: string,
  policy: string,
  T: number,
  outcome: RecyncOutcomeName = "crisisFraction",
): ArmUnit[] {
  return records.filter((r) =>
    r.model === model && r.policy === policy && r.T === T && r.intervened && r.metrics &&
    Number.isFinite(r.metrics.delta[outcome])
  ).map((r) => ({
    pairId: r.pairId ?? `${r.model}|${r.promptId}|${r.seed}|${r.T}`,
    cluster: r.promptId,
    delta: r.metrics!.delta[outcome],
  }));
}

/**
 * d_z of the units of the drawn clusters (a cluster drawn twice counts its units twice): the statistic
 * of one clustered-bootstrap replicate, exposed for checking by hand.
 *
 * @example
 * ```ts
 * import { clusterReplicateDz } from "./controls.ts";
 * const units = [{ pairId: "1", cluster: "a", delta: 1 }, { pairId: "2", cluster: "b", delta: 3 }];
 * console.log(clusterReplicateDz(units, ["a", "b", "b"])); // d_z of [1, 3, 3]
 * ```
 *
 * @category Recync
 */
export function clusterReplicateDz(units: readonly ArmUnit[], drawn: readonly string[]): number {
  const byCluster = new Map<string, number[]>();
  for (const u of units) byCluster.set(u.cluster, [...(byCluster.get(u.cluster) ?? []), u.delta]);
  return dzOf(drawn.flatMap((c) => byCluster.get(c) ?? []));
}

/**
 * A percentile interval.
 *
 * @category Recync
 */
export interface PercentileInterval {
  /** The statistic on the data. */
  estimate: number;
  /** 2.5 % quantile of the replicates. */
  lower: number;
  /** 97.5 % quantile of the replicates. */
  upper: number;
  /** Finite replicates used. */
  replicates: number;
}

function percentile(estimate: number, reps: number[]): PercentileInterval {
  const s = reps.filter(Number.isFinite).sort((a, b) => a - b);
  const q = (p: number) => {
    if (s.length === 0) return NaN;
    const h = (s.length - 1) * p, lo = Math.floor(h);
    return s[lo] + (h - lo) * ((s[Math.min(lo + 1, s.length - 1)] ?? s[lo]) - s[lo]);
  };
  return { estimate, lower: q(0.025), upper: q(0.975), replicates: s.length };
}

/**
 * Options of the bootstraps below.
 *
 * @category Recync
 */
export interface ControlBootstrapOptions {
  /** Resamples (default 2000). */
  resamples?: number;
  /** Prng seed (default 0). */
  seed?: number;
  /** `"unit"` (default): resample pairing keys; `"prompt"`: resample prompts with all their units. */
  level?: "unit" | "prompt";
}

/** The resampling key of a unit at a level. */
function keyOf(u: ArmUnit, level: "unit" | "prompt"): string {
  return level === "prompt" ? u.cluster : u.pairId;
}

/**
 * Bootstrap of d_z(A) − d_z(B) (B may be empty: then the CI of d_z(A) alone). Each replicate draws, with
 * replacement, as many keys as the union of both arms holds (pairing keys, or prompts) and evaluates
 * both arms on the same draw. Returns the intervals of A, B and the difference.
 *
 * @example
 * ```ts
 * import { bootstrapDzDifference } from "./controls.ts";
 * const a = [1, 2, 3, 2.5].map((delta, i) => ({ pairId: `${i}`, cluster: `p${i % 2}`, delta }));
 * const res = bootstrapDzDifference(a, [], { resamples: 200 });
 * console.log(res.a.lower <= res.a.estimate); // true
 * ```
 *
 * @category Recync
 */
export function bootstrapDzDifference(
  a: readonly ArmUnit[],
  b: readonly ArmUnit[],
  options: ControlBootstrapOptions = {},
): { a: PercentileInterval; b: PercentileInterval; difference: PercentileInterval } {
  const level = options.level ?? "unit";
  const B = options.resamples ?? 2000;
  const group = (units: readonly ArmUnit[]) => {
    const m = new Map<string, number[]>();
    for (const u of units) m.set(keyOf(u, level), [...(m.get(keyOf(u, level)) ?? []), u.delta]);
    return m;
  };
  const ga = group(a), gb = group(b);
  const keys = [...new Set([...ga.keys(), ...gb.keys()])].sort();
  const rng = new Prng(options.seed ?? 0);
  const ra: number[] = [], rb: number[] = [], rd: number[] = [];
  for (let i = 0; i < B && keys.length > 0; i++) {
    const xa: number[] = [], xb: number[] = [];
    for (let j = 0; j < keys.length; j++) {
      const k = keys[rng.nextInt(keys.length)];
      for (const d of ga.get(k) ?? []) xa.push(d);
      for (const d of gb.get(k) ?? []) xb.push(d);
    }
    const da = dzOf(xa), db = dzOf(xb);
    ra.push(da);
    rb.push(db);
    rd.push(da - db);
  }
  const ea = dzOf(a.map((u) => u.delta)), eb = dzOf(b.map((u) => u.delta));
  return { a: percentile(ea, ra), b: percentile(eb, rb), difference: percentile(ea - eb, rd) };
}

/**
 * One row of the controls table.
 *
 * @category Recync
 */
export interface ControlRow {
  /** Model label. */
  model: string;
  /** T. */
  T: number;
  /** The observed policy. */
  policy: string;
  /** Its control. */
  control: string;
  /** Units of each arm. */
  nPolicy: number;
  /** See nPolicy. */
  nControl: number;
  /** Unit-level bootstrap (resampling pairing keys). */
  unit: ReturnType<typeof bootstrapDzDifference>;
  /** Prompt-clustered bootstrap. */
  prompt: ReturnType<typeof bootstrapDzDifference>;
}

/**
 * The policies treated as controls, and the ones they control for.
 *
 * @category Recync
 */
export const CONTROL_POLICIES: readonly string[] = ["sham-random", "sham-matched", "v4-same-seed"];

/**
 * Every (observed policy, control) pair present for a (model, T): v4, v4-2r and v3 against each of
 * sham-random, sham-matched and v4-same-seed found in the records.
 *
 * @example
 * ```ts
 * import { controlRows } from "./controls.ts";
 * console.log(controlRows([]).length); // 0
 * ```
 *
 * @category Recync
 */
export function controlRows(
  records: readonly RecyncUnitRecord[],
  options: ControlBootstrapOptions & { outcome?: RecyncOutcomeName } = {},
): ControlRow[] {
  const groups = new Map<string, Set<string>>();
  for (const r of records) {
    const k = `${r.model}\u0000${r.T}`;
    if (!groups.has(k)) groups.set(k, new Set());
    groups.get(k)!.add(r.policy);
  }
  const out: ControlRow[] = [];
  for (const [k, policies] of groups) {
    const [model, Ts] = k.split("\u0000");
    const T = Number(Ts);
    for (const policy of ["v4", "v4-2r", "v3", "v3-cbf"].filter((p) => policies.has(p))) {
      for (const control of CONTROL_POLICIES.filter((p) => policies.has(p))) {
        const a = armUnits(records, model, policy, T, options.outcome);
        const b = armUnits(records, model, control, T, options.outcome);
        out.push({
          model,
          T,
          policy,
          control,
          nPolicy: a.length,
          nControl: b.length,
          unit: bootstrapDzDifference(a, b, { ...options, level: "unit" }),
          prompt: bootstrapDzDifference(a, b, { ...options, level: "prompt" }),
        });
      }
    }
  }
  return out;
}
