/**
 * The generic decoder: one implementation of the pre-norm transformer that every family (gpt2, gpt_neox,
 * llama, qwen2, from-scratch) is built from. The input embedding and each layer's sequence mixer are
 * components chosen by `kind` in the config (see `components.ts`; defaults: token table + learned
 * positions or RoPE, and causal softmax attention), so variants such as a factorised embedding or a
 * Kuramoto phase mixer are registered from their own folders and never branch here.
 *
 * Hook points use TransformerLens names and cost nothing when no hook or capture is requested.
 *
 * @module
 */
import { tf } from "../deps.ts";
import { checkOptionKeys, closest } from "../options.ts";

import { escapeHtml, JUPYTER_DISPLAY } from "../display.ts";
import type { Tensor, Tensor2D, Tensor3D, Tensor4D, Variable } from "../tensor_types.ts";
import type { Scalar } from "../tensor_types.ts";
import { attentionMaskBias } from "../nn/attention.ts";
import { mlpForward, type MlpHookPoint, type MlpWeights } from "../nn/mlp.ts";
import { applyNorm } from "../nn/norm.ts";
import { RotaryTable } from "../nn/rotary.ts";
import { KVCache } from "./kv_cache.ts";
import { decoderHookNames, decoderParameterShapes } from "./params.ts";
import {
  type ComponentContext,
  type EmbeddingComponent,
  embeddingKind,
  embeddingSpec,
  type HookFire,
  layerMixers,
  type MixerContext,
  mixerKind,
  type SequenceMixer,
} from "./components.ts";
import { requireParameter as need } from "./standard_components.ts";
import type {
  CausalLM,
  DecoderConfig,
  ForwardOptions,
  ForwardResult,
  HookFn,
  Hooks,
  KVCacheLike,
  ModelInputIds,
} from "./types.ts";

/**
 * The keys of {@linkcode ForwardOptions}; others are refused with a did-you-mean. A record, so the
 * compiler keeps it complete when an option is added.
 */
const FORWARD_OPTION_KEY_SET: Record<keyof ForwardOptions, true> = {
  cache: true,
  positions: true,
  attentionMask: true,
  hooks: true,
  capture: true,
  lastOnly: true,
  targets: true,
  training: true,
  dropoutSeed: true,
};
const FORWARD_OPTION_KEYS = Object.keys(FORWARD_OPTION_KEY_SET);

/**
 * Options for constructing a {@linkcode Decoder}.
 *
 * @category Models
 */
export interface DecoderOptions {
  /** Where the weights came from (a folder), for tokenizer lookup and display. */
  source?: string;
}

/** Names of one block's hook points, built once. */
interface BlockNames {
  residPre: string;
  ln1: string;
  attnOut: string;
  residMid: string;
  ln2: string;
  /** MLP hook names by point (`pre`, `pre_linear`, `post`). */
  mlp: Record<MlpHookPoint, string>;
  mlpOut: string;
  residPost: string;
}

/** Weights of one block besides the mixer's. */
interface BlockWeights {
  ln1W: Tensor;
  ln1B?: Tensor;
  ln2W: Tensor;
  ln2B?: Tensor;
  mlp: MlpWeights;
}

/**
 * The generic decoder-only transformer. Construct it from a config and a map of canonical parameter
 * tensors (see `decoderParameterShapes`); `loadModel` and `createDecoder` do that for you.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { createDecoder, gpt2SmallConfig } from "./scratch.ts";
 * await tf.ready();
 * const model = createDecoder(gpt2SmallConfig({ nLayers: 2, dModel: 64, nHeads: 4, vocabSize: 100 }), { seed: 0 });
 * const ids = tf.tensor2d([[1, 2, 3]], [1, 3], "int32");
 * const { logits, hidden, residual } = model.forward(ids);
 * assert.deepEqual(logits.shape, [1, 3, 100]);
 * tf.dispose([ids, logits, hidden, residual]);
 * model.dispose();
 * ```
 *
 * @category Models
 */
