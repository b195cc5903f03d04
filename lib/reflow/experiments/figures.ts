/**
 * Chart builders for the reFlow experiments: a binned heat-map (discrete colour legend: Plot's
 * continuous "ramp" legend crashes under the DOM shim), line charts with a legend, a labelled scatter
 * and a histogram. Plain rows in, Plot figure out.
 *
 * @module
 */
import { Plot } from "../../deps.ts";
import { plot, type PlotFigure } from "../../plot/plot.ts";

const DIVERGING = ["#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#fddbc7", "#f4a582", "#d6604d", "#b2182b"];
const SEQUENTIAL = ["#f7fbff", "#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c"];
const CATEGORICAL = ["#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5"];

/**
 * One heat-map cell.
 *
 * @category reFlow
 */
export interface HeatCell {
  /** Column label. */
  x: string;
  /** Row label. */
  y: string;
  /** Value (binned for colour). */
  value: number;
}

/**
 * A heat-map with values binned into labelled ranges (swatch legend), rows and columns in the given order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { heatmapFigure } from "./figures.ts";
 * import { toSvgString } from "../../plot/svg.ts";
 * const fig = heatmapFigure([{ x: "a", y: "b", value: 0.5 }], { xOrder: ["a"], yOrder: ["b"], legend: "cosine" });
 * assert.ok(toSvgString(fig).includes("cosine"));
 * ```
 *
 * @category reFlow
 */
export function heatmapFigure(
  cells: HeatCell[],
  options: {
    xOrder: string[];
    yOrder: string[];
    legend: string;
    title?: string;
    xLabel?: string;
    yLabel?: string;
    diverging?: boolean;
    min?: number;
    max?: number;
  },
): PlotFigure {
  const values = cells.map((c) => c.value).filter(Number.isFinite);
  let lo = options.min ?? Math.min(...values), hi = options.max ?? Math.max(...values);
  if (options.diverging) {
    const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    [lo, hi] = [-m, m];
  }
  if (!(hi > lo)) hi = lo + 1;
  const palette = options.diverging ? DIVERGING : SEQUENTIAL;
  const n = palette.length, step = (hi - lo) / n;
  const fmt = (v: number) => (Math.abs(step) < 0.1 ? v.toFixed(2) : v.toFixed(1));
  const labels = palette.map((_, i) => `${fmt(lo + i * step)} – ${fmt(lo + (i + 1) * step)}`);
  const binned = cells.map((c) => {
    const i = Math.min(n - 1, Math.max(0, Math.floor((c.value - lo) / step)));
    return { ...c, bin: labels[i] };
  });
  const cell = Math.max(10, Math.min(28, Math.floor(560 / Math.max(options.xOrder.length, 1))));
  const longest = Math.max(...options.yOrder.map((s) => s.length), 4);
  return plot({
    title: options.title,
    width: Math.max(360, 90 + longest * 7 + cell * options.xOrder.length),
    height: 110 + cell * options.yOrder.length,
    marginLeft: 20 + longest * 7,
    marginBottom: 70,
    padding: 0.02,
    x: { domain: options.xOrder, label: options.xLabel ?? null, tickRotate: -45 },
    y: { domain: options.yOrder, label: options.yLabel ?? null },
    // Swatch legends carry no title, so the colour meaning goes in the subtitle.
    subtitle: `colour: ${options.legend}`,
    color: { type: "ordinal", domain: labels, range: palette, legend: true, label: options.legend },
    marks: [Plot.cell(binned, { x: "x", y: "y", fill: "bin", inset: 0.5 })],
  });
}

/**
 * One point of a line series.
 *
 * @category reFlow
 */
export interface SeriesPoint {
  /** x value. */
  x: number;
  /** y value. */
  y: number;
  /** Series name (legend entry). */
  series: string;
}

/**
 * Lines with dots, one colour per series and a swatch legend.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lineFigure } from "./figures.ts";
 * import { toSvgString } from "../../plot/svg.ts";
 * const fig = lineFigure([{ x: 0, y: 1, series: "a" }, { x: 1, y: 2, series: "a" }], { xLabel: "layer", yLabel: "p" });
 * assert.ok(toSvgString(fig).includes("layer"));
 * ```
 *
 * @category reFlow
 */
