/**
 * Recync results → the paper-style table, a forest plot of d with CIs, and cosim trace plots.
 *
 * Denominators (spec §8.13): `N units` counts every generated unit; `N intervened` counts units whose
 * baseline had a crisis and whose intervention arm the policy acted on. d, p, iatrogenic and crisis-free
 * are over intervened units. The headline d is d_z of the primary outcome (`crisisFraction` unless told
 * otherwise) with a seeded percentile-bootstrap 95 % CI over units; p is the two-sided paired t test,
 * with the Wilcoxon signed-rank p beside it.
 *
 * @module
 */
import { readJsonl, writeJsonAtomic, writeTextAtomic } from "../io/atomic.ts";
import { Plot, plot, type PlotFigure, savePng, saveSvg } from "../plot/mod.ts";
import { type PairedComparison, pairedComparison, type PairedEffectKind } from "../stats/paired.ts";
import { clopperPearsonInterval, type ProportionInterval, wilsonInterval } from "../stats/binomial.ts";
import { crisisExtents, RECYNC_OUTCOMES, type RecyncOutcomeName } from "./metrics.ts";
import type { RecyncUnitRecord } from "./harness.ts";
import { controlRows, dzOf } from "./controls.ts";
import { simulateNull, traceMoments } from "./null_process.ts";
import { JUDGE_NLL_DEFINITION } from "./judge.ts";
import { meanOf } from "../stats/descriptive.ts";

/**
 * The response-level results the paper reports (spec §5.3), printed beside ours.
 *
 * @category Recync
 */
export interface RecyncPaperRow {
  /** Model name as the paper writes it. */
  model: string;
  /** Parameter count label. */
  params: string;
  /** PIR Cohen's d. */
  d: number;
  /** 95 % CI, when reported. */
  ci: [number, number] | null;
  /** Iatrogenic count and denominator, when reported. */
  iatrogenic: [number, number] | null;
  /** Crisis-free rate in percent, when reported. */
  crisisFreePct: number | null;
  /** Whether the paper gives a p-value for this row (the seed gives none for TinyLlama). */
  pReported: boolean;
  /** A pattern matched against our lower-cased model labels (e.g. `hf:EleutherAI/pythia-160m`). */
  match: RegExp;
}

/**
 * Spec §5.3 (README of the Recync repository).
 *
 * @category Recync
 */
export const RECYNC_PAPER_V4: readonly RecyncPaperRow[] = [
  {
    model: "GPT-2 Small",
    params: "117M",
    d: 0.494,
    ci: [0.354, 0.687],
    iatrogenic: [0, 137],
    crisisFreePct: 43.1,
    pReported: true,
    match: /(^|[:/])gpt2(-small)?$/,
  },
  {
    model: "Pythia-160M",
    params: "160M",
    d: 0.958,
    ci: [0.762, 1.185],
    iatrogenic: [0, 177],
    crisisFreePct: 21.5,
    pReported: true,
    match: /pythia-160m/,
  },
  {
    model: "GPT-2 Medium",
    params: "355M",
    d: 0.796,
    ci: [0.591, 1.028],
    iatrogenic: [0, 44],
    crisisFreePct: 59.1,
    pReported: true,
    match: /gpt2-medium/,
  },
  {
    model: "Qwen2-1.5B",
    params: "1,544M",
    d: 1.02,
    ci: [0.866, 1.193],
    iatrogenic: [0, 183],
    crisisFreePct: 14.2,
    pReported: true,
    match: /qwen2-1\.5b/,
  },
  {
    model: "TinyLlama-1.1B",
    params: "1,100M",
    d: 1.4,
    ci: null,
    iatrogenic: null,
    crisisFreePct: null,
    pReported: false,
    match: /tinyllama/,
  },
];

/**
 * The token-level (v3) result the paper reports: GPT-2 Small, d = +0.211, p = 0.037 (spec §3.3).
 *
 * @category Recync
 */
export const RECYNC_PAPER_V3: { model: string; params: string; d: number; p: number } = {
  model: "GPT-2 Small",
  params: "124M",
  d: 0.211,
  p: 0.037,
};

/**
 * The paper row for one of our model labels, if any (case-insensitive substring match).
 *
 * @example
 * ```ts
 * import { paperRowFor } from "./report.ts";
 * console.log(paperRowFor("hf:EleutherAI/pythia-160m")?.d); // 0.958
 * ```
 *
 * @category Recync
 */
export function paperRowFor(model: string): RecyncPaperRow | undefined {
  const m = model.toLowerCase();
  return RECYNC_PAPER_V4.find((row) => row.match.test(m));
}

/**
 * Reads and merges results files, de-duplicating by unit id (the first occurrence wins; a later line
 * with the same id is a resumed or overlapping shard's repeat). Torn last lines are skipped.
 *
 * @example
 * ```ts
 * import { readRecyncResults } from "./report.ts";
 * const path = await Deno.makeTempFile({ suffix: ".jsonl" });
 * console.log((await readRecyncResults([path])).records.length); // 0
 * ```
 *
 * @category Recync
 */
