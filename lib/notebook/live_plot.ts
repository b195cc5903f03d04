/**
 * A chart that redraws in place in Jupyter (e.g. a live loss curve during training). Outside Jupyter it
 * draws nothing while running and can write the final chart as an SVG file when closed.
 *
 * @module
 */
import { plotMimeBundle } from "../plot/plot.ts";
import type { PlotElement } from "../plot/dom.ts";
export type { PlotElement } from "../plot/dom.ts";
import { saveSvg } from "../plot/png.ts";
import { type DisplaySink, jupyterSink } from "./jupyter.ts";

/**
 * Options for {@linkcode LivePlot}.
 *
 * @category Notebook
 */
export interface LivePlotOptions {
  /** Minimum milliseconds between redraws (default 1000): rendering a chart costs a few ms. */
  minIntervalMs?: number;
  /** Outside Jupyter: write the final chart here on {@linkcode LivePlot.close}. */
  finalSvgPath?: string;
  /** Display sink (default the kernel's, when in Jupyter). */
  sink?: DisplaySink;
  /** Clock in milliseconds (default `performance.now`). */
  now?: () => number;
}

let livePlotIds = 0;

/**
 * Redraws a chart in place. Give {@linkcode LivePlot.update} a function that builds the figure: it is
 * only called when a redraw is due, so frequent updates stay cheap.
 *
 * @example
 * ```ts
 * import { LivePlot } from "./live_plot.ts";
 * import { plot, Plot } from "../plot/mod.ts";
 * const losses: number[] = [];
 * const live = new LivePlot();
 * for (let step = 0; step < 50; step++) {
 *   losses.push(1 / (step + 1));
 *   live.update(() => plot({ marks: [Plot.lineY(losses)] }));
 * }
 * await live.close();
 * ```
 *
 * @category Notebook
 */
export class LivePlot {
  #sink?: DisplaySink;
  #minInterval: number;
  #finalSvgPath?: string;
  #now: () => number;
  #last = -Infinity;
  #pending?: () => PlotElement;
  #shown = false;
  #renders = 0;
  #chain: Promise<void> = Promise.resolve();
  #displayId = `coherence-liveplot-${++livePlotIds}-${Date.now()}`;

  /** Creates a live chart; nothing is shown until the first {@linkcode LivePlot.update}. */
  constructor(options: LivePlotOptions = {}) {
    this.#sink = options.sink ?? jupyterSink();
    this.#minInterval = options.minIntervalMs ?? 1000;
    this.#finalSvgPath = options.finalSvgPath;
    this.#now = options.now ?? (() => performance.now());
  }

  /** True when updates are shown (in Jupyter or with a sink). */
  get live(): boolean {
    return this.#sink !== undefined;
  }

  /** How many times the chart was drawn. */
  get renders(): number {
    return this.#renders;
  }

  /** Offers a new figure (or a function building one); redraws when `minIntervalMs` has passed. */
  update(figure: PlotElement | (() => PlotElement)): void {
    this.#pending = typeof figure === "function" ? figure : () => figure;
    if (!this.#sink) return;
    const now = this.#now();
    if (now - this.#last < this.#minInterval) return;
    this.#last = now;
    this.#draw();
  }

  #draw(): PlotElement | undefined {
    const build = this.#pending;
    if (!build) return undefined;
    this.#pending = undefined;
    const fig = build();
    this.#renders++;
    if (this.#sink) {
      const bundle = plotMimeBundle(fig);
      const options = { displayId: this.#displayId, update: this.#shown };
      this.#shown = true;
      const sink = this.#sink;
      this.#chain = this.#chain.then(() => sink(bundle, options)).catch(() => {});
    }
    return fig;
  }

  /** Draws the latest figure (in Jupyter) or writes it to `finalSvgPath`; waits for pending display updates. */
  async close(): Promise<void> {
    const fig = this.#draw();
    await this.#chain;
    if (!this.#sink && fig && this.#finalSvgPath) await saveSvg(this.#finalSvgPath, fig);
  }
}
