/**
 * Chart helpers shared across the library. Plain arrays in, Plot figure out, so they serve the
 * generation probes, the Recync monitor and notebooks alike.
 *
 * @module
 */
import { Plot } from "../deps.ts";
import { plot, type PlotFigure } from "./plot.ts";

/**
 * A marked step on a trace (e.g. a crisis or a restart), with an optional label.
 *
 * @category Plots
 */
export interface CosimTraceEvent {
  /** The step (x value) to mark. */
  step: number;
  /** Text drawn beside the marker. */
  label?: string;
}

/**
 * Options for {@linkcode cosimTracePlot}.
 *
 * @category Plots
 */
export interface CosimTraceOptions {
  /** Draws a dashed horizontal line at this value (e.g. a fixed crisis threshold). */
  threshold?: number;
  /**
   * A threshold per trace entry (e.g. the Recync monitor's mean − α·std), drawn as a dashed step line;
   * null entries (warm-up) leave gaps.
   */
  thresholds?: ArrayLike<number | null>;
  /** Steps to mark with a vertical rule and a label. */
  events?: (number | CosimTraceEvent)[];
  /** Chart title. */
  title?: string;
  /** y-axis label (default "cosine similarity"). */
  yLabel?: string;
  /** x value of the first trace entry (default 0). */
  startStep?: number;
  /** Chart width in pixels (default 640). */
  width?: number;
  /** Chart height in pixels (default 260). */
  height?: number;
  /** What the dashed threshold line is, for the caption (default "crisis threshold"). */
  thresholdLabel?: string;
}

/** Approximate rendered width of a label in the default 10 px sans-serif, in pixels. */
function labelWidth(text: string): number {
  return 6 * text.length + 4;
}

/**
 * A line chart of one value per generation step (typically the cosine similarity between consecutive
 * hidden states), with an optional threshold line and event markers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cosimTracePlot, toSvgString } from "./mod.ts";
 * const fig = cosimTracePlot([0.91, 0.95, 0.99, 0.97], { threshold: 0.98, events: [{ step: 2, label: "crisis" }] });
 * assert.ok(toSvgString(fig).includes("crisis"));
 * ```
 *
 * @category Plots
 */
export function cosimTracePlot(trace: ArrayLike<number>, options: CosimTraceOptions = {}): PlotFigure {
  const start = options.startStep ?? 0;
  const points = Array.from(trace, (value, i) => ({ step: start + i, value }));
  const events = (options.events ?? []).map((e) => typeof e === "number" ? { step: e, label: "" } : e);
  const marks: Plot.Markish[] = [
    Plot.lineY(points, { x: "step", y: "value", stroke: "#4269d0" }),
  ];
  if (points.length <= 200) marks.push(Plot.dot(points, { x: "step", y: "value", r: 2, fill: "#4269d0" }));
  if (options.threshold !== undefined) {
    marks.push(Plot.ruleY([options.threshold], { stroke: "#d62728", strokeDasharray: "4,3" }));
  }
  if (options.thresholds) {
    // Plot breaks a line at NaN, so warm-up steps (null) leave a gap.
    const thr = Array.from(options.thresholds, (value, i) => ({ step: start + i, value: value ?? NaN }));
    marks.push(
      Plot.lineY(thr, {
        x: "step",
        y: "value",
        curve: "step",
        stroke: "#d62728",
        strokeDasharray: "4,3",
      }),
    );
  }
  const width = options.width ?? 640;
  if (events.length > 0) {
    marks.push(Plot.ruleX(events, { x: "step", stroke: "#ff7f0e", strokeOpacity: 0.8 }));
    // Labels of nearby events would overprint: each goes on the first row where it clears the previous
    // label, and a label that would run past the right edge is drawn to the left of its rule.
    const [lo, hi] = [start, start + Math.max(points.length - 1, 1)];
    const plotW = width - 60; // Plot's default left and right margins
    const px = (step: number) => 40 + ((step - lo) / (hi - lo || 1)) * plotW;
    const rowsEnd: number[] = [];
    const placed: { step: number; label: string; row: number; left: boolean }[] = [];
    for (const e of events.filter((e) => e.label).sort((a, b) => a.step - b.step)) {
      const w = labelWidth(e.label!);
      const left = px(e.step) + 3 + w > width - 2;
      const from = left ? px(e.step) - 3 - w : px(e.step) + 3;
      let row = rowsEnd.findIndex((end) => from > end + 4);
      if (row < 0) row = rowsEnd.length;
      rowsEnd[row] = from + w;
      placed.push({ step: e.step, label: e.label!, row, left });
    }
    for (const row of new Set(placed.map((p) => p.row))) {
      for (const left of [false, true]) {
        const group = placed.filter((p) => p.row === row && p.left === left);
        if (group.length === 0) continue;
        marks.push(
          Plot.text(group, {
            x: "step",
            text: "label",
            frameAnchor: "top",
            dy: 4 + 14 * row,
            dx: left ? -3 : 3,
            textAnchor: left ? "end" : "start",
            fill: "#ff7f0e",
          }),
        );
      }
    }
  }
  // A caption is the legend here: it names each encoding the chart actually draws.
  const keys = [
    "blue: the trace",
    ...(options.threshold !== undefined || options.thresholds
      ? [`dashed red: ${options.thresholdLabel ?? "crisis threshold"}`]
      : []),
    ...(events.length ? ["orange rules: marked events"] : []),
  ];
  return plot({
    title: options.title,
    caption: keys.length > 1 ? keys.join("; ") : undefined,
    width,
    height: options.height ?? 260,
    x: { label: "generated token step" },
    y: { label: options.yLabel ?? "cosine similarity", grid: true },
    marks,
  });
}
