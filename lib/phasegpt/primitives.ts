/**
 * PhaseGPT's tensor primitives: the phase wrap, one Kuramoto Euler step computed through the mean-field
 * identity (never a `[B, H, T, T, N]` tensor), the order parameter R under the four definitions the
 * original code and its scripts use, the coherence regulariser and the two anti-synchronisation
 * perturbations (phase noise, frequency jitter) drawn from the project PRNG.
 *
 * Shapes: B batch, H heads, T tokens, N oscillators per head. Phases are `[B, H, T, N]`.
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Scalar, Tensor, Tensor1D, Tensor2D, Tensor4D } from "../tensor_types.ts";
import { checkChoice, checkOptionKeys } from "../options.ts";
import { fillNormal, Prng } from "../random/prng.ts";

/**
 * Sign convention of the coupling term. `"repulsive"`: sin(θ_i − θ_j), what the original code computes
 * (desynchronising for K > 0); `"attractive"`: sin(θ_j − θ_i), the textbook Kuramoto model.
 *
 * @category PhaseGPT
 */
export type CouplingSign = "repulsive" | "attractive";

/**
 * The sign conventions, for validation messages.
 *
 * @category PhaseGPT
 */
export const COUPLING_SIGNS: readonly CouplingSign[] = ["repulsive", "attractive"];

/**
 * What the coupling sum is divided by. `"T"`: the sequence length, always (the original, also under a
 * padding mask and in causal mode); `"prefix"`: the number of kept tokens j ≤ i (i + 1 without a mask).
 *
 * @category PhaseGPT
 */
export type CouplingDivisor = "T" | "prefix";

/**
 * The divisor choices, for validation messages.
 *
 * @category PhaseGPT
 */
export const COUPLING_DIVISORS: readonly CouplingDivisor[] = ["T", "prefix"];

/**
 * Options of {@linkcode kuramotoStep}.
 *
 * @category PhaseGPT
 */
export interface KuramotoStepOptions {
  /** Euler step size (default 0.1, hard-coded in the original). */
  dt?: number;
  /** Coupling sign (default `"repulsive"`, the original). */
  sign?: CouplingSign;
  /** Couple token i only to tokens j ≤ i (default false: all T tokens, as the original). */
  causal?: boolean;
  /** Divisor of the coupling sum (default `"T"`, the original). */
  divisor?: CouplingDivisor;
  /** Padding mask over j, `[B, T]` (1 keep, 0 drop); absent = all kept. */
  mask?: Tensor2D;
}

const STEP_KEYS = ["dt", "sign", "causal", "divisor", "mask"] as const;

/**
 * Wraps angles onto [−π, π) by floor-mod, θ − 2π·floor((θ + π) / 2π). The floor has zero gradient, so
 * the gradient of the wrap is the identity (straight through, as in the original).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf, wrapPhase, initBackend } from "../../mod.ts";
 * import type { Tensor } from "../../mod.ts";
 * await initBackend({ backend: "cpu" });
 * const y = wrapPhase(tf.tensor1d([Math.PI, -Math.PI, 4, 0.5]));
 * const v = Array.from(y.dataSync());
 * assert.ok(Math.abs(v[0] + Math.PI) < 1e-6); // π maps to −π (half-open interval)
 * assert.ok(Math.abs(v[2] - (4 - 2 * Math.PI)) < 1e-6);
 * const g = tf.grad((x: Tensor) => wrapPhase(x).sum())(tf.tensor1d([3, 4]));
 * assert.deepEqual(Array.from(g.dataSync()), [1, 1]); // identity gradient
 * ```
 *
 * @category PhaseGPT
 */
export function wrapPhase<T extends Tensor>(theta: T): T {
  return wrapIdentityGrad(theta) as T;
}

