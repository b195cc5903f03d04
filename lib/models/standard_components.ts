/**
 * The standard components every Hugging Face family uses, registered under the component contract:
 * the `standard` embedding (token table, learned positions when `positional` is "learned", tied or
 * untied head) and the `attention` mixer (causal softmax attention with grouped-query heads, optional
 * biases and RoPE), whose per-sequence state is its key/value store.
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Tensor1D, Tensor2D, Tensor4D, Variable } from "../tensor_types.ts";
import { chunkedHeadCrossEntropy, headLossChunkRows } from "../nn/chunked_loss.ts";
import { type AttentionHookPoint, causalSelfAttention } from "../nn/attention.ts";
import { embedPositions, embedTokens, unembed } from "../nn/embedding.ts";
import {
  type EmbeddingComponent,
  type EmbeddingKind,
  type MixerKind,
  type MixerState,
  type ParameterSpec,
  registerEmbedding,
  registerMixer,
  type SequenceMixer,
} from "./components.ts";
import type { DecoderConfig } from "./types.ts";
import { inPlaceWritesSupported, writeColumnsInPlace } from "../backend/decode_attention.ts";

/** Largest tied table (elements) for which the wasm backend keeps a transposed LM-head copy (256 MiB). */
const WASM_HEAD_COPY_MAX = 64 * 1024 * 1024;

/** Free columns a new in-place cache buffer gets beyond what it must hold; it doubles from there. */
const MIN_CACHE_CAPACITY = 64;

const ATTN_POINTS: AttentionHookPoint[] = ["q", "k", "v", "rot_q", "rot_k", "attn_scores", "pattern", "z"];

/**
 * Looks up a parameter the component declared (a missing one is a decoder bug, not a user error).
 *
 * @category Models
 */
export function requireParameter(params: Map<string, Variable>, name: string): Variable {
  const v = params.get(name);
  if (!v) throw new Error(`Decoder: parameter '${name}' is missing`);
  return v;
}

/**
 * The standard token embedding: `embed.W_E` (+ `pos_embed.W_pos` for learned positions); the LM head is
 * `embed.W_E` transposed when tied, else `unembed.W_U`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { standardEmbedding } from "./standard_components.ts";
 * import { gpt2SmallConfig } from "./scratch.ts";
 * const c = gpt2SmallConfig({ nLayers: 1, dModel: 64, nHeads: 2, vocabSize: 100 });
 * assert.deepEqual(standardEmbedding.hookNames({ kind: "standard" }, c), ["hook_embed", "hook_pos_embed"]);
 * assert.deepEqual(standardEmbedding.parameters({ kind: "standard" }, c).get("embed.W_E")?.shape, [100, 64]);
 * ```
 *
 * @category Models
 */
export const standardEmbedding: EmbeddingKind = {
  kind: "standard",
  // lossChunk: rows per chunk of the training loss's head (default: chunked only when the logits are large).
  options: ["lossChunk"],
  validate(spec) {
    const c = spec.lossChunk;
    if (c !== undefined && !(Number.isInteger(c) && (c as number) > 0)) {
      throw new Error(
        `DecoderConfig.embedding.lossChunk: must be a positive integer (rows per chunk), got ${c}`,
      );
    }
  },
  parameters(_spec, c) {
    const s = new Map<string, ParameterSpec>();
    s.set("embed.W_E", { shape: [c.vocabSize, c.dModel], init: "normal" });
    if (c.positional === "learned") {
      s.set("pos_embed.W_pos", { shape: [c.maxPositions, c.dModel], init: "normal" });
    }
    if (!c.tieEmbeddings) s.set("unembed.W_U", { shape: [c.dModel, c.vocabSize], init: "normal" });
    return s;
  },
  hookNames(_spec, c) {
    return c.positional === "learned" ? ["hook_embed", "hook_pos_embed"] : ["hook_embed"];
  },
  create(spec, config, params) {
    return tokenTable(config, params, spec.lossChunk as number | undefined);
  },
};

