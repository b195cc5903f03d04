/**
 * The standard components every Hugging Face family uses, registered under the component contract:
 * the `standard` embedding (token table, learned positions when `positional` is "learned", tied or
 * untied head) and the `attention` mixer (causal softmax attention with grouped-query heads, optional
 * biases and RoPE), whose per-sequence state is its key/value store.
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Tensor2D, Tensor4D, Variable } from "../tensor_types.ts";
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

/** Largest tied table (elements) for which the wasm backend keeps a transposed LM-head copy (256 MiB). */
const WASM_HEAD_COPY_MAX = 64 * 1024 * 1024;

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
  options: [],
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
  create(_spec, config, params) {
    return tokenTable(config, params);
  },
};

function tokenTable(config: DecoderConfig, params: Map<string, Variable>): EmbeddingComponent {
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
    dispose() {
      headT?.dispose();
      headT = null;
    },
  };
}

/**
 * Softmax attention's per-sequence state: keys and values `[B, Hkv, L, hd]` over the cache's columns
 * (keys already rotated with their row's positions).
 *
 * @category Models
 */
export class KVLayerState implements MixerState {
  #k: Tensor4D | null = null;
  #v: Tensor4D | null = null;

  /** The cached keys and values, or null before the first forward. */
  past(): { k: Tensor4D; v: Tensor4D } | null {
    return this.#k && this.#v ? { k: this.#k, v: this.#v } : null;
  }

  /** Takes the full `{ k, v }` (cached columns + new ones) an attention forward produced. */
  commit(update: unknown): void {
    const { k, v } = update as { k: Tensor4D; v: Tensor4D };
    this.#replace(tf.keep(k), tf.keep(v));
  }

  /** Keeps these columns: a slice when they are a prefix (cheap), else a gather. */
  keepColumns(columns: number[]): void {
    if (!this.#k || !this.#v) return;
    if (columns.length === 0) return this.#replace(null, null);
    const k = this.#k, v = this.#v;
    const prefix = columns.every((c, i) => c === i);
    if (prefix) {
      if (columns.length === k.shape[2]) return;
      this.#replace(
        tf.slice(k, [0, 0, 0, 0], [-1, -1, columns.length, -1]),
        tf.slice(v, [0, 0, 0, 0], [-1, -1, columns.length, -1]),
      );
    } else {
      const idx = tf.tensor1d(columns, "int32");
      this.#replace(tf.gather(k, idx, 2), tf.gather(v, idx, 2));
      idx.dispose();
    }
  }

  /** Keeps these rows, in this order. */
  selectRows(rows: number[]): void {
    if (!this.#k || !this.#v) return;
    const idx = tf.tensor1d(rows, "int32");
    this.#replace(tf.gather(this.#k, idx, 0), tf.gather(this.#v, idx, 0));
    idx.dispose();
  }

  /** Frees the keys and values. */
  dispose(): void {
    this.#replace(null, null);
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
      const { out, k, v } = causalSelfAttention(x, w, {
        nHeads: config.nHeads,
        nKvHeads: config.nKvHeads,
        headDim: config.headDim,
        maskBias: ctx.maskBias,
        rope: ctx.rope,
        past: state ? state.past() : null,
        dropout: ctx.dropout,
        hook: fire ? (point, t) => fire(names[point], layer, t) : undefined,
      });
      return state ? { out, update: { k, v } } : { out };
    },
    createState() {
      return new KVLayerState();
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
