/**
 * Causal self-attention with grouped-query heads, optional biases, rotary positions, a key/value cache
 * (new columns appended after the cached ones) and an additive mask that encodes causality, per-row
 * validity of cached columns and padding.
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Tensor, Tensor2D, Tensor3D, Tensor4D } from "../tensor_types.ts";
import { linear } from "./mlp.ts";
import type { RotaryTable } from "./rotary.ts";
import { decodeAttention } from "../backend/decode_attention.ts";
import { fusedAttention } from "../backend/webgpu_fused_attention.ts";

/**
 * Projection weights of one attention layer, `[in, out]` layout.
 *
 * @category NN
 */
export interface AttentionWeights {
  /** `[d, H*hd]` */
  wQ: Tensor;
  /** `[H*hd]` */
  bQ?: Tensor;
  /** `[d, Hkv*hd]` */
  wK: Tensor;
  /** `[Hkv*hd]` */
  bK?: Tensor;
  /** `[d, Hkv*hd]` */
  wV: Tensor;
  /** `[Hkv*hd]` */
  bV?: Tensor;
  /** `[H*hd, d]` */
  wO: Tensor;
  /** `[d]` */
  bO?: Tensor;
}

/**
 * Where an attention hook fires: `q`, `k`, `v` (`[B, T, heads, hd]`, before rotary), `rot_q`, `rot_k`
 * (after rotary), `attn_scores` (`[B, H, T, L]`, scaled and masked, before softmax), `pattern`
 * (`[B, H, T, L]`), `z` (`[B, T, H, hd]`, per-head outputs before the output projection).
 *
 * @category NN
 */
export type AttentionHookPoint = "q" | "k" | "v" | "rot_q" | "rot_k" | "attn_scores" | "pattern" | "z";

/**
 * Everything {@linkcode causalSelfAttention} needs besides the input and weights.
 *
 * @category NN
 */
export interface AttentionOptions {
  /** Query heads H. */
  nHeads: number;
  /** Key/value heads Hkv (a divisor of H). */
  nKvHeads: number;
  /** Per-head width hd. */
  headDim: number;
  /**
   * Additive mask `[B, 1, T, L]` over all L = cached + new columns: 0 where query t may attend column l,
   * a large negative number elsewhere (future columns, invalid cached columns, padding). Omit it when
   * every query may see every column (one new token over a fully valid cache): decoding skips the add.
   */
  maskBias?: Tensor4D;
  /** Rotary table and the angles gathered for this forward's positions (omit for learned positions). */
  rope?: { table: RotaryTable; angles: { cos: Tensor4D; sin: Tensor4D } };
  /** Cached keys and values `[B, Hkv, Lprev, hd]` (keys already rotated); omitted or null when empty. */
  past?: { k: Tensor4D; v: Tensor4D } | null;
  /**
   * A key/value store that takes this forward's keys and values instead of `past` (a generation cache's
   * layer state): the layer hands it the new columns and attends over the first `length` columns of the
   * buffers it returns. A one-token forward without hooks or dropout then runs the fused decode kernel
   * where the backend has one (`decodeAttention`, wasm), which reads the buffers in place.
   */
  cache?: AttentionCache;
  /** Observes or replaces an intermediate; called only when given. */
  hook?: (point: AttentionHookPoint, t: Tensor) => Tensor;
  /** Dropout on the attention pattern (training). */
  dropout?: { rate: number; seed: number };
}

/**
 * Where {@linkcode causalSelfAttention} keeps keys and values across forwards (see `KVLayerState`).
 *
 * @category NN
 */
export interface AttentionCache {
  /**
   * Takes this forward's keys and values `[B, Hkv, T, hd]` (keys rotated) and returns buffers
   * `[B, Hkv, C, hd]` whose first `length` columns are the cached ones followed by these; columns past
   * `length` are ignored.
   */
  append(k: Tensor4D, v: Tensor4D): { k: Tensor4D; v: Tensor4D; length: number };
}

/**
 * The result of {@linkcode causalSelfAttention}.
 *
 * @category NN
 */