export function lineFigure(
  points: SeriesPoint[],
  options: {
    xLabel: string;
    yLabel: string;
    title?: string;
    logY?: boolean;
    yDomain?: [number, number];
    /** Integer x values (layers, k): ticks only at whole numbers. */
    integerX?: boolean;
  },
): PlotFigure {
  const series = [...new Set(points.map((p) => p.series))];
  const pts = options.logY ? points.filter((p) => p.y > 0) : points;
  return plot({
    title: options.title,
    width: 640,
    height: 320,
    marginLeft: 60,
    x: {
      label: options.xLabel,
      ...(options.integerX ? { ticks: integerTicks(pts.map((p) => p.x)), tickFormat: "d" } : {}),
    },
    y: {
      label: options.yLabel,
      type: options.logY ? "log" : "linear",
      grid: true,
      domain: options.yDomain,
      // Plain numbers on a log axis (the default SI format prints 0.3 as "300m").
      ...(options.logY ? { tickFormat: "~g" } : {}),
    },
    color: { type: "ordinal", domain: series, range: CATEGORICAL, legend: true },
    marks: [
      Plot.lineY(pts, { x: "x", y: "y", stroke: "series" }),
      Plot.dot(pts, { x: "x", y: "y", fill: "series", r: 2.5 }),
    ],
  });
}

/** At most ~12 whole-number ticks covering the values. */
function integerTicks(xs: number[]): number[] {
  const lo = Math.ceil(Math.min(...xs)), hi = Math.floor(Math.max(...xs));
  const step = Math.max(1, Math.ceil((hi - lo + 1) / 12));
  const out: number[] = [];
  for (let x = lo; x <= hi; x += step) out.push(x);
  return out;
}

/**
 * A labelled scatter, one colour per group, with a swatch legend.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scatterFigure } from "./figures.ts";
 * import { toSvgString } from "../../plot/svg.ts";
 * const fig = scatterFigure([{ x: 0, y: 0, label: "king", group: "royalty" }], { xLabel: "PC1", yLabel: "PC2" });
 * assert.ok(toSvgString(fig).includes("king"));
 * ```
 *
 * @category reFlow
 */
export function scatterFigure(
  points: { x: number; y: number; label: string; group: string }[],
  options: { xLabel: string; yLabel: string; title?: string },
): PlotFigure {
  const groups = [...new Set(points.map((p) => p.group))];
  return plot({
    title: options.title,
    width: 640,
    height: 440,
    marginLeft: 60,
    inset: 24,
    x: { label: options.xLabel, grid: true },
    y: { label: options.yLabel, grid: true },
    color: { type: "ordinal", domain: groups, range: CATEGORICAL, legend: true },
    marks: [
      Plot.dot(points, { x: "x", y: "y", fill: "group", r: 4 }),
      Plot.text(points, { x: "x", y: "y", text: "label", dy: -8, fontSize: 10, fill: "group" }),
    ],
  });
}

/**
 * A histogram of counts (bars of width `binWidth`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { histogramFigure } from "./figures.ts";
 * import { toSvgString } from "../../plot/svg.ts";
 * const fig = histogramFigure([1, 2, 2, 3], { xLabel: "active signals", yLabel: "tokens" });
 * assert.ok(toSvgString(fig).includes("tokens"));
 * ```
 *
 * @category reFlow
 */
export function histogramFigure(
  values: number[],
  options: { xLabel: string; yLabel: string; title?: string; mean?: number; meanLabel?: string },
): PlotFigure {
  const lo = Math.min(...values), hi = Math.max(...values);
  const binWidth = Math.max(1, Math.ceil((hi - lo + 1) / 40));
  const marks: Plot.Markish[] = [
    Plot.rectY(values, {
      fill: "#4269d0",
      // Integer counts: one bar per value up to ~40 distinct values, wider bins beyond.
      ...Plot.binX({ y: "count" }, { x: (d: number) => d, interval: binWidth }),
      inset: 0.5,
    }),
    Plot.ruleY([0]),
  ];
  if (options.mean !== undefined) {
    marks.push(Plot.ruleX([options.mean], { stroke: "#d62728", strokeDasharray: "4,3" }));
    marks.push(
      Plot.text([options.mean], {
        x: (d: number) => d,
        text: () => options.meanLabel ?? `mean ${options.mean!.toFixed(1)}`,
        frameAnchor: "top",
        dy: 6,
        dx: 4,
        textAnchor: "start",
        fill: "#d62728",
      }),
    );
  }
  return plot({
    title: options.title,
    width: 640,
    height: 300,
    marginLeft: 60,
    x: { label: options.xLabel },
    y: { label: options.yLabel, grid: true },
    marks,
  });
}
