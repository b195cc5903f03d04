/**
 * Reports over PhaseGPT results files: per (variant, config, mode) the best validation perplexity mean ±
 * std over seeds under each PPL definition beside the seed's number with the future-token leak named
 * (Phase A), R statistics of the declared R metric, and the preregistered Phase B criteria H1–H6, each with
 * PASS/FAIL and the numbers it was decided on. Records are de-duplicated by run id, so shard files can be
 * given in any order.
 *
 * The operational definitions the preregistration left open are fixed here and printed with the verdicts:
 * PPL = best validation PPL, token-weighted (Phase B's own script); R = the run's time series of the
 * declared metric; collapse = final val PPL > 1.5 × the run's best; R(t) "stable" from the first logged
 * step after which every value stays within ±0.05 of the mean of the last 20 % of the run.
 *
 * @module
 */
import { readJsonl } from "../../io/atomic.ts";
import { meanOf, standardDeviationOf } from "../../stats/descriptive.ts";
import { studentTCdf } from "../../stats/special.ts";
import type { PhaseGptRunRecord, PplDefinition } from "./sweep.ts";

/**
 * The PPL definitions in report order (the seed's first).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { REPORT_DEFINITIONS } from "./report.ts";
 * assert.equal(REPORT_DEFINITIONS[0], "batch_mean_exp");
 * ```
 *
 * @category PhaseGPT
 */
export const REPORT_DEFINITIONS: readonly PplDefinition[] = [
  "batch_mean_exp",
  "token_mean",
  "batch_mean",
];

/**
 * Mean ± std (sample std, ddof 1; 0 for one value) and the values.
 *
 * @category PhaseGPT
 */
export interface MeanStd {
  /** Mean. */
  mean: number;
  /** Sample standard deviation (0 with one value). */
  std: number;
  /** The values (one per seed). */
  values: number[];
}

/**
 * R statistics of one run's series.
 *
 * @category PhaseGPT
 */
export interface RunRStats {
  /** Mean over the logged steps. */
  mean: number;
  /** Population std over the logged steps. */
  std: number;
  /** Minimum. */
  min: number;
  /** Maximum. */
  max: number;
  /** Fraction of logged steps inside the band. */
  inBand: number;
  /** First logged step inside the band (null: never). */
  timeToBand: number | null;
  /** Transitions from inside to outside the band. */
  bandExits: number;
  /** First step from which R(t) stays within ±0.05 of its late mean. */
  stableStep: number;
}

/**
 * One row of the report: the seeds of one (plan, variant, config, mode, scale).
 *
 * @category PhaseGPT
 */
export interface ConfigSummary {
  /** `plan|variant|config|mode|scale`. */
  key: string;
  /** Plan name. */
  plan: string;
  /** A or B. */
  phase: "A" | "B";
  /** Variant id. */
  variant: string;
  /** Config id. */
  config: string;
  /** Mode (`-` for baselines). */
  mode: string;
  /** Scale name. */
  scale: string;
  /** Seeds present. */
  seeds: number[];
  /** Parameters (first seed's). */
  params: number;
  /** Blocks of the trained model. */
  nLayers: number;
  /** Blocks whose attention is a phase mixer (empty for baselines). */
  phaseLayers: number[];
  /**
   * Other configs of the same plan, variant, mode and scale whose trained architecture is identical to
   * this one (e.g. L6 and L7 of 12 both land on block 2 of a 4-block scale): same model, same numbers.
   */
  sameModelAs: string[];
  /** Best val PPL per definition. */
  best: Record<PplDefinition, MeanStd>;
  /** Final (last evaluation) val PPL, token-weighted. */
  finalTokenPpl: MeanStd;
  /** Test PPL per definition (Phase B), else null. */
  test: Record<PplDefinition, MeanStd> | null;
  /** R stats averaged over seeds (null when no R metric was logged). */
  r: { mean: MeanStd; std: MeanStd; min: number; max: number; inBand: MeanStd; stableStep: MeanStd } | null;
  /** Runs whose final val PPL exceeds 1.5 × their best. */
  collapsed: number;
  /** The leak of these runs' PPL, if any. */
  leak: string | null;
  /** Mean seconds per optimiser step. */
  secPerStep: number;
  /** Mean wall seconds per run. */
  secPerRun: number;
}

/**
 * Options of {@linkcode summarizePhaseGpt}.
 *
 * @category PhaseGPT
 */