export interface AttentionResult {
  /** `[B, T, d]` after the output projection. */
  out: Tensor3D;
  /**
   * Keys `[B, Hkv, L, hd]` including this forward's columns (what a cache should hold); with
   * `cache`, only this forward's columns `[B, Hkv, T, hd]` (the cache holds the rest).
   */
  k: Tensor4D;
  /** Values, shaped as `k`. */
  v: Tensor4D;
  /**
   * Attention pattern `[B, H, T, L]`; absent when a fused kernel ran (they build none): the decode kernel
   * (one token with a cache), or on webgpu the fused attention kernel (no hook, no dropout).
   */
  pattern?: Tensor4D;
}

/**
 * One causal self-attention layer. Grouped-query heads: query head h reads key/value head
 * `floor(h / (H / Hkv))` (Hugging Face `repeat_kv` order); the grouping is done by reshaping the queries,
 * so keys and values are never copied per query head. Without a hook or dropout (nothing asks for the
 * pattern), the webgpu backend computes scores, softmax and values in one fused kernel
 * (`fusedAttention`, differentiable) and the result has no `pattern`; cpu and wasm run the stock ops.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import type { Tensor3D, Tensor4D } from "../../mod.ts";
 * import { causalSelfAttention } from "./attention.ts";
 * await tf.ready();
 * const d = 8, T = 3;
 * const w = { wQ: tf.eye(d), wK: tf.eye(d, 4), wV: tf.eye(d, 4), wO: tf.eye(d) };
 * const causal = tf.linalg.bandPart(tf.ones([T, T]), -1, 0);
 * const maskBias = tf.mul(tf.sub(1, causal), -1e9).reshape([1, 1, T, T]) as Tensor4D;
 * const x = tf.ones([1, T, d]) as Tensor3D, o = { nHeads: 2, nKvHeads: 1, headDim: 4, maskBias };
 * assert.deepEqual(causalSelfAttention(x, w, o).out.shape, [1, 3, 8]);
 * // A hook asks for the intermediates, so every backend builds the pattern.
 * const r = causalSelfAttention(x, w, { ...o, hook: (_point, t) => t });
 * assert.deepEqual(r.pattern?.shape, [1, 2, 3, 3]); // [B, heads, T, T]
 * ```
 *
 * @category NN
 */
