/**
 * Stochastic control-barrier-function (CBF) safety filter of Recync v3 (spec §3.2), solved as a small
 * QP with our active-set solver ({@link solveQP}).
 *
 * Safe set {Z : hⱼ(Z) ≥ 0 for every barrier j}. With drift f(Z) = −∇U(Z − Z*) and Z' = f + G u + σ·noise,
 * each barrier imposes the linear (in u) condition
 *
 *   ∇hⱼᵀ (f + G u) + ½ tr(σσᵀ ∇²hⱼ) ≥ −γ hⱼ,
 *
 * and the filter returns the u closest to a reference u_ref in the R-norm that satisfies all of them and
 * the box u_min ≤ u ≤ u_max, the box being the sampling ranges T ∈ [T_min, T_max], p ∈ [p_min, 1]
 * mapped through the Ψ map (T = T₀ + ΔT, p = p₀ + Δp, η = hidden-state correction, off by default).
 *
 * When the barrier conditions cannot all hold inside the box, the documented fallback is the
 * least-violating control: one shared slack s ≥ 0 is added to every barrier row with penalty ½ρs², and
 * the result is flagged `relaxed: true`.
 *
 * Every constant below (G, σ, γ, the barrier levels, the box) is a [TS] placeholder, not upstream's.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CbfSafetyFilter } from "./cbf.ts";
 * const filter = new CbfSafetyFilter();
 * // A strong cooling request while λ is already near λ_max gets softened.
 * const r = filter.filter([0.78, 0.5, 1.0], [-0.35, -0.1]);
 * assert.ok(r.changed && r.u[0] > -0.35);
 * ```
 *
 * @module
 */
import { QPInfeasibleError, type QPResult, solveQP } from "./qp.ts";
import { DEFAULT_GL_PARAMS, GLPotential, type GLPotentialParams, sdeDrift } from "./potential.ts";

/**
 * A barrier function h with h ≥ 0 on the safe set.
 *
 * @category Recync
 */
export interface Barrier {
  /** Short name for logs, e.g. "lambdaMax". */
  name: string;
  /** h(Z). */
  value(Z: readonly number[]): number;
  /** ∇h(Z). */
  gradient(Z: readonly number[]): number[];
  /** ∇²h(Z); omit for affine barriers (zero Hessian, no Itô term). */
  hessian?(Z: readonly number[]): number[][];
}

/**
 * An affine barrier h(Z) = wᵀZ + β.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { affineBarrier } from "./cbf.ts";
 * const h = affineBarrier("lambdaMax", [-1, 0, 0], 0.8); // h = 0.8 − λ
 * assert.ok(Math.abs(h.value([0.5, 0, 0]) - 0.3) < 1e-12);
 * ```
 *
 * @category Recync
 */
export function affineBarrier(name: string, w: number[], beta: number): Barrier {
  return {
    name,
    value: (Z) => w.reduce((s, wi, i) => s + wi * Z[i], beta),
    gradient: () => [...w],
  };
}

/**
 * Safe levels of the default barriers (spec §3.2 [TS]).
 *
 * @category Recync
 */
export interface BarrierLevels {
  /** λ ≤ lambdaMax (no attention locking). Default 0.8. */
  lambdaMax?: number;
  /** λ_sem ≥ lambdaSemMin (no semantic drift). Default 0.0. */
  lambdaSemMin?: number;
  /** z ≥ zMin (no structural fragmentation). Default 0.2. */
  zMin?: number;
}

/**
 * The three default barriers on Z = [λ, λ_sem, z]: λ_max − λ, λ_sem − λ_sem,min, z − z_min.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultBarriers } from "./cbf.ts";
 * assert.deepEqual(defaultBarriers().map((b) => b.name), ["lambdaMax", "lambdaSemMin", "zMin"]);
 * ```
 *
 * @category Recync
 */