export interface SummaryOptions {
  /** Last dotted segment of the metric names that hold R (default "R"; e.g. `blocks.4.attn.R`). */
  rMetric?: string;
  /** The R band (default [0.35, 0.55], the Phase B criterion). */
  band?: [number, number];
}

function ms(values: number[]): MeanStd {
  return { mean: meanOf(values), std: values.length > 1 ? standardDeviationOf(values, 1) : 0, values };
}

/**
 * The R series of a run: per training log record, the mean of the metrics whose last dotted segment is
 * `metric` (one per phase layer).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rSeries } from "./report.ts";
 * const s = rSeries({ train: [{ step: 10, loss: 1, metrics: { "blocks.1.attn.R": 0.2, "blocks.2.attn.R": 0.4 } }] });
 * assert.deepEqual(s, [{ step: 10, R: 0.30000000000000004 }]);
 * ```
 *
 * @category PhaseGPT
 */
export function rSeries(
  record: Pick<PhaseGptRunRecord, "train">,
  metric = "R",
): { step: number; R: number }[] {
  const out: { step: number; R: number }[] = [];
  for (const t of record.train) {
    const vals = Object.entries(t.metrics ?? {}).filter(([k]) => k.split(".").at(-1) === metric).map((
      [, v],
    ) => v);
    if (vals.length) out.push({ step: t.step, R: meanOf(vals) });
  }
  return out;
}

/**
 * R statistics of one series: mean, std, extremes, time in band, time to band, exits, stabilisation step.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runRStats } from "./report.ts";
 * const s = runRStats([{ step: 1, R: 0.9 }, { step: 2, R: 0.5 }, { step: 3, R: 0.45 }, { step: 4, R: 0.46 }], [0.35, 0.55]);
 * assert.deepEqual([s.inBand, s.timeToBand, s.bandExits, s.stableStep], [0.75, 2, 0, 2]);
 * ```
 *
 * @category PhaseGPT
 */
export function runRStats(series: { step: number; R: number }[], band: [number, number]): RunRStats {
  const R = series.map((s) => s.R);
  const mean = meanOf(R);
  const std = Math.sqrt(meanOf(R.map((x) => (x - mean) ** 2)));
  const inside = R.map((x) => x >= band[0] && x <= band[1]);
  let exits = 0;
  for (let i = 1; i < inside.length; i++) if (inside[i - 1] && !inside[i]) exits++;
  const first = inside.indexOf(true);
  const late = R.slice(Math.floor(R.length * 0.8));
  const lateMean = meanOf(late.length ? late : R);
  let k = R.length - 1;
  while (k > 0 && Math.abs(R[k - 1] - lateMean) <= 0.05) k--;
  return {
    mean,
    std,
    min: Math.min(...R),
    max: Math.max(...R),
    inBand: inside.filter((x) => x).length / R.length,
    timeToBand: first < 0 ? null : series[first].step,
    bandExits: exits,
    stableStep: series[k].step,
  };
}

/**
 * Reads results files (JSONL), keeps PhaseGPT run records, de-duplicates them by id (the last line wins)
 * and reports torn tails.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readPhaseGptResults } from "./report.ts";
 * await assert.rejects(readPhaseGptResults(["/no/such.jsonl"]), /no\/such\.jsonl/);
 * ```
 *
 * @category PhaseGPT
 */
export async function readPhaseGptResults(
  paths: string[],
  options: { allowMissing?: boolean } = {},
): Promise<PhaseGptRunRecord[]> {
  const byId = new Map<string, PhaseGptRunRecord>();
  for (const p of paths) {
    let records: unknown[];
    try {
      ({ records } = await readJsonl(p, { allowMissing: options.allowMissing }));
    } catch (e) {
      throw new Error(`results file '${p}': ${(e as Error).message}`);
    }
    for (const r of records as PhaseGptRunRecord[]) {
      if (r?.schema !== "coherence-lab/phasegpt-run@1") continue;
      // The same run twice (a shard file given twice, a resubmitted task) is kept once; the same id trained
      // under another budget comes from another version of the plan and must not be mixed in silently.
      const seen = byId.get(r.id);
      if (seen && budgetOf(seen.budget) !== budgetOf(r.budget)) {
        throw new Error(
          `results: run ${r.id} appears with two budgets (${budgetOf(seen.budget)} and ${
            budgetOf(r.budget)
          }, the second in ` +
            `'${p}'): these files come from different versions of the plan; report them separately`,
        );
      }
      byId.set(r.id, r);
    }
  }
  return [...byId.values()];
}

