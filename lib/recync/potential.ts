/**
 * The Ginzburg–Landau potential of Recync v3 (spec §3.2) over the order-parameter error e = Z − Z*:
 *
 *   U(e) = Σᵢ (aᵢ/2) eᵢ² + Σ_{i<j} cᵢⱼ eᵢ eⱼ + Σᵢ (bᵢ/4) eᵢ⁴,   bᵢ > 0,
 *
 * its gradient and Hessian, and one Euler–Maruyama step of the overdamped Langevin SDE
 *
 *   dZ = [−∇U(Z − Z*) + G u] dt + σ dW
 *
 * used for one-token-ahead prediction (Δt = 1 token). The functional form is a reconstruction and every
 * constant is a placeholder of ours ([TS]); upstream's coefficients are unknown.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GLPotential } from "./potential.ts";
 * const U = new GLPotential({ a: [-1], b: [1] }); // double well with minima at e = ±1
 * assert.equal(U.value([1]), -0.25);
 * assert.deepEqual(Array.from(U.gradient([1])), [0]);
 * ```
 *
 * @module
 */
/**
 * Source of standard normal draws: in practice our seeded `Prng` (lib/random/prng.ts), which has
 * this method. Typed structurally so that this module needs nothing else from it.
 *
 * @category Recync
 */
export interface NormalSource {
  /** One draw from N(0, 1). */
  nextNormal(): number;
}

/**
 * Coefficients of {@link GLPotential}; all vectors have the dimension n of Z.
 *
 * @category Recync
 */
export interface GLPotentialParams {
  /** Quadratic coefficients aᵢ (negative: double well). */
  a: number[];
  /** Quartic coefficients bᵢ, all > 0 (coercivity). */
  b: number[];
  /** Symmetric coupling matrix; only the strict upper triangle cᵢⱼ (i < j) is read. Default: zeros. */
  c?: number[][];
  /** Target Z*; default zeros. */
  target?: number[];
}

/**
 * Placeholder potential for Z = [λ, λ_sem, z] [TS]: shallow single wells (a > 0; a restoring drift of
 * about 10 % of the error per token) around a coherent target λ* = 0.3, λ_sem* = 0.5, z* = 1.0, weak
 * coupling. Not upstream values.
 *
 * @category Recync
 */
export const DEFAULT_GL_PARAMS: GLPotentialParams = {
  a: [0.1, 0.1, 0.1],
  b: [0.1, 0.1, 0.1],
  c: [[0, 0.02, 0], [0.02, 0, 0.02], [0, 0.02, 0]],
  target: [0.3, 0.5, 1.0],
};

/**
 * A Ginzburg–Landau (Landau expansion) potential about a target Z*.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GLPotential } from "./potential.ts";
 * const U = new GLPotential({ a: [1, 2], b: [1, 1], c: [[0, 0.5], [0.5, 0]] });
 * assert.equal(U.value([1, 1]), 2.5); // 0.5 + 1 + 0.5 + 0.25 + 0.25
 * ```
 *
 * @category Recync
 */
export class GLPotential {
  /** Dimension n. */
  readonly dim: number;
  /** Quadratic coefficients. */
  readonly a: readonly number[];
  /** Quartic coefficients. */
  readonly b: readonly number[];
  /** Full symmetric coupling matrix (zero diagonal), built from the upper triangle. */
  readonly c: readonly (readonly number[])[];
  /** Target Z*. */
  readonly target: readonly number[];

  /** Validates and stores the coefficients. */
  constructor(params: GLPotentialParams) {
    const n = params.a.length;
    if (n === 0) throw new Error("GLPotential: params.a is empty");
    if (params.b.length !== n) {
      throw new Error(`GLPotential: params.b has ${params.b.length} entries, expected ${n}`);
    }
    params.a.forEach((v, i) => {
      if (!Number.isFinite(v)) throw new Error(`GLPotential: params.a[${i}] is not finite`);
    });
    params.b.forEach((v, i) => {
      if (!(v > 0) || !Number.isFinite(v)) {
        throw new Error(
          `GLPotential: params.b[${i}] = ${v} must be finite and > 0 (the quartic keeps U coercive)`,
        );
      }
    });
    const c = Array.from({ length: n }, () => new Array<number>(n).fill(0));
    if (params.c !== undefined) {
      if (params.c.length !== n || params.c.some((r) => r.length !== n)) {
        throw new Error(`GLPotential: params.c must be ${n} × ${n}`);
      }
      for (let i = 0; i < n; i++) {
        for (let j = i + 1; j < n; j++) {
          const v = params.c[i][j];
          if (!Number.isFinite(v)) throw new Error(`GLPotential: params.c[${i}][${j}] is not finite`);
          c[i][j] = v;
          c[j][i] = v;
        }
      }
    }
    const target = params.target ?? new Array<number>(n).fill(0);
    if (target.length !== n) {
      throw new Error(`GLPotential: params.target has ${target.length} entries, expected ${n}`);
    }
    this.dim = n;
    this.a = [...params.a];
    this.b = [...params.b];
    this.c = c;
    this.target = [...target];
  }

