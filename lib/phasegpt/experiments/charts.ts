/**
 * Charts of PhaseGPT results: validation PPL curves per config with a band over seeds, R(t) with the
 * criterion band shaded, and R histograms. Discrete colour legends only (continuous ramps crash the DOM
 * shim, see ECOSYSTEM.md).
 *
 * @module
 */
import { Plot } from "../../plot/marks.ts";
import { plot, type PlotFigure } from "../../plot/plot.ts";
import { rSeries } from "./report.ts";
import type { PhaseGptRunRecord, PplDefinition } from "./sweep.ts";

/** `config` or `config (mode)`: the legend label of a group of runs. */
function groupLabel(r: Pick<PhaseGptRunRecord, "config" | "mode">): string {
  return r.mode === "-" ? r.config : `${r.config} (${r.mode})`;
}

/** Per group and step: mean, min and max over the seeds present. */
function band(points: { group: string; step: number; value: number }[]) {
  const by = new Map<string, number[]>();
  for (const p of points) {
    const k = `${p.group}\u0000${p.step}`;
    by.set(k, [...(by.get(k) ?? []), p.value]);
  }
  return [...by].map(([k, v]) => {
    const [group, step] = k.split("\u0000");
    return {
      group,
      step: Number(step),
      mean: v.reduce((a, b) => a + b, 0) / v.length,
      lo: Math.min(...v),
      hi: Math.max(...v),
    };
  }).sort((a, b) => a.step - b.step);
}

/**
 * Validation PPL against optimiser steps, one line per config (and mode) at the mean over seeds, with the
 * seeds' min–max band shaded.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pplCurvePlot } from "./charts.ts";
 * import { toSvgString } from "../../plot/svg.ts";
 * const run = (seed: number, p: number) => ({ config: "base", mode: "-", seed, curve: [{ step: 10, loss: 1, ppl: { token_mean: p, batch_mean_exp: p, batch_mean: p }, metrics: {} }] });
 * const svg = toSvgString(pplCurvePlot([run(0, 5), run(1, 6)] as never));
 * assert.ok(svg.includes("validation perplexity"));
 * ```
 *
 * @category PhaseGPT
 */
export function pplCurvePlot(
  records: PhaseGptRunRecord[],
  options: { definition?: PplDefinition; title?: string; width?: number; height?: number } = {},
): PlotFigure {
  const d = options.definition ?? "token_mean";
  const pts = records.flatMap((r) =>
    r.curve.map((c) => ({ group: groupLabel(r), step: c.step, value: c.ppl[d] }))
  );
  const rows = band(pts);
  const what = d === "token_mean"
    ? "token-weighted"
    : d === "batch_mean_exp"
    ? "mean of per-batch exp, the seed's definition"
    : "exp of the batch-mean loss";
  return plot({
    title: options.title,
    width: options.width ?? 680,
    height: options.height ?? 340,
    marginRight: 20,
    x: { label: "optimiser step →" },
    y: { label: `↑ validation perplexity per token (${what})`, grid: true, type: "log" },
    color: { legend: true, type: "categorical" },
    marks: [
      Plot.areaY(rows, { x: "step", y1: "lo", y2: "hi", fill: "group", fillOpacity: 0.18 }),
      Plot.lineY(rows, { x: "step", y: "mean", stroke: "group", strokeWidth: 1.6 }),
    ],
  });
}

/**
 * R(t) of the declared R metric during training, one line per config (mean over seeds) with the seeds'
 * band, and the criterion band shaded grey.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rTracePlot } from "./charts.ts";
 * import { toSvgString } from "../../plot/svg.ts";
 * const run = { config: "B2", mode: "corrected", seed: 0, train: [{ step: 10, loss: 1, metrics: { "blocks.1.attn.R": 0.5 } }] };
 * assert.ok(toSvgString(rTracePlot([run] as never)).includes("order parameter"));
 * ```
 *
 * @category PhaseGPT
 */