function tokenTable(
  config: DecoderConfig,
  params: Map<string, Variable>,
  lossChunk: number | undefined,
): EmbeddingComponent {
  const wE = requireParameter(params, "embed.W_E") as Tensor2D;
  const wPos = config.positional === "learned"
    ? requireParameter(params, "pos_embed.W_pos") as Tensor2D
    : undefined;
  const wU = config.tieEmbeddings ? wE : requireParameter(params, "unembed.W_U") as Tensor2D;
  let headT: Tensor2D | null = null;
  let headFor: object | null = null;
  return {
    embed(ids, positions, { fire }) {
      let x = embedTokens(ids, wE);
      if (fire) x = fire("hook_embed", undefined, x) as typeof x;
      if (wPos) {
        let p = embedPositions(positions, wPos);
        if (fire) p = fire("hook_pos_embed", undefined, p) as typeof p;
        x = tf.add(x, p);
      }
      return x;
    },
    unembed(hidden) {
      // The wasm backend re-packs a transposed right operand on every call (~6x slower LM head), so at
      // inference a tied head uses a kept [d, V] copy, refreshed whenever the table's buffer changes
      // (optimizer updates assign new buffers). Under a gradient tape the live table is used so
      // gradients reach it. Large tables skip the copy: the wasm heap is limited to 4 GiB.
      if (config.tieEmbeddings && wE.size <= WASM_HEAD_COPY_MAX && tf.getBackend() === "wasm" && !tapeOn()) {
        if (!headT || headFor !== wE.dataId) {
          headT?.dispose();
          headT = tf.keep(tf.transpose(wE));
          headFor = wE.dataId;
        }
        return unembed(hidden, headT, false);
      }
      return unembed(hidden, wU, config.tieEmbeddings);
    },
    loss(hidden, targets, { fire }) {
      // Large heads (B·T·V past headLossChunkRows' threshold) score the targets in chunks instead of
      // building the [B, T, V] logits; with hooks the decoder builds the logits as usual.
      const [b, t, d] = hidden.shape;
      const chunk = headLossChunkRows(b * t, config.vocabSize, lossChunk);
      if (fire || chunk === 0) return null;
      const head = config.tieEmbeddings ? wE : tf.transpose(wU) as Tensor2D; // [V, d]
      const flat = tf.reshape(targets.dtype === "int32" ? targets : tf.cast(targets, "int32"), [b * t]);
      return chunkedHeadCrossEntropy(
        tf.reshape(hidden, [b * t, d]) as Tensor2D,
        head,
        flat as Tensor1D,
        chunk,
      );
    },
    dispose() {
      headT?.dispose();
      headT = null;
    },
  };
}

/**
 * Softmax attention's per-sequence state: keys and values over the cache's columns (keys already rotated
 * with their row's positions), held in preallocated `[B, Hkv, capacity, hd]` buffers.
 *
 A forward writes its new columns into the buffers in place (`writeColumnsInPlace`: memory copies on
 * cpu and wasm, queued buffer copies on webgpu), so a decode step copies one column instead of the whole
 * cache; the capacity doubles when full (amortised O(1) copying per token, capped at the model's context),
 * and a rewind to a prefix only moves the length. On a backend without in-place writes the buffers are
 * rebuilt by concatenation at each forward and capacity equals length. Columns past the length are garbage
 * until written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import type { Tensor4D } from "../../mod.ts";
 * import { KVLayerState } from "./standard_components.ts";
 * await tf.setBackend("cpu");
 * const s = new KVLayerState();
 * const col = tf.ones([1, 2, 1, 4]) as Tensor4D;
 * for (let i = 0; i < 3; i++) {
 *   tf.tidy(() => { s.append(col, col); }); // a forward's new column
 *   s.commit({ appended: 1 }); // the whole forward succeeded
 * }
 * assert.equal(s.length, 3);
 * assert.ok(s.capacity >= 3);
 * assert.deepEqual(s.past()!.k.shape, [1, 2, 3, 4]);
 * s.keepColumns([0, 1]); // a rewind: no copy
 * assert.equal(s.length, 2);
 * s.dispose();
 * ```
 *
 * @category Models
 */
export class KVLayerState implements MixerState {
  /** Columns past which the capacity stops doubling (the model's context length); past it, it grows by 64. */
  readonly maxColumns: number;
  #k: Tensor4D | null = null;
  #v: Tensor4D | null = null;
  /** Committed columns. */
  #length = 0;
  /** Columns to reserve at the first allocation (0 = none). */
  #hint: number;
  /** Columns appended by the running forward, committed by {@linkcode KVLayerState.commit}. */
  #pending = 0;
  /** The committed prefix as its own tensors when capacity > length (built on demand, owned here). */
  #view: { k: Tensor4D; v: Tensor4D } | null = null;

  /**
   * An empty state. `maxColumns` (default unbounded) caps the doubling, so a cache near the model's context
   * length does not reserve twice the memory it can use. `capacity` (a hint: the columns the caller
   * expects to store) is reserved at the first forward, so a generation of known length allocates its
   * buffers once (growing through doublings leaves freed blocks that a 4 GiB wasm heap may not reuse).
   */
  constructor(options: { maxColumns?: number; capacity?: number } = {}) {
    this.maxColumns = options.maxColumns ?? Infinity;
    this.#hint = options.capacity ?? 0;
  }

  /** Committed columns (the L of `[B, Hkv, L, hd]`). */
  get length(): number {
    return this.#length;
  }