  #check(e: readonly number[], what: string): void {
    if (e.length !== this.dim) {
      throw new Error(`GLPotential.${what}: expected ${this.dim} entries, got ${e.length}`);
    }
  }

  /** e = Z − Z*. */
  error(Z: readonly number[]): number[] {
    this.#check(Z, "error");
    return Z.map((v, i) => v - this.target[i]);
  }

  /** U(e). */
  value(e: readonly number[]): number {
    this.#check(e, "value");
    let u = 0;
    for (let i = 0; i < this.dim; i++) {
      const e2 = e[i] * e[i];
      u += 0.5 * this.a[i] * e2 + 0.25 * this.b[i] * e2 * e2;
      for (let j = i + 1; j < this.dim; j++) u += this.c[i][j] * e[i] * e[j];
    }
    return u;
  }

  /** ∇U(e)ᵢ = aᵢeᵢ + Σ_{j≠i} cᵢⱼeⱼ + bᵢeᵢ³. */
  gradient(e: readonly number[]): number[] {
    this.#check(e, "gradient");
    return e.map((ei, i) => {
      let g = this.a[i] * ei + this.b[i] * ei * ei * ei;
      for (let j = 0; j < this.dim; j++) if (j !== i) g += this.c[i][j] * e[j];
      return g;
    });
  }

  /** ∇²U(e) = diag(aᵢ + 3bᵢeᵢ²) + C. */
  hessian(e: readonly number[]): number[][] {
    this.#check(e, "hessian");
    return Array.from(
      { length: this.dim },
      (_, i) =>
        Array.from(
          { length: this.dim },
          (_, j) => (i === j ? this.a[i] + 3 * this.b[i] * e[i] * e[i] : this.c[i][j]),
        ),
    );
  }

  /**
   * Minima of a decoupled coordinate: e = 0 when aᵢ ≥ 0, else the double-well minima ±√(−aᵢ/bᵢ).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { GLPotential } from "./potential.ts";
   * assert.deepEqual(Array.from(new GLPotential({ a: [-4], b: [1] }).wellMinima(0)), [-2, 2]);
   * ```
   */
  wellMinima(i: number): number[] {
    if (!(i >= 0 && i < this.dim)) throw new Error(`GLPotential.wellMinima: index ${i} out of range`);
    if (this.a[i] >= 0) return [0];
    const r = Math.sqrt(-this.a[i] / this.b[i]);
    return [-r, r];
  }
}

/**
 * Options of {@link eulerMaruyamaStep}.
 *
 * @category Recync
 */
export interface EulerMaruyamaOptions {
  /** Time step; default 1 (one token). */
  dt?: number;
  /** Noise scale σ: a scalar (isotropic) or one value per coordinate. Default 0 (deterministic). */
  sigma?: number | number[];
  /** Control input u (length m); default none. */
  u?: number[];
  /** Input matrix G (n × m) mapping u to dZ/dt; required when u is given. */
  G?: number[][];
  /** Seeded PRNG (lib/random/prng.ts) for the Wiener increments; required when σ ≠ 0. */
  rng?: NormalSource;
}

/**
 * Drift f(Z) + G u of the SDE at Z: −∇U(Z − Z*) + G u.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GLPotential, sdeDrift } from "./potential.ts";
 * const U = new GLPotential({ a: [1], b: [1], target: [0.5] });
 * assert.deepEqual(Array.from(sdeDrift(U, [1.5])), [-2]); // −(1·1 + 1·1³)
 * ```
 *
 * @category Recync
 */
export function sdeDrift(
  potential: GLPotential,
  Z: readonly number[],
  u?: number[],
  G?: number[][],
): number[] {
  const grad = potential.gradient(potential.error(Z));
  const drift = grad.map((g) => -g);
  if (u !== undefined && u.length > 0) {
    if (G === undefined) throw new Error("sdeDrift: a control u needs the input matrix G");
    if (G.length !== potential.dim) {
      throw new Error(`sdeDrift: G has ${G.length} rows, expected ${potential.dim}`);
    }
    for (let i = 0; i < potential.dim; i++) {
      if (G[i].length !== u.length) {
        throw new Error(`sdeDrift: G[${i}] has ${G[i].length} entries, u has ${u.length}`);
      }
      for (let k = 0; k < u.length; k++) drift[i] += G[i][k] * u[k];
    }
  }
  return drift;
}

/**
 * One Euler–Maruyama step: Z' = Z + (−∇U(Z − Z*) + G u)·dt + σ·√dt·ξ with ξ ~ N(0, I) drawn from the
 * seeded PRNG. Used as a one-token-ahead prediction of the order parameters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { eulerMaruyamaStep, GLPotential } from "./potential.ts";
 * import { Prng } from "../random/prng.ts";
 * const U = new GLPotential({ a: [-1], b: [1] });
 * const next = eulerMaruyamaStep(U, [0.5], { dt: 0.1, sigma: 0.05, rng: new Prng(1) });
 * assert.equal(next.length, 1);
 * ```
 *
 * @category Recync
 */
export function eulerMaruyamaStep(
  potential: GLPotential,
  Z: readonly number[],
  options: EulerMaruyamaOptions = {},
): number[] {
  const dt = options.dt ?? 1;
  if (!(dt > 0)) throw new Error(`eulerMaruyamaStep: dt must be > 0, got ${dt}`);
  const drift = sdeDrift(potential, Z, options.u, options.G);
  const sigma = options.sigma ?? 0;
  const sig = typeof sigma === "number" ? new Array<number>(potential.dim).fill(sigma) : sigma;
  if (sig.length !== potential.dim) throw new Error(`eulerMaruyamaStep: sigma has ${sig.length} entries`);
  const noisy = sig.some((s) => s !== 0);
  if (noisy && options.rng === undefined) {
    throw new Error(
      "eulerMaruyamaStep: sigma ≠ 0 needs a seeded rng (new Prng(seed) from lib/random/prng.ts)",
    );
  }
  const sq = Math.sqrt(dt);
  return Z.map((z, i) => z + drift[i] * dt + (noisy ? sig[i] * sq * options.rng!.nextNormal() : 0));
}