/** The wrap as one op with the identity as its gradient, so autodiff keeps none of its intermediates. */
const wrapIdentityGrad = tf.customGrad(
  // customGrad's typing cannot express (tensor, save); the runtime passes exactly that.
  ((x: Tensor, _save: tf.GradSaveFunc) => ({
    value: tf.tidy(() => {
      const turns = tf.floor(tf.mul(tf.add(x, Math.PI), 1 / (2 * Math.PI)));
      return tf.sub(x, tf.mul(turns, 2 * Math.PI));
    }),
    gradFunc: (dy: Tensor) => [tf.clone(dy)],
  })) as unknown as (...args: (Tensor | tf.GradSaveFunc)[]) => { value: Tensor; gradFunc: () => Tensor[] },
) as (x: Tensor) => Tensor;

/**
 * Inclusive cumulative sum along axis 2 of a rank-4 tensor (the suffix sum with `reverse`). tfjs 4.22's
 * cumsum gradient is wrong for an inner axis (it returns the transposed shape), so the sum runs along the
 * last axis between transposes.
 */
function cumsumTokens(x: Tensor, reverse = false): Tensor {
  return tf.transpose(tf.cumsum(tf.transpose(x, [0, 1, 3, 2]), 3, false, reverse), [0, 1, 3, 2]);
}

/** Options of {@linkcode couplingField}. */
export interface CouplingFieldOptions {
  /** Coupling sign. */
  sign: CouplingSign;
  /** Prefix sums (j ≤ i) instead of sums over all T. */
  causal: boolean;
  /** Divisor of the sum. */
  divisor: CouplingDivisor;
  /** Padding mask over j, `[B or 1, T]`. */
  mask?: Tensor2D;
  /** Sums and kept counts of earlier columns (the generation state). */
  offset?: { cos: Tensor; sin: Tensor; count: Tensor };
  /** Divisor for `"T"` (default the T of `theta`). */
  length?: number;
  /** Multiplies the field (the Euler step passes dt, folding it into the per-head factor). */
  scale?: number;
  /** Also return the inclusive totals (for the generation state; takes the plain autodiff path). */
  totals?: boolean;
}

/** The mask as `[B or 1, 1, T, 1]`, so it broadcasts over heads and oscillators. */
function maskColumn(mask: Tensor2D | undefined, t: number): Tensor | null {
  return mask ? tf.reshape(tf.cast(mask, "float32"), [mask.shape[0], 1, t, 1]) : null;
}

/** Sum over tokens (kept as a broadcastable axis), or the inclusive prefix sum when causal. */
function aggregate(x: Tensor, causal: boolean): Tensor {
  return causal ? cumsumTokens(x) : tf.sum(x, 2, true);
}

/** Its adjoint: the sum broadcast back, or the reverse (suffix) sum when causal. */
function aggregateAdjoint(x: Tensor, causal: boolean): Tensor {
  return causal ? cumsumTokens(x, true) : tf.sum(x, 2, true);
}

/**
 * The coupling field F[b, h, i, n] = ±K[h] · (1/D_i) Σ_j m[b, j] sin(θ_i − θ_j), computed as
 * sin θ_i · C − cos θ_i · S with C, S the (prefix) sums of m·cos θ_j and m·sin θ_j: O(B·H·T·N) memory.
 * `offset` adds the sums and kept counts of earlier columns (the generation state); with `totals` the
 * inclusive sums over all columns are returned too, for the next forward.
 *
 * Without `offset` and `totals` (training and plain forwards) the field carries a hand-written gradient
 * that saves only θ and recomputes cos, sin and the sums in the backward pass, so backpropagation through
 * S Euler steps keeps S copies of θ instead of every intermediate of every step.
 */
