/**
 * Rotary position embeddings (RoPE) in the Hugging Face "rotate_half" convention: the rotated part of each
 * head is split into two halves (x1, x2) and becomes `x * cos + concat(-x2, x1) * sin`. Partial rotary
 * (GPT-NeoX) rotates only the first `rotaryDim` dims of each head and passes the rest through.
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Tensor2D, Tensor4D } from "../tensor_types.ts";

/**
 * RoPE frequency scaling for long context, as Hugging Face `rope_type` "linear" (every frequency divided
 * by `factor`, i.e. positions stretched) or "llama3" (low frequencies divided by `factor`, high ones kept,
 * a smooth blend between the two wavelength bounds derived from `originalMaxPositions`).
 *
 * @category NN
 */
export type RopeScaling =
  | { type: "linear"; factor: number }
  | {
    type: "llama3";
    factor: number;
    lowFreqFactor: number;
    highFreqFactor: number;
    originalMaxPositions: number;
  };

/**
 * Applies a {@linkcode RopeScaling} to inverse frequencies (in place, float32), following transformers'
 * `_compute_linear_scaling_rope_parameters` / `_compute_llama3_parameters`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scaleRopeFrequencies } from "./rotary.ts";
 * const inv = scaleRopeFrequencies(Float32Array.of(1, 1e-4), { type: "linear", factor: 2 });
 * assert.deepEqual(inv, Float32Array.of(0.5, 0.00005));
 * ```
 *
 * @category NN
 */
export function scaleRopeFrequencies(invFreq: Float32Array, scaling: RopeScaling): Float32Array {
  const { factor } = scaling;
  if (!(factor > 0)) throw new Error(`RoPE scaling: factor must be > 0, got ${factor}`);
  if (scaling.type === "linear") {
    for (let i = 0; i < invFreq.length; i++) invFreq[i] = invFreq[i] / factor;
    return invFreq;
  }
  if (scaling.type !== "llama3") {
    throw new Error(`RoPE scaling: unknown type '${(scaling as { type: string }).type}'`);
  }
  const { lowFreqFactor: low, highFreqFactor: high, originalMaxPositions: old } = scaling;
  if (!(high > low)) {
    throw new Error(`RoPE llama3 scaling: high_freq_factor (${high}) must exceed low_freq_factor (${low})`);
  }
  const lowWavelen = old / low, highWavelen = old / high;
  for (let i = 0; i < invFreq.length; i++) {
    const inv = invFreq[i];
    const wavelen = (2 * Math.PI) / inv;
    if (wavelen > lowWavelen) invFreq[i] = inv / factor; // low frequency: fully scaled
    else if (wavelen >= highWavelen) { // medium: blend between scaled and unscaled
      const smooth = (old / wavelen - low) / (high - low);
      invFreq[i] = (1 - smooth) * inv / factor + smooth * inv;
    } // high frequency: unchanged
  }
  return invFreq;
}

/** Positions a new table covers before it first grows (tables grow by doubling up to `maxPositions`). */
const INITIAL_ROTARY_POSITIONS = 8192;

/**
 * Cos/sin tables for positions `0..maxPositions-1`, kept on the backend so a decode step only gathers
 * rows. They are built lazily: first up to 8192 positions (or `maxPositions` if smaller), then grown by
 * doubling to cover the largest position actually used, so a config announcing 1e9 positions costs
 * nothing until those positions are used.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import type { Tensor4D } from "../../mod.ts";
 * import { RotaryTable } from "./rotary.ts";
 * await tf.ready();
 * const rope = new RotaryTable({ headDim: 8, rotaryDim: 8, theta: 10000, maxPositions: 16 });
 * const x = tf.ones([1, 3, 2, 8]) as Tensor4D; // [B, T, heads, headDim]
 * const y = rope.apply(x, tf.tensor2d([[0, 1, 2]], [1, 3], "int32"));
 * assert.deepEqual(y.shape, [1, 3, 2, 8]);
 * rope.dispose();
 * ```
 *
 * @category NN
 */
export class RotaryTable {
  /** Per-head width. */
  readonly headDim: number;
  /** Leading dims of each head that rotate (even). */
  readonly rotaryDim: number;
  /** Positions the model supports (the tables cover a prefix of them, see {@linkcode RotaryTable.builtPositions}). */
  readonly maxPositions: number;
  /** Rotary base. */
  readonly theta: number;
  #invFreq: Float32Array;
  #cos: Tensor2D;
  #sin: Tensor2D;
  #built = 0;

