/**
 * AdamW with decoupled weight decay (Loshchilov & Hutter) and parameter groups chosen by rules.
 *
 * The update for each parameter p with gradient g at step t (1-based), as PyTorch's `torch.optim.AdamW`:
 *
 *   p ← p · (1 − lr · wd)
 *   m ← β1 · m + (1 − β1) · g,   v ← β2 · v + (1 − β2) · g²
 *   p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Tensor, Variable } from "../tensor_types.ts";

/**
 * One rule that assigns parameters to a group. A parameter joins the first rule that matches it; every
 * condition given must hold. Rules are plain data so they live in JSON training configs.
 *
 * @category Training
 */
export interface ParamGroupRule {
  /** A label for logs and checkpoints (default `group<i>`). */
  name?: string;
  /** Regular-expression source tested against the parameter name (e.g. `"bias|norm|ln_"`). */
  match?: string;
  /** Matches when the name does NOT match this regular expression. */
  notMatch?: string;
  /** Matches tensors of at least this rank. */
  minRank?: number;
  /** Matches tensors of at most this rank. */
  maxRank?: number;
  /** Weight decay for this group. */
  weightDecay: number;
  /** Multiplies the scheduled learning rate for this group (default 1). */
  lrScale?: number;
}

/**
 * Options for {@linkcode AdamW}. Defaults are nanoGPT's: β = (0.9, 0.95), ε = 1e-8, wd 0.1 on rank ≥ 2.
 *
 * @category Training
 */
export interface AdamWOptions {
  /** Decay of the first moment (default 0.9). */
  beta1?: number;
  /** Decay of the second moment (default 0.95). */
  beta2?: number;
  /** Added to the denominator for stability (default 1e-8). */
  eps?: number;
  /** Rules in priority order. Default {@linkcode DECAY_MATRICES_ONLY} with weight decay 0.1. */
  groups?: ParamGroupRule[];
}

/**
 * nanoGPT's rule: tensors of rank ≥ 2 (matrices, embeddings) are decayed; biases and norm gains are not.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DECAY_MATRICES_ONLY } from "./adamw.ts";
 * assert.deepEqual(DECAY_MATRICES_ONLY(0.1)[0], { name: "decay", minRank: 2, weightDecay: 0.1 });
 * ```
 *
 * @category Training
 */
export function DECAY_MATRICES_ONLY(weightDecay: number): ParamGroupRule[] {
  return [
    { name: "decay", minRank: 2, weightDecay },
    { name: "no_decay", weightDecay: 0 },
  ];
}

/**
 * PhaseGPT's name-based rule (spec §4.3): the original decays every parameter whose PyTorch name lacks
 * `bias`, `norm` and `embedding`. Its LayerNorms are named `ln1/ln2/ln_f`, so LayerNorm gains ARE decayed,
 * and so are the phase layer's ω and K; biases and the token/position embeddings (hence the tied head) are
 * not. In this library's names: no decay for biases (`.b`, `.b_*`) and `embed.*` / `pos_embed.*`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../deps.ts";
 * import { assignParamGroups, DECAY_BY_PHASEGPT_NAMES } from "./adamw.ts";
 * await tf.ready();
 * const v = (shape: number[]) => tf.variable(tf.zeros(shape));
 * const params = new Map([["blocks.0.ln1.w", v([4])], ["blocks.0.ln1.b", v([4])], ["embed.W_E", v([3, 4])], ["blocks.7.attn.coupling", v([2])]]);
 * const g = assignParamGroups(params, DECAY_BY_PHASEGPT_NAMES(0.1));
 * assert.deepEqual([...g.values()].map((a) => a.weightDecay), [0.1, 0, 0, 0.1]);
 * params.forEach((p) => p.dispose());
 * ```
 *
 * @category Training
 */
export function DECAY_BY_PHASEGPT_NAMES(weightDecay: number): ParamGroupRule[] {
  return [
    { name: "no_decay", match: "(^|\\.)b(_[A-Za-z]+)?$|^(embed|pos_embed)\\.", weightDecay: 0 },
    { name: "decay", weightDecay },
  ];
}

/**
 * Named parameter-group rule sets for `optimizer.groups` in a training config: `"rank"` (nanoGPT's,
 * the default) and `"phasegpt-names"` (the original PhaseGPT's name-based rule).
 *
 * @category Training
 */