export async function readRecyncResults(
  paths: string[],
): Promise<{ records: RecyncUnitRecord[]; duplicates: number; tornLines: number }> {
  const byId = new Map<string, RecyncUnitRecord>();
  let duplicates = 0, tornLines = 0;
  for (const path of paths) {
    const { records, tornTail } = await readJsonl<RecyncUnitRecord>(path);
    if (tornTail) tornLines++;
    records.forEach((r, i) => {
      if (r?.schema !== "coherence-lab/recync-unit@1" || typeof r.id !== "string") {
        throw new Error(`${path}: record ${i + 1} is not a Recync unit (schema coherence-lab/recync-unit@1)`);
      }
      if (byId.has(r.id)) duplicates++;
      else byId.set(r.id, r);
    });
  }
  const records = [...byId.values()].sort((a, b) =>
    a.model.localeCompare(b.model) || a.policy.localeCompare(b.policy) || a.T - b.T || a.index - b.index
  );
  return { records, duplicates, tornLines };
}

/**
 * Options of {@link summarizeRecync}.
 *
 * @category Recync
 */
export interface RecyncSummaryOptions {
  /** Primary outcome (default `"crisisFraction"`). */
  outcome?: RecyncOutcomeName;
  /** Effect size of the headline (default `"dz"`). */
  effect?: PairedEffectKind;
  /** Bootstrap resamples (default 10,000) and seed (default 0). */
  resamples?: number;
  /** Bootstrap seed. */
  seed?: number;
  /** Bootstrap interval method (default percentile). */
  ciMethod?: "percentile" | "bca";
  /** Binomial CI of the crisis-free rate (default Wilson). */
  proportionCi?: "wilson" | "clopper-pearson";
}

/**
 * d and p of one outcome variant.
 *
 * @category Recync
 */
export interface RecyncVariantSummary {
  /** The effect size (per the summary's `effect`). */
  d: number;
  /** Two-sided paired t p-value. */
  p: number;
}

/**
 * One row of the results table: a (model, policy, T) group.
 *
 * @category Recync
 */
export interface RecyncGroupSummary {
  /** Model label. */
  model: string;
  /** Policy of the intervention arm. */
  policy: string;
  /** Generated tokens per arm. */
  T: number;
  /** All units generated. */
  nUnits: number;
  /** Units whose baseline had at least one crisis. */
  nBaselineCrisis: number;
  /** Units the policy acted on (the denominator of d, iatrogenic, crisis-free). */
  nIntervened: number;
  /** Primary outcome name. */
  outcome: RecyncOutcomeName;
  /** Outcome window of the group's metrics. */
  window: string;
  /** Headline effect kind. */
  effect: PairedEffectKind;
  /** The full paired comparison on the primary outcome (null with fewer than 2 intervened units). */
  comparison: PairedComparison | null;
  /** d and p of every outcome variant. */
  variants: Partial<Record<RecyncOutcomeName, RecyncVariantSummary>>;
  /** Iatrogenic counts under each definition. */
  iatrogenic: { strictWorse: number; worseBy: number; newCrisis: number };
  /** Crisis-free count among intervened units, with a Wilson (default) or Clopper-Pearson 95 % CI. */
  crisisFree: ProportionInterval;
  /** Mean restarts per intervened unit (v4). */
  meanRestarts: number;
  /** v3 intervention lengths in tokens (start to stopEarly/end): count, mean, and how many lasted one token. */
  interventionLengths: { count: number; mean: number; oneToken: number };
  /** v3 decisions the CBF safety filter changed (detail.qpChanged), over all logged decisions. */
  cbfFiltered: { changed: number; decisions: number };
  /**
   * Text-quality outcomes over the same window and units: each arm's mean and the paired d_z of the
   * improvement (baseline − intervention for repetition and judge NLL, intervention − baseline for
   * distinct-n), so positive is better text; absent when no unit has the value.
   */
  text: Partial<Record<RecyncTextOutcome, RecyncTextOutcomeSummary>>;
  /** The judge model of `text.judgeNll` (its source), when the records were judged. */
  judge?: string;
  /** Units whose arms diverged before the policy acted (should be 0). */
  prefixMismatches: number;
  /** Mean wall time per unit, milliseconds. */
  meanUnitMs: number;
}

/**
 * Text-quality outcomes of the report: trigram repetition rate, distinct-2, and the judge's NLL.
 *
 * @category Recync
 */
export type RecyncTextOutcome = "repetitionRate" | "distinct2" | "judgeNll";

/**
 * The text outcomes, in report order, with whether higher is better.
 *
 * @category Recync
 */
export const RECYNC_TEXT_OUTCOMES: readonly { name: RecyncTextOutcome; higherIsBetter: boolean }[] = [
  { name: "repetitionRate", higherIsBetter: false },
  { name: "distinct2", higherIsBetter: true },
  { name: "judgeNll", higherIsBetter: false },
];

