/**
 * Observable Plot's marks, transforms and helpers, re-exported as one value.
 *
 * @module
 */
import { Plot as ObservablePlot } from "../deps.ts";

/**
 * The `@observablehq/plot` namespace (`Plot.lineY`, `Plot.dot`, `Plot.ruleY`, `Plot.binX`, ...). Pass the
 * marks to this library's {@linkcode plot}, which supplies the DOM; `Plot.plot` itself needs a `document`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { plot, Plot } from "./mod.ts";
 * const fig = plot({ marks: [Plot.lineY([1, 2, 3]), Plot.dot([[0, 1]])] });
 * assert.equal(fig.tagName.toLowerCase(), "svg");
 * ```
 *
 * @category Plots
 */
export const Plot: typeof ObservablePlot = ObservablePlot;
