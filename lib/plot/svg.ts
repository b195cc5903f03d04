/**
 * Standalone SVG text from a Plot figure. Plot returns a bare `<svg>`, or an HTML `<figure>` when the
 * chart has a title, subtitle, caption or legends; image files and PNG conversion need one SVG document,
 * so figures are laid out into a single SVG here (title, legends, chart, caption stacked vertically).
 *
 * @module
 */
import type { PlotElement } from "./dom.ts";

const SVG_NS = "http://www.w3.org/2000/svg";
const FONT = "DejaVu Sans, system-ui, sans-serif";

/**
 * Serialises a Plot result (an `<svg>` or a `<figure>`) to a standalone SVG document string with the
 * SVG namespace set, so it opens as a file and converts to PNG.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { plot, Plot, toSvgString } from "./mod.ts";
 * const fig = plot({ title: "Squares", marks: [Plot.lineY([1, 4, 9, 16])] });
 * const svg = toSvgString(fig);
 * assert.ok(svg.startsWith("<svg"));
 * assert.ok(svg.includes("Squares"));
 * ```
 *
 * @category Plots
 */
export function toSvgString(figure: PlotElement): string {
  const tag = figure.tagName.toLowerCase();
  if (tag === "svg") return withNamespace(figure.outerHTML);
  if (tag !== "figure" && tag !== "div") {
    throw new Error(`toSvgString: expected a Plot <svg> or <figure>, got <${tag}>`);
  }
  return layoutFigure(figure);
}

/** Adds `xmlns` (and `xmlns:xlink` when used) to the root `<svg>` tag of serialised SVG. */
function withNamespace(svg: string, extra = ""): string {
  const open = svg.slice(0, svg.indexOf(">"));
  let attrs = "";
  if (!/\sxmlns=/.test(open)) attrs += ` xmlns="${SVG_NS}"`;
  if (svg.includes("xlink:") && !/\sxmlns:xlink=/.test(open)) {
    attrs += ` xmlns:xlink="http://www.w3.org/1999/xlink"`;
  }
  return "<svg" + attrs + extra + svg.slice(4);
}

function numAttr(el: PlotElement, name: string, fallback: number): number {
  const v = Number(el.getAttribute(name));
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

/** Rough advance width of DejaVu Sans text: about 0.6 em per character. */
function textWidth(text: string, size: number): number {
  return text.length * size * 0.6;
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Stacks a figure's parts (headings, legends, charts, caption) into one SVG. */
function layoutFigure(figure: PlotElement): string {
  const children = Array.from(figure.children);
  const widths = children.filter((c) => c.tagName.toLowerCase() === "svg").map((c) =>
    numAttr(c, "width", 640)
  );
  const width = widths.length ? Math.max(...widths) : 640;
  const parts: string[] = [];
  let y = 0;
  const textLine = (text: string, size: number, weight: string, fill: string) => {
    // Titles and captions wider than the chart wrap at spaces instead of running past the edge.
    const lines: string[] = [];
    let line = "";
    for (const word of text.split(/\s+/)) {
      const next = line ? `${line} ${word}` : word;
      if (line && textWidth(next, size) > width) {
        lines.push(line);
        line = word;
      } else line = next;
    }
    if (line || lines.length === 0) lines.push(line);
    for (const l of lines) {
      y += size * 1.5;
      parts.push(
        `<text x="0" y="${y - size * 0.4}" font-size="${size}" font-weight="${weight}" fill="${fill}">` +
          `${esc(l)}</text>`,
      );
    }
  };
  for (const child of children) {
    const tag = child.tagName.toLowerCase();
    const text = (child.textContent ?? "").trim();
    if (tag === "h2") textLine(text, 16, "bold", "#000");
    else if (tag === "h3") textLine(text, 12, "normal", "#555");
    else if (tag === "figcaption") textLine(text, 12, "normal", "#555");
    else if (tag === "svg") {
      const h = numAttr(child, "height", 400);
      // Ramp legends put their first tick label at x = 0, half outside; browsers show it through
      // overflow: visible, so shift the legend right a little and let it overflow here too.
      const ramp = /(^|\s)plot-[\w-]*ramp/.test(child.getAttribute("class") ?? "");
      parts.push(withNamespace(child.outerHTML, ` x="${ramp ? 8 : 0}" y="${y}" overflow="visible"`));
      y += h;
    } else if (tag === "div" && child.querySelector("span") !== null) {
      y += layoutSwatches(child, y, width, parts);
    } else if (tag !== "style" && text) textLine(text, 10, "normal", "#000");
  }
  const height = Math.ceil(y);
  return `<svg xmlns="${SVG_NS}" xmlns:xlink="http://www.w3.org/1999/xlink" width="${width}" ` +
    `height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}" font-size="10">` +
    parts.join("") + "</svg>";
}

/** Lays out a swatches legend (spans holding a small svg and a label) in wrapped rows; returns height. */
function layoutSwatches(div: PlotElement, top: number, width: number, parts: string[]): number {
  const rowH = 20;
  let x = 0;
  let row = 0;
  for (const span of Array.from(div.querySelectorAll("span"))) {
    const swatch = span.querySelector("svg");
    const label = (span.textContent ?? "").trim();
    const w = (swatch ? numAttr(swatch, "width", 15) + 5 : 0) + textWidth(label, 10) + 16;
    if (x > 0 && x + w > width) {
      x = 0;
      row++;
    }
    const y = top + row * rowH + 2;
    if (swatch) {
      parts.push(withNamespace(swatch.outerHTML, ` x="${x}" y="${y}" overflow="visible"`));
      x += numAttr(swatch, "width", 15) + 5;
    }
    parts.push(`<text x="${x}" y="${y + 11}" text-anchor="start" fill="#000">${esc(label)}</text>`);
    x += textWidth(label, 10) + 16;
  }
  return (row + 1) * rowH + 6;
}