  /** Prepares the tables; `rotaryDim` defaults to `headDim`. */
  constructor(
    options: {
      headDim: number;
      rotaryDim?: number;
      theta: number;
      maxPositions: number;
      scaling?: RopeScaling;
    },
  ) {
    const { headDim, theta, maxPositions } = options;
    const rd = options.rotaryDim ?? headDim;
    if (rd % 2 !== 0 || rd <= 0 || rd > headDim) {
      throw new Error(`RotaryTable: rotaryDim must be even and in (0, headDim=${headDim}], got ${rd}`);
    }
    if (!Number.isSafeInteger(maxPositions) || maxPositions <= 0) {
      throw new Error(`RotaryTable: maxPositions must be a positive integer, got ${maxPositions}`);
    }
    this.headDim = headDim;
    this.rotaryDim = rd;
    this.maxPositions = maxPositions;
    this.theta = theta;
    // Same float32 rounding steps as transformers' default rope init: inv_freq = 1 / theta^(2i/rd),
    // angle = pos * inv_freq, all in float32.
    const f = Math.fround;
    const half = rd / 2;
    const invFreq = new Float32Array(half);
    for (let i = 0; i < half; i++) invFreq[i] = f(1 / f(Math.pow(theta, f((2 * i) / rd))));
    if (options.scaling) scaleRopeFrequencies(invFreq, options.scaling);
    this.#invFreq = invFreq;
    const { cos, sin } = this.#build(Math.min(maxPositions, INITIAL_ROTARY_POSITIONS));
    this.#cos = cos;
    this.#sin = sin;
  }

  #build(n: number): { cos: Tensor2D; sin: Tensor2D } {
    const rd = this.rotaryDim, half = rd / 2, invFreq = this.#invFreq, f = Math.fround;
    const cos = new Float32Array(n * rd);
    const sin = new Float32Array(n * rd);
    for (let p = 0; p < n; p++) {
      for (let i = 0; i < half; i++) {
        const angle = f(p * invFreq[i]);
        const c = Math.cos(angle), s = Math.sin(angle);
        cos[p * rd + i] = c;
        cos[p * rd + i + half] = c;
        sin[p * rd + i] = -s;
        sin[p * rd + i + half] = s;
      }
    }
    this.#built = n;
    return { cos: tf.keep(tf.tensor2d(cos, [n, rd])), sin: tf.keep(tf.tensor2d(sin, [n, rd])) };
  }

  /** Grows the tables (by doubling, capped at `maxPositions`) so they cover positions `0..n-1`. */
  ensurePositions(n: number): void {
    if (n <= this.#built) return;
    const target = Math.min(this.maxPositions, Math.max(n, 2 * this.#built));
    const old = [this.#cos, this.#sin];
    const { cos, sin } = this.#build(target);
    this.#cos = cos;
    this.#sin = sin;
    tf.dispose(old);
  }

  /** How many positions the tables currently cover. */
  get builtPositions(): number {
    return this.#built;
  }

  /** [builtPositions, rotaryDim] cosines (each frequency repeated for both halves). */
  get cos(): Tensor2D {
    return this.#cos;
  }

  /**
   * [builtPositions, rotaryDim] sines with rotate_half's sign folded in (`-sin` on the first half, `sin`
   * on the second), so a rotation is `x * cos + concat(x2, x1) * sin` without a negation kernel.
   */
  get sin(): Tensor2D {
    return this.#sin;
  }

  /**
   * Gathers `[B, T, 1, rotaryDim]` cos and sin rows for position ids `[B, T]`; compute once per forward
   * and share across layers with {@linkcode RotaryTable.rotate}. `upTo` (an exclusive bound on the
   * positions, known on the host) lets partial tables grow without reading the positions back.
   */
  angles(positions: Tensor2D, upTo?: number): { cos: Tensor4D; sin: Tensor4D } {
    if (upTo !== undefined) this.ensurePositions(Math.min(upTo, this.maxPositions));
    else if (this.#built < this.maxPositions) {
      // Only while the tables are partial and no bound is given: read the (small, int32) positions back.
      let max = -1;
      for (const p of positions.dataSync()) if (p > max) max = p;
      this.ensurePositions(Math.min(max + 1, this.maxPositions));
    }
    return tf.tidy(() => {
      const [b, t] = positions.shape;
      const flat = tf.reshape(positions, [b * t]);
      return {
        cos: tf.reshape(tf.gather(this.cos, flat), [b, t, 1, this.rotaryDim]) as Tensor4D,
        sin: tf.reshape(tf.gather(this.sin, flat), [b, t, 1, this.rotaryDim]) as Tensor4D,
      };
    });
  }

  /** Rotates `x` `[B, T, heads, headDim]` with angles from {@linkcode RotaryTable.angles}. */
  rotate(x: Tensor4D, angles: { cos: Tensor4D; sin: Tensor4D }): Tensor4D {
    return tf.tidy(() => {
      const rd = this.rotaryDim;
      const partial = rd < this.headDim;
      const xr = partial ? tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, rd]) : x;
      const [x1, x2] = tf.split(xr, 2, 3);
      const rotated = tf.concat([x2, x1], 3); // rotate_half's negation lives in the signed sin table
      const out = tf.add(tf.mul(xr, angles.cos), tf.mul(rotated, angles.sin)) as Tensor4D;
      return partial ? tf.concat([out, tf.slice(x, [0, 0, 0, rd], [-1, -1, -1, -1])], 3) : out;
    });
  }

  /** Gathers angles and rotates in one call (convenience for single use). */
  apply(x: Tensor4D, positions: Tensor2D): Tensor4D {
    return tf.tidy(() => this.rotate(x, this.angles(positions)));
  }

  /** Frees the tables. */
  dispose(): void {
    this.#cos.dispose();
    this.#sin.dispose();
  }
}
