/**
 * The generation cache with per-row rewind used by the generic decoder: row bookkeeping (validity of the
 * columns, next position ids) plus one mixer state per layer (softmax attention's keys and values, or
 * whatever another mixer keeps; see `MixerState`).
 *
 * Layout: every forward appends T columns to every row at a shared write position, so each layer state
 * holds L columns (attention: keys and values `[B, Hkv, L, hd]`, keys already rotated with their row's own
 * positions, in preallocated buffers written in place; see `KVLayerState`). Each row keeps a validity mask over the L columns and its own next position id. Left padding
 * of ragged prompts is just invalid columns; `truncateRow` invalidates a row's columns past its first `len`
 * valid ones, so the tokens fed afterwards take positions `len, len + 1, ...` while the other rows are
 * untouched. Columns that no row uses any more are dropped (trailing ones at once, others by
 * {@linkcode KVCache.compact}).
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Tensor2D, Tensor3D, Tensor4D } from "../tensor_types.ts";
import type { KVCacheLike } from "./types.ts";
import type { MixerState } from "./components.ts";
import { KVLayerState } from "./standard_components.ts";

/**
 * One row's cached keys and values for one layer, valid columns only: `[Hkv, n, hd]` each.
 *
 * @category Models
 */
export interface KVRowSnapshot {
  /** Keys `[Hkv, n, hd]` (rotated). */
  k: Tensor3D;
  /** Values `[Hkv, n, hd]`. */
  v: Tensor3D;
}

/**
 * The generation cache: per-row validity masks and next positions, and one mixer state per layer
 * (`null` for a layer whose mixer keeps nothing). `new KVCache(B, nLayers)` gives every layer a
 * softmax-attention key/value state; `model.createCache(B)` asks each layer's mixer for its own.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { KVCache } from "./kv_cache.ts";
 * await tf.ready();
 * const cache = new KVCache(2, 4); // 2 rows, 4 layers
 * assert.deepEqual(cache.rowLengths(), [0, 0]);
 * cache.dispose();
 * ```
 *
 * @category Models
 */
export class KVCache implements KVCacheLike {
  /** Layers. */
  readonly nLayers: number;
  #rows: number;
  #states: (MixerState | null)[];
  /** Host copy of validity, one array per row over the columns. */
  #valid: Uint8Array[];
  #columns = 0;
  #next: number[];
  /** Device copy of validity `[B, L]` (float32), rebuilt lazily after a rewind. */
  #validTensor: Tensor2D | null = null;
  #disposed = false;

