/**
 * Jupyter rich display for the Deno kernel, with graceful behaviour in scripts: `isJupyter()`,
 * `display()`, `html`/`md` templates and `richDisplay()` for giving any object a rich representation.
 *
 * @module
 */

import { escapeHtml, JUPYTER_DISPLAY, type MimeBundle, richDisplay } from "../display.ts";

// The protocol itself lives in lib/display.ts; re-exported here for notebook users.
export { escapeHtml, JUPYTER_DISPLAY, type MimeBundle, richDisplay };

/**
 * Options for {@linkcode display}.
 *
 * @category Notebook
 */
export interface NotebookDisplayOptions {
  /** Names the output so later calls with `update: true` replace it in place. */
  displayId?: string;
  /** Replace the output previously shown with the same `displayId` instead of adding one. */
  update?: boolean;
}

/**
 * Where display calls go: the kernel's `Deno.jupyter.display` or a test double.
 *
 * @category Notebook
 */
export type DisplaySink = (bundle: MimeBundle, options: NotebookDisplayOptions) => Promise<void>;

/**
 * Whether this code runs inside the Deno Jupyter kernel.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isJupyter } from "./jupyter.ts";
 * assert.equal(isJupyter(), false); // in a script; true in a notebook
 * ```
 *
 * @category Notebook
 */
export function isJupyter(): boolean {
  if (!("jupyter" in Deno)) return false;
  try {
    // Outside `deno jupyter` the property exists but its getter throws.
    return typeof (Deno as { jupyter?: { display?: unknown } }).jupyter?.display === "function";
  } catch {
    return false;
  }
}

/**
 * The kernel's display function as a {@linkcode DisplaySink}, or undefined outside Jupyter.
 *
 * @category Notebook
 */
export function jupyterSink(): DisplaySink | undefined {
  if (!isJupyter()) return undefined;
  return (bundle, options) =>
    Deno.jupyter.display(bundle as Deno.jupyter.MediaBundle, {
      raw: true,
      display_id: options.displayId,
      update: options.update,
    });
}

const MIME_KEY = /^[a-z]+\/[\w.+-]+$/;

/**
 * True for a plain object whose keys are all MIME types, e.g. `{"text/html": "<b>hi</b>"}`.
 *
 * @category Notebook
 */
export function isMimeBundle(value: unknown): value is MimeBundle {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  const keys = Object.keys(value);
  return keys.length > 0 && keys.every((k) => MIME_KEY.test(k));
}

/**
 * The MIME bundle for a value: a bundle as is; an object's own `[JUPYTER_DISPLAY]()` result; an element
 * with `outerHTML` (a DOM node) as HTML; anything else as plain text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { html, mimeBundleOf } from "./jupyter.ts";
 * assert.deepEqual(await mimeBundleOf(html`<b>${"x<y"}</b>`), { "text/html": "<b>x&lt;y</b>" });
 * assert.deepEqual(await mimeBundleOf(42), { "text/plain": "42" });
 * ```
 *
 * @category Notebook
 */
export async function mimeBundleOf(value: unknown): Promise<MimeBundle> {
  if (isMimeBundle(value)) return value;
  if (value !== null && (typeof value === "object" || typeof value === "function")) {
    const fn = (value as Record<symbol, unknown>)[JUPYTER_DISPLAY];
    if (typeof fn === "function") return await fn.call(value) as MimeBundle;
    const outer = (value as { outerHTML?: unknown }).outerHTML;
    if (typeof outer === "string") return { "text/html": outer };
  }
  return { "text/plain": typeof value === "string" ? value : Deno.inspect(value, { colors: false }) };
}

/**
 * Shows a value in the notebook (rich MIME bundle, in place with `displayId` + `update`). Outside Jupyter
 * it prints the value's plain-text form (or a note naming its richest MIME type) to stdout.
 *
 * @example
 * ```ts
 * import { display, md } from "./jupyter.ts";
 * await display(md`**bold** text`, { displayId: "status" });
 * await display(md`updated`, { displayId: "status", update: true });
 * ```
 *
 * @category Notebook
 */
export async function display(value: unknown, options: NotebookDisplayOptions = {}): Promise<void> {
  const bundle = await mimeBundleOf(value);
  const sink = jupyterSink();
  if (sink) return await sink(bundle, options);
  console.log(plainTextOf(bundle));
}

/**
 * The text a terminal shows for a bundle: its text/plain, markdown source, or a note of what it holds.
 *
 * @category Notebook
 * @internal Used inside the library; not part of the stable API.
 */
export function plainTextOf(bundle: MimeBundle): string {
  for (const key of ["text/plain", "text/markdown"]) {
    if (typeof bundle[key] === "string") return bundle[key] as string;
  }
  return `[${Object.keys(bundle).join(", ")}]`;
}

/**
 * Trusted HTML produced by {@linkcode html}; interpolating it into another `html` template keeps it as is.
 *
 * @category Notebook
 */
export class NotebookHtml {
  /** The HTML source. */
  readonly source: string;
  /** Wraps already-safe HTML source. */
  constructor(source: string) {
    this.source = source;
  }
  /** The HTML source. */
  toString(): string {
    return this.source;
  }
  /** Rich display: text/html. */
  [JUPYTER_DISPLAY](): MimeBundle {
    return { "text/html": this.source };
  }
}

/**
 * HTML template literal. Interpolated values are escaped (strings, numbers, objects), except the results
 * of other `html` templates, which nest as markup.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { html } from "./jupyter.ts";
 * const row = html`<td>${"<1>"}</td>`;
 * // The nested fragment is kept as markup, its text escaped once.
 * assert.equal(String(html`<table><tr>${row}</tr></table>`), "<table><tr><td>&lt;1&gt;</td></tr></table>");
 * ```
 *
 * @category Notebook
 */
export function html(strings: TemplateStringsArray, ...values: unknown[]): NotebookHtml {
  let out = strings[0];
  values.forEach((v, i) => {
    const part = Array.isArray(v) ? v.map(htmlPart).join("") : htmlPart(v);
    out += part + strings[i + 1];
  });
  return new NotebookHtml(out);
}

function htmlPart(v: unknown): string {
  if (v instanceof NotebookHtml) return v.source;
  if (v === null || v === undefined || v === false) return "";
  return escapeHtml(String(v));
}

/**
 * Markdown produced by {@linkcode md}.
 *
 * @category Notebook
 */
export class NotebookMarkdown {
  /** The markdown source. */
  readonly source: string;
  /** Wraps markdown source. */
  constructor(source: string) {
    this.source = source;
  }
  /** The markdown source. */
  toString(): string {
    return this.source;
  }
  /** Rich display: text/markdown plus the source as text/plain. */
  [JUPYTER_DISPLAY](): MimeBundle {
    return { "text/markdown": this.source, "text/plain": this.source };
  }
}

/**
 * Markdown template literal (values are inserted as text).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { md } from "./jupyter.ts";
 * const m = md`Loss after **${3}** steps: ${1.5}`;
 * assert.equal(m.source, "Loss after **3** steps: 1.5");
 * ```
 *
 * @category Notebook
 */
export function md(strings: TemplateStringsArray, ...values: unknown[]): NotebookMarkdown {
  return new NotebookMarkdown(String.raw({ raw: strings }, ...values.map((v) => String(v))));
}
