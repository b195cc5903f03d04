/**
 * Saving charts: SVG files, and PNG files rendered by resvg (WebAssembly). resvg draws no text unless it
 * is given fonts, so the bundled DejaVu Sans (data/fonts/) is loaded relative to this module's URL, which
 * also works when the library is imported from a web server.
 *
 * @module
 */
import { initResvgWasm, Resvg, RESVG_WASM_URL } from "../deps.ts";
import { writeFileAtomic, writeTextAtomic } from "../io/atomic.ts";
import type { PlotElement } from "./dom.ts";
import { toSvgString } from "./svg.ts";

/**
 * URL of the font shipped for PNG rendering (DejaVu Sans, Bitstream Vera licence: see its LICENSE).
 *
 * @category Plots
 * @internal Used inside the library; not part of the stable API.
 */
export const PLOT_FONT_URL: URL = new URL("../../data/fonts/DejaVuSans.ttf", import.meta.url);

/**
 * Options for {@linkcode svgToPng} and {@linkcode savePng}.
 *
 * @category Plots
 */
export interface PngOptions {
  /** Pixels per SVG unit (default 2, for crisp text). */
  scale?: number;
  /** Background colour; default white (charts use black text, which is unreadable on transparency). */
  background?: string;
  /** Extra font files (TTF/OTF bytes), e.g. for scripts DejaVu Sans lacks. */
  fontBuffers?: Uint8Array[];
}

let ready: Promise<Uint8Array> | undefined;

/** Initialises resvg's wasm (once per process) and loads the bundled font. */
function prepare(): Promise<Uint8Array> {
  ready ??= (async () => {
    const [, font] = await Promise.all([
      initResvgWasm(fetch(RESVG_WASM_URL)),
      fetch(PLOT_FONT_URL).then(async (r) => {
        if (!r.ok) throw new Error(`could not load the chart font ${PLOT_FONT_URL.href}: HTTP ${r.status}`);
        return new Uint8Array(await r.arrayBuffer());
      }),
    ]);
    return font;
  })();
  ready.catch(() => ready = undefined); // let a later call retry after a failed load
  return ready;
}

function asSvg(figure: PlotElement | string): string {
  return typeof figure === "string" ? figure : toSvgString(figure);
}

/**
 * Renders a Plot figure (or SVG text) to PNG bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { plot, Plot, svgToPng } from "./mod.ts";
 * const png = await svgToPng(plot({ marks: [Plot.lineY([1, 3, 2])] }), { scale: 1 });
 * assert.equal(new TextDecoder().decode(png.subarray(1, 4)), "PNG"); // the PNG signature
 * ```
 *
 * @category Plots
 */
export async function svgToPng(figure: PlotElement | string, options: PngOptions = {}): Promise<Uint8Array> {
  const font = await prepare();
  const scale = options.scale ?? 2;
  if (!(scale > 0 && scale <= 16)) throw new Error(`svgToPng: scale must be in (0, 16], got ${scale}`);
  const resvg = new Resvg(asSvg(figure), {
    background: options.background ?? "white",
    fitTo: { mode: "zoom", value: scale },
    font: {
      fontBuffers: [font, ...(options.fontBuffers ?? [])],
      loadSystemFonts: false, // not available in wasm; fonts come only from fontBuffers
      defaultFontFamily: "DejaVu Sans",
      sansSerifFamily: "DejaVu Sans",
    },
  });
  try {
    const image = resvg.render();
    try {
      return image.asPng();
    } finally {
      image.free();
    }
  } finally {
    resvg.free();
  }
}

async function ensureParent(path: string): Promise<void> {
  const i = path.lastIndexOf("/");
  if (i > 0) await Deno.mkdir(path.slice(0, i), { recursive: true });
}

/**
 * Writes a figure as a standalone SVG file (atomically; parent folders are created).
 *
 * @example
 * ```ts
 * import { plot, Plot, saveSvg } from "./mod.ts";
 * const path = (await Deno.makeTempDir()) + "/chart.svg";
 * await saveSvg(path, plot({ marks: [Plot.barY([1, 2, 3])] }));
 * ```
 *
 * @category Plots
 */
export async function saveSvg(path: string, figure: PlotElement | string): Promise<void> {
  await ensureParent(path);
  await writeTextAtomic(path, asSvg(figure));
}

/**
 * Writes a figure as a PNG file (atomically; parent folders are created).
 *
 * @example
 * ```ts
 * import { plot, Plot, savePng } from "./mod.ts";
 * const path = (await Deno.makeTempDir()) + "/chart.png";
 * await savePng(path, plot({ marks: [Plot.barY([1, 2, 3])] }), { scale: 1 });
 * ```
 *
 * @category Plots
 */
export async function savePng(
  path: string,
  figure: PlotElement | string,
  options: PngOptions = {},
): Promise<void> {
  const png = await svgToPng(figure, options);
  await ensureParent(path);
  await writeFileAtomic(path, png);
}
