/**
 * A seeded random-window batch sampler over a token array. Its position (the PRNG state and the number of
 * batches drawn) is plain JSON, saved in checkpoints so a resumed run sees exactly the batches it would
 * have seen.
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Tensor2D } from "../tensor_types.ts";
import { Prng, type PrngState } from "../random/prng.ts";

/**
 * Token ids as stored in token files.
 *
 * @category Data
 */
export type TokenArray = Uint16Array | Uint32Array | Int32Array;

/**
 * Token ids read by window rather than held in memory (a nanoGPT `train.bin` of many GB, see
 * `BinTokenFile`).
 *
 * @category Data
 */
export interface TokenWindows {
  /** Number of ids. */
  readonly length: number;
  /** `n` ids from `offset`. */
  read(offset: number, n: number): ArrayLike<number>;
}

/**
 * Options for {@linkcode BatchSampler}.
 *
 * @category Data
 */
export interface BatchSamplerOptions {
  /** Rows per batch. */
  batchSize: number;
  /** Positions per row (the model's context during training). */
  blockSize: number;
  /** Seed of the window offsets. */
  seed: number;
  /** Stream id, so the train and val samplers of one seed differ (default 0). */
  stream?: number;
}

/**
 * A {@linkcode BatchSampler}'s position, as JSON.
 *
 * @category Data
 */
export interface BatchSamplerState {
  /** Seed of the offsets. */
  seed: number;
  /** PRNG stream id. */
  stream: number;
  /** Batches drawn so far. */
  batches: number;
  /** The PRNG state after the last batch. */
  prng: PrngState;
}

/**
 * One batch: inputs `x` and next-token targets `y`, both row-major [batchSize, blockSize].
 *
 * @category Data
 */
export interface Batch {
  /** Input ids, row-major [batchSize, blockSize]. */
  x: Int32Array;
  /** Target ids (inputs shifted by one), row-major [batchSize, blockSize]. */
  y: Int32Array;
  /** Rows. */
  batchSize: number;
  /** Positions per row. */
  blockSize: number;
}

/**
 * Draws batches of B windows at uniformly random offsets o ∈ [0, N − T − 1]: x = ids[o, o+T),
 * y = ids[o+1, o+T+1) (nanoGPT's `get_batch`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BatchSampler } from "./sampler.ts";
 * const ids = Uint16Array.from({ length: 100 }, (_, i) => i);
 * const s = new BatchSampler(ids, { batchSize: 2, blockSize: 4, seed: 1 });
 * const b = s.next();
 * assert.equal(b.y[0] - b.x[0], 1); // targets are the inputs shifted by one
 * ```
 *
 * @category Data
 */
export class BatchSampler {
  /** The token ids sampled from (in memory, or read by window). */
  readonly tokens: TokenArray | TokenWindows;
  /** Rows per batch. */
  readonly batchSize: number;
  /** Positions per row. */
  readonly blockSize: number;
  #seed: number;
  #stream: number;
  #rng: Prng;
  #batches = 0;

  /** A sampler over `tokens`; throws when they are shorter than one block plus its target. */
  constructor(tokens: TokenArray | TokenWindows, options: BatchSamplerOptions) {
    const { batchSize, blockSize, seed } = options;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`BatchSampler: batchSize must be a positive integer, got ${batchSize}`);
    }
    if (!Number.isInteger(blockSize) || blockSize < 1) {
      throw new RangeError(`BatchSampler: blockSize must be a positive integer, got ${blockSize}`);
    }
    if (tokens.length < blockSize + 1) {
      throw new Error(
        `the token array has ${tokens.length} tokens, fewer than one block plus its target (${
          blockSize + 1
        }): ` +
          `use a longer corpus, a smaller blockSize, or a larger share for this split`,
      );
    }
    this.tokens = tokens;
    this.batchSize = batchSize;
    this.blockSize = blockSize;
    this.#seed = seed;
    this.#stream = options.stream ?? 0;
    this.#rng = new Prng(seed, this.#stream);
  }

  /** Batches drawn so far. */
  get batchesDrawn(): number {
    return this.#batches;
  }

  /** The next batch as integer arrays. */
  next(): Batch {
    const B = this.batchSize, T = this.blockSize;
    const x = new Int32Array(B * T);
    const y = new Int32Array(B * T);
    const span = this.tokens.length - T; // offsets 0 .. N-T-1 keep y inside the array
    const source = this.tokens;
    for (let b = 0; b < B; b++) {
      const o = this.#rng.nextInt(span);
      // A windowed source reads only the T + 1 ids of this row.
      const w = "read" in source ? source.read(o, T + 1) : source;
      const base = "read" in source ? 0 : o;
      for (let t = 0; t < T; t++) {
        x[b * T + t] = w[base + t];
        y[b * T + t] = w[base + t + 1];
      }
    }
    this.#batches++;
    return { x, y, batchSize: B, blockSize: T };
  }

  /** The next batch as int32 tensors [B, T]; the caller disposes them. */
  nextTensors(): { x: Tensor2D; y: Tensor2D } {
    const b = this.next();
    return {
      x: tf.tensor2d(b.x, [b.batchSize, b.blockSize], "int32"),
      y: tf.tensor2d(b.y, [b.batchSize, b.blockSize], "int32"),
    };
  }

  /** The sampler's position as JSON. */
  getState(): BatchSamplerState {
    return { seed: this.#seed, stream: this.#stream, batches: this.#batches, prng: this.#rng.getState() };
  }

  /** Restores a position saved by {@linkcode BatchSampler.getState}. */
  setState(state: BatchSamplerState): void {
    if (!state || typeof state !== "object" || typeof state.batches !== "number") {
      throw new TypeError(
        "BatchSampler.setState: state must come from getState() (fields seed, stream, batches, prng)",
      );
    }
    this.#rng.setState(state.prng);
    this.#seed = state.seed;
    this.#stream = state.stream;
    this.#batches = state.batches;
  }
}

/**
 * Evaluation windows that cover a split in order without overlap (the last partial window is dropped), at
 * most `maxBatches` batches. Deterministic, so every evaluation of a run scores the same tokens.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sequentialBatches } from "./sampler.ts";
 * const ids = Uint16Array.from({ length: 41 }, (_, i) => i);
 * assert.equal(sequentialBatches(ids, 2, 10).length, 2); // 4 windows of 10
 * ```
 *
 * @category Data
 */
export function sequentialBatches(
  tokens: TokenArray,
  batchSize: number,
  blockSize: number,
  maxBatches = Infinity,
): Batch[] {
  const windows = Math.floor((tokens.length - 1) / blockSize);
  if (windows < 1) {
    throw new Error(
      `the token array has ${tokens.length} tokens, fewer than one block plus its target (${
        blockSize + 1
      }): ` +
        `use a longer corpus, a smaller blockSize, or a larger validation fraction`,
    );
  }
  const out: Batch[] = [];
  for (let w0 = 0; w0 < windows && out.length < maxBatches; w0 += batchSize) {
    const B = Math.min(batchSize, windows - w0), T = blockSize;
    const x = new Int32Array(B * T), y = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      const o = (w0 + b) * T;
      for (let t = 0; t < T; t++) {
        x[b * T + t] = tokens[o + t];
        y[b * T + t] = tokens[o + t + 1];
      }
    }
    out.push({ x, y, batchSize: B, blockSize: T });
  }
  return out;
}
