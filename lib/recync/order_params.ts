/**
 * The order parameters Z(t) = [λ, λ_sem, z] of Recync v3 (spec §2.7), as tfjs functions that run on the
 * device inside a generation step, so they can be read back with the sampled token in one packed readback.
 *
 * These are our concrete [TS] proposals, not upstream formulas (which we could not read):
 * - **λ, temporal synchrony** from the newest query's attention rows a_h (one per head) at a layer:
 *   H_h = −Σ a log a / log(n valid keys), A = mean pairwise cosine of the a_h,
 *   λ = ½[(1 − mean_h H_h) + A] ∈ [0, 1]. High λ means heads lock onto the same keys (looping).
 * - **λ_sem, semantic coherence**: mean over layers of cos(Δ_ℓ, g), with Δ_ℓ = x_{ℓ+1} − x_ℓ the residual
 *   updates at the newest position and g the running mean of final (post-norm) hidden states.
 * - **z, structural persistence**: the Pearson correlation ρ between each head's newest key and its key
 *   τ valid positions back, averaged over heads, then z = atanh(clip(ρ, −0.999, 0.999)).
 *
 * Conventions: padded/invalid key columns carry zero attention weight and are excluded from n; a row with
 * a single valid key has entropy 0; a single head has alignment 1; cosines use
 * ⟨a, b⟩ / max(‖a‖·‖b‖, 1e-8) as in the cosim monitor; a row without a key τ back gets z = 0.
 *
 * Hook points (TransformerLens names, see the decoder in lib/models): `blocks.{L}.attn.hook_pattern`
 * [B, H, T, L], `blocks.{ℓ}.hook_resid_pre` / `blocks.{ℓ}.hook_resid_post` [B, T, d], and the cached keys
 * `[B, Hkv, L, hd]` of a layer (rotated; `KVCache.past(layer).k`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * await tf.setBackend("cpu");
 * import { attentionSynchrony } from "./order_params.ts";
 * // Two heads, both fully on key 0 of 4: entropy 0, alignment 1 → λ = 1.
 * const pattern = tf.tensor3d([[[1, 0, 0, 0], [1, 0, 0, 0]]]);
 * assert.deepEqual(Array.from(attentionSynchrony(pattern).dataSync(), (v) => +v.toFixed(4)), [1]);
 * ```
 *
 * @module
 */
import type { Tensor, Tensor1D, Tensor2D, Tensor3D, Tensor4D } from "../tensor_types.ts";
import { tf } from "../deps.ts";

const COS_EPS = 1e-8;

/**
 * The clip applied to ρ before the Fisher z-transform.
 *
 * @category Recync
 */
export const FISHER_CLIP = 0.999;

/**
 * Normalised attention entropy per row and head: −Σ a log a / log(n valid) for pattern rows [B, H, L].
 * Returns [B, H]; 0 where a row has at most one valid key.
 *
 * @param pattern attention weights of the newest query, [B, H, L] (rows sum to 1 over valid keys)
 * @param valid optional validity [B, L] (1 = real key). Default: columns with weight > 0 in any head.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * await tf.setBackend("cpu");
 * import { normalizedAttentionEntropy } from "./order_params.ts";
 * const uniform = tf.tensor3d([[[0.5, 0.5, 0]]]); // 2 valid keys of 3
 * const h = normalizedAttentionEntropy(uniform, tf.tensor2d([[1, 1, 0]])).dataSync();
 * assert.deepEqual(Array.from(h, (v) => +v.toFixed(4)), [1]);
 * ```
 *
 * @category Recync
 */