export function rTracePlot(
  records: PhaseGptRunRecord[],
  options: { band?: [number, number]; metric?: string; definition?: string; title?: string; width?: number } =
    {},
): PlotFigure {
  const [lo, hi] = options.band ?? [0.35, 0.55];
  const pts = records.flatMap((r) =>
    rSeries(r, options.metric ?? "R").map((s) => ({ group: groupLabel(r), step: s.step, value: s.R }))
  );
  const rows = band(pts);
  const steps = rows.map((r) => r.step);
  const x0 = Math.min(...steps, 0), x1 = Math.max(...steps, 1);
  return plot({
    title: options.title,
    width: options.width ?? 680,
    height: 320,
    x: { label: "optimiser step →" },
    y: {
      label: `↑ order parameter R (${options.definition ?? "layer"}, dimensionless)`,
      domain: [0, 1],
      grid: true,
    },
    color: { legend: true, type: "categorical" },
    marks: [
      Plot.rectY([{ x0, x1, lo, hi }], {
        x1: "x0",
        x2: "x1",
        y1: "lo",
        y2: "hi",
        fill: "#999",
        fillOpacity: 0.2,
      }),
      Plot.text([{ x: x1, y: hi }], {
        x: "x",
        y: "y",
        text: () => `band [${lo}, ${hi}]`,
        textAnchor: "end",
        dy: -6,
        fill: "#555",
      }),
      Plot.areaY(rows, { x: "step", y1: "lo", y2: "hi", fill: "group", fillOpacity: 0.18 }),
      Plot.lineY(rows, { x: "step", y: "mean", stroke: "group", strokeWidth: 1.6 }),
    ],
  });
}

/**
 * Histograms of R values per group (one colour per group, overlaid with transparency), with optional
 * reference lines (e.g. the seed's 0.8837).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rHistogramPlot } from "./charts.ts";
 * import { toSvgString } from "../../plot/svg.ts";
 * const svg = toSvgString(rHistogramPlot({ uniform: [0.1, 0.2, 0.2], model: [0.8, 0.9] }, { rules: [{ x: 0.8837, label: "seed" }] }));
 * assert.ok(svg.includes("seed"));
 * ```
 *
 * @category PhaseGPT
 */
export function rHistogramPlot(
  groups: Record<string, number[]>,
  options: {
    rules?: { x: number; label: string }[];
    title?: string;
    xLabel?: string;
    width?: number;
    height?: number;
    facet?: Record<string, string>;
    /** Legend entry of each group (default the group name), e.g. one colour per source across facets. */
    colorOf?: Record<string, string>;
    bins?: number;
  } = {},
): PlotFigure {
  // Shares per group computed here (not Plot's binX), so groups overlay instead of stacking and each
  // group's bars sum to 1 whatever its sample size.
  const bins = options.bins ?? 50;
  const rows = Object.entries(groups).flatMap(([group, xs]) => {
    const counts = new Array(bins).fill(0);
    for (const x of xs) counts[Math.min(bins - 1, Math.max(0, Math.floor(x * bins)))]++;
    return counts.map((c, i) => ({
      group,
      series: options.colorOf?.[group] ?? group,
      facet: options.facet?.[group] ?? "",
      x1: i / bins,
      x2: (i + 1) / bins,
      zero: 0,
      share: xs.length ? c / xs.length : 0,
    })).filter((r) => r.share > 0);
  });
  const rules = options.rules ?? [];
  return plot({
    title: options.title,
    width: options.width ?? 680,
    height: options.height ?? 300,
    x: { label: options.xLabel ?? "order parameter R (dimensionless) →", domain: [0, 1] },
    y: { label: "↑ share of values (per group)", grid: true },
    color: { legend: true, type: "categorical" },
    ...(options.facet ? { fy: { label: null }, marginRight: 120 } : {}),
    marks: [
      Plot.rectY(rows, {
        x1: "x1",
        x2: "x2",
        y1: "zero",
        y2: "share",
        fill: "series",
        fillOpacity: 0.55,
        inset: 0.5,
        ...(options.facet ? { fy: "facet" } : {}),
      }),
      Plot.ruleX(rules, { x: "x", stroke: "#d62728", strokeDasharray: "4,3" }),
      Plot.text(rules, {
        x: "x",
        text: "label",
        frameAnchor: "top",
        textAnchor: "end",
        dx: -3,
        dy: 4,
        fill: "#d62728",
      }),
      Plot.ruleY([0]),
    ],
  });
}