export function causalSelfAttention(
  x: Tensor3D,
  w: AttentionWeights,
  o: AttentionOptions,
): AttentionResult {
  return tf.tidy(() => {
    const [b, t] = x.shape;
    const { nHeads: h, nKvHeads: hkv, headDim: hd, hook } = o;
    if (h % hkv !== 0) throw new Error(`attention: nHeads (${h}) must be a multiple of nKvHeads (${hkv})`);
    const g = h / hkv;
    const dropping = o.dropout !== undefined && o.dropout.rate > 0;
    let q = tf.reshape(linear(x, w.wQ, w.bQ), [b, t, h, hd]) as Tensor4D;
    let k = tf.reshape(linear(x, w.wK, w.bK), [b, t, hkv, hd]) as Tensor4D;
    let v = tf.reshape(linear(x, w.wV, w.bV), [b, t, hkv, hd]) as Tensor4D;
    if (hook) {
      q = hook("q", q) as Tensor4D;
      k = hook("k", k) as Tensor4D;
      v = hook("v", v) as Tensor4D;
    }
    if (o.rope) {
      q = o.rope.table.rotate(q, o.rope.angles);
      k = o.rope.table.rotate(k, o.rope.angles);
      if (hook) {
        q = hook("rot_q", q) as Tensor4D;
        k = hook("rot_k", k) as Tensor4D;
      }
    }
    // [B, T, heads, hd] -> [B, heads, T, hd], then append to the cached columns.
    const kNew = tf.transpose(k, [0, 2, 1, 3]) as Tensor4D;
    const vNew = tf.transpose(v, [0, 2, 1, 3]) as Tensor4D;
    let kAll = kNew, vAll = vNew;
    if (o.cache) {
      const buf = o.cache.append(kNew, vNew);
      if (t === 1 && !hook && !dropping) {
        const mask = o.maskBias ? tf.reshape(o.maskBias, [b, 1, buf.length]) as Tensor3D : undefined;
        const z = decodeAttention(tf.reshape(q, [b, h, hd]) as Tensor3D, buf.k, buf.v, buf.length, mask);
        if (z) {
          return { out: linear(tf.reshape(z, [b, 1, h * hd]) as Tensor3D, w.wO, w.bO), k: kNew, v: vNew };
        }
      }
      // A first append (a prefill) holds just the new columns: attend to them without slicing them back.
      const size = [-1, -1, buf.length, -1];
      if (buf.length !== t) {
        kAll = buf.length === buf.k.shape[2] ? buf.k : tf.slice(buf.k, [0, 0, 0, 0], size);
        vAll = buf.length === buf.v.shape[2] ? buf.v : tf.slice(buf.v, [0, 0, 0, 0], size);
      }
    } else if (o.past) {
      kAll = tf.concat([o.past.k, kAll], 2);
      vAll = tf.concat([o.past.v, vAll], 2);
    }
    const l = kAll.shape[2];
    // Nothing asks for the pattern: on webgpu one fused kernel (scores, softmax, values; differentiable)
    // instead of the stock ops below. The backend is checked first, so cpu and wasm run exactly the stock ops.
    if (!hook && !dropping && !(o.cache && t === 1) && tf.getBackend() === "webgpu") {
      const qh = tf.transpose(q, [0, 2, 1, 3]) as Tensor4D;
      const zf = fusedAttention(qh, kAll, vAll, o.maskBias, 1 / Math.sqrt(hd)); // [B, H, T, hd] or null
      if (zf) {
        const z = tf.transpose(zf, [0, 2, 1, 3]); // [B, T, H, hd]
        const out = linear(tf.reshape(z, [b, t, h * hd]) as Tensor3D, w.wO, w.bO);
        return o.cache ? { out, k: kNew, v: vNew } : { out, k: kAll, v: vAll };
      }
    }
    // Group queries by their kv head: [B, H, T, hd] -> [B, Hkv, G*T, hd].
    const qg = tf.reshape(tf.transpose(q, [0, 2, 1, 3]), [b, hkv, g * t, hd]);
    let scores = tf.reshape(tf.matMul(qg, kAll, false, true), [b, h, t, l]) as Tensor4D;
    scores = tf.mul(scores, 1 / Math.sqrt(hd));
    if (o.maskBias) scores = tf.add(scores, o.maskBias);
    if (hook) scores = hook("attn_scores", scores) as Tensor4D;
    let pattern = tf.softmax(scores, -1) as Tensor4D;
    if (hook) pattern = hook("pattern", pattern) as Tensor4D;
    const used = dropping ? tf.dropout(pattern, o.dropout!.rate, undefined, o.dropout!.seed) : pattern;
    const zg = tf.matMul(tf.reshape(used, [b, hkv, g * t, l]), vAll); // [B, Hkv, G*T, hd]
    let z = tf.transpose(tf.reshape(zg, [b, h, t, hd]), [0, 2, 1, 3]) as Tensor4D; // [B, T, H, hd]
    if (hook) z = hook("z", z) as Tensor4D;
    const out = linear(tf.reshape(z, [b, t, h * hd]) as Tensor3D, w.wO, w.bO);
    return o.cache ? { out, k: kNew, v: vNew, pattern } : { out, k: kAll, v: vAll, pattern };
  });
}

/**
 * The additive mask for {@linkcode causalSelfAttention}: `[B, 1, T, L]`, 0 where allowed and -1e9 where
 * not. `valid` `[B, L]` (1 = a real, attendable column) covers cached and new columns; the new columns are
 * the last T, so query t sits at column `L - T + t` and may see columns up to there.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import type { Tensor2D } from "../../mod.ts";
 * import { attentionMaskBias } from "./attention.ts";
 * await tf.ready();
 * const bias = attentionMaskBias(tf.ones([1, 3]) as Tensor2D, 3);
 * const [row0] = (await bias.array())[0][0]; // query 0 sees only key 0
 * assert.ok(row0[0] === 0 && row0[1] === -1e9 && row0[2] === -1e9);
 * ```
 *
 * @category NN
 */
export function attentionMaskBias(valid: Tensor2D, t: number): Tensor4D {
  return tf.tidy(() => {
    const [b, l] = valid.shape;
    const v = tf.reshape(valid, [b, 1, 1, l]);
    if (t === 1) return tf.mul(tf.sub(1, v), -1e9) as Tensor4D; // one query at the last column sees all
    const cols = tf.range(0, l, 1, "int32").reshape([1, l]);
    const rows = tf.range(l - t, l, 1, "int32").reshape([t, 1]);
    const causal = tf.cast(tf.lessEqual(cols, rows), "float32").reshape([1, 1, t, l]);
    return tf.mul(tf.sub(1, tf.mul(causal, v)), -1e9) as Tensor4D;
  });
}