export const PARAM_GROUP_RULE_SETS: Readonly<Record<string, (weightDecay: number) => ParamGroupRule[]>> = {
  rank: DECAY_MATRICES_ONLY,
  "phasegpt-names": DECAY_BY_PHASEGPT_NAMES,
};

/**
 * The group a parameter ended up in.
 *
 * @category Training
 */
export interface ParamGroupAssignment {
  /** The rule's name. */
  group: string;
  /** Decoupled weight decay applied to this parameter. */
  weightDecay: number;
  /** Multiplier of the scheduled learning rate. */
  lrScale: number;
}

/**
 * Optimiser state as plain numbers and named tensors, ready for a checkpoint.
 *
 * @category Training
 */
export interface AdamWState {
  /** Optimiser steps taken so far. */
  step: number;
  /** `m.<param>` and `v.<param>` moments. The tensors belong to the optimiser: do not dispose them. */
  moments: Map<string, Tensor>;
}

/**
 * Assigns each named parameter to the first matching rule, or throws naming a parameter no rule covers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../deps.ts";
 * import { assignParamGroups, DECAY_MATRICES_ONLY } from "./adamw.ts";
 * import { initBackend } from "../backend/backend.ts";
 * await initBackend({ backend: "cpu" });
 * const params = new Map([["w", tf.variable(tf.zeros([2, 2]))], ["b", tf.variable(tf.zeros([2]))]]);
 * const groups = assignParamGroups(params, DECAY_MATRICES_ONLY(0.1));
 * assert.equal(groups.get("w")?.weightDecay, 0.1); // a matrix decays
 * assert.equal(groups.get("b")?.weightDecay, 0); // a bias does not
 * ```
 *
 * @category Training
 */
export function assignParamGroups(
  params: Map<string, Variable>,
  rules: ParamGroupRule[],
): Map<string, ParamGroupAssignment> {
  const compiled = rules.map((r, i) => ({
    rule: r,
    name: r.name ?? `group${i}`,
    match: r.match !== undefined ? new RegExp(r.match) : undefined,
    notMatch: r.notMatch !== undefined ? new RegExp(r.notMatch) : undefined,
  }));
  const out = new Map<string, ParamGroupAssignment>();
  for (const [name, v] of params) {
    const hit = compiled.find(({ rule, match, notMatch }) =>
      (match === undefined || match.test(name)) &&
      (notMatch === undefined || !notMatch.test(name)) &&
      (rule.minRank === undefined || v.rank >= rule.minRank) &&
      (rule.maxRank === undefined || v.rank <= rule.maxRank)
    );
    if (!hit) {
      throw new Error(
        `parameter '${name}' (rank ${v.rank}) matches no parameter-group rule: add a final catch-all rule ` +
          `such as { "weightDecay": 0 }`,
      );
    }
    out.set(name, { group: hit.name, weightDecay: hit.rule.weightDecay, lrScale: hit.rule.lrScale ?? 1 });
  }
  return out;
}

/** A non-trainable variable that takes over `init` (which is disposed; the variable shares its data). */
function ownedVariable(init: Tensor): Variable {
  const v = tf.variable(init, false);
  init.dispose();
  return v;
}

/**
 * AdamW over a fixed set of named `Variable`s. Moments are created lazily as zeros on the first step.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../deps.ts";
 * import { AdamW } from "./adamw.ts";
 * import { initBackend } from "../backend/backend.ts";
 * await initBackend({ backend: "cpu" });
 * const w = tf.variable(tf.tensor1d([1, 2]));
 * const opt = new AdamW(new Map([["w", w]]), { groups: [{ weightDecay: 0 }] });
 * opt.step(new Map([["w", tf.tensor1d([0.5, -0.5])]]), 0.1);
 * assert.deepEqual(Array.from(w.dataSync(), (v) => +v.toFixed(3)), [0.9, 2.1]);
 * opt.dispose();
 * ```
 *
 * @category Training
 */
export class AdamW {
  /** Exponential decay of the first moment. */
  readonly beta1: number;
  /** Exponential decay of the second moment. */
  readonly beta2: number;
  /** Added to the denominator for stability. */
  readonly eps: number;
  /** Each parameter's group. */
  readonly groups: Map<string, ParamGroupAssignment>;
  #params: Map<string, Variable>;
  #m = new Map<string, Variable>();
  #v = new Map<string, Variable>();
  #step = 0;