/**
 * A run's budget (steps, batch, block) as one comparable string.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { budgetOf } from "./report.ts";
 * assert.equal(budgetOf({ steps: 320, batchSize: 8, blockSize: 64 }), "320 steps of 8 x 64");
 * ```
 *
 * @category PhaseGPT
 */
export function budgetOf(b: { steps: number; batchSize: number; blockSize: number }): string {
  return `${b.steps} steps of ${b.batchSize} x ${b.blockSize}`;
}

/**
 * Groups runs by (plan, variant, config, mode, scale) and summarises the seeds of each.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { summarizePhaseGpt } from "./report.ts";
 * const run = (seed: number, ppl: number) => ({
 *   id: `p|char|base|-|${seed}|ci`, plan: "p", phase: "A", variant: "char", config: "base", mode: "-", scale: "ci", seed,
 *   params: 10, curve: [{ step: 1, loss: 1, ppl: { token_mean: ppl, batch_mean_exp: ppl, batch_mean: ppl }, metrics: {} }],
 *   best: { token_mean: { ppl, step: 1 }, batch_mean_exp: { ppl, step: 1 }, batch_mean: { ppl, step: 1 } },
 *   train: [], test: null, leak: null, secPerStep: 1, elapsedSec: 1,
 * });
 * const [s] = summarizePhaseGpt([run(0, 4), run(1, 6)] as never);
 * assert.deepEqual([s.best.token_mean.mean, s.best.token_mean.std.toFixed(4)], [5, "1.4142"]);
 * ```
 *
 * @category PhaseGPT
 */