  /**
   * An empty cache for `batchSize` rows: `layers` is a layer count (softmax-attention state in each) or
   * one mixer state per layer (`null` where the mixer keeps nothing). The cache owns the states.
   */
  constructor(batchSize: number, layers: number | (MixerState | null)[]) {
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new Error(`KVCache: batchSize must be a positive integer, got ${batchSize}`);
    }
    this.#rows = batchSize;
    this.#states = typeof layers === "number"
      ? Array.from({ length: layers }, () => new KVLayerState())
      : layers.slice();
    this.nLayers = this.#states.length;
    this.#valid = Array.from({ length: batchSize }, () => new Uint8Array(0));
    this.#next = new Array(batchSize).fill(0);
  }

  /** Rows (batch size); changes with {@linkcode KVCache.selectRows}. */
  get batchSize(): number {
    return this.#rows;
  }

  /** Layer `layer`'s mixer state (null when its mixer keeps none). */
  layerState(layer: number): MixerState | null {
    this.#checkAlive();
    return this.#states[layer];
  }

  /** Columns currently stored (valid or not), the L of `[B, Hkv, L, hd]`. */
  get columns(): number {
    return this.#columns;
  }

  /** Next position id of each row (= number of valid cached positions in that row). */
  rowLengths(): number[] {
    return this.#next.slice();
  }

  /** Whether every stored column is valid in every row (no padding, no rewound holes). */
  get allValid(): boolean {
    return this.#valid.every((r) => r.every((x) => x === 1));
  }

  /** A copy of the validity mask, one `Uint8Array` of length {@linkcode KVCache.columns} per row. */
  validity(): Uint8Array[] {
    return this.#valid.map((r) => r.slice());
  }

  /**
   * Cached keys and values of a softmax-attention layer `[B, Hkv, L, hd]`, or null before the first
   * forward and for layers whose mixer keeps another state.
   */
  past(layer: number): { k: Tensor4D; v: Tensor4D } | null {
    this.#checkAlive();
    const s = this.#states[layer];
    return s instanceof KVLayerState ? s.past() : null;
  }

  /**
   * Position ids for T new tokens (host side): each row counts on from its next position; padding
   * (`newValid[b][t] = 0`) takes the row's current next position but does not advance it.
   */
  nextPositions(t: number, newValid?: ArrayLike<number>): Int32Array {
    const out = new Int32Array(this.#rows * t);
    for (let b = 0; b < this.#rows; b++) {
      let p = this.#next[b];
      for (let j = 0; j < t; j++) {
        out[b * t + j] = p;
        if (!newValid || newValid[b * t + j]) p++;
      }
    }
    return out;
  }

  /**
   * Validity `[B, L + T]` of the cached columns followed by `newValid` `[B, T]` (float32), for building
   * the attention mask of a forward that appends T columns. Call inside a `tf.tidy`.
   */
  validWith(newValid: Tensor2D): Tensor2D {
    this.#checkAlive();
    if (this.#columns === 0) return newValid;
    if (!this.#validTensor) {
      const flat = new Float32Array(this.#rows * this.#columns);
      this.#valid.forEach((row, b) => flat.set(row, b * this.#columns));
      this.#validTensor = tf.keep(tf.tensor2d(flat, [this.#rows, this.#columns]));
    }
    return tf.concat([this.#validTensor, newValid], 1);
  }

  /**
   * Records a forward: `updates[l]` is what layer l's mixer returned for its state (attention: the full
   * `[B, Hkv, L + T, hd]` keys and values), `valid` the `[B, L + T]` tensor from
   * {@linkcode KVCache.validWith} (or undefined when the forward needed no mask; the device copy is then
   * rebuilt on demand) and `newValid` the host copy of the new columns' validity (`B * T`, row-major;
   * undefined = all valid). Called by the decoder inside its `tf.tidy`, after the whole forward succeeded.
   */
  commit(
    updates: unknown[],
    valid: Tensor2D | undefined,
    t: number,
    newValid?: ArrayLike<number>,
  ): void {
    this.#checkAlive();
    if (updates.length !== this.nLayers) {
      throw new Error(`KVCache.commit: expected ${this.nLayers} layers, got ${updates.length}`);
    }
    for (let l = 0; l < this.nLayers; l++) this.#states[l]?.commit(updates[l]);
    if (this.#validTensor !== valid) this.#validTensor?.dispose();
    this.#validTensor = valid ? tf.keep(valid) : null;
    const cols = this.#columns + t;
    for (let b = 0; b < this.#rows; b++) {
      const row = new Uint8Array(cols);
      row.set(this.#valid[b]);
      let added = 0;
      for (let j = 0; j < t; j++) {
        const ok = !newValid || newValid[b * t + j] ? 1 : 0;
        row[this.#columns + j] = ok;
        added += ok;
      }
      this.#valid[b] = row;
      this.#next[b] += added;
    }
    this.#columns = cols;
  }

  /** Truncates every row to `length` valid positions. */
  truncate(length: number): void {
    for (let b = 0; b < this.#rows; b++) {
      this.#invalidateAfter(b, length);
      for (const s of this.#states) s?.truncateRow?.(b, length);
    }
    this.#afterRewind();
  }

  /** Keeps only these rows, in this order; the batch size becomes `rows.length`. */
  selectRows(rows: number[]): void {
    this.#checkAlive();
    if (rows.length === 0) throw new Error("KVCache.selectRows: keep at least one row");
    for (const r of rows) {
      if (!Number.isInteger(r) || r < 0 || r >= this.#rows) {
        throw new Error(`KVCache.selectRows: row ${r} out of range [0, ${this.#rows})`);
      }
    }
    for (const s of this.#states) s?.selectRows(rows);
    this.#valid = rows.map((r) => this.#valid[r].slice());
    this.#next = rows.map((r) => this.#next[r]);
    this.#rows = rows.length;
    this.#afterRewind();
  }

  /** Truncates one row to `length` valid positions, leaving the other rows untouched. */
  truncateRow(row: number, length: number): void {
    if (!Number.isInteger(row) || row < 0 || row >= this.#rows) {
      throw new Error(`KVCache.truncateRow: row ${row} out of range [0, ${this.#rows})`);
    }
    this.#invalidateAfter(row, length);
    for (const s of this.#states) s?.truncateRow?.(row, length);
    this.#afterRewind();
  }

  /**
   * Drops the columns that no row uses (after rewinds or padding), so attention stops paying for them.
   * Costs one gather per layer; worth it after long rewinds.
   */
  compact(): void {
    this.#checkAlive();
    const keep: number[] = [];
    for (let c = 0; c < this.#columns; c++) {
      if (this.#valid.some((r) => r[c])) keep.push(c);
    }
    if (keep.length === this.#columns) return;
    if (keep.length === 0) this.#clearTensors();
    else for (const s of this.#states) s?.keepColumns(keep);
    this.#valid = this.#valid.map((r) => Uint8Array.from(keep, (c) => r[c]));
    this.#columns = keep.length;
    this.#validTensor?.dispose();
    this.#validTensor = null;
  }

  /**
   * One row's valid keys and values per layer (`[Hkv, n, hd]` each, n = the row's length). The caller
   * owns the tensors. Meant for tests and inspection, e.g. checking that a rewound cache equals a fresh
   * prefill of the kept prefix.
   */
  snapshotRow(row: number): KVRowSnapshot[] {
    this.#checkAlive();
    const cols: number[] = [];
    this.#valid[row].forEach((ok, c) => ok && cols.push(c));
    return tf.tidy(() => {
      const out: KVRowSnapshot[] = [];
      const idx = tf.tensor1d(cols, "int32");
      for (let l = 0; l < this.nLayers; l++) {
        const past = this.past(l);
        if (!past) throw new Error(`KVCache.snapshotRow: layer ${l} keeps no keys and values`);
        const { k, v } = past;
        if (cols.length === 0) throw new Error("KVCache.snapshotRow: the row holds no positions");
        const pick = (t: Tensor4D) => {
          const r = tf.slice(t, [row, 0, 0, 0], [1, -1, -1, -1]);
          return tf.squeeze(tf.gather(r, idx, 2), [0]) as Tensor3D;
        };
        out.push({ k: pick(k), v: pick(v) });
      }
      return out as unknown as tf.TensorContainer;
    }) as unknown as KVRowSnapshot[];
  }

  /** Frees every tensor the cache holds; the cache is unusable afterwards. */
  dispose(): void {
    if (this.#disposed) return;
    this.#clearTensors();
    for (const s of this.#states) s?.dispose();
    this.#disposed = true;
  }

  #invalidateAfter(b: number, length: number): void {
    this.#checkAlive();
    if (!Number.isInteger(length) || length < 0 || length > this.#next[b]) {
      throw new Error(
        `KVCache: cannot truncate row ${b} to ${length}: it holds ${this.#next[b]} positions (use 0..${
          this.#next[b]
        })`,
      );
    }
    const row = this.#valid[b];
    let seen = 0;
    for (let c = 0; c < this.#columns; c++) {
      if (!row[c]) continue;
      if (seen >= length) row[c] = 0;
      else seen++;
    }
    this.#next[b] = length;
  }

  /** Drops trailing columns invalid in every row (a slice, cheap) and marks the device mask stale. */
  #afterRewind(): void {
    this.#validTensor?.dispose();
    this.#validTensor = null;
    let cols = this.#columns;
    while (cols > 0 && this.#valid.every((r) => !r[cols - 1])) cols--;
    if (cols === this.#columns) return;
    if (cols === 0) this.#clearTensors();
    else {
      const keep = Array.from({ length: cols }, (_, c) => c);
      for (const s of this.#states) s?.keepColumns(keep);
    }
    this.#valid = this.#valid.map((r) => r.slice(0, cols));
    this.#columns = cols;
  }

  #clearTensors(): void {
    for (const s of this.#states) s?.keepColumns([]);
    this.#validTensor?.dispose();
    this.#validTensor = null;
    this.#columns = 0;
    this.#valid = this.#valid.map(() => new Uint8Array(0));
  }

  #checkAlive(): void {
    if (this.#disposed) throw new Error("KVCache: used after dispose()");
  }
}
