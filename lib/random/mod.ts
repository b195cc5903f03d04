/**
 * Seeded randomness below every other layer: the project PRNG (xoshiro128**, one stream per use) and the
 * fills built on it. Models, data, statistics and generation all draw from here, never from tfjs' global
 * state.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Prng } from "./mod.ts";
 * assert.equal(new Prng(42).nextFloat(), new Prng(42).nextFloat()); // same seed, same stream
 * ```
 *
 * @module
 */
export { fillNormal, fillTruncatedNormal, fillUniform, Prng, type PrngState } from "./prng.ts";