  /** An optimiser over `params`; throws on betas outside [0, 1) or a non-positive eps. */
  constructor(params: Map<string, Variable>, options: AdamWOptions = {}) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.95;
    this.eps = options.eps ?? 1e-8;
    for (const [k, b] of [["beta1", this.beta1], ["beta2", this.beta2]] as const) {
      if (!(b >= 0 && b < 1)) throw new RangeError(`AdamW ${k} must be in [0, 1), got ${b}`);
    }
    if (!(this.eps > 0)) throw new RangeError(`AdamW eps must be > 0, got ${this.eps}`);
    this.#params = params;
    this.groups = assignParamGroups(params, options.groups ?? DECAY_MATRICES_ONLY(0.1));
  }

  /** Optimiser steps taken so far. */
  get stepCount(): number {
    return this.#step;
  }

  /**
   * Applies one update with learning rate `lr` (scaled per group). Gradients may omit parameters that did
   * not take part in the loss; those are left untouched (their moments do not decay either). The caller
   * keeps ownership of `grads`.
   */
  step(grads: Map<string, Tensor> | Record<string, Tensor>, lr: number): void {
    if (!Number.isFinite(lr) || lr < 0) throw new RangeError(`AdamW learning rate must be >= 0, got ${lr}`);
    const entries = grads instanceof Map ? [...grads] : Object.entries(grads);
    this.#step += 1;
    const t = this.#step;
    const bc1 = 1 - this.beta1 ** t;
    const bc2 = 1 - this.beta2 ** t;
    for (const [name, g] of entries) {
      const p = this.#params.get(name);
      if (!p) throw new Error(`AdamW.step: gradient for unknown parameter '${name}'`);
      const group = this.groups.get(name)!;
      const plr = lr * group.lrScale;
      let m = this.#m.get(name);
      let v = this.#v.get(name);
      if (!m || !v) {
        m = ownedVariable(tf.zerosLike(p));
        v = ownedVariable(tf.zerosLike(p));
        this.#m.set(name, m);
        this.#v.set(name, v);
      }
      const mm = m, vv = v;
      tf.tidy(() => {
        const mNew = mm.mul(this.beta1).add(g.mul(1 - this.beta1));
        const vNew = vv.mul(this.beta2).add(g.square().mul(1 - this.beta2));
        const denom = vNew.sqrt().div(Math.sqrt(bc2)).add(this.eps);
        const decayed = group.weightDecay !== 0 ? p.mul(1 - plr * group.weightDecay) : p;
        const pNew = decayed.sub(mNew.div(denom).mul(plr / bc1));
        mm.assign(mNew);
        vv.assign(vNew);
        p.assign(pNew);
      });
    }
  }

  /** The step count and moments (`m.<name>`, `v.<name>`) for a checkpoint. Tensors stay owned here. */
  state(): AdamWState {
    const moments = new Map<string, Tensor>();
    for (const [name, m] of this.#m) moments.set(`m.${name}`, m);
    for (const [name, v] of this.#v) moments.set(`v.${name}`, v);
    return { step: this.#step, moments };
  }

  /**
   * Restores a saved state (values are copied; the caller keeps ownership of the given tensors). Throws
   * naming the moment whose parameter is unknown or whose shape differs.
   */
  loadState(state: AdamWState): void {
    this.#disposeMoments();
    for (const [key, t] of state.moments) {
      const dot = key.indexOf(".");
      const kind = key.slice(0, dot);
      const name = key.slice(dot + 1);
      const p = this.#params.get(name);
      if ((kind !== "m" && kind !== "v") || !p) {
        throw new Error(
          `optimiser state has '${key}', which matches no model parameter (checkpoint from another config?)`,
        );
      }
      if (p.shape.join(",") !== t.shape.join(",")) {
        throw new Error(
          `optimiser moment '${key}' has shape [${t.shape}] but parameter '${name}' has [${p.shape}] ` +
            `(checkpoint from another config?)`,
        );
      }
      (kind === "m" ? this.#m : this.#v).set(name, ownedVariable(t.clone()));
    }
    this.#step = state.step;
  }

  #disposeMoments(): void {
    for (const x of this.#m.values()) x.dispose();
    for (const x of this.#v.values()) x.dispose();
    this.#m.clear();
    this.#v.clear();
  }

  /** Frees the moments (not the parameters). */
  dispose(): void {
    this.#disposeMoments();
  }
}