export function couplingField(
  theta: Tensor4D,
  coupling: Tensor1D,
  options: CouplingFieldOptions,
): { field: Tensor4D; totals?: { cos: Tensor; sin: Tensor; count: Tensor } } {
  if (!options.offset && !options.totals) return { field: fieldWithGradient(theta, coupling, options) };
  return tf.tidy(() => {
    const [, h, t] = theta.shape;
    const c = tf.cos(theta), s = tf.sin(theta);
    const m = maskColumn(options.mask, t);
    const mc = m ? tf.mul(c, m) : c, ms = m ? tf.mul(s, m) : s;
    let sumC = aggregate(mc, options.causal), sumS = aggregate(ms, options.causal);
    let count = keptCount(m, t, options.causal);
    if (options.offset) {
      sumC = tf.add(sumC, options.offset.cos);
      sumS = tf.add(sumS, options.offset.sin);
      count = tf.add(count, options.offset.count);
    }
    let field = tf.sub(tf.mul(s, sumC), tf.mul(c, sumS));
    if (options.divisor === "prefix") field = tf.div(field, tf.maximum(count, 1)); // 0, not NaN, if none kept
    field = tf.mul(field, fieldFactor(coupling, h, t, options));
    const last = (x: Tensor) =>
      options.causal && x.rank === 4 && x.shape[2] === t ? tf.slice(x, [0, 0, t - 1, 0], [-1, -1, 1, -1]) : x;
    return { field: field as Tensor4D, totals: { cos: last(sumC), sin: last(sumS), count: last(count) } };
  });
}

/** Kept tokens j ≤ i (causal) or in all of T, `[B or 1, 1, T or 1, 1]`. */
function keptCount(m: Tensor | null, t: number, causal: boolean): Tensor {
  if (m) return aggregate(m, causal);
  return causal ? tf.reshape(tf.range(1, t + 1), [1, 1, t, 1]) : tf.fill([1, 1, 1, 1], t);
}

/** Sign, scale, K and a constant divisor folded into one `[1, H, 1, 1]` factor. */
function fieldFactor(coupling: Tensor, h: number, t: number, o: CouplingFieldOptions): Tensor {
  const sign = (o.sign === "attractive" ? -1 : 1) * (o.scale ?? 1);
  return tf.mul(tf.reshape(coupling, [1, h, 1, 1]), o.divisor === "T" ? sign / (o.length ?? t) : sign);
}

/**
 * F with its gradient by hand. With u = ∂L/∂F · factor / D and G = sin θ·C − cos θ·S:
 * ∂L/∂θ = u·(cos θ·C + sin θ·S) − m·(cos θ·Aᵀ(u·cos θ) + sin θ·Aᵀ(u·sin θ)), where Aᵀ is the adjoint of
 * the token aggregation; ∂L/∂K[h] = Σ ∂L/∂F · G / D · (sign · scale / T or 1).
 */
function fieldWithGradient(theta: Tensor4D, coupling: Tensor1D, o: CouplingFieldOptions): Tensor4D {
  const [, h, t] = theta.shape;
  const parts = (th: Tensor, m: Tensor | null) => {
    const c = tf.cos(th), s = tf.sin(th);
    const sumC = aggregate(m ? tf.mul(c, m) : c, o.causal), sumS = aggregate(m ? tf.mul(s, m) : s, o.causal);
    const inv = o.divisor === "prefix" ? tf.reciprocal(tf.maximum(keptCount(m, t, o.causal), 1)) : null;
    return { c, s, m, sumC, sumS, inv };
  };
  const f = tf.customGrad(
    // customGrad's typing cannot express (tensor, tensor, save); the runtime passes exactly that.
    ((th: Tensor, k: Tensor, save: tf.GradSaveFunc) => {
      // The mask is saved with θ and K: the caller's mask tensor may be gone when the backward pass runs.
      const mask = maskColumn(o.mask, t);
      save(mask ? [th, k, mask] : [th, k]);
      // Intermediates are freed at once (the tidy): the backward pass recomputes them from θ.
      const value = tf.tidy(() => {
        const { c, s, sumC, sumS, inv } = parts(th, mask);
        const g = tf.sub(tf.mul(s, sumC), tf.mul(c, sumS));
        return tf.mul(inv ? tf.mul(g, inv) : g, fieldFactor(k, h, t, o));
      });
      return {
        value,
        gradFunc: (dy: Tensor, saved: Tensor[]) =>
          tf.tidy(() => {
            const [th0, k0, m0] = saved;
            const { c, s, m, sumC, sumS, inv } = parts(th0, m0 ?? null);
            const factor = fieldFactor(k0, h, t, o);
            const dyInv = inv ? tf.mul(dy, inv) : dy;
            const u = tf.mul(dyInv, factor);
            const back = tf.add(
              tf.mul(c, aggregateAdjoint(tf.mul(u, c), o.causal)),
              tf.mul(s, aggregateAdjoint(tf.mul(u, s), o.causal)),
            );
            const dTheta = tf.sub(
              tf.mul(u, tf.add(tf.mul(c, sumC), tf.mul(s, sumS))),
              m ? tf.mul(m, back) : back,
            );
            const g = tf.sub(tf.mul(s, sumC), tf.mul(c, sumS));
            const perK = fieldFactor(tf.onesLike(k0), h, t, o); // ∂factor/∂K
            const dK = tf.reshape(tf.sum(tf.mul(tf.mul(dyInv, g), perK), [0, 2, 3]), [h]);
            return [dTheta, dK];
          }),
      };
    }) as unknown as (...args: (Tensor | tf.GradSaveFunc)[]) => { value: Tensor; gradFunc: () => Tensor[] },
  );
  return f(theta, coupling) as Tensor4D;
}

