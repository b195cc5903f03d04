/**
 * `plot()`: Observable Plot's `Plot.plot` with a DOM supplied, so charts work in scripts, tests and the
 * Deno Jupyter kernel, and with rich display so a figure renders when it is a cell's last value.
 *
 * @module
 */
import { Plot } from "../deps.ts";
import { plotDocument, type PlotElement } from "./dom.ts";
import { toSvgString } from "./svg.ts";
import { richDisplay } from "../display.ts";

/**
 * Plot's options object (`marks`, scales, `width`, `title`, ...).
 *
 * @category Plots
 */
export type PlotOptions = Plot.PlotOptions;

/**
 * A scale as Plot reports it from a rendered figure (`figure.scale("x")`).
 *
 * @category Plots
 */
export interface PlotScaleInfo {
  /** Scale type: "linear", "log", "band", "ordinal", ... */
  type: string;
  /** Input values covered by the scale. */
  domain: unknown[];
  /** Output values (pixels, colours). */
  range?: unknown[];
  /** Axis or legend label. */
  label?: string;
  /** Maps a domain value to its output. */
  apply?: (value: unknown) => unknown;
}

/**
 * A rendered Plot chart: an `<svg>` or `<figure>` element (linkedom), plus Plot's scale accessor.
 *
 * @category Plots
 */
export interface PlotFigure extends PlotElement {
  /** The materialised scale `name` ("x", "y", "color", ...), or undefined when the chart has none. */
  scale(name: string): PlotScaleInfo | undefined;
}

/**
 * Renders a chart with Observable Plot into the library's DOM document. The result is a normal Plot
 * figure that also displays itself as SVG when it is the last value of a Jupyter cell.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { plot, Plot } from "./mod.ts";
 * const fig = plot({ marks: [Plot.lineY([3, 1, 4, 1, 5]), Plot.ruleY([0])], height: 200 });
 * assert.equal(fig.tagName.toLowerCase(), "svg");
 * ```
 *
 * @category Plots
 */
export function plot(options: PlotOptions = {}): PlotFigure {
  const fig = Plot.plot({ ...options, document: plotDocument() } as PlotOptions) as unknown as PlotFigure;
  return makeDisplayable(fig);
}

/**
 * Gives a Plot element a Jupyter rich-display method (standalone SVG). Returns the same object. Use it
 * on figures made with `Plot.plot` directly; {@linkcode plot} already does this.
 *
 * @example
 * ```ts
 * import { makeDisplayable, Plot, plotDocument } from "./mod.ts";
 * const fig = makeDisplayable(Plot.plot({ document: plotDocument(), marks: [Plot.lineY([1, 2])] }));
 * ```
 *
 * @category Plots
 * @internal Used inside the library; not part of the stable API.
 */
export function makeDisplayable<T extends PlotElement>(fig: T): T {
  return richDisplay(fig, plotMimeBundle);
}

/**
 * The Jupyter MIME bundle of a Plot figure: standalone SVG plus a plain-text fallback.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { plot, plotMimeBundle, Plot } from "./mod.ts";
 * const bundle = plotMimeBundle(plot({ marks: [Plot.dot([[1, 2], [3, 4]])] }));
 * assert.deepEqual(Object.keys(bundle), ["image/svg+xml", "text/plain"]);
 * ```
 *
 * @category Plots
 */
export function plotMimeBundle(fig: PlotElement): Record<string, string> {
  const svg = toSvgString(fig);
  const open = svg.slice(0, svg.indexOf(">"));
  const w = /\swidth="([\d.]+)"/.exec(open)?.[1];
  const h = /\sheight="([\d.]+)"/.exec(open)?.[1];
  return { "image/svg+xml": svg, "text/plain": `Plot figure${w && h ? ` ${w}x${h}` : ""}` };
}