export function summarizePhaseGpt(
  records: PhaseGptRunRecord[],
  options: SummaryOptions = {},
): ConfigSummary[] {
  const band = options.band ?? [0.35, 0.55];
  const groups = new Map<string, PhaseGptRunRecord[]>();
  for (const r of records) {
    const key = [r.plan, r.variant, r.config, r.mode, r.scale].join("|");
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const out: ConfigSummary[] = [];
  for (const [key, runs] of groups) {
    runs.sort((a, b) => a.seed - b.seed);
    const defs = REPORT_DEFINITIONS;
    const best = Object.fromEntries(
      defs.map((d) => [d, ms(runs.map((r) => r.best[d].ppl))]),
    ) as ConfigSummary[
      "best"
    ];
    const tested = runs.filter((r) => r.test);
    const test = tested.length
      ? Object.fromEntries(
        defs.map((d) => [d, ms(tested.map((r) => r.test!.ppl[d]))]),
      ) as ConfigSummary["test"]
      : null;
    const rs = runs.map((r) => rSeries(r, options.rMetric ?? "R")).filter((s) => s.length > 0).map((s) =>
      runRStats(s, band)
    );
    const finals = runs.map((r) => r.curve.at(-1)!.ppl.token_mean);
    out.push({
      key,
      plan: runs[0].plan,
      phase: runs[0].phase,
      variant: runs[0].variant,
      config: runs[0].config,
      mode: runs[0].mode,
      scale: runs[0].scale,
      seeds: runs.map((r) => r.seed),
      params: runs[0].params,
      // Records written by hand (or by older tools) may lack the architecture.
      nLayers: runs[0].architecture?.nLayers ?? 0,
      phaseLayers: runs[0].architecture ? phaseBlocks(runs[0].architecture) : [],
      sameModelAs: [],
      best,
      finalTokenPpl: ms(finals),
      test,
      r: rs.length
        ? {
          mean: ms(rs.map((x) => x.mean)),
          std: ms(rs.map((x) => x.std)),
          min: Math.min(...rs.map((x) => x.min)),
          max: Math.max(...rs.map((x) => x.max)),
          inBand: ms(rs.map((x) => x.inBand)),
          stableStep: ms(rs.map((x) => x.stableStep)),
        }
        : null,
      collapsed: runs.filter((r) => r.curve.at(-1)!.ppl.token_mean > 1.5 * r.best.token_mean.ppl).length,
      leak: runs.find((r) => r.leak)?.leak ?? null,
      secPerStep: meanOf(runs.map((r) => r.secPerStep)),
      secPerRun: meanOf(runs.map((r) => r.elapsedSec)),
    });
  }
  // Configs that train the same architecture under the same budget at this scale.
  const archKey = (c: ConfigSummary) => {
    const r = groups.get(c.key)![0];
    return JSON.stringify([
      c.plan,
      c.variant,
      c.mode,
      c.scale,
      r.architecture,
      r.training,
      r.budget,
      r.lossTerms,
    ]);
  };
  for (const c of out) {
    c.sameModelAs = out.filter((o) => o !== c && archKey(o) === archKey(c)).map((o) => o.config);
  }
  return out;
}

/** Blocks whose mixer is not softmax attention. */
function phaseBlocks(a: PhaseGptRunRecord["architecture"]): number[] {
  const blocks = new Set<number>();
  for (const m of a.mixers ?? []) {
    if (m.kind === "attention") continue;
    const layers = m.layers === "all" ? Array.from({ length: a.nLayers }, (_, i) => i) : m.layers ?? [];
    for (const l of layers) blocks.add(l);
  }
  return [...blocks].sort((x, y) => x - y);
}

/**
 * The seed's Phase A table (spec §5): best val PPL (mean of per-batch exp, seed 42, leaky phase layer).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SEED_PHASE_A } from "./report.ts";
 * assert.equal(SEED_PHASE_A["l7-n32-k1"], 4.85);
 * ```
 *
 * @category PhaseGPT
 */
export const SEED_PHASE_A: Readonly<Record<string, number | null>> = {
  baseline: 4.97,
  "l7-n32-k1": 4.85,
  "l6-n32-k1": 4.86,
  "l6-n16-k1": 4.86,
  "l6-n32-k2": 4.94,
  "l6-n64-k1": 11.93,
  "l67-n32-k1": 4.89,
  "l47-n32-k1": 4.92,
};

const f = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");
const pm = (m: MeanStd, d = 3) => `${f(m.mean, d)} ± ${f(m.std, d)}`;

/**
 * The Phase A table in Markdown: best val PPL mean ± std per config and mode under each definition, the
 * seed's number beside it, and the leak named.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatPhaseATable } from "./report.ts";
 * assert.match(formatPhaseATable([]), /^\| config/);
 * ```
 *
 * @category PhaseGPT
 */
export function formatPhaseATable(summaries: ConfigSummary[], seedTable = SEED_PHASE_A): string {
  const head =
    "| config | mode | phase blocks | seeds | params | seed's best val PPL | best val PPL, mean of batch exp (seed's " +
    "definition) | best val PPL, token-weighted | best val PPL, exp of batch mean | leak |";
  const rows = summaries.map((s) =>
    `| ${s.config}${s.sameModelAs.length ? " ¹" : ""} | ${s.mode} | ${
      s.phaseLayers.length ? `${s.phaseLayers.join(", ")} of ${s.nLayers}` : "–"
    } | ${s.seeds.length} | ${s.params.toLocaleString("en-US")} | ${seedTable[s.config] ?? "–"} | ${
      pm(s.best.batch_mean_exp)
    } | ${pm(s.best.token_mean)} | ${pm(s.best.batch_mean)} | ${
      s.leak ? "future tokens (non-causal phase layer)" : "none"
    } |`
  );
  const same = [
    ...new Set(
      summaries.filter((s) => s.sameModelAs.length).map((s) =>
        [s.config, ...s.sameModelAs].sort().join(" = ")
      ),
    ),
  ];
  const note = same.length
    ? [
      "",
      `¹ The same model at this scale (the phase layers are remapped to the scale's depth and land on the same ` +
      `blocks): ${same.join("; ")}. Their numbers are equal by construction, not by coincidence.`,
    ]
    : [];
  return [head, "|" + " --- |".repeat(10), ...rows, ...note].join("\n");
}

/**
 * One preregistered criterion evaluated.
 *
 * @category PhaseGPT
 */
export interface HypothesisResult {
  /** `H1 (B2)`, `H2a`, … */
  id: string;
  /** The preregistered claim. */
  claim: string;
  /** The operational criterion used. */
  criterion: string;
  /** PASS, FAIL, or null when the data cannot decide (missing config or R metric). */
  pass: boolean | null;
  /** The numbers decided on. */
  numbers: Record<string, number | null>;
}

/** One-sided Welch t test p-value for mean(a) < c · mean(b). */
function welchLess(a: number[], b: number[], c: number): number | null {
  if (a.length < 2 || b.length < 2) return null;
  const va = standardDeviationOf(a, 1) ** 2 / a.length,
    vb = (c * c * standardDeviationOf(b, 1) ** 2) / b.length;
  const se = Math.sqrt(va + vb);
  if (!(se > 0)) return null;
  const t = (meanOf(a) - c * meanOf(b)) / se;
  const df = (va + vb) ** 2 / (va ** 2 / (a.length - 1) + vb ** 2 / (b.length - 1));
  return studentTCdf(t, df);
}

/**
 * The Phase B ids the criteria refer to (config ids of the shipped plan).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PHASE_B_IDS } from "./report.ts";
 * assert.equal(PHASE_B_IDS.diverse, "B4");
 * ```
 *
 * @category PhaseGPT
 */
export const PHASE_B_IDS = { baseline: "B1", soft: "B2", mid: "B3", diverse: "B4" } as const;

/**
 * Evaluates H1–H6 on the summaries of one Phase B (variant, mode) group; `phaseA` (summaries of Phase A
 * phase configs) is needed for H4. Criteria whose inputs are missing come back with `pass: null`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { evaluateHypotheses } from "./report.ts";
 * const s = (config: string, ppl: number, r: number) => ({
 *   config, mode: "corrected", seeds: [0, 1, 2], collapsed: 0,
 *   best: { token_mean: { mean: ppl, std: 0.1, values: [ppl - 0.1, ppl, ppl + 0.1] } },
 *   r: { mean: { mean: r, std: 0, values: [r] }, std: { mean: 0.02, std: 0, values: [0.02] }, stableStep: { mean: 100, std: 0, values: [100] },
 *     inBand: { mean: 1, std: 0, values: [1] } },
 * });
 * const h = evaluateHypotheses([s("B1", 10, 0), s("B2", 10.2, 0.4), s("B3", 10.4, 0.5), s("B4", 10.1, 0.45)] as never);
 * assert.equal(h.find((x) => x.id === "H1 (B2)")?.pass, true); // 10.2 <= 1.05 * 10
 * assert.equal(h.find((x) => x.id === "H3a")?.pass, true); // 0.45 in [0.35, 0.55]
 * ```
 *
 * @category PhaseGPT
 */
export function evaluateHypotheses(
  group: ConfigSummary[],
  phaseA: ConfigSummary[] = [],
  band: [number, number] = [0.35, 0.55],
): HypothesisResult[] {
  const get = (id: string) => group.find((s) => s.config === id);
  const b1 = get(PHASE_B_IDS.baseline),
    b2 = get(PHASE_B_IDS.soft),
    b3 = get(PHASE_B_IDS.mid),
    b4 = get(PHASE_B_IDS.diverse);
  const ppl = (s?: ConfigSummary) => s?.best.token_mean.mean ?? null;
  const rMean = (s?: ConfigSummary) => s?.r?.mean.mean ?? null;
  const rStd = (s?: ConfigSummary) => s?.r?.std.mean ?? null;
  const stable = (s?: ConfigSummary) => s?.r?.stableStep.mean ?? null;
  const decide = (ok: boolean, ...xs: (number | null)[]) => (xs.some((x) => x === null) ? null : ok);
  const out: HypothesisResult[] = [];
  for (const kpc of [b2, b3, b4].filter((x) => x)) {
    const p = ppl(kpc), base = ppl(b1);
    out.push({
      id: `H1 (${kpc!.config})`,
      claim: "KPC generalises: best val PPL within 5 % of the baseline's",
      criterion: "mean best val PPL (token-weighted) ≤ 1.05 × baseline's; one-sided Welch t p reported",
      pass: decide(p !== null && base !== null && p <= 1.05 * base, p, base),
      numbers: {
        ppl: p,
        baseline: base,
        ratio: p !== null && base ? p / base : null,
        pWelch: b1 ? welchLess(kpc!.best.token_mean.values, b1.best.token_mean.values, 1.05) : null,
      },
    });
  }
  type Metric = (s?: ConfigSummary) => number | null;
  const b2BelowB3 = (id: string, claim: string, criterion: string, m: Metric) =>
    out.push({
      id,
      claim,
      criterion,
      pass: decide((m(b2) ?? 0) < (m(b3) ?? 0), m(b2), m(b3)),
      numbers: { B2: m(b2), B3: m(b3) },
    });
  b2BelowB3("H2a", "K = 0.50 beats K = 0.75 on PPL", "mean best val PPL B2 < B3", ppl);
  b2BelowB3("H2b", "K = 0.50 has lower R than K = 0.75", "mean R B2 < B3", rMean);
  // B2 and B3 combined by `op`, or null when either is missing (what H3b, H3c and H6 compare B4 with).
  const ofB2B3 = (m: Metric, op: (x: number, y: number) => number) => {
    const x = m(b2), y = m(b3);
    return x !== null && y !== null ? op(x, y) : null;
  };
  out.push({
    id: "H3a",
    claim: `B4's R stays in the band [${band[0]}, ${band[1]}]`,
    criterion: "mean R of B4 inside the band",
    pass: decide((rMean(b4) ?? -1) >= band[0] && (rMean(b4) ?? 2) <= band[1], rMean(b4)),
    numbers: { B4: rMean(b4), inBandFraction: b4?.r?.inBand.mean ?? null },
  });
  const minKpc = ofB2B3(ppl, Math.min);
  out.push({
    id: "H3b",
    claim: "B4 has the best KPC PPL",
    criterion: "mean best val PPL B4 ≤ min(B2, B3)",
    pass: decide((ppl(b4) ?? Infinity) <= (minKpc ?? -Infinity), ppl(b4), minKpc),
    numbers: { B4: ppl(b4), minB2B3: minKpc },
  });
  const meanStd = ofB2B3(rStd, (x, y) => (x + y) / 2);
  out.push({
    id: "H3c",
    claim: "B4's R varies less over training",
    criterion: "std of R(t) B4 < mean(std B2, std B3)",
    pass: decide((rStd(b4) ?? Infinity) < (meanStd ?? -Infinity), rStd(b4), meanStd),
    numbers: { B4: rStd(b4), meanB2B3: meanStd },
  });
  const cv = (s: ConfigSummary) => s.best.token_mean.std / s.best.token_mean.mean;
  const kpcs = [b2, b3, b4].filter((x): x is ConfigSummary => !!x && x.seeds.length > 1);
  const aPhase = phaseA.filter((s) => s.mode !== "-" && s.seeds.length > 1);
  const cvB = kpcs.length ? meanOf(kpcs.map(cv)) : null, cvA = aPhase.length ? meanOf(aPhase.map(cv)) : null;
  out.push({
    id: "H4",
    claim: "lower variance across runs than Phase A",
    criterion:
      "mean coefficient of variation of best val PPL over seeds, KPC configs (B) < phase configs (A)",
    pass: decide((cvB ?? 0) < (cvA ?? 0), cvB, cvA),
    numbers: { cvPhaseB: cvB, cvPhaseA: cvA },
  });
  const collapsed = [b2, b3, b4].reduce((n, s) => n + (s?.collapsed ?? 0), 0);
  const runs = [b2, b3, b4].reduce((n, s) => n + (s?.seeds.length ?? 0), 0);
  out.push({
    id: "H5",
    claim: "K = 0.50 / 0.75 avoid the K = 2 collapse",
    criterion: "no B2–B4 run ends with val PPL > 1.5 × its best",
    pass: runs ? collapsed === 0 : null,
    numbers: { collapsedRuns: collapsed, runs },
  });
  const minStable = ofB2B3(stable, Math.min);
  out.push({
    id: "H6",
    claim: "R(t) stabilises faster in B4",
    criterion: "mean stabilisation step B4 < min(B2, B3)",
    pass: decide((stable(b4) ?? Infinity) < (minStable ?? -Infinity), stable(b4), minStable),
    numbers: { B4: stable(b4), minB2B3: minStable },
  });
  return out;
}

/**
 * H1–H6 as a Markdown table.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatHypotheses } from "./report.ts";
 * const md = formatHypotheses([{ id: "H5", claim: "c", criterion: "k", pass: true, numbers: { runs: 3 } }]);
 * assert.match(md, /\| H5 \| c \| k \| PASS \| runs 3 \|/);
 * ```
 *
 * @category PhaseGPT
 */
export function formatHypotheses(results: HypothesisResult[]): string {
  const rows = results.map((h) =>
    `| ${h.id} | ${h.claim} | ${h.criterion} | ${h.pass === null ? "n/a" : h.pass ? "PASS" : "FAIL"} | ${
      Object.entries(h.numbers).map(([k, v]) => `${k} ${v === null ? "n/a" : +v.toPrecision(4)}`).join(", ")
    } |`
  );
  return ["| id | claim | criterion | verdict | numbers |", "| --- | --- | --- | --- | --- |", ...rows].join(
    "\n",
  );
}

/**
 * The full Markdown report of some results: Phase A tables per variant, Phase B tables with test PPL and
 * R, H1–H6 per (variant, mode), and the time per run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatPhaseGptReport } from "./report.ts";
 * assert.match(formatPhaseGptReport([]), /no PhaseGPT runs/);
 * ```
 *
 * @category PhaseGPT
 */
export function formatPhaseGptReport(records: PhaseGptRunRecord[], options: SummaryOptions = {}): string {
  if (records.length === 0) return "no PhaseGPT runs in the given files";
  const band = options.band ?? [0.35, 0.55];
  const all = summarizePhaseGpt(records, options);
  const parts: string[] = [];
  const a = all.filter((s) => s.phase === "A");
  // One table per (plan, scale, variant): runs of other scales or plans are never pooled.
  for (const key of [...new Set(a.map((s) => `${s.plan}|${s.scale}|${s.variant}`))]) {
    const rows = a.filter((s) => `${s.plan}|${s.scale}|${s.variant}` === key);
    const variant = rows[0].variant;
    parts.push(
      `## Phase A (${rows[0].plan}, scale ${rows[0].scale}, variant ${variant})\n\n` +
        "The seed's numbers: one seed, 512-char windows, the phase models' PPL with the future-token leak of " +
        "the non-causal phase layer, baseline trained 164 epochs vs 20. Ours: equal budgets per config.\n\n" +
        formatPhaseATable(rows),
    );
  }
  const b = all.filter((s) => s.phase === "B");
  const metric = options.rMetric ?? "R";
  for (const key of [...new Set(b.map((s) => `${s.plan}|${s.scale}|${s.variant}|${s.mode}`))]) {
    const [plan, scale, variant, mode] = key.split("|");
    const same = (s: ConfigSummary) => s.plan === plan && s.scale === scale && s.variant === variant;
    const rows = b.filter((s) => same(s) && (s.mode === mode || s.mode === "-"));
    if (mode === "-" && b.some((s) => same(s) && s.mode !== "-")) continue;
    const regularised = records.some((r) =>
      r.plan === plan && r.scale === scale && r.variant === variant && (r.lossTerms.coherence ?? 0) > 0
    );
    const rNote =
      `R: the metric \`blocks.{L}.attn.${metric}\` the phase mixer logs at every training log step, ` +
      `the phase layer's own order parameter (definition "layer": |mean of e^{iθ}| over tokens and oscillators ` +
      `per head, then the mean over heads and batch); band [${band[0]}, ${band[1]}].` +
      (regularised
        ? " The coherence regulariser (B4) acts on the per-token R over oscillators (spec §3.3), which is never " +
          "below the layer's R, so a regulariser at its ceiling still leaves this R at or under it."
        : "");
    const table = [
      "| config | mode | seeds | best val PPL (token-weighted) | test PPL (token-weighted) | mean R | std R(t) | R in band |",
      "| --- | --- | --- | --- | --- | --- | --- | --- |",
      ...rows.map((s) =>
        `| ${s.config} | ${s.mode} | ${s.seeds.length} | ${pm(s.best.token_mean)} | ${
          s.test ? pm(s.test.token_mean) : "–"
        } | ${s.r ? pm(s.r.mean) : "–"} | ${s.r ? f(s.r.std.mean) : "–"} | ${
          s.r ? f(s.r.inBand.mean, 2) : "–"
        } |`
      ),
    ].join("\n");
    parts.push(
      `## Phase B (${rows[0].plan}, scale ${
        rows[0].scale
      }, variant ${variant}, mode ${mode})\n\n${table}\n\n${rNote}\n\n` +
        formatHypotheses(evaluateHypotheses(rows, a, band)),
    );
  }
  const time = all.map((s) =>
    `${s.config}/${s.mode}: ${f(s.secPerRun, 1)} s per run, ${f(s.secPerStep, 3)} s/step`
  );
  parts.push(`## Time\n\n${time.join("; ")}`);
  return parts.join("\n\n");
}