export function normalizedAttentionEntropy(pattern: Tensor3D, valid?: Tensor2D): Tensor2D {
  checkRank(pattern, 3, "pattern [B, H, L]");
  return tf.tidy(() => {
    const nValid = validCount(pattern, valid); // [B]
    const a = tf.clipByValue(pattern, 0, 1);
    // a·log a → 0 as a → 0; the max() keeps log finite for exact zeros.
    const plogp = tf.mul(a, tf.log(tf.maximum(a, 1e-30)));
    const ent = tf.neg(tf.sum(plogp, -1)); // [B, H]
    const logN = tf.log(tf.maximum(nValid, 1)).expandDims(1); // [B, 1]
    const safe = tf.greater(logN, 0);
    return tf.where(
      tf.broadcastTo(safe, ent.shape),
      tf.div(ent, tf.maximum(logN, 1e-30)),
      tf.zerosLike(ent),
    ) as Tensor2D;
  });
}

/**
 * Mean pairwise cosine similarity between the heads' attention rows, [B, H, L] → [B]; 1 for a single head.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * await tf.setBackend("cpu");
 * import { headAlignment } from "./order_params.ts";
 * const p = tf.tensor3d([[[1, 0], [0, 1]]]); // orthogonal heads
 * assert.deepEqual(Array.from(headAlignment(p).dataSync(), (v) => +v.toFixed(4)), [0]);
 * ```
 *
 * @category Recync
 */
export function headAlignment(pattern: Tensor3D): Tensor1D {
  checkRank(pattern, 3, "pattern [B, H, L]");
  const h = pattern.shape[1];
  return tf.tidy(() => {
    if (h === 1) return tf.ones([pattern.shape[0]]) as Tensor1D;
    const norm = tf.maximum(tf.norm(pattern, "euclidean", -1, true), Math.sqrt(COS_EPS)); // [B, H, 1]
    const u = tf.div(pattern, norm);
    // Σ_{h≠h'} u_h·u_h' = ‖Σ_h u_h‖² − Σ_h ‖u_h‖²
    const s = tf.sum(u, 1); // [B, L]
    const cross = tf.sub(tf.sum(tf.square(s), -1), tf.sum(tf.square(u), [1, 2]));
    return tf.div(cross, h * (h - 1)) as Tensor1D;
  });
}

/**
 * λ, temporal synchrony: ½[(1 − mean_h H_h) + A] per row, from the newest query's attention rows.
 *
 * @param pattern [B, H, L] attention of the newest query (e.g. `hook_pattern[:, :, -1, :]`)
 * @param valid optional key validity [B, L]
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * await tf.setBackend("cpu");
 * import { attentionSynchrony } from "./order_params.ts";
 * const p = tf.tensor3d([[[0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25]]]);
 * // maximal entropy, identical heads
 * assert.deepEqual(Array.from(attentionSynchrony(p).dataSync(), (v) => +v.toFixed(4)), [0.5]);
 * ```
 *
 * @category Recync
 */
export function attentionSynchrony(pattern: Tensor3D, valid?: Tensor2D): Tensor1D {
  return tf.tidy(() => {
    const meanEntropy = tf.mean(normalizedAttentionEntropy(pattern, valid), -1);
    return tf.mul(tf.add(tf.sub(1, meanEntropy), headAlignment(pattern)), 0.5) as Tensor1D;
  });
}

/**
 * The newest query's attention rows from a `hook_pattern` activation [B, H, T, L] → [B, H, L].
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import type { Tensor4D } from "../../mod.ts";
 * await tf.setBackend("cpu");
 * import { newestQueryPattern } from "./order_params.ts";
 * assert.deepEqual(newestQueryPattern(tf.zeros([2, 4, 3, 5]) as Tensor4D).shape, [2, 4, 5]);
 * ```
 *
 * @category Recync
 */
export function newestQueryPattern(hookPattern: Tensor4D): Tensor3D {
  checkRank(hookPattern, 4, "hook_pattern [B, H, T, L]");
  const [b, h, t, l] = hookPattern.shape;
  return tf.tidy(() =>
    tf.reshape(tf.slice(hookPattern, [0, 0, t - 1, 0], [b, h, 1, l]), [b, h, l]) as Tensor3D
  );
}