/**
 * Checks the step options and fills in the defaults (one message per bad field, naming what is allowed).
 */
export function resolveStepOptions(
  options: KuramotoStepOptions,
  where = "kuramotoStep",
): Required<Omit<KuramotoStepOptions, "mask">> & { mask?: Tensor2D } {
  checkOptionKeys(options, STEP_KEYS, where);
  const dt = options.dt ?? 0.1;
  if (typeof dt !== "number" || !Number.isFinite(dt) || dt <= 0) {
    throw new Error(`${where}: dt must be a positive number, got ${JSON.stringify(options.dt)}`);
  }
  if (options.causal !== undefined && typeof options.causal !== "boolean") {
    throw new Error(`${where}: causal must be true or false, got ${JSON.stringify(options.causal)}`);
  }
  return {
    dt,
    sign: checkChoice(options.sign ?? "repulsive", COUPLING_SIGNS, `${where} sign`),
    causal: options.causal ?? false,
    divisor: checkChoice(options.divisor ?? "T", COUPLING_DIVISORS, `${where} divisor`),
    mask: options.mask,
  };
}

/**
 * One explicit Euler step of the phase dynamics: θ ← wrap(θ + dt · (ω + F)), with the coupling field F
 * of each oscillator n of token i taken over the same oscillator of the other tokens j (spec §2.3).
 * `theta` is `[B, H, T, N]`, `omega` `[H, N]`, `coupling` `[H]`. Uses the mean-field identity (prefix
 * sums when causal), so memory is O(B·H·T·N).
 *
 * @example Two tokens, ω = 0, K = 1: the original's sign pushes them apart, the textbook sign together
 * ```ts
 * import assert from "node:assert/strict";
 * import { kuramotoStep, tf, initBackend } from "../../mod.ts";
 * import type { Tensor1D, Tensor2D } from "../../mod.ts";
 * await initBackend({ backend: "cpu" });
 * const theta = tf.tensor4d([0, Math.PI / 2], [1, 1, 2, 1]);
 * const omega = tf.zeros([1, 1]) as Tensor2D, k = tf.ones([1]) as Tensor1D;
 * const apart = Array.from(kuramotoStep(theta, omega, k).dataSync());
 * assert.ok(Math.abs(apart[0] + 0.05) < 1e-6 && Math.abs(apart[1] - 1.6207963) < 1e-6);
 * const together = Array.from(kuramotoStep(theta, omega, k, { sign: "attractive" }).dataSync());
 * assert.ok(Math.abs(together[0] - 0.05) < 1e-6 && Math.abs(together[1] - 1.5207963) < 1e-6);
 * ```
 *
 * @category PhaseGPT
 */
