/**
 * The library's one seeded pseudo-random number generator.
 *
 * xoshiro128** (Blackman & Vigna) on four 32-bit words, seeded through splitmix64 so that nearby seeds
 * give unrelated streams. Every random choice in the library (weight init, sampling, data order, dropout
 * seeds) draws from a {@linkcode Prng}, never from `Math.random` or tfjs' global random state, and the
 * whole state (including the cached second Box-Muller normal) serialises to plain JSON so a checkpoint
 * resumes the exact stream.
 *
 * @example
 * ```ts
 * import { Prng } from "./prng.ts";
 * const rng = new Prng(42);
 * const u = rng.nextFloat(); // [0, 1)
 * const saved = rng.getState();
 * const a = rng.nextNormal();
 * rng.setState(saved);
 * console.assert(rng.nextNormal() === a && u >= 0 && u < 1);
 * ```
 *
 * @module
 */

/**
 * A {@linkcode Prng}'s complete state as plain JSON data.
 *
 * @category Random
 */
export interface PrngState {
  /** Always "xoshiro128**"; guards against loading a state of another generator. */
  algorithm: "xoshiro128**";
  /** The four 32-bit state words as unsigned integers. */
  s: [number, number, number, number];
  /** The cached second value of the last Box-Muller pair, or null. */
  spareNormal: number | null;
}

const MASK64 = (1n << 64n) - 1n;
const GOLDEN64 = 0x9e3779b97f4a7c15n;

/** One splitmix64 output for state `z` (already advanced); used only when seeding. */
function mix64(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

function toUint64(value: number | bigint, what: string): bigint {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) {
      throw new RangeError(`Prng: ${what} must be a safe integer, got ${value}`);
    }
    value = BigInt(value);
  }
  return BigInt.asUintN(64, value);
}

/** Four nonzero xoshiro words from a 64-bit seed and a 64-bit stream id. */
function seedWords(seed: bigint, stream: bigint): [number, number, number, number] {
  // Mixing the stream id through its own splitmix step keeps (seed, stream) and (seed', stream') apart
  // even when seed' - seed equals a multiple of the splitmix increment.
  let z = (seed ^ mix64((stream * GOLDEN64 + 0x632be59bd9b4e019n) & MASK64)) & MASK64;
  const out: number[] = [];
  for (let i = 0; i < 2; i++) {
    z = (z + GOLDEN64) & MASK64;
    const r = mix64(z);
    out.push(Number(r & 0xffffffffn), Number(r >> 32n));
  }
  if ((out[0] | out[1] | out[2] | out[3]) === 0) out[0] = 1; // the all-zero state is a fixed point
  return out as [number, number, number, number];
}

const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;

/**
 * A seeded generator: xoshiro128** with 53-bit floats, Box-Muller normals and unbiased integers.
 *
 * Streams: `new Prng(seed, stream)` gives independent streams for one seed (e.g. one per sequence of a
 * batch); `fork(id)` derives a child from the current state without advancing the parent.
 *
 * @example
 * ```ts
 * import { Prng } from "./prng.ts";
 * const rows = [0, 1, 2].map((row) => new Prng(7, row)); // one stream per sequence
 * const picks = rows.map((r) => r.nextInt(10));
 * console.assert(picks.every((p) => p >= 0 && p < 10));
 * ```
 *
 * @category Random
 */
export class Prng {
  #s0 = 0;
  #s1 = 0;
  #s2 = 0;
  #s3 = 0;
  #spare: number | null = null;

