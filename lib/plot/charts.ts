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
  if (events.length > 0) {
    marks.push(Plot.ruleX(events, { x: "step", stroke: "#ff7f0e", strokeOpacity: 0.8 }));
    marks.push(
      Plot.text(events.filter((e) => e.label), {
        x: "step",
        text: "label",
        frameAnchor: "top",
        dy: 4,
        dx: 3,
        textAnchor: "start",
        fill: "#ff7f0e",
      }),
    );
  }
  return plot({
    title: options.title,
    width: options.width ?? 640,
    height: options.height ?? 260,
    x: { label: "step" },
    y: { label: options.yLabel ?? "cosine similarity", grid: true },
    marks,
  });
}