export function kuramotoStep(
  theta: Tensor4D,
  omega: Tensor2D,
  coupling: Tensor1D,
  options: KuramotoStepOptions = {},
): Tensor4D {
  const o = resolveStepOptions(options);
  if (theta.rank !== 4) throw new Error(`kuramotoStep: theta must be [B, H, T, N], got [${theta.shape}]`);
  const [, h, , n] = theta.shape;
  if (omega.shape[0] !== h || omega.shape[1] !== n) {
    throw new Error(`kuramotoStep: omega must be [H, N] = [${h}, ${n}], got [${omega.shape}]`);
  }
  if (coupling.rank !== 1 || coupling.shape[0] !== h) {
    throw new Error(`kuramotoStep: coupling must be [H] = [${h}], got [${coupling.shape}]`);
  }
  return tf.tidy(() => {
    const { field } = couplingField(theta, coupling, { ...o, scale: o.dt }); // field · dt
    const w = tf.mul(tf.reshape(omega, [1, h, 1, n]), o.dt);
    return wrapPhase(tf.add(tf.add(theta, w), field) as Tensor4D);
  });
}

/**
 * The order-parameter definitions. `"layer"`: R[b, h] over tokens and oscillators jointly (the layer's
 * own R, spec §2.4); `"oscillators"`: over the last axis only (`compute_order_parameter`, §3.1);
 * `"heads-mean"`: the interpretability script's arithmetic mean of the angles over heads, then R over
 * oscillators per token (§7, at chance ≈ 0.876 for uniform phases); `"circular-heads"`: the circular mean
 * over heads instead, then R over oscillators per token.
 *
 * @category PhaseGPT
 */
export type OrderParameterDefinition = "layer" | "oscillators" | "heads-mean" | "circular-heads";

/**
 * The order-parameter definitions, for validation messages.
 *
 * @category PhaseGPT
 */
export const ORDER_PARAMETER_DEFINITIONS: readonly OrderParameterDefinition[] = [
  "layer",
  "oscillators",
  "heads-mean",
  "circular-heads",
];

/** √x with gradient 0 at x = 0 (what PyTorch's complex abs gives), instead of ∞. */
const safeSqrt = tf.customGrad(
  // customGrad's typing cannot express (tensor, save); the runtime passes exactly that.
  ((x: Tensor, save: tf.GradSaveFunc) => {
    const y = tf.sqrt(x);
    save([y]);
    return {
      value: y,
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const r = saved[0];
        const safe = tf.maximum(r, 1e-12);
        return [tf.where(tf.greater(r, 1e-12), tf.div(tf.mul(dy, 0.5), safe), tf.zerosLike(r))];
      },
    };
  }) as unknown as (...args: (Tensor | tf.GradSaveFunc)[]) => { value: Tensor; gradFunc: () => Tensor[] },
) as (x: Tensor) => Tensor;

/** |mean of e^{iθ}| over `axes`, from the means of cos and sin (no complex tensors). */
function resultant(c: Tensor, s: Tensor, axes: number[]): Tensor {
  const mc = tf.mean(c, axes), ms = tf.mean(s, axes);
  return safeSqrt(tf.add(tf.square(mc), tf.square(ms)));
}

/**
 * The Kuramoto order parameter R = |mean e^{iθ}| ∈ [0, 1] under a named definition (see
 * {@linkcode OrderParameterDefinition}). `"oscillators"` takes any rank and drops the last axis; the others
 * take `[B, H, T, N]` and return `[B, H]` (`"layer"`) or `[B, T]`. Computed from cos/sin means, with a
 * finite (zero) gradient at R = 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { orderParameter, tf, initBackend } from "../../mod.ts";
 * await initBackend({ backend: "cpu" });
 * const sync = orderParameter(tf.zeros([2, 32]), "oscillators"); // all in phase: R = 1
 * assert.deepEqual(Array.from(sync.dataSync()), [1, 1]);
 * const half = tf.concat([tf.zeros([1, 16]), tf.fill([1, 16], Math.PI)], 1); // 0 and π cancel
 * assert.ok(orderParameter(half, "oscillators").dataSync()[0] < 1e-6);
 * assert.throws(() => orderParameter(half, "tokens" as never), /use one of layer, oscillators/);
 * ```
 *
 * @category PhaseGPT
 */
