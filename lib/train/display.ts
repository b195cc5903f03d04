/**
 * Training progress for people: a progress bar (updated in place in Jupyter, lines in a terminal or CI)
 * and a live loss chart of train and validation loss, both fed from the trainer's metrics records.
 *
 * @module
 */
import { LivePlot } from "../notebook/live_plot.ts";
import { Progress, type ProgressMode } from "../notebook/progress.ts";
import { plot, type PlotFigure } from "../plot/plot.ts";
import { Plot } from "../plot/marks.ts";
import type { MetricsRecord } from "./trainer.ts";

/**
 * A loss-curve chart of train (line) and validation (dots and line) loss against the step.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lossCurvePlot } from "./display.ts";
 * const fig = lossCurvePlot([
 *   { kind: "train", step: 10, elapsed: 1, loss: 3.1 },
 *   { kind: "train", step: 20, elapsed: 2, loss: 2.7 },
 *   { kind: "eval", step: 20, elapsed: 2, valLoss: 2.8 },
 * ]);
 * assert.equal(fig.tagName.toLowerCase(), "figure"); // a <figure>: the chart with its legend
 * ```
 *
 * @category Training
 */
export function lossCurvePlot(records: MetricsRecord[], options: { title?: string } = {}): PlotFigure {
  const rows: { step: number; loss: number; split: string }[] = [];
  for (const r of records) {
    const split = r.kind === "train" ? "train" : "val";
    const main = r.kind === "train" ? r.loss : r.valLoss;
    if (main !== undefined) rows.push({ step: r.step, loss: main, split });
    // Auxiliary terms and component metrics (e.g. PhaseGPT's R) as series of their own.
    for (const [k, v] of Object.entries({ ...r.terms, ...r.metrics })) {
      rows.push({ step: r.step, loss: v, split: `${split} ${k}` });
    }
  }
  const series = [...new Set(rows.map((r) => r.split))];
  const extra = series.length > 2 || series.some((s) => s !== "train" && s !== "val");
  const palette = ["#4269d0", "#ff725c", "#3ca951", "#efb118", "#6cc5b0", "#a463f2", "#ff8ab7", "#9c6b4e"];
  // Only series that have data get a legend entry (a run without evaluation has no "val").
  const domain = [
    ...["train", "val"].filter((s) => series.includes(s)),
    ...series.filter((s) => s !== "train" && s !== "val"),
  ];
  return plot({
    title: options.title ?? "loss",
    width: 640,
    height: 300,
    x: { label: "optimiser step" },
    y: { label: extra ? "loss (nats) / term or metric value" : "mean token loss (nats)", grid: true },
    color: { domain, range: domain.map((_, i) => palette[i % palette.length]), legend: true },
    marks: [
      Plot.line(rows, { x: "step", y: "loss", stroke: "split", z: "split" }),
      Plot.dot(rows.filter((r) => r.split.startsWith("val")), { x: "step", y: "loss", fill: "split", r: 3 }),
    ],
  });
}

/**
 * Options of {@linkcode TrainingDisplay}.
 *
 * @category Training
 */
export interface TrainingDisplayOptions {
  /** Progress report mode (default "auto": Jupyter, tty or lines). */
  mode?: ProgressMode;
  /** Draw the live loss chart (default: only in Jupyter). */
  plot?: boolean;
  /** Outside Jupyter, write the final chart here as SVG. */
  finalSvgPath?: string;
}

/**
 * Feeds a progress bar and a live loss chart from metrics records: pass `display.onMetrics` to the
 * trainer (or `trainFromConfig`) and `await display.close()` at the end.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TrainingDisplay } from "./display.ts";
 * const display = new TrainingDisplay(100, { mode: "silent" });
 * display.onMetrics({ kind: "train", step: 10, elapsed: 1, loss: 3, lr: 1e-3, gradNorm: 1, tokensPerSec: 500 });
 * await display.close();
 * assert.equal(display.records.length, 1);
 * ```
 *
 * @category Training
 */
export class TrainingDisplay {
  /** Every record seen, in order. */
  readonly records: MetricsRecord[] = [];
  #progress: Progress;
  #live?: LivePlot;

  /** A display for a run of `totalSteps` optimiser steps. */
  constructor(totalSteps: number, options: TrainingDisplayOptions = {}) {
    this.#progress = new Progress(totalSteps, { label: "train", unit: "step", mode: options.mode });
    const wantPlot = options.plot ?? this.#progress.mode === "jupyter";
    if (wantPlot || options.finalSvgPath) this.#live = new LivePlot({ finalSvgPath: options.finalSvgPath });
    this.onMetrics = this.onMetrics.bind(this);
  }

  /** Takes one metrics record (bound, so it can be passed as a callback). */
  onMetrics(record: MetricsRecord): void {
    this.records.push(record);
    const info: Record<string, unknown> = record.kind === "train"
      ? { loss: record.loss?.toFixed(4), "tok/s": Math.round(record.tokensPerSec ?? 0) }
      : { "val loss": record.valLoss?.toFixed(4) };
    this.#progress.update(record.step, info);
    this.#live?.update(() => lossCurvePlot(this.records));
  }

  /** Finishes the bar and draws the final chart. */
  async close(): Promise<void> {
    await this.#progress.done();
    if (this.#live) {
      this.#live.update(() => lossCurvePlot(this.records));
      await this.#live.close();
    }
  }
}