/**
 * One text outcome of a group.
 *
 * @category Recync
 */
export interface RecyncTextOutcomeSummary {
  /** Units with a finite value in both arms. */
  n: number;
  /** Mean over those units, baseline arm. */
  baseline: number;
  /** Mean, intervention arm. */
  intervention: number;
  /** d_z of the improvement (positive = better text in the intervention arm); NaN below 2 units. */
  dz: number;
}

/**
 * Per-arm value of a text outcome of one results line (null where it is missing).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { textOutcomeOf } from "./report.ts";
 * const r = { metrics: { baseline: { repetitionRate: 0.5 }, intervention: { repetitionRate: 0.25 } } };
 * assert.deepEqual(textOutcomeOf(r as never, "repetitionRate"), [0.5, 0.25]);
 * assert.equal(textOutcomeOf(r as never, "judgeNll"), null);
 * ```
 *
 * @category Recync
 */
export function textOutcomeOf(
  r: Pick<RecyncUnitRecord, "metrics" | "judge">,
  o: RecyncTextOutcome,
): [number, number] | null {
  if (o === "judgeNll") {
    return r.judge ? [r.judge.baseline.nll, r.judge.intervention.nll] : null;
  }
  const m = r.metrics;
  return m ? [m.baseline[o], m.intervention[o]] : null;
}

function textSummary(
  units: readonly RecyncUnitRecord[],
): Partial<Record<RecyncTextOutcome, RecyncTextOutcomeSummary>> {
  const out: Partial<Record<RecyncTextOutcome, RecyncTextOutcomeSummary>> = {};
  for (const { name, higherIsBetter } of RECYNC_TEXT_OUTCOMES) {
    const pairs = units.map((r) => textOutcomeOf(r, name)).filter((p): p is [number, number] =>
      p !== null && Number.isFinite(p[0]) && Number.isFinite(p[1])
    );
    if (pairs.length === 0) continue;
    const deltas = pairs.map(([b, i]) => higherIsBetter ? i - b : b - i);
    out[name] = {
      n: pairs.length,
      baseline: meanOf(pairs.map((p) => p[0])),
      intervention: meanOf(pairs.map((p) => p[1])),
      dz: pairs.length >= 2 ? dzOf(deltas) : NaN,
    };
  }
  return out;
}

/**
 * Lengths in tokens of a unit's v3 interventions: from each `apply` step to the following `stopEarly` or
 * `end` step (an intervention still running at T is left out).
 *
 * @example
 * ```ts
 * import { interventionLengths } from "./report.ts";
 * const log = [{ step: 23, detail: { action: "apply" } }, { step: 24, detail: { action: "stopEarly" } }];
 * console.log(interventionLengths(log)); // [1]
 * ```
 *
 * @category Recync
 */
export function interventionLengths(
  log: readonly { step: number; detail?: Record<string, unknown> }[],
): number[] {
  const out: number[] = [];
  let start: number | null = null;
  for (const e of log) {
    const a = e.detail?.action;
    if (a === "apply") start = e.step;
    else if ((a === "stopEarly" || a === "end") && start !== null) {
      out.push(e.step - start);
      start = null;
    }
  }
  return out;
}

function outcomePair(r: RecyncUnitRecord, o: RecyncOutcomeName): [number, number] {
  const m = r.metrics!;
  // Oriented so that a − b is the improvement: lower-is-better outcomes (b, i); meanCosim (i, b).
  return o === "meanCosim" ? [m.intervention[o], m.baseline[o]] : [m.baseline[o], m.intervention[o]];
}

/**
 * Groups records by (model, policy, T) and computes the table row of each group.
 *
 * @example
 * ```ts
 * import { summarizeRecync } from "./report.ts";
 * console.log(summarizeRecync([]).length); // 0
 * ```
 *
 * @category Recync
 */