export function orderParameter(phases: Tensor, definition: OrderParameterDefinition = "oscillators"): Tensor {
  const def = checkChoice(definition, ORDER_PARAMETER_DEFINITIONS, "order-parameter definition");
  if (def !== "oscillators" && phases.rank !== 4) {
    throw new Error(`orderParameter("${def}"): phases must be [B, H, T, N], got [${phases.shape}]`);
  }
  return tf.tidy(() => {
    switch (def) {
      case "oscillators":
        return resultant(tf.cos(phases), tf.sin(phases), [phases.rank - 1]);
      case "layer":
        return resultant(tf.cos(phases), tf.sin(phases), [2, 3]);
      case "heads-mean": {
        const phi = tf.mean(phases, 1); // arithmetic mean of angles, as the script does
        return resultant(tf.cos(phi), tf.sin(phi), [2]);
      }
      case "circular-heads": {
        // Circular mean direction over heads as a unit vector (no atan2, so no NaN at a zero resultant).
        const mc = tf.mean(tf.cos(phases), 1), ms = tf.mean(tf.sin(phases), 1);
        const norm = tf.sqrt(tf.add(tf.add(tf.square(mc), tf.square(ms)), 1e-12));
        return resultant(tf.div(mc, norm), tf.div(ms, norm), [2]);
      }
    }
  });
}

/**
 * Modes of {@linkcode coherenceRegularizer}: `"ceiling"` penalises R̄ above the target, `"center"` any
 * distance from it, `"band"` leaving [target − 0.1, target + 0.1].
 *
 * @category PhaseGPT
 */
export type CoherenceMode = "ceiling" | "center" | "band";

/**
 * The regulariser modes, for validation messages.
 *
 * @category PhaseGPT
 */
export const COHERENCE_MODES: readonly CoherenceMode[] = ["ceiling", "center", "band"];

/**
 * Options of {@linkcode coherenceRegularizer}.
 *
 * @category PhaseGPT
 */
export interface CoherenceOptions {
  /** Target R (default 0.45). */
  target?: number;
  /** Weight λ (default 0.1; the mixer's aux term uses 1 and takes its weight from the training config). */
  lambda?: number;
  /** Penalty shape (default `"ceiling"`). */
  mode?: CoherenceMode;
}

/**
 * The coherence regulariser of spec §3.3: R̄ = global mean of the per-token R over oscillators, then
 * λ·max(R̄ − target, 0)² (`ceiling`), λ·(R̄ − target)² (`center`) or the squared distance out of the band
 * target ± 0.1 (`band`). Unlike the original (which fed it detached phases) its gradient reaches the
 * phases.
 *
 * @example All-zero phases have R̄ = 1: ceiling loss 0.1·0.55² = 0.03025
 * ```ts
 * import assert from "node:assert/strict";
 * import { coherenceRegularizer, tf, initBackend } from "../../mod.ts";
 * await initBackend({ backend: "cpu" });
 * const loss = coherenceRegularizer(tf.zeros([1, 1, 4, 8]));
 * assert.ok(Math.abs(loss.dataSync()[0] - 0.03025) < 1e-6);
 * assert.throws(() => coherenceRegularizer(tf.zeros([2, 2]), { mode: "centre" as never }), /did you mean center/);
 * ```
 *
 * @category PhaseGPT
 */