  /** Columns the buffers hold room for (0 before the first forward). */
  get capacity(): number {
    return this.#k ? this.#k.shape[2] : 0;
  }

  /**
   * The cached keys and values `[B, Hkv, L, hd]` (L = {@linkcode KVLayerState.length}), or null before the
   * first forward. The tensors belong to the state and stay valid until its next change.
   */
  past(): { k: Tensor4D; v: Tensor4D } | null {
    if (!this.#k || !this.#v || this.#length === 0) return null;
    if (this.#k.shape[2] === this.#length) return { k: this.#k, v: this.#v };
    if (!this.#view) {
      const size = [-1, -1, this.#length, -1];
      this.#view = tf.tidy(() => ({
        k: tf.keep(tf.slice(this.#k!, [0, 0, 0, 0], size)),
        v: tf.keep(tf.slice(this.#v!, [0, 0, 0, 0], size)),
      }));
    }
    return this.#view;
  }

  /**
   * Writes a forward's new keys and values `[B, Hkv, T, hd]` after the committed columns (in place where
   * the backend allows, else into new buffers) and returns the buffers with the number of columns now
   * filled (committed + T). The length moves only at {@linkcode KVLayerState.commit}, so a forward that
   * fails later leaves the cache as it was. Call inside the forward's `tf.tidy`.
   */
  append(k: Tensor4D, v: Tensor4D): { k: Tensor4D; v: Tensor4D; length: number } {
    const t = k.shape[2];
    const need = this.#length + t;
    this.#dropView();
    const inPlace = inPlaceWritesSupported();
    if (this.#k && this.#v && inPlace && need <= this.#k.shape[2]) {
      if (writeColumnsInPlace(this.#k, k, this.#length) && writeColumnsInPlace(this.#v, v, this.#length)) {
        this.#pending = t;
        return { k: this.#k, v: this.#v, length: need };
      }
    }
    // A new buffer: the committed prefix, the new columns and (in place only) room to grow.
    const room = need + MIN_CACHE_CAPACITY;
    const limit = need <= this.maxColumns ? this.maxColumns : room;
    const first = this.#k === null && this.#hint >= need;
    const cap = !inPlace ? need : first ? this.#hint : Math.min(Math.max(room, 2 * this.capacity), limit);
    const build = (old: Tensor4D | null, cols: Tensor4D): Tensor4D => {
      const parts: Tensor4D[] = [];
      if (old && this.#length > 0) parts.push(tf.slice(old, [0, 0, 0, 0], [-1, -1, this.#length, -1]));
      parts.push(cols);
      if (cap > need) {
        const [b, h, , hd] = cols.shape;
        parts.push(tf.zeros([b, h, cap - need, hd]) as Tensor4D);
      }
      return tf.keep(parts.length === 1 ? tf.clone(parts[0]) : tf.concat(parts, 2));
    };
    this.#replace(build(this.#k, k), build(this.#v, v));
    this.#pending = t;
    return { k: this.#k!, v: this.#v!, length: need };
  }

  /**
   * Commits the forward's columns: `{ appended: T }` after {@linkcode KVLayerState.append}, or the full
   * `{ k, v }` `[B, Hkv, L + T, hd]` a forward built itself (then they become the buffers).
   */
  commit(update: unknown): void {
    const u = update as { appended?: number; k?: Tensor4D; v?: Tensor4D };
    if (u.k && u.v) {
      this.#replace(tf.keep(u.k), tf.keep(u.v));
      this.#length = u.k.shape[2];
    } else {
      if (u.appended !== this.#pending) {
        throw new Error(`KVLayerState.commit: ${u.appended} columns committed, ${this.#pending} appended`);
      }
      this.#length += this.#pending;
    }
    this.#pending = 0;
    this.#dropView();
  }

  /** Keeps these columns: a prefix only moves the length, anything else is gathered into new buffers. */
  keepColumns(columns: number[]): void {
    if (!this.#k || !this.#v) return;
    this.#dropView();
    if (columns.length === 0) {
      this.#length = 0;
      return this.#replace(null, null);
    }
    if (columns.every((c, i) => c === i)) {
      this.#length = Math.min(this.#length, columns.length);
      return;
    }
    const idx = tf.tensor1d(columns, "int32");
    this.#replace(tf.gather(this.#k, idx, 2), tf.gather(this.#v, idx, 2));
    idx.dispose();
    this.#length = columns.length;
  }

  /** Keeps these rows, in this order. */
  selectRows(rows: number[]): void {
    if (!this.#k || !this.#v) return;
    this.#dropView();
    const idx = tf.tensor1d(rows, "int32");
    this.#replace(tf.gather(this.#k, idx, 0), tf.gather(this.#v, idx, 0));
    idx.dispose();
  }

  /** Frees the keys and values. */
  dispose(): void {
    this.#dropView();
    this.#replace(null, null);
    this.#length = 0;
  }

  #dropView(): void {
    if (!this.#view) return;
    this.#view.k.dispose();
    this.#view.v.dispose();
    this.#view = null;
  }

  #replace(k: Tensor4D | null, v: Tensor4D | null): void {
    const oldK = this.#k, oldV = this.#v;
    this.#k = k;
    this.#v = v;
    if (oldK !== k) oldK?.dispose();
    if (oldV !== v) oldV?.dispose();
  }
}

/**
 * The standard mixer: causal softmax self-attention with grouped-query heads, optional biases and RoPE.
 * Its per-sequence state is a {@linkcode KVLayerState}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { softmaxAttention } from "./standard_components.ts";
 * import { gpt2SmallConfig } from "./scratch.ts";
 * const c = gpt2SmallConfig({ nLayers: 1, dModel: 64, nHeads: 2, vocabSize: 100 });
 * // Learned positions: no rotary hook points.
 * assert.deepEqual(softmaxAttention.hookPoints({ kind: "attention" }, c, 0), [
 *   "hook_q", "hook_k", "hook_v", "hook_attn_scores", "hook_pattern", "hook_z",
 * ]);
 * ```
 *
 * @category Models
 */
export const softmaxAttention: MixerKind = {
  kind: "attention",
  options: [],
  parameters(_spec, c, layer) {
    const p = `blocks.${layer}.attn`;
    const { dModel: d, nHeads: h, nKvHeads: hkv, headDim: hd } = c;
    const s = new Map<string, ParameterSpec>();
    s.set(`${p}.W_Q`, { shape: [d, h * hd], init: "normal" });
    if (c.qkvBias) s.set(`${p}.b_Q`, { shape: [h * hd], init: "zeros" });
    s.set(`${p}.W_K`, { shape: [d, hkv * hd], init: "normal" });
    if (c.qkvBias) s.set(`${p}.b_K`, { shape: [hkv * hd], init: "zeros" });
    s.set(`${p}.W_V`, { shape: [d, hkv * hd], init: "normal" });
    if (c.qkvBias) s.set(`${p}.b_V`, { shape: [hkv * hd], init: "zeros" });
    s.set(`${p}.W_O`, { shape: [h * hd, d], init: "residual" });
    if (c.attnOutBias) s.set(`${p}.b_O`, { shape: [d], init: "zeros" });
    return s;
  },
  hookPoints(_spec, c) {
    const rotary = c.positional === "rotary";
    return ATTN_POINTS.filter((n) => rotary || (n !== "rot_q" && n !== "rot_k")).map((n) => `hook_${n}`);
  },
  create(_spec, config, params, layer) {
    return attentionMixer(config, params, layer);
  },
};

function attentionMixer(config: DecoderConfig, params: Map<string, Variable>, layer: number): SequenceMixer {
  const p = `blocks.${layer}.attn`;
  const w = {
    wQ: requireParameter(params, `${p}.W_Q`),
    bQ: params.get(`${p}.b_Q`),
    wK: requireParameter(params, `${p}.W_K`),
    bK: params.get(`${p}.b_K`),
    wV: requireParameter(params, `${p}.W_V`),
    bV: params.get(`${p}.b_V`),
    wO: requireParameter(params, `${p}.W_O`),
    bO: params.get(`${p}.b_O`),
  };
  const names = Object.fromEntries(ATTN_POINTS.map((n) => [n, `${p}.hook_${n}`]));
  return {
    forward(x, ctx) {
      const fire = ctx.fire;
      const state = ctx.state as KVLayerState | null;
      const { out, k, pattern } = causalSelfAttention(x, w, {
        nHeads: config.nHeads,
        nKvHeads: config.nKvHeads,
        headDim: config.headDim,
        maskBias: ctx.maskBias,
        rope: ctx.rope,
        cache: state ?? undefined,
        dropout: ctx.dropout,
        hook: fire ? (point, t) => fire(names[point], layer, t) : undefined,
      });
      // The pattern ([B, H, T, L]) is not used past this point (without hooks, nothing else holds it); freeing it now keeps a
      // long prefill from holding one per layer until the forward ends.
      if (!fire) pattern?.dispose();
      return state ? { out, update: { appended: k.shape[2] } } : { out };
    },
    createState(_batchSize, options) {
      return new KVLayerState({ maxColumns: config.maxPositions, capacity: options?.capacity });
    },
  };
}

/** Whether a gradient tape is recording (then derived weight copies would cut gradients off). */
function tapeOn(): boolean {
  const engine = tf.engine() as unknown as { isTapeOn?: () => boolean };
  return engine.isTapeOn ? engine.isTapeOn() : true;
}

registerEmbedding(standardEmbedding);
registerMixer(softmaxAttention);