export function summarizeRecync(
  records: RecyncUnitRecord[],
  options: RecyncSummaryOptions = {},
): RecyncGroupSummary[] {
  const outcome = options.outcome ?? "crisisFraction";
  const effect = options.effect ?? "dz";
  const groups = new Map<string, RecyncUnitRecord[]>();
  for (const r of records) {
    const key = `${r.model}|${r.policy}|${r.T}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(r);
  }
  const out: RecyncGroupSummary[] = [];
  for (const rs of groups.values()) {
    const used = rs.filter((r) => r.intervened && r.metrics);
    const pairs = (o: RecyncOutcomeName) => {
      const a: number[] = [], b: number[] = [];
      for (const r of used) {
        const [x, y] = outcomePair(r, o);
        if (Number.isFinite(x) && Number.isFinite(y)) {
          a.push(x);
          b.push(y);
        }
      }
      return [a, b] as const;
    };
    const [a, b] = pairs(outcome);
    const comparison = a.length >= 2
      ? pairedComparison(a, b, {
        effect,
        bootstrap: {
          resamples: options.resamples ?? 10_000,
          seed: options.seed ?? 0,
          method: options.ciMethod,
        },
      })
      : null;
    const variants: Partial<Record<RecyncOutcomeName, RecyncVariantSummary>> = {};
    for (const o of RECYNC_OUTCOMES) {
      const [va, vb] = pairs(o);
      if (va.length < 2) continue;
      const c = pairedComparison(va, vb, { effect, bootstrap: { resamples: 1 } });
      variants[o] = { d: effect === "dz" ? c.dz : effect === "dav" ? c.dav : c.dPooled, p: c.t.pValue };
    }
    const free = used.filter((r) => r.metrics!.crisisFree).length;
    const first = rs[0];
    out.push({
      model: first.model,
      policy: first.policy,
      T: first.T,
      nUnits: rs.length,
      nBaselineCrisis: rs.filter((r) => r.baseline.events.length > 0).length,
      nIntervened: used.length,
      outcome,
      window: used[0]?.metrics?.window ?? "from-rewind",
      effect,
      comparison,
      variants,
      iatrogenic: {
        strictWorse: used.filter((r) => r.metrics!.iatrogenic.strictWorse).length,
        worseBy: used.filter((r) => r.metrics!.iatrogenic.worseBy).length,
        newCrisis: used.filter((r) => r.metrics!.iatrogenic.newCrisis).length,
      },
      crisisFree: options.proportionCi === "clopper-pearson"
        ? clopperPearsonInterval(free, used.length)
        : wilsonInterval(free, used.length),
      meanRestarts: used.length ? used.reduce((s, r) => s + r.restarts.length, 0) / used.length : 0,
      cbfFiltered: {
        changed: rs.reduce(
          (n, r) => n + (r.interventions ?? []).filter((e) => e.detail?.qpChanged === true).length,
          0,
        ),
        // Decisions the filter saw (qpChanged is null where no filter ran, e.g. plain v3 rows).
        decisions: rs.reduce(
          (n, r) =>
            n + (r.interventions ?? []).filter((e) => typeof e.detail?.qpChanged === "boolean").length,
          0,
        ),
      },
      interventionLengths: (() => {
        const lengths = rs.flatMap((r) => interventionLengths(r.interventions ?? []));
        return {
          count: lengths.length,
          mean: lengths.length ? lengths.reduce((a, b) => a + b, 0) / lengths.length : NaN,
          oneToken: lengths.filter((x) => x === 1).length,
        };
      })(),
      text: textSummary(used),
      judge: used.find((r) => r.judge)?.judge?.model,
      prefixMismatches: rs.filter((r) => !r.prefixMatches).length,
      meanUnitMs: rs.reduce((s, r) => s + r.elapsedMs, 0) / rs.length,
    });
  }
  return out;
}

const signed = (x: number, digits = 3) =>
  Number.isFinite(x) ? (x >= 0 ? "+" : "") + x.toFixed(digits) : "n/a";
const pct = (x: number) => Number.isFinite(x) ? (100 * x).toFixed(1) + "%" : "n/a";
const pval = (p: number) => !Number.isFinite(p) ? "n/a" : p < 1e-4 ? "<0.0001" : p.toFixed(4);

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => "| " + cells.join(" | ") + " |";
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/**
 * The paper-style table (model, N, d, 95 % CI, p, iatrogenic, crisis-free) as Markdown, followed by the
 * paper's own rows (spec §5.3) and the outcome variants, so ours and theirs read side by side.
 *
 * @example
 * ```ts
 * import { formatRecyncTable } from "./report.ts";
 * console.log(formatRecyncTable([]).includes("GPT-2 Small")); // true (the paper's rows)
 * ```
 *
 * @category Recync
 */
export function formatRecyncTable(summaries: RecyncGroupSummary[]): string {
  const judge = summaries.find((x) => x.judge)?.judge;
  const ours = summaries.map((s) => {
    const c = s.comparison;
    const d = c ? (s.effect === "dz" ? c.dz : s.effect === "dav" ? c.dav : c.dPooled) : NaN;
    return [
      s.model,
      s.policy,
      String(s.T),
      `${s.nIntervened}/${s.nUnits}`,
      signed(d),
      c ? `[${signed(c.effectCi.lower)}, ${signed(c.effectCi.upper)}]` : "n/a",
      c ? pval(c.t.pValue) : "n/a",
      c ? `${pval(c.wilcoxon.pValue)} (${c.wilcoxon.method})` : "n/a",
      `${s.iatrogenic.strictWorse}/${s.nIntervened} (${pct(s.iatrogenic.strictWorse / s.nIntervened)})`,
      `${pct(s.crisisFree.estimate)} [${pct(s.crisisFree.lower)}, ${pct(s.crisisFree.upper)}]`,
    ];
  });
  const paper = RECYNC_PAPER_V4.map((p) => [
    p.model,
    p.params,
    signed(p.d),
    p.ci ? `[${signed(p.ci[0])}, ${signed(p.ci[1])}]` : "—",
    p.pReported ? "<0.0001" : "—",
    p.iatrogenic ? `${p.iatrogenic[0]}/${p.iatrogenic[1]} (0%)` : "0%",
    p.crisisFreePct !== null ? `${p.crisisFreePct}%` : "—",
  ]);
  const variantRows = summaries.map((s) => [
    s.model,
    s.policy,
    ...RECYNC_OUTCOMES.map((o) =>
      s.variants[o] ? `${signed(s.variants[o]!.d)} (p ${pval(s.variants[o]!.p)})` : "n/a"
    ),
    `${s.iatrogenic.worseBy}`,
    `${s.iatrogenic.newCrisis}`,
    s.meanRestarts.toFixed(2),
    s.interventionLengths.count
      ? `${
        s.interventionLengths.mean.toFixed(2)
      } (${s.interventionLengths.oneToken}/${s.interventionLengths.count} one token)`
      : "—",
    s.cbfFiltered.decisions ? `${s.cbfFiltered.changed}/${s.cbfFiltered.decisions}` : "—",
    String(s.prefixMismatches),
  ]);
  const outcome = summaries[0]?.outcome ?? "crisisFraction";
  const effect = summaries[0]?.effect ?? "dz";
  const ciKind = summaries.find((x) => x.comparison)?.comparison?.effectCi.method ?? "percentile";
  return [
    "### Definitions",
    "",
    `- Outcome window: ${
      summaries[0]?.window ?? "from-rewind"
    } (from-rewind = [r, T) with r = onset − 3 of the ` +
    "baseline's first crisis, or the arm's own rewind point for shams; after-confirm = from the baseline's " +
    "confirmation + 1; after-crisis = from the end of the baseline's first crisis). The same window for both arms.",
    `- PIR = ${outcome}: crisisFraction = share of window steps inside a confirmed crisis (onset until re-arming).`,
    "- d = d_z of the per-unit improvement Δ_u = baseline − intervention (positive = better), over the units " +
    "the policy acted on. Iatrogenic = strictWorse (Δ_u < 0). Crisis-free = no confirmed crisis overlaps the " +
    "intervention arm's window.",
    "- Wilcoxon: signed-rank on Δ_u with zeros dropped; exact p below 50 untied non-zero pairs, else the normal " +
    "approximation with tie and continuity correction; the p printed is two-sided.",
    "- v3 under from-rewind: its window [r, T) always holds the baseline's crisis and v3 acts only after it is " +
    "confirmed, so its crisis-free rate is 0 % by construction; use --window after-crisis for a meaningful one.",
    "- Selection: units are kept because the baseline had a crisis, so the baseline's window holds that crisis " +
    "and any redraw after r tends to remove it. Compare d with the control rows and with `deno task recync null`.",
    "",
    `### Ours (PIR = ${outcome}, d = ${effect}, ${ciKind} bootstrap 95 % CI over units, p = paired t; ` +
    `iatrogenic = strictWorse; crisis-free with ${summaries[0]?.crisisFree.method ?? "wilson"} 95 % CI; ` +
    "Wilcoxon exact below 50 untied pairs, else normal with tie and continuity correction)",
    "",
    table(
      [
        "Model",
        "Policy",
        "T",
        "N (intervened/all)",
        "d",
        "95% CI",
        "p (t)",
        "p (Wilcoxon)",
        "Iatrogenic",
        "Crisis-free",
      ],
      ours,
    ),
    "",
    // A run with v3 rows and no v4 rows (controls aside) is compared with the paper's v3 result; anything
    // with v4 rows with the v4 table.
    ...(summaries.some((x) => x.policy === "v3" || x.policy === "v3-cbf") &&
        !summaries.some((x) => x.policy.startsWith("v4"))
      ? [
        "### Paper (Recync v3, token level, spec §3.3; constants and PIR definition unpublished)",
        "",
        table(["Model", "Params", "d", "p"], [[
          RECYNC_PAPER_V3.model,
          RECYNC_PAPER_V3.params,
          signed(RECYNC_PAPER_V3.d),
          String(RECYNC_PAPER_V3.p),
        ]]),
      ]
      : [
        "### Paper (Recync v4, spec §5.3; PIR, iatrogenic and crisis-free definitions unpublished)",
        "",
        table(["Model", "Params", "PIR d", "95% CI", "p", "Iatrogenic", "Crisis-free"], paper),
      ]),
    "",
    "### Outcome variants (spec §4.5 a-d) and the other harm definitions",
    "",
    table(
      [
        "Model",
        "Policy",
        ...RECYNC_OUTCOMES,
        "worseBy(δ)",
        "newCrisis",
        "restarts/unit",
        "v3 intervention length",
        "CBF-filtered decisions",
        "prefix mismatches",
      ],
      variantRows,
    ),
    "",
    "### Text quality over the same window (mean baseline → intervention; d_z, positive = better text)",
    "",
    "Repetition = share of window positions whose trigram already occurred (prompt included); distinct-2 = " +
    "unique bigrams / bigrams in the window; judge NLL = " +
    (judge
      ? `${JUDGE_NLL_DEFINITION}, under ${judge}.`
      : "not measured (pass --judge SRC to `recync run` to score both arms under a second model)."),
    "",
    table(
      ["Model", "Policy", ...RECYNC_TEXT_OUTCOMES.map((t) => t.name)],
      summaries.map((s) => [
        s.model,
        s.policy,
        ...RECYNC_TEXT_OUTCOMES.map(({ name }) => {
          const t = s.text[name];
          return t
            ? `${t.baseline.toFixed(3)} → ${t.intervention.toFixed(3)} (d_z ${signed(t.dz)}, n ${t.n})`
            : "n/a";
        }),
      ]),
    ),
  ].join("\n");
}

/**
 * The controls section: observed d beside each control's d and their difference (unit-level and
 * prompt-clustered percentile bootstrap CIs, both arms resampled together), then the null-process d of
 * each (model, T) for the same N and T (i.i.d. Gaussian with the baselines' mean and std, and
 * block-shuffled baseline traces, blocks of 10), under the records' outcome window.
 *
 * @example
 * ```ts
 * import { formatControls } from "./report.ts";
 * console.log(formatControls([]).startsWith("### Controls")); // true
 * ```
 *
 * @category Recync
 */
export function formatControls(
  records: RecyncUnitRecord[],
  options: { outcome?: RecyncOutcomeName; resamples?: number; seed?: number } = {},
): string {
  const rows = controlRows(records, {
    outcome: options.outcome,
    resamples: options.resamples,
    seed: options.seed,
  });
  const ci = (x: { lower: number; upper: number }) => `[${signed(x.lower)}, ${signed(x.upper)}]`;
  const out = [
    "### Controls (d = d_z; CIs: percentile bootstrap over units | over prompts, both arms on one draw)",
    "",
    table(
      [
        "Model",
        "T",
        "Policy",
        "d (N)",
        "unit CI",
        "prompt CI",
        "Control",
        "control d (N)",
        "difference",
        "unit CI",
        "prompt CI",
      ],
      rows.map((r) => [
        r.model,
        String(r.T),
        r.policy,
        `${signed(r.unit.a.estimate)} (${r.nPolicy})`,
        ci(r.unit.a),
        ci(r.prompt.a),
        r.control,
        `${signed(r.unit.b.estimate)} (${r.nControl})`,
        signed(r.unit.difference.estimate),
        ci(r.unit.difference),
        ci(r.prompt.difference),
      ]),
    ),
  ];
  const groups = new Map<string, RecyncUnitRecord[]>();
  for (const r of records) {
    const k = `${r.model}\u0000${r.T}`;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(r);
  }
  const nullRows: string[][] = [];
  for (const rs of groups.values()) {
    const baselines = new Map<string, (number | null)[]>();
    for (const r of rs) baselines.set(r.pairId ?? `${r.promptId}|${r.seed}`, r.baseline.cosim);
    const traces = [...baselines.values()];
    const window = (rs.find((r) => r.metrics)?.metrics?.window ?? "from-rewind") as "from-rewind";
    let mo;
    try {
      mo = traceMoments(traces);
    } catch {
      continue;
    }
    const common = { N: traces.length, T: rs[0].T, seed: options.seed ?? 0, window, resamples: 500 };
    const iid = simulateNull({ ...common, process: { kind: "iid", mean: mo.mean, std: mo.std } });
    const clean = traces.map((t) => t.filter((x): x is number => x !== null && Number.isFinite(x)));
    const block = simulateNull({ ...common, process: { kind: "block", traces: clean, block: 10 } });
    const paper = paperRowFor(rs[0].model);
    for (const [name, res] of [["iid", iid], ["block-10", block]] as const) {
      nullRows.push([
        rs[0].model,
        String(rs[0].T),
        name,
        `${res.nCrisis}/${res.N}`,
        signed(res.dz),
        res.dzCi ? ci(res.dzCi) : "n/a",
        `${pct(res.crisisFree.estimate)}`,
        `${res.strictWorse.successes}/${res.strictWorse.n}`,
        paper ? signed(paper.d) : "—",
      ]);
    }
  }
  out.push(
    "",
    "### Null process (no model: a restart only redraws; `deno task recync null`)",
    "",
    table([
      "Model",
      "T",
      "Process",
      "N crisis/all",
      "null d",
      "95% CI",
      "Crisis-free",
      "Strictly worse",
      "Paper d (1R)",
    ], nullRows),
  );
  return out.join("\n");
}

/**
 * A forest plot of d with 95 % CIs, one row per (model, policy, T) group, with the paper's values as
 * hollow markers where a paper row matches the model.
 *
 * @example
 * ```ts
 * import { recyncForestPlot } from "./report.ts";
 * const fig = recyncForestPlot([]);
 * console.log(fig.tagName.toLowerCase()); // "svg" or "figure"
 * ```
 *
 * @category Recync
 */
export function recyncForestPlot(
  summaries: RecyncGroupSummary[],
  title = "PIR effect size (d, 95% CI)",
): PlotFigure {
  const rows = summaries.filter((s) => s.comparison).map((s) => {
    const c = s.comparison!;
    const d = s.effect === "dz" ? c.dz : s.effect === "dav" ? c.dav : c.dPooled;
    return {
      label: `${s.model} · ${s.policy} · T=${s.T}`,
      d,
      lo: c.effectCi.lower,
      hi: c.effectCi.upper,
      source: "ours",
    };
  });
  const paper = summaries.flatMap((s) => {
    // The paper's d is a 1R (v4) result: never drawn on 2R, v3 or control rows.
    const p = s.policy === "v4" ? paperRowFor(s.model) : undefined;
    if (!p) return [];
    return [{
      label: `${s.model} · ${s.policy} · T=${s.T}`,
      d: p.d,
      lo: p.ci?.[0] ?? p.d,
      hi: p.ci?.[1] ?? p.d,
      source: "paper",
    }];
  });
  const all = [...rows, ...paper];
  // The legend lists only what is drawn (no "paper" entry when no row has a paper value), and the left
  // margin fits the longest row label.
  const sources = paper.length ? ["ours", "paper"] : ["ours"];
  const longest = Math.max(0, ...rows.map((r) => r.label.length));
  return plot({
    title,
    width: 720 + Math.max(0, 6 * longest + 16 - 260),
    height: 80 + 32 * Math.max(1, rows.length),
    marginLeft: Math.max(120, 6 * longest + 16),
    marginRight: 30,
    x: { label: "effect size d (paired, unitless; 0 = no effect)", grid: true },
    y: { label: null, domain: rows.map((r) => r.label) },
    color: { domain: sources, range: ["#4269d0", "#d62728"].slice(0, sources.length), legend: true },
    marks: [
      Plot.ruleX([0], { stroke: "#888" }),
      Plot.link(all, {
        x1: "lo",
        x2: "hi",
        y1: "label",
        y2: "label",
        stroke: "source",
        strokeWidth: 2,
        dy: 0,
      }),
      Plot.dot(rows, { x: "d", y: "label", fill: "source", r: 4 }),
      Plot.dot(paper, { x: "d", y: "label", stroke: "source", r: 5, fill: "none" }),
    ],
  });
}

/**
 * The cosim traces of one unit: baseline and intervention (or the arms named in `options.arms`), their
 * per-step thresholds (dashed), crisis extents (shaded) and the restart points r (vertical rules).
 *
 * @example
 * ```ts
 * import { recyncUnitTracePlot, readRecyncResults } from "./report.ts";
 * import { runRecyncExperiment } from "./harness.ts";
 * import { initBackend } from "../backend/backend.ts";
 * import { createDecoder, gpt2NewConfig } from "../models/scratch.ts";
 * import { CharTokenizer } from "../tokenizers/char.ts";
 * await initBackend({ backend: "cpu" });
 * const tokenizer = CharTokenizer.fromCorpus("abcdefghij ");
 * const config = gpt2NewConfig({ nLayers: 1, dModel: 16, nHeads: 2, vocabSize: tokenizer.vocabSize, maxPositions: 96 });
 * const model = createDecoder(config, { seed: 1 });
 * const out = await Deno.makeTempFile({ suffix: ".jsonl" });
 * const prompts = [{ id: "a", text: "abc" }];
 * await runRecyncExperiment({ model, tokenizer, modelLabel: "tiny", prompts, seeds: 1, T: 60, policy: "v4", out });
 * const { records } = await readRecyncResults([out]);
 * const figure = recyncUnitTracePlot(records[0]); // display() it in a notebook, or saveSvg/savePng
 * model.dispose();
 * ```
 *
 * @category Recync
 */
export function recyncUnitTracePlot(
  record: RecyncUnitRecord,
  options: { title?: string; arms?: ("baseline" | "intervention")[] } = {},
): PlotFigure {
  const title = options.title;
  const arms = options.arms ?? ["baseline", "intervention"];
  const pts: { step: number; value: number; arm: string }[] = [];
  const thr: { step: number; value: number; arm: string }[] = [];
  const bands: { x1: number; x2: number; arm: string }[] = [];
  for (const arm of arms) {
    const trace = record[arm];
    trace.cosim.forEach((c, t) => c !== null && pts.push({ step: t, value: c, arm }));
    trace.thr.forEach((c, t) => c !== null && thr.push({ step: t, value: c, arm }));
    for (const [s, e] of crisisExtents(trace)) bands.push({ x1: s - 0.5, x2: e - 0.5, arm });
  }
  const restarts = arms.includes("intervention")
    ? record.restarts.map((r) => ({ step: r.r, label: `restart ${r.restart} (r=${r.r})` }))
    : [];
  // Legend entries only for arms with a series; the caption names the other encodings actually drawn.
  const present = arms.filter((a) => pts.some((p) => p.arm === a));
  const palette: Record<string, string> = { baseline: "#888888", intervention: "#4269d0" };
  const keys = [
    ...(thr.length ? ["dashed: threshold (mean − α·std)"] : []),
    ...(bands.length ? ["shaded: confirmed crisis"] : []),
    ...(restarts.length ? ["orange: restart r"] : []),
  ];
  return plot({
    title: title ?? `${record.model} · ${record.promptId} · seed ${record.seed} · ${record.policy}`,
    caption: keys.length ? keys.join("; ") : undefined,
    width: 760,
    height: 300,
    x: { label: "generated token step t" },
    y: { label: "cosim(t) (cosine similarity)", grid: true },
    color: { domain: present, range: present.map((a) => palette[a]), legend: true },
    marks: [
      Plot.rectX(bands, { x1: "x1", x2: "x2", fill: "arm", fillOpacity: 0.12 }),
      Plot.line(pts, { x: "step", y: "value", stroke: "arm", strokeWidth: 1.5 }),
      Plot.line(thr, { x: "step", y: "value", stroke: "arm", strokeDasharray: "4,3", strokeWidth: 1 }),
      Plot.ruleX(restarts, { x: "step", stroke: "#ff7f0e" }),
      Plot.text(restarts, {
        x: "step",
        text: "label",
        frameAnchor: "top",
        dx: 3,
        dy: 4,
        textAnchor: "start",
        fill: "#ff7f0e",
      }),
    ],
  });
}

/**
 * What {@link writeRecyncReport} wrote.
 *
 * @category Recync
 */
export interface RecyncReportFiles {
  /** The Markdown table. */
  table: string;
  /** Paths written. */
  files: string[];
  /** The group summaries. */
  summaries: RecyncGroupSummary[];
}

/**
 * Reads results files, prints nothing, writes `table.md`, `summary.json`, `forest.svg/png` and up to
 * `traces` trace plots (`trace_<n>.svg/png`) of intervened units into `outDir`.
 *
 * @example
 * ```ts
 * import { writeRecyncReport } from "./report.ts";
 * import { runRecyncExperiment } from "./harness.ts";
 * import { initBackend } from "../backend/backend.ts";
 * import { createDecoder, gpt2NewConfig } from "../models/scratch.ts";
 * import { CharTokenizer } from "../tokenizers/char.ts";
 * await initBackend({ backend: "cpu" });
 * const tokenizer = CharTokenizer.fromCorpus("abcdefghij ");
 * const config = gpt2NewConfig({ nLayers: 1, dModel: 16, nHeads: 2, vocabSize: tokenizer.vocabSize, maxPositions: 96 });
 * const model = createDecoder(config, { seed: 1 });
 * const dir = await Deno.makeTempDir();
 * const prompts = [{ id: "a", text: "abc" }, { id: "b", text: "hij" }];
 * const out = `${dir}/v4.jsonl`;
 * await runRecyncExperiment({ model, tokenizer, modelLabel: "tiny", prompts, seeds: 2, T: 60, policy: "v4", out });
 * const { table, files } = await writeRecyncReport([out], `${dir}/report`, { resamples: 500 });
 * console.log(table.split("\n")[2], files.length);
 * model.dispose();
 * ```
 *
 * @category Recync
 */
export async function writeRecyncReport(
  paths: string[],
  outDir: string,
  options: RecyncSummaryOptions & { traces?: number; png?: boolean } = {},
): Promise<RecyncReportFiles> {
  const { records, duplicates, tornLines } = await readRecyncResults(paths);
  const summaries = summarizeRecync(records, options);
  let table = formatRecyncTable(summaries);
  table += "\n\n" + formatControls(records, {
    outcome: options.outcome,
    resamples: Math.min(options.resamples ?? 2000, 2000),
    seed: options.seed,
  });
  table +=
    `\n\nUnits read: ${records.length} (duplicates dropped: ${duplicates}, torn lines skipped: ${tornLines}).\n`;
  await Deno.mkdir(outDir, { recursive: true });
  const files: string[] = [];
  await writeTextAtomic(`${outDir}/table.md`, table);
  files.push(`${outDir}/table.md`);
  await writeJsonAtomic(`${outDir}/summary.json`, summaries);
  files.push(`${outDir}/summary.json`);
  const figs: [string, PlotFigure][] = [["forest", recyncForestPlot(summaries)]];
  const traced = records.filter((r) => r.intervened).slice(0, options.traces ?? 4);
  traced.forEach((r, i) => figs.push([`trace_${i + 1}`, recyncUnitTracePlot(r)]));
  for (const [name, fig] of figs) {
    await saveSvg(`${outDir}/${name}.svg`, fig);
    files.push(`${outDir}/${name}.svg`);
    if (options.png ?? true) {
      await savePng(`${outDir}/${name}.png`, fig);
      files.push(`${outDir}/${name}.png`);
    }
  }
  return { table, files, summaries };
}