export function defaultBarriers(levels: BarrierLevels = {}): Barrier[] {
  return [
    affineBarrier("lambdaMax", [-1, 0, 0], levels.lambdaMax ?? 0.8),
    affineBarrier("lambdaSemMin", [0, 1, 0], -(levels.lambdaSemMin ?? 0.0)),
    affineBarrier("zMin", [0, 0, 1], -(levels.zMin ?? 0.2)),
  ];
}

/**
 * Placeholder input matrix G (rows λ, λ_sem, z; columns ΔT, Δp, η) [TS]: cooling (ΔT < 0) or a narrower
 * nucleus (Δp < 0) raises synchrony λ and also coherence λ_sem and persistence z; the hidden-state
 * correction η raises λ_sem.
 *
 * @category Recync
 */
export const DEFAULT_CBF_G: number[][] = [
  [-0.5, -0.25, 0],
  [-0.3, -0.15, 0.5],
  [-0.3, -0.15, 0],
];

/**
 * Configuration of {@link CbfSafetyFilter}; every default is a [TS] placeholder.
 *
 * @category Recync
 */
export interface CbfConfig {
  /** Potential whose negative gradient is the drift f. Default {@link DEFAULT_GL_PARAMS}. */
  potential?: GLPotentialParams;
  /** Barriers. Default {@link defaultBarriers}(). */
  barriers?: Barrier[];
  /** Input matrix (dim Z × dim u). Default: the first `controlDim` columns of {@link DEFAULT_CBF_G}. */
  G?: number[][];
  /** Noise σ (scalar or per coordinate) entering the Itô term. Default 0.05. */
  sigma?: number | number[];
  /** Class-K gain γ > 0. Default 0.5. */
  gamma?: number;
  /** Control weights: the diagonal of R, length controlDim. Default all 1. */
  weights?: number[];
  /** 2 for u = (ΔT, Δp); 3 adds the hidden-state correction η. Default 2 (η off, spec §3.2). */
  controlDim?: 2 | 3;
  /** Ψ-map base temperature T₀. Default 1.0. */
  baseTemperature?: number;
  /** Ψ-map base top-p p₀. Default 0.9. */
  baseTopP?: number;
  /** Temperature range. Default [0.5, 1.5]. */
  temperatureRange?: [number, number];
  /** Top-p range. Default [0.5, 1.0]. */
  topPRange?: [number, number];
  /** Range of η when controlDim is 3. Default [0, 0.5]. */
  etaRange?: [number, number];
  /** Slack penalty ρ of the relaxed fallback. Default 1e4. */
  slackPenalty?: number;
}

/**
 * The outcome of {@link CbfSafetyFilter.filter}.
 *
 * @category Recync
 */
export interface CbfFilterResult {
  /** The safe control. */
  u: number[];
  /** The requested control. */
  uRef: number[];
  /** Whether u differs from uRef (by more than 1e-9 in any coordinate). */
  changed: boolean;
  /** True when the barrier conditions were infeasible inside the box and the slack fallback was used. */
  relaxed: boolean;
  /** Slack used by the fallback (0 otherwise). */
  slack: number;
  /** Names of the barriers whose condition is active (binding) at u. */
  activeBarriers: string[];
  /** hⱼ(Z) per barrier. */
  barrierValues: number[];
  /** The sampling parameters of u through the Ψ map. */
  sampling: { temperature: number; topP: number; eta: number };
}

/**
 * The CBF-QP safety filter.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CbfSafetyFilter } from "./cbf.ts";
 * const f = new CbfSafetyFilter({ gamma: 1 });
 * const r = f.filter([0.3, 0.5, 1.0], [-0.1, 0]); // far from every barrier: unchanged
 * assert.equal(r.changed, false);
 * assert.equal(r.sampling.temperature, 0.9);
 * ```
 *
 * @category Recync
 */