export class Decoder implements CausalLM {
  /** The architecture. */
  readonly config: DecoderConfig;
  /** Every hook name this model fires, in execution order. */
  readonly hookNames: string[];
  /** The folder the weights were loaded from, when loaded from disk. */
  readonly source?: string;
  #params: Map<string, Variable>;
  #embedding: EmbeddingComponent;
  #mixers: SequenceMixer[];
  #blocks: BlockWeights[];
  #names: BlockNames[];
  #lnFinal: { w: Tensor; b?: Tensor };
  #rope?: RotaryTable;
  #hookNameSet: Set<string>;
  #disposed = false;

  /**
   * Wraps `tensors` (canonical name -> tensor) as trainable variables after checking every expected name
   * and shape; the decoder takes ownership of the tensors (they are freed with the model).
   */
  constructor(config: DecoderConfig, tensors: Map<string, Tensor>, options: DecoderOptions = {}) {
    this.config = { ...config };
    this.source = options.source;
    let shapes: Map<string, number[]>;
    try {
      shapes = decoderParameterShapes(config);
      checkTensors(shapes, tensors, config.family);
    } catch (e) {
      for (const t of tensors.values()) t.dispose(); // ownership was handed over: do not leak on refusal
      throw e;
    }
    this.#params = new Map();
    for (const [name] of shapes) {
      const t = tensors.get(name)!;
      // Vectors get a buffer of their own: the wasm backend's fused matmul rejects a bias whose buffer was
      // allocated with another rank (as after reshape or gather), so `x + 0` reallocates it as [n].
      const f32 = t.dtype !== "float32" ? tf.cast(t, "float32") : t.rank === 1 ? tf.add(t, 0) : t;
      this.#params.set(name, tf.variable(f32, true));
      if (f32 !== t) f32.dispose();
      t.dispose();
    }
    const c = this.config;
    const embSpec = embeddingSpec(c);
    this.#embedding = embeddingKind(embSpec.kind).create(embSpec, c, this.#params);
    const mixerSpecs = layerMixers(c);
    this.#mixers = [];
    this.#blocks = [];
    this.#names = [];
    for (let l = 0; l < c.nLayers; l++) {
      this.#mixers.push(mixerKind(mixerSpecs[l].kind).create(mixerSpecs[l], c, this.#params, l));
      const p = `blocks.${l}`;
      this.#blocks.push({
        ln1W: need(this.#params, `${p}.ln1.w`),
        ln1B: this.#params.get(`${p}.ln1.b`),
        ln2W: need(this.#params, `${p}.ln2.w`),
        ln2B: this.#params.get(`${p}.ln2.b`),
        mlp: {
          wIn: need(this.#params, `${p}.mlp.W_in`),
          bIn: this.#params.get(`${p}.mlp.b_in`),
          bGate: this.#params.get(`${p}.mlp.b_gate`),
          wGate: this.#params.get(`${p}.mlp.W_gate`),
          wOut: need(this.#params, `${p}.mlp.W_out`),
          bOut: this.#params.get(`${p}.mlp.b_out`),
        },
      });
      this.#names.push({
        residPre: `${p}.hook_resid_pre`,
        ln1: `${p}.ln1.hook_normalized`,
        attnOut: `${p}.hook_attn_out`,
        residMid: `${p}.hook_resid_mid`,
        ln2: `${p}.ln2.hook_normalized`,
        mlp: { pre: `${p}.mlp.hook_pre`, pre_linear: `${p}.mlp.hook_pre_linear`, post: `${p}.mlp.hook_post` },
        mlpOut: `${p}.hook_mlp_out`,
        residPost: `${p}.hook_resid_post`,
      });
    }
    this.#lnFinal = { w: need(this.#params, "ln_final.w"), b: this.#params.get("ln_final.b") };
    if (c.positional === "rotary") {
      this.#rope = new RotaryTable({
        headDim: c.headDim,
        rotaryDim: c.rotaryDim,
        theta: c.ropeTheta ?? 10000,
        maxPositions: c.maxPositions,
        scaling: c.ropeScaling,
      });
    }
    this.hookNames = decoderHookNames(c);
    this.#hookNameSet = new Set(this.hookNames);
  }

  /**
   * A fresh, empty {@linkcode KVCache} for `batchSize` rows, holding each layer's mixer state. `capacity`
   * (optional) is the number of positions the caller expects to store (prompt + new tokens): states that
   * preallocate (softmax attention) reserve that much at the first forward instead of growing to it.
   */
  createCache(batchSize: number, options: { capacity?: number } = {}): KVCache {
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new Error(`createCache: batchSize must be a positive integer, got ${batchSize}`);
    }
    const cap = options.capacity;
    if (cap !== undefined && !(Number.isInteger(cap) && cap > 0)) {
      throw new Error(`createCache: capacity must be a positive integer, got ${cap}`);
    }
    return new KVCache(batchSize, this.#mixers.map((m) => m.createState?.(batchSize, options) ?? null));
  }

  /** Trainable parameters by canonical name (the live variables, not copies). */
  parameters(): Map<string, Variable> {
    return new Map(this.#params);
  }

  /** Total number of parameter values. */
  get numParameters(): number {
    let n = 0;
    for (const v of this.#params.values()) n += v.size;
    return n;
  }

  /**
   * Runs the model on ids `[B, T]`. With a cache, the new positions are appended to it (the cache is
   * mutated only if the whole forward succeeds). With `attentionMask` and a cache, the mask is read back
   * to the host once (pass it at prefill, not on every decode step).
   */
  forward(tokens: ModelInputIds, options: ForwardOptions = {}): ForwardResult {
    if (this.#disposed) throw new Error("Decoder.forward: the model has been disposed");
    if (!(tokens instanceof tf.Tensor)) {
      const ids = idsTensor(tokens, this.config.vocabSize, "Decoder.forward");
      try {
        return this.forward(ids, options);
      } finally {
        ids.dispose();
      }
    }
    const ids = tokens;
    const c = this.config;
    checkOptionKeys(options, FORWARD_OPTION_KEYS, "Decoder.forward");
    if (ids.rank !== 2) {
      throw new Error(`Decoder.forward: ids must be [batch, time], got shape [${ids.shape}]`);
    }
    const [b, t] = ids.shape;
    if (t === 0) throw new Error("Decoder.forward: ids has no positions (T = 0)");
    const cache = options.cache === undefined ? undefined : asKVCache(options.cache, b, c.nLayers);
    const training = options.training ?? false;
    if (training && cache) throw new Error("Decoder.forward: training mode runs without a KV cache");
    const rate = training ? c.dropout ?? 0 : 0;
    if (rate > 0 && options.dropoutSeed === undefined) {
      throw new Error("Decoder.forward: training with dropout needs options.dropoutSeed (determinism)");
    }
    const mask = options.attentionMask;
    if (mask && (mask.shape[0] !== b || mask.shape[1] !== t)) {
      throw new Error(
        `Decoder.forward: attentionMask shape [${mask.shape}] must equal ids shape [${ids.shape}]`,
      );
    }
    if (options.targets && (options.targets.shape[0] !== b || options.targets.shape[1] !== t)) {
      throw new Error(
        `Decoder.forward: targets shape [${options.targets.shape}] must equal ids shape [${ids.shape}]`,
      );
    }
    if (options.positions && (options.positions.shape[0] !== b || options.positions.shape[1] !== t)) {
      throw new Error(
        `Decoder.forward: positions shape [${options.positions.shape}] must equal ids shape [${ids.shape}]`,
      );
    }
    const hooks = options.hooks;
    const capture = options.capture;
    let captureSet: Set<string> | true | undefined;
    if (capture === true) captureSet = true;
    else if (capture && capture.length) {
      for (const n of capture) this.#checkHookName(n);
      captureSet = new Set(capture);
    }
    if (hooks) { for (const n of Object.keys(hooks)) this.#checkHookName(n); }
    const activations = captureSet ? new Map<string, Tensor>() : undefined;
    const fire: HookFire = hooks || captureSet ? makeFire(hooks, captureSet, activations!) : null;

    // Host-side bookkeeping for the cache: validity and positions of the new columns.
    const newValid = cache && mask ? readMaskToHost(mask) : undefined;
    let hostPositions: Int32Array | undefined;
    // An exclusive bound on the positions when the host knows it (the rotary tables grow to it).
    let positionBound: number | undefined = options.positions ? undefined : t;
    if (cache && !options.positions) {
      hostPositions = cache.nextPositions(t, newValid);
      let max = 0;
      for (const p of hostPositions) max = Math.max(max, p);
      positionBound = max + 1;
      if (max >= c.maxPositions) {
        throw new Error(
          `Decoder.forward: position ${max} exceeds maxPositions (${c.maxPositions}) of this ${c.family} model`,
        );
      }
    } else if (!options.positions && t > c.maxPositions) {
      throw new Error(
        `Decoder.forward: ${t} positions exceed maxPositions (${c.maxPositions}) of this ${c.family} model`,
      );
    }

    // Auxiliary losses and metrics the components add; keys are collected on the host.
    const aux: Record<string, Scalar> = {};
    const metrics: Record<string, Scalar> = {};
    let seedCounter = options.dropoutSeed ?? 0;
    const dropout = <T extends Tensor>(x: T): T =>
      rate > 0 ? tf.dropout(x, rate, undefined, seedCounter++) as T : x;
    try {
      const out = tf.tidy(() => {
        const positions = options.positions ??
          (hostPositions
            ? tf.tensor2d(hostPositions, [b, t], "int32")
            : mask
            ? tf.maximum(tf.sub(tf.cumsum(tf.cast(mask, "int32"), 1), 1), 0) as Tensor2D
            : tf.tile(tf.range(0, t, 1, "int32").reshape([1, t]), [b, 1]) as Tensor2D);
        // A single new token over a fully valid cache sees every column: no mask to build or add.
        const needMask = mask !== undefined || t > 1 || (cache !== undefined && !cache.allValid);
        let valid: Tensor2D | undefined, maskBias: Tensor4D | undefined;
        if (needMask) {
          const newValidT = mask ? tf.cast(mask, "float32") as Tensor2D : tf.ones([b, t]) as Tensor2D;
          valid = cache ? cache.validWith(newValidT) : mask ? newValidT : tf.ones([1, t]) as Tensor2D;
          maskBias = attentionMaskBias(valid, t);
        }
        const rope = this.#rope
          ? { table: this.#rope, angles: this.#rope.angles(positions, positionBound) }
          : undefined;
        const updates: unknown[] = [];
        const base = (prefix: string): ComponentContext => ({
          fire,
          training,
          loss: (name, value) => {
            aux[name] = aux[name] ? tf.add(aux[name], value) as Scalar : value;
          },
          metric: (name, value) => {
            metrics[prefix + name] = value;
          },
        });
        const top = base("");

        let x = dropout(this.#embedding.embed(ids, positions, top));
        for (let l = 0; l < c.nLayers; l++) {
          const n = this.#names[l], w = this.#blocks[l];
          if (fire) x = fire(n.residPre, l, x) as Tensor3D;
          let h1 = applyNorm(c.norm, x, w.ln1W, w.ln1B, c.normEps);
          if (fire) h1 = fire(n.ln1, l, h1) as Tensor3D;
          const ctx: MixerContext = {
            ...base(`blocks.${l}.attn.`),
            layer: l,
            maskBias,
            valid,
            positions,
            rope,
            state: cache ? cache.layerState(l) : null,
            dropout: rate > 0 ? { rate, seed: seedCounter++ } : undefined,
          };
          const att = this.#mixers[l].forward(h1, ctx);
          updates.push(att.update);
          let attnOut = dropout(att.out);
          if (fire) attnOut = fire(n.attnOut, l, attnOut) as Tensor3D;
          let mlpIn: Tensor3D;
          if (c.parallelResidual) {
            mlpIn = x;
          } else {
            x = tf.add(x, attnOut);
            if (fire) x = fire(n.residMid, l, x) as Tensor3D;
            mlpIn = x;
          }
          let h2 = applyNorm(c.norm, mlpIn, w.ln2W, w.ln2B, c.normEps);
          if (fire) h2 = fire(n.ln2, l, h2) as Tensor3D;
          let mlpOut = mlpForward(
            c.mlp,
            h2,
            w.mlp,
            fire ? (point, a) => fire(n.mlp[point], l, a) : undefined,
          );
          mlpOut = dropout(mlpOut);
          if (fire) mlpOut = fire(n.mlpOut, l, mlpOut) as Tensor3D;
          x = c.parallelResidual ? tf.add(tf.add(x, attnOut), mlpOut) : tf.add(x, mlpOut);
          if (fire) x = fire(n.residPost, l, x) as Tensor3D;
        }
        if (cache) cache.commit(updates, valid, t, newValid);
        const residual = options.lastOnly && t > 1 ? tf.slice(x, [0, t - 1, 0], [-1, 1, -1]) : x;
        let hidden = applyNorm(c.norm, residual, this.#lnFinal.w, this.#lnFinal.b, c.normEps);
        if (fire) hidden = fire("ln_final.hook_normalized", undefined, hidden) as Tensor3D;
        const targets = options.targets;
        const loss = targets && !options.lastOnly && this.#embedding.loss
          ? this.#embedding.loss(hidden, targets, top)
          : null;
        // With the loss computed from the hidden, only the last position's logits are built.
        const logits = this.#embedding.unembed(
          loss && t > 1 ? tf.slice(hidden, [0, t - 1, 0], [-1, 1, -1]) : hidden,
          top,
        );
        return { logits, hidden, residual, aux, metrics, loss: loss ?? undefined };
      });
      const result: ForwardResult = { logits: out.logits, hidden: out.hidden, residual: out.residual };
      if (out.loss) result.loss = out.loss;
      if (Object.keys(out.aux).length) result.aux = out.aux;
      if (Object.keys(out.metrics).length) result.metrics = out.metrics;
      if (activations) result.activations = activations;
      return result;
    } catch (e) {
      if (activations) { for (const a of activations.values()) a.dispose(); }
      throw e;
    }
  }

  #checkHookName(name: string): void {
    if (!this.#hookNameSet.has(name)) {
      // Compare whole names first (a misspelt layer prefix), then the last part alone (a misspelt
      // point such as hook_patern), suggesting the full names it would match.
      let near = closest(name, this.hookNames, 4);
      if (near.length === 0) {
        const parts = name.split(".");
        const last = parts.pop() ?? "";
        const prefix = parts.join(".") ? `${parts.join(".")}.` : "";
        const points = closest(last, [...new Set(this.hookNames.map((h) => h.split(".").pop()!))], 2);
        const fixed = points.map((p) => prefix + p).filter((n) => this.#hookNameSet.has(n));
        near = fixed.length
          ? fixed
          : this.hookNames.filter((h) => points.some((p) => h.endsWith(p))).slice(0, 4);
      }
      throw new Error(
        `unknown hook name '${name}' for this ${this.config.family} model` +
          (near.length ? ` (did you mean ${near.join(", ")}?)` : "") + "; see model.hookNames",
      );
    }
  }

  /** Frees the weights and rotary tables. */
  dispose(): void {
    if (this.#disposed) return;
    for (const v of this.#params.values()) v.dispose();
    this.#embedding.dispose?.();
    this.#rope?.dispose();
    this.#disposed = true;
  }

  /** A one-line summary. */
  toString(): string {
    const c = this.config;
    return `Decoder(${c.family}: ${
      formatParameterCount(this.numParameters)
    } params, ${c.nLayers} layers, d=${c.dModel}, ` +
      `heads=${c.nHeads}/${c.nKvHeads}x${c.headDim}, mlp=${c.mlp} ${c.dMlp}, vocab=${c.vocabSize})`;
  }

  /** Jupyter rich display: a table of the architecture. */
  [JUPYTER_DISPLAY](): Record<string, string> {
    const c = this.config;
    const rows: [string, string][] = [
      ["family", c.family],
      [
        "parameters",
        `${formatParameterCount(this.numParameters)} (${this.numParameters.toLocaleString("en-US")})`,
      ],
      ["layers", String(c.nLayers)],
      ["d_model", String(c.dModel)],
      ["heads (q / kv x width)", `${c.nHeads} / ${c.nKvHeads} x ${c.headDim}`],
      ["mlp", `${c.mlp}, hidden ${c.dMlp}`],
      ["norm", `${c.norm} (eps ${c.normEps})`],
      [
        "positions",
        c.positional === "rotary"
          ? `rotary (dim ${c.rotaryDim ?? c.headDim}, theta ${c.ropeTheta ?? 10000}` +
            (c.ropeScaling ? `, ${c.ropeScaling.type} scaling x${c.ropeScaling.factor})` : ")")
          : "learned",
      ],
      ["residual", c.parallelResidual ? "parallel" : "sequential"],
      ["vocab", String(c.vocabSize)],
      ["max positions", String(c.maxPositions)],
      ["tied embeddings", String(c.tieEmbeddings)],
    ];
    if (this.source) rows.push(["source", this.source]);
    const html = "<table><tbody>" +
      rows.map(([k, v]) =>
        `<tr><th style="text-align:left">${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`
      ).join("") +
      "</tbody></table>";
    return { "text/plain": this.toString(), "text/html": html };
  }
}

export type { ModelInputIds } from "./types.ts";

/**
 * An int32 [batch, time] tensor for `ids` (the caller disposes it); each id is checked against the
 * vocabulary, since out-of-range ids silently gather zeros on some backends.
 *
 * @category Models
 * @internal Used inside the library; not part of the stable API.
 */
export function idsTensor(ids: ModelInputIds, vocabSize: number, where: string): Tensor2D {
  if (ids instanceof tf.Tensor) return ids;
  if (typeof ids === "string") {
    throw new TypeError(
      `${where}: ids are a string; encode the text with a tokenizer first (tokenizer.encode)`,
    );
  }
  const one = ids.length > 0 && typeof (ids as ArrayLike<unknown>)[0] === "number" || ArrayBuffer.isView(ids);
  const rows = one
    ? [Array.from(ids as ArrayLike<number>)]
    : Array.from(ids as readonly ArrayLike<number>[], (r) => {
      if (r === null || typeof r !== "object" || typeof r.length !== "number") {
        throw new TypeError(`${where}: ids must be numbers, one array per row (got ${JSON.stringify(r)})`);
      }
      return Array.from(r);
    });
  const t = rows[0]?.length ?? 0;
  if (rows.length === 0 || t === 0) throw new Error(`${where}: ids are empty`);
  rows.forEach((r, b) => {
    if (r.length !== t) {
      throw new Error(`${where}: row ${b} has ${r.length} ids, row 0 has ${t} (rows must have one length)`);
    }
    r.forEach((id, i) => {
      if (!(Number.isInteger(id) && id >= 0 && id < vocabSize)) {
        throw new RangeError(
          `${where}: id ${id} at row ${b}, position ${i} is outside the vocabulary [0, ${vocabSize})`,
        );
      }
    });
  });
  return tf.tensor2d(rows, [rows.length, t], "int32");
}

function makeFire(
  hooks: Hooks | undefined,
  capture: Set<string> | true | undefined,
  acts: Map<string, Tensor>,
): HookFire {
  return (name, layer, t) => {
    const registered = hooks?.[name];
    if (registered) {
      const fns: HookFn[] = Array.isArray(registered) ? registered : [registered];
      for (const fn of fns) {
        const r = fn(t, { name, layer }) as unknown;
        if (r !== undefined && r !== null) {
          // A hook that returns a number, an array or a promise is a slip worth naming before tfjs does.
          if (!(r instanceof tf.Tensor)) {
            const what = r instanceof Promise
              ? "a Promise (hooks run synchronously inside the forward pass; do not make them async)"
              : Array.isArray(r)
              ? "an array"
              : typeof r;
            throw new Error(
              `hook '${name}' returned ${what}; a hook returns a tensor of shape [${t.shape}] to replace ` +
                `the activation, or nothing to keep it`,
            );
          }
          if (!sameShape(r.shape, t.shape)) {
            throw new Error(
              `hook '${name}' returned shape [${r.shape}], expected [${t.shape}] (hooks must keep the shape)`,
            );
          }
          t = r.dtype === t.dtype ? r : tf.cast(r, t.dtype);
        }
      }
    }
    if (capture === true || capture?.has(name)) {
      acts.get(name)?.dispose();
      // A clone shares the buffer but has its own lifetime, so disposing the forward's other outputs
      // (the same tensor may be returned as `residual` or `hidden`) never invalidates a capture.
      acts.set(name, tf.keep(tf.clone(t)));
    }
    return t;
  };
}

/**
 * The attention mask's values on the host (the cache keeps per-row validity there). A mask made from
 * host data (`tf.tensor2d(rows)`) still holds its values; one computed on a GPU cannot be read
 * synchronously under Deno's WebGPU, so say how to fix that instead of failing deep inside tfjs.
 */
function readMaskToHost(mask: Tensor2D): Uint8Array {
  let values: ArrayLike<number>;
  try {
    values = mask.dataSync() as ArrayLike<number>;
  } catch (e) {
    throw new Error(
      `Decoder.forward: the attentionMask of a cached forward is read on the host, which failed on the ` +
        `'${tf.getBackend()}' backend (${
          (e as Error).message
        }); build it from host data right before the call ` +
        '(tf.tensor2d(rows, undefined, "int32")) and pass it only at prefill',
    );
  }
  return Uint8Array.from(values, (x) => (x ? 1 : 0));
}

function asKVCache(cache: KVCacheLike, batch: number, layers: number): KVCache {
  if (!(cache instanceof KVCache)) {
    throw new Error("Decoder.forward: options.cache must come from model.createCache(batchSize)");
  }
  if (cache.batchSize !== batch) {
    throw new Error(`Decoder.forward: cache has ${cache.batchSize} rows but ids has ${batch}`);
  }
  if (cache.nLayers !== layers) {
    throw new Error(`Decoder.forward: cache has ${cache.nLayers} layers, model ${layers}`);
  }
  return cache;
}

function checkTensors(shapes: Map<string, number[]>, tensors: Map<string, Tensor>, family: string): void {
  const missing = [...shapes.keys()].filter((n) => !tensors.has(n));
  const extra = [...tensors.keys()].filter((n) => !shapes.has(n));
  const wrong = [...shapes].filter(([n, s]) => tensors.has(n) && !sameShape(tensors.get(n)!.shape, s))
    .map(([n, s]) => `${n}: expected [${s}], got [${tensors.get(n)!.shape}]`);
  if (missing.length || extra.length || wrong.length) {
    const parts = [];
    if (missing.length) parts.push(`missing: ${missing.join(", ")}`);
    if (extra.length) parts.push(`unexpected: ${extra.join(", ")}`);
    if (wrong.length) parts.push(`wrong shape: ${wrong.join("; ")}`);
    throw new Error(`Decoder (${family}): parameters do not match the config. ${parts.join(". ")}`);
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Formats a parameter count for display: 124.44M, 1.10B, 3.2K.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatParameterCount } from "./decoder.ts";
 * assert.equal(formatParameterCount(124_439_808), "124.44M");
 * ```
 *
 * @category Models
 */
export function formatParameterCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}
