/**
 * The default probe sets of the twelve experiments. Upstream's word lists are unknown (spec §4.1, [P]);
 * these are ours, chosen from words that are single leading-space GPT-2 tokens and common in WikiText.
 * Every experiment takes its list as an option; these are only the defaults.
 *
 * @module
 */

/**
 * Semantic categories for the atlas (#1) and the galaxy (#4).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_CATEGORIES } from "./defaults.ts";
 * assert.ok(DEFAULT_CATEGORIES.royalty.includes("queen"));
 * ```
 *
 * @category reFlow
 */
export const DEFAULT_CATEGORIES: Readonly<Record<string, readonly string[]>> = {
  numbers: ["one", "two", "three", "four", "five", "six"],
  royalty: ["king", "queen", "prince", "princess"],
  people: ["man", "woman", "boy", "girl"],
  countries: ["France", "Germany", "China", "Japan", "England"],
  cities: ["Paris", "London", "Beijing", "Berlin"],
  time: ["year", "month", "week", "day"],
};

/**
 * Analogy triples for #5: vector = R[b] + R[c] − R[a], expect `target` ("b − a + c"). The first three
 * are the ones the README reports.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_TRIPLES } from "./defaults.ts";
 * assert.deepEqual(DEFAULT_TRIPLES[0], { a: "man", b: "king", c: "woman", target: "queen" });
 * ```
 *
 * @category reFlow
 */
export const DEFAULT_TRIPLES: readonly { a: string; b: string; c: string; target: string }[] = [
  { a: "man", b: "king", c: "woman", target: "queen" },
  { a: "walking", b: "walked", c: "running", target: "ran" },
  { a: "France", b: "Paris", c: "China", target: "Beijing" },
];

/**
 * Correct / misspelt pairs for #6 (the misspelling need not be one token).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_TYPOS } from "./defaults.ts";
 * assert.equal(DEFAULT_TYPOS[0][1], "goverment");
 * ```
 *
 * @category reFlow
 */
export const DEFAULT_TYPOS: readonly [string, string][] = [
  ["government", "goverment"],
  ["because", "becuase"],
  ["people", "peopel"],
  ["important", "importent"],
];

/**
 * Prompts with a known next word for #7, #8, #9 and #11.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_PROMPTS } from "./defaults.ts";
 * assert.equal(DEFAULT_PROMPTS[0].target, "queen");
 * ```
 *
 * @category reFlow
 */
export const DEFAULT_PROMPTS: readonly { text: string; target: string }[] = [
  { text: "The king and the", target: "queen" },
  { text: "one , two , three ,", target: "four" },
];

/**
 * Sentiment word lists for #10.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_SENTIMENT } from "./defaults.ts";
 * assert.equal(DEFAULT_SENTIMENT.positive.length, DEFAULT_SENTIMENT.negative.length);
 * ```
 *
 * @category reFlow
 */
export const DEFAULT_SENTIMENT: { positive: readonly string[]; negative: readonly string[] } = {
  positive: ["good", "great", "happy", "love", "best"],
  negative: ["bad", "poor", "sad", "hate", "worst"],
};

/**
 * Every default probe word, for building test vocabularies.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultProbeWords } from "./defaults.ts";
 * assert.ok(defaultProbeWords().includes("queen"));
 * ```
 *
 * @category reFlow
 */
export function defaultProbeWords(): string[] {
  const words = new Set<string>();
  for (const list of Object.values(DEFAULT_CATEGORIES)) for (const w of list) words.add(w);
  for (const t of DEFAULT_TRIPLES) for (const w of [t.a, t.b, t.c, t.target]) words.add(w);
  for (const [w] of DEFAULT_TYPOS) words.add(w);
  for (const p of DEFAULT_PROMPTS) {
    for (const w of p.text.split(/\s+/)) if (w) words.add(w);
    words.add(p.target);
  }
  for (const w of [...DEFAULT_SENTIMENT.positive, ...DEFAULT_SENTIMENT.negative]) words.add(w);
  for (const w of ["The", "film", "was", "the", "and", "a", "of"]) words.add(w);
  return [...words];
}