/**
 * Row-wise cosine ⟨a, b⟩ / max(‖a‖·‖b‖, 1e-8) along the last axis (broadcasting b).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * await tf.setBackend("cpu");
 * import { rowCosine } from "./order_params.ts";
 * const c = rowCosine(tf.tensor2d([[1, 0]]), tf.tensor2d([[1, 1]])).dataSync();
 * assert.deepEqual(Array.from(c, (v) => +v.toFixed(4)), [0.7071]);
 * ```
 *
 * @category Recync
 */
export function rowCosine(a: Tensor, b: Tensor): Tensor {
  return tf.tidy(() => {
    const dot = tf.sum(tf.mul(a, b), -1);
    const na = tf.norm(a, "euclidean", -1);
    const nb = tf.norm(b, "euclidean", -1);
    return tf.div(dot, tf.maximum(tf.mul(na, nb), COS_EPS));
  });
}

/**
 * Residual updates Δ_ℓ = x_{ℓ+1} − x_ℓ at the newest position from the stream states x_0 … x_L
 * (x_ℓ = `blocks.{ℓ}.hook_resid_pre`, x_L = the last block's `hook_resid_post`), each [B, d] → [B, L, d].
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * await tf.setBackend("cpu");
 * import { residualUpdates } from "./order_params.ts";
 * const xs = [tf.tensor2d([[0, 0]]), tf.tensor2d([[1, 0]]), tf.tensor2d([[1, 2]])];
 * assert.deepEqual(residualUpdates(xs).arraySync(), [[[1, 0], [0, 2]]]);
 * ```
 *
 * @category Recync
 */
export function residualUpdates(streams: Tensor2D[]): Tensor3D {
  if (streams.length < 2) throw new Error("residualUpdates: need at least two stream states (x_0 and x_1)");
  return tf.tidy(() => {
    const x = tf.stack(streams, 1); // [B, L+1, d]
    const [b, n, d] = x.shape;
    return tf.sub(
      tf.slice(x, [0, 1, 0], [b, n - 1, d]),
      tf.slice(x, [0, 0, 0], [b, n - 1, d]),
    ) as Tensor3D;
  });
}

/**
 * λ_sem, semantic coherence: mean_ℓ cos(Δ_ℓ, g) for updates [B, L, d] and direction g [B, d] → [B].
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * await tf.setBackend("cpu");
 * import { semanticCoherence } from "./order_params.ts";
 * const upd = tf.tensor3d([[[1, 0], [0, 1]]]);
 * const s = semanticCoherence(upd, tf.tensor2d([[1, 0]])).dataSync();
 * assert.deepEqual(Array.from(s, (v) => +v.toFixed(4)), [0.5]);
 * ```
 *
 * @category Recync
 */
export function semanticCoherence(updates: Tensor3D, g: Tensor2D): Tensor1D {
  checkRank(updates, 3, "updates [B, L, d]");
  checkRank(g, 2, "g [B, d]");
  return tf.tidy(() => tf.mean(rowCosine(updates, tf.expandDims(g, 1)), -1) as Tensor1D);
}

/**
 * The running mean g of final hidden states per row (prompt plus generation so far), kept on the device.
 * Seed it with the prompt's states ({@link RunningMeanDirection.addMany}), then add each step's state.
 * Its state can be snapshotted (one [B, d] sum and host counts) for rewinds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * await tf.setBackend("cpu");
 * import { RunningMeanDirection } from "./order_params.ts";
 * const g = new RunningMeanDirection();
 * g.add(tf.tensor2d([[1, 0]]));
 * g.add(tf.tensor2d([[0, 1]]));
 * assert.deepEqual(g.mean().arraySync(), [[0.5, 0.5]]);
 * g.dispose();
 * ```
 *
 * @category Recync
 */
export class RunningMeanDirection {
  #sum: Tensor2D | null = null;
  #counts: number[] = [];

