/**
 * The Jupyter rich-display protocol, at the bottom of the library so that models, generation traces,
 * plots and notebook helpers share one definition: an object with a `[JUPYTER_DISPLAY]()` method returns
 * its MIME bundle, and `escapeHtml` makes text safe inside the HTML it returns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { escapeHtml, JUPYTER_DISPLAY, type MimeBundle } from "./display.ts";
 * const shown = { [JUPYTER_DISPLAY]: (): MimeBundle => ({ "text/html": `<b>${escapeHtml("a<b")}</b>` }) };
 * assert.deepEqual(shown[JUPYTER_DISPLAY](), { "text/html": "<b>a&lt;b</b>" });
 * ```
 *
 * @module
 */

/**
 * A Jupyter MIME bundle: MIME type to data (strings; JSON types as objects).
 *
 * @category Notebook
 */
export type MimeBundle = Record<string, string | object>;

/**
 * The symbol the Deno kernel looks for: an object's `[JUPYTER_DISPLAY]()` returns its MIME bundle.
 *
 * @category Notebook
 */
export const JUPYTER_DISPLAY: unique symbol = Symbol.for("Jupyter.display") as never;

/**
 * Escapes text for HTML (element content and attribute values).
 *
 * @category Notebook
 */
export function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/**
 * Gives an object a rich Jupyter representation: attaches `[JUPYTER_DISPLAY]` so the kernel renders it
 * when it is a cell's value. Returns the same object.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { JUPYTER_DISPLAY, type MimeBundle, richDisplay } from "./display.ts";
 * const stats = richDisplay({ loss: 1.25 }, (s) => ({ "text/html": `<i>loss ${s.loss}</i>`, "text/plain": `loss ${s.loss}` }));
 * const show = (stats as unknown as Record<symbol, () => MimeBundle>)[JUPYTER_DISPLAY];
 * assert.equal(show()["text/plain"], "loss 1.25");
 * ```
 *
 * @category Notebook
 */
export function richDisplay<T extends object>(
  obj: T,
  bundleFn: (obj: T) => MimeBundle | Promise<MimeBundle>,
): T {
  Object.defineProperty(obj, JUPYTER_DISPLAY, {
    value: () => bundleFn(obj),
    enumerable: false,
    configurable: true,
    writable: true,
  });
  return obj;
}