export class CbfSafetyFilter {
  /** The potential behind the drift. */
  readonly potential: GLPotential;
  /** Barriers in use. */
  readonly barriers: Barrier[];
  /** Input matrix G (dim Z × controlDim). */
  readonly G: number[][];
  /** Control dimension. */
  readonly controlDim: 2 | 3;
  /** Lower box of u. */
  readonly uMin: number[];
  /** Upper box of u. */
  readonly uMax: number[];
  readonly #sigma: number[];
  readonly #gamma: number;
  readonly #weights: number[];
  readonly #baseT: number;
  readonly #baseP: number;
  readonly #slackPenalty: number;

  /** Validates the configuration. */
  constructor(config: CbfConfig = {}) {
    this.potential = new GLPotential(config.potential ?? DEFAULT_GL_PARAMS);
    const n = this.potential.dim;
    this.controlDim = config.controlDim ?? 2;
    if (this.controlDim !== 2 && this.controlDim !== 3) {
      throw new Error("CbfConfig.controlDim must be 2 or 3");
    }
    this.G = config.G ?? DEFAULT_CBF_G.map((row) => row.slice(0, this.controlDim));
    if (this.G.length !== n || this.G.some((r) => r.length !== this.controlDim)) {
      throw new Error(`CbfConfig.G must be ${n} × ${this.controlDim} (dim Z × controlDim)`);
    }
    this.barriers = config.barriers ?? defaultBarriers();
    const sigma = config.sigma ?? 0.05;
    this.#sigma = typeof sigma === "number" ? new Array<number>(n).fill(sigma) : [...sigma];
    if (this.#sigma.length !== n) throw new Error(`CbfConfig.sigma must have ${n} entries`);
    this.#gamma = config.gamma ?? 0.5;
    if (!(this.#gamma > 0)) throw new Error(`CbfConfig.gamma must be > 0, got ${this.#gamma}`);
    this.#weights = config.weights ?? new Array<number>(this.controlDim).fill(1);
    if (this.#weights.length !== this.controlDim || this.#weights.some((w) => !(w > 0))) {
      throw new Error(`CbfConfig.weights must be ${this.controlDim} positive numbers`);
    }
    this.#baseT = config.baseTemperature ?? 1.0;
    this.#baseP = config.baseTopP ?? 0.9;
    const [tMin, tMax] = config.temperatureRange ?? [0.5, 1.5];
    const [pMin, pMax] = config.topPRange ?? [0.5, 1.0];
    const [eMin, eMax] = config.etaRange ?? [0, 0.5];
    if (!(tMin > 0 && tMin <= tMax)) throw new Error(`CbfConfig.temperatureRange must satisfy 0 < min ≤ max`);
    if (!(pMin > 0 && pMin <= pMax && pMax <= 1)) throw new Error(`CbfConfig.topPRange must lie in (0, 1]`);
    if (!(eMin <= eMax)) throw new Error(`CbfConfig.etaRange must be ascending`);
    this.uMin = [tMin - this.#baseT, pMin - this.#baseP, eMin].slice(0, this.controlDim);
    this.uMax = [tMax - this.#baseT, pMax - this.#baseP, eMax].slice(0, this.controlDim);
    this.#slackPenalty = config.slackPenalty ?? 1e4;
  }

  /**
   * Ψ map: u = (ΔT, Δp[, η]) → sampling parameters.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { CbfSafetyFilter } from "./cbf.ts";
   * const s = new CbfSafetyFilter().toSampling([-0.25, -0.05]);
   * assert.deepEqual([s.temperature, s.topP, s.eta].map((v) => +v.toFixed(6)), [0.75, 0.85, 0]);
   * ```
   */
  toSampling(u: readonly number[]): { temperature: number; topP: number; eta: number } {
    return { temperature: this.#baseT + u[0], topP: this.#baseP + u[1], eta: u[2] ?? 0 };
  }

  /** Inverse Ψ map: sampling parameters → u. */
  fromSampling(temperature: number, topP: number, eta = 0): number[] {
    return [temperature - this.#baseT, topP - this.#baseP, eta].slice(0, this.controlDim);
  }

  /**
   * The barrier conditions at Z as linear inequalities A u ≤ b (one row per barrier).
   */
  constraints(Z: readonly number[]): { A: number[][]; b: number[]; values: number[] } {
    if (Z.length !== this.potential.dim) {
      throw new Error(`CbfSafetyFilter: Z has ${Z.length} entries, expected ${this.potential.dim}`);
    }
    if (Z.some((v) => !Number.isFinite(v))) throw new Error(`CbfSafetyFilter: Z contains a non-finite value`);
    const f = sdeDrift(this.potential, Z);
    const A: number[][] = [];
    const b: number[] = [];
    const values: number[] = [];
    for (const barrier of this.barriers) {
      const h = barrier.value(Z);
      const g = barrier.gradient(Z);
      let ito = 0;
      if (barrier.hessian) {
        const H = barrier.hessian(Z);
        for (let i = 0; i < this.#sigma.length; i++) ito += 0.5 * this.#sigma[i] * this.#sigma[i] * H[i][i];
      }
      // ∇hᵀ(f + G u) + ito ≥ −γh  ⇔  −(∇hᵀG) u ≤ ∇hᵀf + ito + γh
      const gG = Array.from(
        { length: this.controlDim },
        (_, k) => g.reduce((s, gi, i) => s + gi * this.G[i][k], 0),
      );
      A.push(gG.map((v) => -v));
      b.push(g.reduce((s, gi, i) => s + gi * f[i], 0) + ito + this.#gamma * h);
      values.push(h);
    }
    return { A, b, values };
  }

  /**
   * The safe control nearest to `uRef` (R-weighted) at the order parameters Z.
   *
   * @param Z current order parameters [λ, λ_sem, z]
   * @param uRef requested control (ΔT, Δp[, η])
   */
  filter(Z: readonly number[], uRef: readonly number[]): CbfFilterResult {
    if (uRef.length !== this.controlDim) {
      throw new Error(`CbfSafetyFilter.filter: uRef has ${uRef.length} entries, expected ${this.controlDim}`);
    }
    const { A, b, values } = this.constraints(Z);
    const m = this.controlDim;
    const W = this.#weights;
    const Q = W.map((w, i) => W.map((_, j) => (i === j ? w : 0)));
    const c = uRef.map((v, i) => -W[i] * v);
    let result: QPResult;
    let relaxed = false;
    let slack = 0;
    let u: number[];
    try {
      result = solveQP({ Q, c, A, b, lo: this.uMin, hi: this.uMax });
      u = result.x;
    } catch (e) {
      if (!(e instanceof QPInfeasibleError)) throw e;
      // Least-violating fallback: variables (u, s), rows −(∇hᵀG)u − s ≤ rhs, s ≥ 0.
      const Qs = [...Q.map((row) => [...row, 0]), [...new Array<number>(m).fill(0), this.#slackPenalty]];
      result = solveQP({
        Q: Qs,
        c: [...c, 0],
        A: A.map((row) => [...row, -1]),
        b,
        lo: [...this.uMin, 0],
        hi: [...this.uMax, Infinity],
      });
      u = result.x.slice(0, m);
      slack = result.x[m];
      relaxed = true;
    }
    const tol = 1e-9;
    const activeBarriers = this.barriers
      .filter((_, j) => A[j].reduce((s, a, k) => s + a * u[k], 0) - slack >= b[j] - 1e-7)
      .map((br) => br.name);
    return {
      u,
      uRef: [...uRef],
      changed: u.some((v, i) => Math.abs(v - uRef[i]) > tol),
      relaxed,
      slack,
      activeBarriers,
      barrierValues: values,
      sampling: this.toSampling(u),
    };
  }
}