  /** Rows' counts of states added so far. */
  get counts(): number[] {
    return [...this.#counts];
  }

  /** Adds one state per row, [B, d]; `rowMask` (host, 1 = add) skips rows, e.g. finished ones. */
  add(h: Tensor2D, rowMask?: ArrayLike<number>): void {
    checkRank(h, 2, "h [B, d]");
    const [b] = h.shape;
    const mask = rowMask ? Array.from(rowMask) : new Array<number>(b).fill(1);
    this.#accumulate(
      tf.tidy(() => tf.mul(h, tf.tensor2d(mask, [b, 1]))) as Tensor2D,
      mask,
    );
  }

  /** Adds every valid position of [B, T, d] states (e.g. the prompt at prefill); `valid` [B, T] host 0/1. */
  addMany(h: Tensor3D, valid?: number[][]): void {
    checkRank(h, 3, "h [B, T, d]");
    const [b, t] = h.shape;
    const v = valid ?? Array.from({ length: b }, () => new Array<number>(t).fill(1));
    const summed = tf.tidy(() =>
      tf.sum(tf.mul(h, tf.tensor3d(v.map((r) => r.map((x) => [x])))), 1)
    ) as Tensor2D;
    this.#accumulate(summed, v.map((r) => r.reduce((s, x) => s + x, 0)));
  }

  #accumulate(delta: Tensor2D, counts: number[]): void {
    if (this.#sum === null) {
      this.#sum = delta;
      this.#counts = [...counts];
      return;
    }
    if (this.#sum.shape[0] !== delta.shape[0] || this.#sum.shape[1] !== delta.shape[1]) {
      delta.dispose();
      throw new Error(
        `RunningMeanDirection: shape [${delta.shape}] differs from the running sum [${this.#sum.shape}]`,
      );
    }
    const next = tf.add(this.#sum, delta) as Tensor2D;
    this.#sum.dispose();
    delta.dispose();
    this.#sum = next;
    this.#counts = this.#counts.map((c, i) => c + counts[i]);
  }

