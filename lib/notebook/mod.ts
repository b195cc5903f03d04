/**
 * Notebook helpers for the Deno Jupyter kernel that degrade gracefully in scripts and CI: rich display,
 * `html`/`md` templates, progress bars and live-updating charts.
 *
 * @example
 * ```ts
 * import { display, isJupyter, md } from "./mod.ts";
 * await display(md`Running in Jupyter: **${isJupyter()}**`);
 * ```
 *
 * @module
 */
export * from "./jupyter.ts";
export * from "./progress.ts";
export * from "./live_plot.ts";
