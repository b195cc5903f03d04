/**
 * Validation of user-written option objects: unknown keys are refused with a did-you-mean, so a misspelt
 * option can never be silently ignored. One implementation for the library's options, configs and CLIs.
 *
 * @module
 */

/**
 * Levenshtein edit distance between two strings (case-insensitive).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { editDistance } from "./options.ts";
 * assert.equal(editDistance("temp", "temperature"), 7);
 * assert.equal(editDistance("hook_patern", "hook_pattern"), 1);
 * ```
 *
 * @category IO
 */
export function editDistance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/**
 * The candidates closest to `word`: those within an edit distance of a third of its length (at least 2),
 * or that contain it or are contained in it, best first, at most `max`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closest } from "./options.ts";
 * assert.deepEqual(closest("temp", ["temperature", "topK", "seed"]), ["temperature"]);
 * assert.deepEqual(closest("reflow-1-smal", ["reflow-1-small", "reflow-1", "gpt2"]), ["reflow-1-small", "reflow-1"]);
 * ```
 *
 * @category IO
 */
export function closest(word: string, candidates: readonly string[], max = 3): string[] {
  const limit = Math.max(2, Math.floor(word.length / 3));
  const w = word.toLowerCase();
  return candidates
    .map((c) => {
      const lc = c.toLowerCase();
      const d = editDistance(word, c);
      const contains = w.length >= 3 && (lc.includes(w) || w.includes(lc));
      return { c, d: contains ? Math.min(d, limit) : d };
    })
    .filter((x) => x.d <= limit)
    .sort((x, y) => x.d - y.d)
    .slice(0, max)
    .map((x) => x.c);
}

/**
 * ` (did you mean a, b?)` for the closest candidates, or the empty string.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { didYouMean } from "./options.ts";
 * assert.equal(didYouMean("topk", ["topK", "topP"]), " (did you mean topK, topP?)");
 * assert.equal(didYouMean("zzzzzz", ["topK"]), "");
 * ```
 *
 * @category IO
 */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const near = closest(word, candidates);
  return near.length ? ` (did you mean ${near.join(", ")}?)` : "";
}

/**
 * Throws when `options` is not a plain object or has a key outside `allowed`; the message names `where`,
 * the key, the closest allowed keys and the full list. `undefined` passes (no options).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkOptionKeys } from "./options.ts";
 * checkOptionKeys({ temperature: 0 }, ["temperature", "topK"], "sampling");
 * assert.throws(
 *   () => checkOptionKeys({ temp: 0 }, ["temperature", "topK"], "sampling"),
 *   /sampling: unknown option 'temp' \(did you mean temperature\?\)/,
 * );
 * ```
 *
 * @category IO
 */
export function checkOptionKeys(options: unknown, allowed: readonly string[], where: string): void {
  if (options === undefined) return;
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new Error(
      `${where}: options must be an object, got ${Array.isArray(options) ? "an array" : String(options)}`,
    );
  }
  for (const k of Object.keys(options)) {
    if (!allowed.includes(k)) {
      throw new Error(
        `${where}: unknown option '${k}'${didYouMean(k, allowed)}; allowed: ${allowed.join(", ")}`,
      );
    }
  }
}

/**
 * Throws unless `value` is one of `allowed`, naming them (with a did-you-mean for strings).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkChoice } from "./options.ts";
 * assert.equal(checkChoice("band", ["ceiling", "center", "band"], "regularizer mode"), "band");
 * assert.throws(() => checkChoice("centre", ["ceiling", "center", "band"], "regularizer mode"), /did you mean center/);
 * ```
 *
 * @category IO
 */
export function checkChoice<T extends string>(value: unknown, allowed: readonly T[], what: string): T {
  if (typeof value === "string" && (allowed as readonly string[]).includes(value)) return value as T;
  const hint = typeof value === "string" ? didYouMean(value, allowed) : "";
  throw new Error(`unknown ${what} ${JSON.stringify(value)}${hint}; use one of ${allowed.join(", ")}`);
}
