/**
 * Charts: Observable Plot rendering outside the browser (linkedom DOM), standalone SVG, PNG via resvg,
 * rich display in Jupyter, and chart helpers used across the library.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { plot, Plot, toSvgString } from "./mod.ts";
 * const fig = plot({ marks: [Plot.lineY([1, 2, 4, 8])] });
 * assert.ok(toSvgString(fig).startsWith("<svg"));
 * ```
 *
 * @module
 */
export * from "./marks.ts";
export * from "./dom.ts";
export * from "./plot.ts";
export * from "./svg.ts";
export * from "./png.ts";
export * from "./charts.ts";