  /** g = sum / count per row, [B, d] (rows with no states give zeros). The caller owns the tensor. */
  mean(): Tensor2D {
    if (this.#sum === null) throw new Error("RunningMeanDirection.mean: no states added yet");
    const sum = this.#sum;
    return tf.tidy(() => tf.div(sum, tf.tensor2d(this.#counts.map((c) => [Math.max(c, 1)])))) as Tensor2D;
  }

  /** A copy of the state (sum tensor clone + counts) for rewinds; dispose the tensor when done. */
  snapshot(): { sum: Tensor2D | null; counts: number[] } {
    return { sum: this.#sum ? tf.clone(this.#sum) : null, counts: [...this.#counts] };
  }

  /** Restores a snapshot (clones its tensor, so the snapshot stays valid). */
  restore(state: { sum: Tensor2D | null; counts: number[] }): void {
    this.#sum?.dispose();
    this.#sum = state.sum ? tf.clone(state.sum) : null;
    this.#counts = [...state.counts];
  }

  /** Frees the running sum. */
  dispose(): void {
    this.#sum?.dispose();
    this.#sum = null;
    this.#counts = [];
  }
}

/**
 * Pearson correlation over the last axis, per leading index: [..., hd] × [..., hd] → [...].
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * await tf.setBackend("cpu");
 * import { pearsonLastAxis } from "./order_params.ts";
 * const r = pearsonLastAxis(tf.tensor1d([1, 2, 3]), tf.tensor1d([2, 4, 7])).dataSync();
 * assert.deepEqual(Array.from(r, (v) => +v.toFixed(3)), [0.993]);
 * ```
 *
 * @category Recync
 */
export function pearsonLastAxis(x: Tensor, y: Tensor): Tensor {
  return tf.tidy(() => {
    const xc = tf.sub(x, tf.mean(x, -1, true));
    const yc = tf.sub(y, tf.mean(y, -1, true));
    return rowCosine(xc, yc);
  });
}

/**
 * z, structural persistence: atanh(clip(mean_h ρ_h, ±0.999)) for the newest keys and the keys τ back,
 * each [B, H, hd] → [B]. `available` (host, one flag per row) zeroes rows without a key τ back.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * await tf.setBackend("cpu");
 * import { keyPersistence } from "./order_params.ts";
 * const k = tf.tensor3d([[[1, 2, 3]]]);
 * const z = keyPersistence(k, k).dataSync(); // identical keys: clipped at atanh(0.999)
 * assert.deepEqual(Array.from(z, (v) => +v.toFixed(4)), [3.8002]);
 * ```
 *
 * @category Recync
 */
export function keyPersistence(
  newest: Tensor3D,
  previous: Tensor3D,
  available?: boolean[],
): Tensor1D {
  checkRank(newest, 3, "newest keys [B, H, hd]");
  checkRank(previous, 3, "previous keys [B, H, hd]");
  return tf.tidy(() => {
    const rho = tf.mean(pearsonLastAxis(newest, previous), -1);
    const z = tf.atanh(tf.clipByValue(rho, -FISHER_CLIP, FISHER_CLIP)) as Tensor1D;
    if (!available) return z;
    return tf.where(tf.tensor1d(available, "bool"), z, tf.zerosLike(z)) as Tensor1D;
  });
}

/**
 * Gathers each row's newest valid key and the valid key `lag` columns before it from a cache layer's
 * keys [B, Hkv, L, hd] and the host validity (one 0/1 array of length L per row, `KVCache.validity()`).
 * Rows with fewer than lag + 1 valid keys reuse the newest key and are flagged unavailable.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * await tf.setBackend("cpu");
 * import { gatherLaggedKeys } from "./order_params.ts";
 * const keys = tf.tensor4d([[[[1], [2], [3]]]]); // B=1, H=1, L=3, hd=1
 * const { newest, previous, available } = gatherLaggedKeys(keys, [Uint8Array.from([1, 0, 1])]);
 * assert.deepEqual(Array.from(newest.dataSync()), [3]);
 * assert.deepEqual(Array.from(previous.dataSync()), [1]);
 * assert.deepEqual(Array.from(available), [true]);
 * ```
 *
 * @category Recync
 */
export function gatherLaggedKeys(
  keys: Tensor4D,
  validity: ArrayLike<number>[],
  lag = 1,
): { newest: Tensor3D; previous: Tensor3D; available: boolean[] } {
  checkRank(keys, 4, "keys [B, Hkv, L, hd]");
  const [b, h, l, hd] = keys.shape;
  if (validity.length !== b) {
    throw new Error(`gatherLaggedKeys: validity has ${validity.length} rows, keys have ${b}`);
  }
  if (!Number.isInteger(lag) || lag < 1) {
    throw new Error(`gatherLaggedKeys: lag must be an integer ≥ 1, got ${lag}`);
  }
  const newestIdx: number[] = [];
  const prevIdx: number[] = [];
  const available: boolean[] = [];
  for (let r = 0; r < b; r++) {
    if (validity[r].length !== l) {
      throw new Error(`gatherLaggedKeys: validity[${r}] has ${validity[r].length} columns, keys have ${l}`);
    }
    const cols: number[] = [];
    for (let c = 0; c < l; c++) if (validity[r][c]) cols.push(c);
    if (cols.length === 0) throw new Error(`gatherLaggedKeys: row ${r} has no valid key`);
    const last = cols[cols.length - 1];
    const ok = cols.length > lag;
    newestIdx.push(r * l + last);
    prevIdx.push(r * l + (ok ? cols[cols.length - 1 - lag] : last));
    available.push(ok);
  }
  return tf.tidy(() => {
    const flat = tf.reshape(tf.transpose(keys, [0, 2, 1, 3]), [b * l, h, hd]); // [B·L, H, hd]
    return {
      newest: tf.gather(flat, tf.tensor1d(newestIdx, "int32")) as Tensor3D,
      previous: tf.gather(flat, tf.tensor1d(prevIdx, "int32")) as Tensor3D,
      available,
    };
  });
}

/**
 * Z = [λ, λ_sem, z] stacked per row, [B] × 3 → [B, 3] (the layout the controller and CBF filter read).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * await tf.setBackend("cpu");
 * import { stackOrderParameters } from "./order_params.ts";
 * const z = stackOrderParameters(tf.tensor1d([0.2]), tf.tensor1d([0.5]), tf.tensor1d([1]));
 * assert.deepEqual(z.arraySync().map((row) => row.map((v) => +v.toFixed(4))), [[0.2, 0.5, 1]]);
 * ```
 *
 * @category Recync
 */
export function stackOrderParameters(
  lambda: Tensor1D,
  lambdaSem: Tensor1D,
  z: Tensor1D,
): Tensor2D {
  return tf.tidy(() => tf.stack([lambda, lambdaSem, z], 1) as Tensor2D);
}

function validCount(pattern: Tensor3D, valid?: Tensor2D): Tensor1D {
  if (valid) {
    checkRank(valid, 2, "valid [B, L]");
    if (valid.shape[0] !== pattern.shape[0] || valid.shape[1] !== pattern.shape[2]) {
      throw new Error(`valid must be [${pattern.shape[0]}, ${pattern.shape[2]}], got [${valid.shape}]`);
    }
    return tf.sum(tf.cast(tf.greater(valid, 0), "float32"), -1) as Tensor1D;
  }
  // A column is valid if any head gives it weight (masked columns get exactly 0 after softmax).
  return tf.sum(tf.cast(tf.greater(tf.max(pattern, 1), 0), "float32"), -1) as Tensor1D;
}

function checkRank(t: Tensor, rank: number, what: string): void {
  if (t.rank !== rank) throw new Error(`order parameters: expected ${what}, got shape [${t.shape}]`);
}

// ---- the generation probe -------------------------------------------------------------------------

/**
 * The part of a generation step's probe context the order-parameter probe reads (structurally the
 * `ProbeContext` of lib/generate/generate.ts).
 *
 * @category Recync
 */
export interface OrderParameterProbeContext {
  /** Forward step index (0 = the prefill). */
  step: number;
  /** True at step 0: captured activations then cover the whole (left-padded) prompt. */
  isPrefill: boolean;
  /** Activations captured in this step's forward, by hook name. */
  activations: Map<string, Tensor>;
  /** Rows in the batch. */
  batchSize: number;
}

/**
 * The cache methods the probe reads (the decoder's `KVCache` has them).
 *
 * @category Recync
 */
export interface KeyCacheView {
  /** Cached keys/values of a layer, `[B, Hkv, L, hd]`, or null before the first forward. */
  past(layer: number): { k: Tensor4D; v: Tensor4D } | null;
  /** Validity per row over the L columns. */
  validity(): Uint8Array[];
}

/**
 * Options of {@link OrderParameterProbe}.
 *
 * @category Recync
 */
export interface OrderParameterProbeOptions {
  /** The model's number of blocks (`model.config.nLayers`). */
  nLayers: number;
  /** Layer whose attention (λ) and keys (z) are read. Default: the last. */
  layer?: number;
  /** λ from `layer` only ("layer", default) or averaged over all layers ("mean"). */
  lambdaLayers?: "layer" | "mean";
  /** Lag τ of the key autocorrelation. Default 1. */
  keyLag?: number;
  /** Probe name (key of the values in step rows and the trace). Default "recync.Z". */
  name?: string;
}

/**
 * A generation probe computing Z = [λ, λ_sem, z] per row on the device at every step, for the packed
 * per-step readback of `generate()` (lib/generate/generate.ts): pass it in `probes` and its
 * {@link OrderParameterProbe.cachePolicy} in `policies` (z reads the KV cache, which reaches the probe
 * through that policy; before the first callback, at step 0, z is 0).
 *
 * Sources: λ from `blocks.{L}.attn.hook_pattern` (newest query; key validity from the cache, or from the
 * non-zero weights at the prefill); λ_sem from `blocks.{ℓ}.hook_resid_pre` (all ℓ) and the last block's
 * `hook_resid_post`, against g = the running mean of `ln_final.hook_normalized` over the (unpadded)
 * prompt and every generated state; z from the cached keys of layer L (newest valid column and the
 * one τ back, so it stays exact after a rewind). Limitation: g is a running mean over every state a row
 * produced, so after a rewind it still includes the dropped branch (documented approximation).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OrderParameterProbe } from "./order_params.ts";
 * const probe = new OrderParameterProbe({ nLayers: 2 });
 * assert.equal(probe.width, 3);
 * assert.equal(probe.capture.length, 5);
 * // generate(model, prompts, { probes: [probe], policies: [probe.cachePolicy] })
 * probe.dispose();
 * ```
 *
 * @category Recync
 */
export class OrderParameterProbe {
  /** Probe name. */
  readonly name: string;
  /** Values per row: [λ, λ_sem, z]. */
  readonly width = 3;
  /** Hook names the forward must capture. */
  readonly capture: string[];
  /** A step policy that hands the run's KV cache to the probe; add it to `generate`'s `policies`. */
  readonly cachePolicy: { name: string; onStep: (step: unknown, control: { cache: unknown }) => void };
  readonly #nLayers: number;
  readonly #layer: number;
  readonly #lambdaLayers: "layer" | "mean";
  readonly #lag: number;
  #cache: KeyCacheView | null = null;
  #gSum: Tensor2D | null = null;
  #gCount: Tensor2D | null = null;

  /** Validates the options. */
  constructor(options: OrderParameterProbeOptions) {
    const n = options.nLayers;
    if (!Number.isInteger(n) || n < 1) throw new Error(`OrderParameterProbe: nLayers must be ≥ 1, got ${n}`);
    const layer = options.layer ?? n - 1;
    if (!Number.isInteger(layer) || layer < 0 || layer >= n) {
      throw new Error(`OrderParameterProbe: layer must be in 0..${n - 1}, got ${layer}`);
    }
    this.#nLayers = n;
    this.#layer = layer;
    this.#lambdaLayers = options.lambdaLayers ?? "layer";
    this.#lag = options.keyLag ?? 1;
    this.name = options.name ?? "recync.Z";
    const patternLayers = this.#lambdaLayers === "mean" ? [...Array(n).keys()] : [layer];
    this.capture = [
      ...patternLayers.map((l) => `blocks.${l}.attn.hook_pattern`),
      ...[...Array(n).keys()].map((l) => `blocks.${l}.hook_resid_pre`),
      `blocks.${n - 1}.hook_resid_post`,
      "ln_final.hook_normalized",
    ];
    this.cachePolicy = {
      name: `${this.name}.cache`,
      onStep: (_step, control) => {
        const c = control.cache as Partial<KeyCacheView> | null;
        if (c && typeof c.past === "function" && typeof c.validity === "function") {
          this.#cache = c as KeyCacheView;
        } else {throw new Error(
            "OrderParameterProbe: the run's cache has no past()/validity() (need the decoder's KVCache)",
          );}
      },
    };
  }

  /** Sets the KV cache directly (instead of through {@link OrderParameterProbe.cachePolicy}). */
  setCache(cache: KeyCacheView | null): void {
    this.#cache = cache;
  }

  #activation(ctx: OrderParameterProbeContext, name: string): Tensor {
    const a = ctx.activations.get(name);
    if (!a) {
      throw new Error(`OrderParameterProbe: activation ${name} was not captured (is the probe in probes?)`);
    }
    return a;
  }

  /** Computes [B, 3] = [λ, λ_sem, z] for this step. Runs inside the generation loop's `tf.tidy`. */
  compute(ctx: OrderParameterProbeContext): Tensor2D {
    const b = ctx.batchSize;
    if (ctx.isPrefill) {
      // A new run: forget the previous run's direction and cache (the policy hands over the new one).
      this.#resetDirection();
      this.#cache = null;
    }
    const newest = (x: Tensor): Tensor2D => {
      const [bb, t, d] = x.shape as [number, number, number];
      return tf.reshape(tf.slice(x, [0, t - 1, 0], [bb, 1, d]), [bb, d]) as Tensor2D;
    };

    // λ (per layer, then averaged when asked).
    const patternLayers = this.#lambdaLayers === "mean" ? [...Array(this.#nLayers).keys()] : [this.#layer];
    let promptValid: Tensor2D | null = null;
    const lambdas = patternLayers.map((l) => {
      const rows = newestQueryPattern(this.#activation(ctx, `blocks.${l}.attn.hook_pattern`) as Tensor4D);
      const valid = this.#validity(rows.shape[2], b);
      if (ctx.isPrefill && promptValid === null) {
        promptValid = tf.cast(tf.greater(tf.max(rows, 1), 0), "float32") as Tensor2D; // [B, T]
      }
      return attentionSynchrony(rows, valid ?? undefined);
    });
    const lambda = lambdas.length === 1 ? lambdas[0] : (tf.mean(tf.stack(lambdas, 0), 0) as Tensor1D);

    // g: running mean of post-norm final states (the prompt's valid positions at the prefill).
    const finalStates = this.#activation(ctx, "ln_final.hook_normalized") as Tensor3D;
    let addSum: Tensor2D, addCount: Tensor2D;
    if (ctx.isPrefill && promptValid !== null) {
      const w = tf.expandDims(promptValid as Tensor2D, 2);
      addSum = tf.sum(tf.mul(finalStates, w), 1) as Tensor2D;
      addCount = tf.sum(promptValid as Tensor2D, 1, true) as Tensor2D;
    } else {
      addSum = newest(finalStates);
      addCount = tf.ones([b, 1]) as Tensor2D;
    }
    const sum = this.#gSum ? tf.add(this.#gSum, addSum) as Tensor2D : addSum;
    const count = this.#gCount ? tf.add(this.#gCount, addCount) as Tensor2D : addCount;
    this.#gSum?.dispose();
    this.#gCount?.dispose();
    this.#gSum = tf.keep(sum);
    this.#gCount = tf.keep(count);
    const g = tf.div(sum, tf.maximum(count, 1)) as Tensor2D;

    // λ_sem from the residual updates at the newest position.
    const streams = [...Array(this.#nLayers).keys()].map((l) =>
      newest(this.#activation(ctx, `blocks.${l}.hook_resid_pre`))
    );
    streams.push(newest(this.#activation(ctx, `blocks.${this.#nLayers - 1}.hook_resid_post`)));
    const lambdaSem = semanticCoherence(residualUpdates(streams), g);

    // z from the cache (exact after rewinds); 0 before the cache is known.
    let z: Tensor1D;
    const past = this.#cache?.past(this.#layer) ?? null;
    if (this.#cache !== null && past !== null && !ctx.isPrefill) {
      const { newest: kNew, previous: kPrev, available } = gatherLaggedKeys(
        past.k,
        this.#cache.validity(),
        this.#lag,
      );
      z = keyPersistence(kNew, kPrev, available);
    } else {
      z = tf.zeros([b]) as Tensor1D;
    }
    return stackOrderParameters(lambda, lambdaSem, z);
  }

  /** Key validity [B, L] from the cache when its column count matches the pattern's, else null. */
  #validity(columns: number, b: number): Tensor2D | null {
    if (this.#cache === null) return null;
    const v = this.#cache.validity();
    if (v.length !== b || v[0].length !== columns) return null;
    const flat = new Float32Array(b * columns);
    v.forEach((row, i) => flat.set(row, i * columns));
    return tf.tensor2d(flat, [b, columns]);
  }

  #resetDirection(): void {
    this.#gSum?.dispose();
    this.#gCount?.dispose();
    this.#gSum = null;
    this.#gCount = null;
  }

  /** Frees the running-mean state and forgets the cache. */
  dispose(): void {
    this.#resetDirection();
    this.#cache = null;
  }
}