  /**
   * A generator for `seed` and `stream`.
   *
   * @param seed any safe integer (negative values are taken modulo 2^64) or a bigint
   * @param stream stream id; different ids give independent streams for the same seed
   */
  constructor(seed: number | bigint, stream: number | bigint = 0) {
    const w = seedWords(toUint64(seed, "seed"), toUint64(stream, "stream"));
    [this.#s0, this.#s1, this.#s2, this.#s3] = w;
  }

  /** A generator restored from a saved state. */
  static fromState(state: PrngState): Prng {
    const rng = new Prng(0);
    rng.setState(state);
    return rng;
  }

  /** The next raw 32-bit output as an unsigned integer. */
  nextUint32(): number {
    const s0 = this.#s0, s1 = this.#s1;
    let s2 = this.#s2, s3 = this.#s3;
    const m = Math.imul(s1, 5);
    const result = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    this.#s1 = s1 ^ s2;
    this.#s0 = s0 ^ s3;
    this.#s2 = s2 ^ t;
    this.#s3 = (s3 << 11) | (s3 >>> 21);
    return result;
  }

  /** A float in [0, 1) with 53 random bits (two raw outputs). */
  nextFloat(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / TWO_POW_53;
  }

  /** A standard normal draw (Box-Muller; the pair's second value is cached in the state). */
  nextNormal(): number {
    if (this.#spare !== null) {
      const v = this.#spare;
      this.#spare = null;
      return v;
    }
    // 1 - u lies in (0, 1], so the log is finite.
    const u1 = 1 - this.nextFloat();
    const u2 = this.nextFloat();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    this.#spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** A uniform integer in [0, n) without modulo bias; n must be an integer in [1, 2^32]. */
  nextInt(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32) {
      throw new RangeError(`Prng.nextInt: n must be an integer in [1, 2^32], got ${n}`);
    }
    // Rejection: accept raw values below the largest multiple of n that fits in 32 bits.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    let x = this.nextUint32();
    while (x >= limit) x = this.nextUint32();
    return x % n;
  }

  /**
   * A child generator for `streamId`, derived from this generator's current state. The parent does not
   * advance, so `fork(i)` called twice at the same point gives the same child.
   */
  fork(streamId: number | bigint): Prng {
    const seed = (BigInt(this.#s0 >>> 0) | (BigInt(this.#s1 >>> 0) << 32n)) ^
      (BigInt(this.#s2 >>> 0) << 16n) ^ (BigInt(this.#s3 >>> 0) << 7n);
    return new Prng(BigInt.asUintN(64, seed), streamId);
  }

  /** A Fisher-Yates shuffle of `array` in place; returns the array. */
  shuffle<T>(array: T[]): T[] {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }

  /** The full state as plain JSON data (a copy). */
  getState(): PrngState {
    return {
      algorithm: "xoshiro128**",
      s: [this.#s0 >>> 0, this.#s1 >>> 0, this.#s2 >>> 0, this.#s3 >>> 0],
      spareNormal: this.#spare,
    };
  }

  /** Restores a state from {@linkcode Prng.getState}; throws a clear error on malformed data. */
  setState(state: PrngState): void {
    const where = "Prng.setState";
    if (state === null || typeof state !== "object") throw new TypeError(`${where}: state must be an object`);
    if (state.algorithm !== "xoshiro128**") {
      throw new TypeError(`${where}: state.algorithm must be "xoshiro128**", got ${String(state.algorithm)}`);
    }
    const s = state.s;
    if (
      !Array.isArray(s) || s.length !== 4 ||
      !s.every((w) => Number.isInteger(w) && w >= 0 && w < TWO_POW_32)
    ) {
      throw new TypeError(`${where}: state.s must be four unsigned 32-bit integers`);
    }
    if ((s[0] | s[1] | s[2] | s[3]) === 0) throw new RangeError(`${where}: state.s must not be all zero`);
    const spare = state.spareNormal ?? null;
    if (spare !== null && (typeof spare !== "number" || !Number.isFinite(spare))) {
      throw new TypeError(`${where}: state.spareNormal must be a finite number or null`);
    }
    [this.#s0, this.#s1, this.#s2, this.#s3] = [s[0] | 0, s[1] | 0, s[2] | 0, s[3] | 0];
    this.#spare = spare;
  }
}

/**
 * Fills `array` with normal draws of the given mean and standard deviation (weight initialisation).
 *
 * @example
 * ```ts
 * import { fillNormal, Prng } from "./prng.ts";
 * const w = fillNormal(new Float32Array(16), 0, 0.02, new Prng(1));
 * console.assert(w.some((x) => x !== 0));
 * ```
 *
 * @category Random
 */
export function fillNormal<A extends Float32Array | Float64Array | number[]>(
  array: A,
  mean: number,
  std: number,
  rng: Prng,
): A {
  for (let i = 0; i < array.length; i++) array[i] = mean + std * rng.nextNormal();
  return array;
}

/**
 * Fills `array` with uniform draws in [low, high).
 *
 * @example
 * ```ts
 * import { fillUniform, Prng } from "./prng.ts";
 * const a = fillUniform(new Float32Array(8), -1, 1, new Prng(3));
 * console.assert(a.every((x) => x >= -1 && x < 1));
 * ```
 *
 * @category Random
 */
export function fillUniform<A extends Float32Array | Float64Array | number[]>(
  array: A,
  low: number,
  high: number,
  rng: Prng,
): A {
  const span = high - low;
  for (let i = 0; i < array.length; i++) array[i] = low + span * rng.nextFloat();
  return array;
}

/**
 * Fills `array` with normal draws truncated to [mean - bound*std, mean + bound*std] by redrawing values
 * outside (the usual `trunc_normal_` initialisation; bound defaults to 2).
 *
 * @example
 * ```ts
 * import { fillTruncatedNormal, Prng } from "./prng.ts";
 * const a = fillTruncatedNormal(new Float32Array(64), 0, 1, new Prng(5));
 * console.assert(a.every((x) => Math.abs(x) <= 2));
 * ```
 *
 * @category Random
 */
export function fillTruncatedNormal<A extends Float32Array | Float64Array | number[]>(
  array: A,
  mean: number,
  std: number,
  rng: Prng,
  bound = 2,
): A {
  if (!(bound > 0)) throw new RangeError(`fillTruncatedNormal: bound must be > 0, got ${bound}`);
  for (let i = 0; i < array.length; i++) {
    let z = rng.nextNormal();
    while (Math.abs(z) > bound) z = rng.nextNormal();
    array[i] = mean + std * z;
  }
  return array;
}