export function coherenceRegularizer(phases: Tensor, options: CoherenceOptions = {}): Scalar {
  checkOptionKeys(options, ["target", "lambda", "mode"], "coherenceRegularizer");
  const target = options.target ?? 0.45, lambda = options.lambda ?? 0.1;
  for (const [k, v] of [["target", target], ["lambda", lambda]] as const) {
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new Error(`coherenceRegularizer: ${k} must be a finite number, got ${JSON.stringify(v)}`);
    }
  }
  const mode = checkChoice(options.mode ?? "ceiling", COHERENCE_MODES, "coherence regularizer mode");
  return tf.tidy(() => {
    const r = tf.mean(orderParameter(phases, "oscillators"));
    let pen: Tensor;
    if (mode === "ceiling") pen = tf.square(tf.relu(tf.sub(r, target)));
    else if (mode === "center") pen = tf.square(tf.sub(r, target));
    else {
      pen = tf.add(
        tf.square(tf.relu(tf.sub(target - 0.1, r))),
        tf.square(tf.relu(tf.sub(r, target + 0.1))),
      );
    }
    return tf.mul(pen, lambda) as Scalar;
  });
}

/**
 * A seeded source for the perturbations: a seed (stream 0) or a {@linkcode Prng} that advances.
 *
 * @category PhaseGPT
 */
export type NoiseSource = number | Prng;

function normals(shape: number[], std: number, source: NoiseSource): Tensor {
  const rng = typeof source === "number" ? new Prng(source) : source;
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(fillNormal(new Float32Array(size), 0, std, rng), shape, "float32");
}

/**
 * Phase noise θ + N(0, σ²) elementwise, without re-wrapping (spec §3.2; σ default 0.03). Draws from the
 * project PRNG, never tfjs' global randomness; σ = 0 returns an unchanged copy.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { addPhaseNoise, orderParameter, tf, initBackend } from "../../mod.ts";
 * await initBackend({ backend: "cpu" });
 * const z = tf.zeros([10, 32]);
 * const noisy = addPhaseNoise(z, 0.3, 7);
 * assert.ok(tf.mean(orderParameter(noisy)).dataSync()[0] < 1); // noise lowers R of synced phases
 * assert.deepEqual(noisy.dataSync(), addPhaseNoise(z, 0.3, 7).dataSync()); // same seed, same draw
 * ```
 *
 * @category PhaseGPT
 */
export function addPhaseNoise<T extends Tensor>(theta: T, sigma = 0.03, source: NoiseSource = 0): T {
  if (typeof sigma !== "number" || !Number.isFinite(sigma) || sigma < 0) {
    throw new Error(`addPhaseNoise: sigma must be a non-negative number, got ${JSON.stringify(sigma)}`);
  }
  if (sigma === 0) return tf.clone(theta);
  return tf.tidy(() => tf.add(theta, normals(theta.shape, sigma, source)) as T);
}

/**
 * Multiplicative frequency jitter ω ⊙ (1 + N(0, jitter²)) (spec §3.2; default 0.02): zero frequencies
 * stay zero. Seeded like {@linkcode addPhaseNoise}; jitter 0 returns an unchanged copy.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { addFrequencyJitter, tf, initBackend } from "../../mod.ts";
 * await initBackend({ backend: "cpu" });
 * const w = addFrequencyJitter(tf.ones([32]), 0.1, 3);
 * assert.ok(tf.moments(w).variance.dataSync()[0] > 0);
 * assert.deepEqual(Array.from(addFrequencyJitter(tf.zeros([3]), 0.1, 3).dataSync()), [0, 0, 0]);
 * ```
 *
 * @category PhaseGPT
 */
export function addFrequencyJitter<T extends Tensor>(omega: T, jitter = 0.02, source: NoiseSource = 0): T {
  if (typeof jitter !== "number" || !Number.isFinite(jitter) || jitter < 0) {
    throw new Error(
      `addFrequencyJitter: jitter must be a non-negative number, got ${JSON.stringify(jitter)}`,
    );
  }
  if (jitter === 0) return tf.clone(omega);
  return tf.tidy(() => tf.mul(omega, tf.add(normals(omega.shape, jitter, source), 1)) as T);
}
