/**
 * The DOM that Observable Plot renders into outside a browser: one linkedom document, plus a tiny
 * stand-in for `<canvas>` so that Plot's continuous colour legends ("ramp") work.
 *
 * @module
 */
import { parseHTML } from "../deps.ts";

/**
 * The few DOM element members this library reads from Plot's output. Deno has no DOM typings, so Plot's
 * own `SVGSVGElement | HTMLElement` types are opaque here; this describes what linkedom provides.
 *
 * @category Plots
 */
export interface PlotElement {
  /** Upper-case tag name, e.g. "SVG" or "FIGURE" (lower case for some SVG elements). */
  readonly tagName: string;
  /** The element serialised with its children. */
  readonly outerHTML: string;
  /** Concatenated text of the element's descendants. */
  readonly textContent: string | null;
  /** Child elements. */
  readonly children: ArrayLike<PlotElement>;
  /** An attribute's value, or null. */
  getAttribute(name: string): string | null;
  /** Sets an attribute. */
  setAttribute(name: string, value: string): void;
  /** First descendant matching a CSS selector. */
  querySelector(selector: string): PlotElement | null;
  /** Every descendant matching a CSS selector. */
  querySelectorAll(selector: string): ArrayLike<PlotElement>;
}

/**
 * The document Plot renders into (its `document` option): a linkedom document.
 *
 * @category Plots
 */
export interface PlotDocument {
  /** Creates an HTML element. */
  createElement(name: string): PlotElement;
  /** Creates an element in a namespace (SVG). */
  createElementNS(namespace: string, name: string): PlotElement;
}

let shared: PlotDocument | undefined;

/**
 * The shared linkedom document used by {@linkcode plot}. Created on first use.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { plotDocument } from "./dom.ts";
 * const doc = plotDocument();
 * assert.equal(doc.createElement("figure").tagName, "FIGURE");
 * ```
 *
 * @category Plots
 */
export function plotDocument(): PlotDocument {
  if (shared) return shared;
  const window = parseHTML("<!DOCTYPE html><html><head></head><body></body></html>") as unknown as {
    document: PlotDocument;
  };
  const document = window.document;
  const createElement = document.createElement.bind(document);
  // Plot paints ramp legends pixel by pixel into a 256x1 canvas and embeds canvas.toDataURL() as an
  // <image>. DOM shims have no canvas (getContext returns null and Plot crashes), so hand Plot a canvas
  // that records the fills and serialises them as an SVG data URL, which browsers and resvg both draw.
  document.createElement = (name: string) =>
    name.toLowerCase() === "canvas" ? new SvgCanvas() as unknown as PlotElement : createElement(name);
  shared = document;
  return shared;
}

/** The subset of a 2D canvas context that Plot's ramp legend uses: fillStyle + fillRect. */
class SvgCanvasContext {
  fillStyle = "#000";
  readonly rects: string[] = [];
  fillRect(x: number, y: number, w: number, h: number): void {
    this.rects.push(
      `<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="${escapeAttr(this.fillStyle)}"/>`,
    );
  }
}

/** A canvas stand-in whose `toDataURL()` returns an SVG image of what was filled. */
class SvgCanvas {
  width = 300;
  height = 150;
  readonly #ctx = new SvgCanvasContext();
  getContext(kind: string): SvgCanvasContext | null {
    return kind === "2d" ? this.#ctx : null;
  }
  toDataURL(): string {
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${this.width}" height="${this.height}" ` +
      `viewBox="0 0 ${this.width} ${this.height}" preserveAspectRatio="none" shape-rendering="crispEdges">` +
      this.#ctx.rects.join("") + "</svg>";
    return "data:image/svg+xml;base64," + btoa(svg);
  }
}

function escapeAttr(s: string): string {
  return String(s).replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
}
