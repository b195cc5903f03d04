/**
 * The order parameter R at chance (spec §7): what each R definition gives for phases that carry no
 * structure at all, analytically and by seeded simulation, and for an untrained phase layer on random
 * inputs, beside the seed's 0.8837. Pure functions on plain arrays (no tensors), so the numbers are the
 * same on every backend and the result is plain JSON.
 *
 * Why this matters: the seed's "over-synchronisation" reading (R = 0.88) used the arithmetic mean of the
 * 12 heads' angles, which shrinks the spread of i.i.d. uniform angles to E[e^{iφ}] = (sin(π/H)/(π/H))^H
 * ≈ 0.872, so uniform random phases already give R ≈ 0.876 under that definition.
 *
 * @module
 */
import { Prng } from "../../random/prng.ts";
import { meanOf, standardDeviationOf } from "../../stats/descriptive.ts";
import type { RDefinition } from "./plan.ts";
import { ORDER_PARAMETER_DEFINITIONS } from "../primitives.ts";

/**
 * The seed's reported interpretability R (results/interpretability/notes.md): heads-mean definition.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SEED_R } from "./chance.ts";
 * assert.equal(SEED_R.mean, 0.8837);
 * ```
 *
 * @category PhaseGPT
 */
export const SEED_R = { mean: 0.8837, std: 0.0263, min: 0.8096, max: 0.9489 } as const;

/**
 * Summary statistics of a set of R values (population std).
 *
 * @category PhaseGPT
 */
export interface RStats {
  /** Mean. */
  mean: number;
  /** Population standard deviation. */
  std: number;
  /** Minimum. */
  min: number;
  /** Maximum. */
  max: number;
  /** Number of R values. */
  n: number;
}

/**
 * Shape of the phases `[H, T, N]` (one sequence): heads, tokens, oscillators per head.
 *
 * @category PhaseGPT
 */
export interface PhaseShape {
  /** Heads. */
  heads: number;
  /** Tokens. */
  tokens: number;
  /** Oscillators per head. */
  oscillators: number;
}

/**
 * Bessel J0 (rational approximations, |error| < 1e-7), for the exact mean length of a random walk.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { besselJ0 } from "./chance.ts";
 * assert.ok(Math.abs(besselJ0(0) - 1) < 1e-7);
 * assert.ok(Math.abs(besselJ0(2.404825557695773)) < 1e-6); // its first zero
 * ```
 *
 * @category PhaseGPT
 */
export function besselJ0(x: number): number {
  const ax = Math.abs(x);
  if (ax < 8) {
    const y = x * x;
    const n = 57568490574.0 +
      y * (-13362590354.0 + y * (651619640.7 + y * (-11214424.18 + y * (77392.33017 + y * -184.9052456))));
    const d = 57568490411.0 +
      y * (1029532985.0 + y * (9494680.718 + y * (59272.64853 + y * (267.8532712 + y))));
    return n / d;
  }
  const z = 8 / ax, y = z * z, xx = ax - 0.785398164;
  const p = 1 + y * (-0.1098628627e-2 + y * (0.2734510407e-4 + y * (-0.2073370639e-5 + y * 0.2093887211e-6)));
  const q = -0.1562499995e-1 +
    y * (0.1430488765e-3 + y * (-0.6911147651e-5 + y * (0.7621095161e-6 - y * 0.934935152e-7)));
  return Math.sqrt(0.636619772 / ax) * (Math.cos(xx) * p - z * Math.sin(xx) * q);
}

/**
 * E[R] of M i.i.d. uniform unit vectors: E|Σ e^{iθ}| / M = (1/M) ∫₀^∞ (1 − J0(k)^M) / k² dk (Kluyver's
 * random-walk integral), by Simpson's rule; for M > 256 the Rayleigh limit √(π/(4M)) (relative error
 * about 1/(8M)).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { expectedUniformR } from "./chance.ts";
 * assert.ok(Math.abs(expectedUniformR(1) - 1) < 1e-3);
 * assert.ok(Math.abs(expectedUniformR(2) - 4 / Math.PI / 2) < 1e-3); // E|e^{ia} + e^{ib}| = 4/π
 * ```
 *
 * @category PhaseGPT
 */
export function expectedUniformR(m: number): number {
  if (m > 256) return Math.sqrt(Math.PI / (4 * m)) * (1 - 1 / (8 * m));
  const K = 400, h = 0.005, steps = Math.round(K / h);
  const f = (k: number) => (k < 1e-6 ? m / 4 : (1 - besselJ0(k) ** m) / (k * k));
  let s = f(0) + f(K);
  for (let i = 1; i < steps; i++) s += (i % 2 ? 4 : 2) * f(i * h);
  // Tail beyond K: J0(k)^m is negligible for m ≥ 2, so ∫_K^∞ dk/k² = 1/K.
  return ((s * h) / 3 + 1 / K) / m;
}

/**
 * The analytic chance-level R of each definition for i.i.d. uniform phases of `shape`: the mean of R
 * (and its root-mean-square where the mean is only approximate).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { analyticChanceR } from "./chance.ts";
 * const a = analyticChanceR({ heads: 12, tokens: 512, oscillators: 32 });
 * assert.ok(Math.abs(a["heads-mean"].mean - 0.876) < 0.002); // spec §7
 * ```
 *
 * @category PhaseGPT
 */
export function analyticChanceR(
  shape: PhaseShape,
): Record<RDefinition, { mean: number; rms: number; how: string }> {
  const { heads: H, tokens: T, oscillators: N } = shape;
  const m = (Math.sin(Math.PI / H) / (Math.PI / H)) ** H;
  const msq = m * m + (1 - m * m) / N;
  return {
    layer: {
      mean: expectedUniformR(T * N),
      rms: Math.sqrt(1 / (T * N)),
      how: "R over (token, oscillator) jointly, per head: T·N uniform vectors",
    },
    oscillators: {
      mean: expectedUniformR(N),
      rms: Math.sqrt(1 / N),
      how: "R over the N oscillators, per head and token: N uniform vectors",
    },
    "heads-mean": {
      mean: Math.sqrt(msq),
      rms: Math.sqrt(msq),
      how: `arithmetic mean of the ${H} head angles, then R over N: E[e^{iφ}] = (sin(π/H)/(π/H))^H = ${
        m.toFixed(4)
      }; mean ≈ √(E[R²]) = √(m² + (1 − m²)/N)`,
    },
    "circular-heads": {
      mean: expectedUniformR(N),
      rms: Math.sqrt(1 / N),
      how: "circular mean of the head angles (uniform again), then R over N",
    },
  };
}

function stats(xs: number[]): RStats {
  let mn = Infinity, mx = -Infinity;
  for (const x of xs) {
    if (x < mn) mn = x;
    if (x > mx) mx = x;
  }
  return { mean: meanOf(xs), std: standardDeviationOf(xs, 0), min: mn, max: mx, n: xs.length };
}

/**
 * R of one phase array `theta` laid out `[H, T, N]` (row-major) under every definition: the values each
 * definition produces for one sequence (per head, per head-and-token, or per token).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rValues } from "./chance.ts";
 * const r = rValues(new Float64Array(2 * 3 * 4), { heads: 2, tokens: 3, oscillators: 4 }); // all zero phases
 * assert.deepEqual(r.layer, [1, 1]);
 * assert.equal(r["heads-mean"].length, 3);
 * ```
 *
 * @category PhaseGPT
 */
export function rValues(theta: ArrayLike<number>, shape: PhaseShape): Record<RDefinition, number[]> {
  const { heads: H, tokens: T, oscillators: N } = shape;
  const at = (h: number, t: number, n: number) => theta[(h * T + t) * N + n];
  const layer: number[] = [], osc: number[] = [], hm: number[] = [], ch: number[] = [];
  for (let h = 0; h < H; h++) {
    let c = 0, s = 0;
    for (let t = 0; t < T; t++) {
      let ct = 0, st = 0;
      for (let n = 0; n < N; n++) {
        const a = at(h, t, n);
        ct += Math.cos(a);
        st += Math.sin(a);
      }
      c += ct;
      s += st;
      osc.push(Math.hypot(ct, st) / N);
    }
    layer.push(Math.hypot(c, s) / (T * N));
  }
  for (let t = 0; t < T; t++) {
    let c1 = 0, s1 = 0, c2 = 0, s2 = 0;
    for (let n = 0; n < N; n++) {
      let mean = 0, hc = 0, hs = 0;
      for (let h = 0; h < H; h++) {
        const a = at(h, t, n);
        mean += a;
        hc += Math.cos(a);
        hs += Math.sin(a);
      }
      mean /= H;
      c1 += Math.cos(mean);
      s1 += Math.sin(mean);
      const psi = Math.atan2(hs, hc);
      c2 += Math.cos(psi);
      s2 += Math.sin(psi);
    }
    hm.push(Math.hypot(c1, s1) / N);
    ch.push(Math.hypot(c2, s2) / N);
  }
  return { layer, oscillators: osc, "heads-mean": hm, "circular-heads": ch };
}

/**
 * Options of {@linkcode chanceLevelR}.
 *
 * @category PhaseGPT
 */
export interface ChanceOptions {
  /** Phase shape (default the seed's: 12 heads, 512 tokens, 32 oscillators). */
  shape?: PhaseShape;
  /** Sequences simulated (default 4). */
  reps?: number;
  /** Seed of every draw (default 0). */
  seed?: number;
  /** Untrained-layer simulation: model width (default 768; 0 skips it). */
  dModel?: number;
  /** Coupling K0 of the untrained layer (default 1). */
  coupling?: number;
  /** Euler steps (default 10, dt 0.1). */
  steps?: number;
  /** Keep at most this many raw R values per definition for histograms (default 2000). */
  keepValues?: number;
}

/**
 * The whole chance-level analysis as JSON.
 *
 * @category PhaseGPT
 */
export interface ChanceReport {
  /** The seed's reported R (heads-mean definition, random tokens, trained winner). */
  seed: typeof SEED_R;
  /** Shape analysed. */
  shape: PhaseShape;
  /** Per definition: analytic, simulated uniform phases, untrained layer (faithful and corrected). */
  definitions: Record<RDefinition, {
    analytic: { mean: number; rms: number; how: string };
    uniform: RStats;
    untrained: { faithful: RStats; corrected: RStats } | null;
    values: { uniform: number[]; untrained: number[] };
  }>;
  /** Settings of the draws. */
  settings: Required<Omit<ChanceOptions, "shape">>;
}

/**
 * Phases of an untrained PhaseGPT layer on random inputs, simulated in plain JS: LayerNorm-ed inputs
 * x ~ N(0, 1) of width d, θ⁰ = π·tanh(x·W) with W ~ N(0, 0.02²) (the seed's init), ω ~ N(0, 0.1²), K = K0,
 * then `steps` Euler steps of dt 0.1 via the mean-field identity. `faithful`: repulsive sign, mean over all
 * T tokens; `corrected`: attractive sign, causal prefix mean. Returns `[H, T, N]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { untrainedLayerPhases } from "./chance.ts";
 * const th = untrainedLayerPhases({ heads: 2, tokens: 8, oscillators: 4 }, { dModel: 16, seed: 1, mode: "faithful" });
 * assert.equal(th.length, 2 * 8 * 4);
 * assert.ok(th.every((a) => a >= -Math.PI && a < Math.PI));
 * ```
 *
 * @category PhaseGPT
 */
export function untrainedLayerPhases(
  shape: PhaseShape,
  options: {
    dModel: number;
    seed: number;
    mode: "faithful" | "corrected";
    coupling?: number;
    steps?: number;
  },
): Float64Array {
  const { heads: H, tokens: T, oscillators: N } = shape;
  const d = options.dModel, F = H * N;
  // Separate streams: the same seed gives the same inputs and weights in both modes.
  const rx = new Prng(options.seed, 1), rw = new Prng(options.seed, 2), ro = new Prng(options.seed, 3);
  const x = new Float64Array(T * d);
  for (let i = 0; i < x.length; i++) x[i] = rx.nextNormal();
  const w = new Float64Array(d * F);
  for (let i = 0; i < w.length; i++) w[i] = 0.02 * rw.nextNormal();
  const omega = new Float64Array(F);
  for (let i = 0; i < F; i++) omega[i] = 0.1 * ro.nextNormal();
  const th = new Float64Array(H * T * N);
  for (let t = 0; t < T; t++) {
    for (let f = 0; f < F; f++) {
      let p = 0;
      for (let k = 0; k < d; k++) p += x[t * d + k] * w[k * F + f];
      const h = Math.floor(f / N), n = f % N; // head-major features, as the seed's reshape
      th[(h * T + t) * N + n] = Math.PI * Math.tanh(p);
    }
  }
  const K = options.coupling ?? 1, dt = 0.1, S = options.steps ?? 10;
  const faithful = options.mode === "faithful";
  const next = new Float64Array(th.length);
  for (let s = 0; s < S; s++) {
    for (let h = 0; h < H; h++) {
      for (let n = 0; n < N; n++) {
        let C = 0, Sn = 0;
        if (faithful) {
          for (let t = 0; t < T; t++) {
            const a = th[(h * T + t) * N + n];
            C += Math.cos(a);
            Sn += Math.sin(a);
          }
          C /= T;
          Sn /= T;
        }
        let pc = 0, ps = 0;
        for (let t = 0; t < T; t++) {
          const i = (h * T + t) * N + n, a = th[i];
          let force: number;
          if (faithful) force = K * (Math.sin(a) * C - Math.cos(a) * Sn); // mean_j sin(θ_i − θ_j)
          else {
            pc += Math.cos(a);
            ps += Math.sin(a);
            force = K * (Math.cos(a) * ps - Math.sin(a) * pc) / (t + 1); // mean_{j≤i} sin(θ_j − θ_i)
          }
          const v = a + dt * (omega[h * N + n] + force);
          next[i] = v - 2 * Math.PI * Math.floor((v + Math.PI) / (2 * Math.PI));
        }
      }
    }
    th.set(next);
  }
  return th;
}

function sample(xs: number[], k: number, rng: Prng): number[] {
  if (xs.length <= k) return xs.slice();
  const out: number[] = [];
  for (let i = 0; i < k; i++) out.push(xs[rng.nextInt(xs.length)]);
  return out;
}

/**
 * R at chance under each definition: analytic, simulated with i.i.d. uniform phases, and an untrained phase
 * layer (faithful and corrected) on random inputs, as JSON, beside the seed's 0.8837.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chanceLevelR } from "./chance.ts";
 * const r = chanceLevelR({ shape: { heads: 12, tokens: 64, oscillators: 32 }, reps: 2, dModel: 0 });
 * const hm = r.definitions["heads-mean"];
 * assert.ok(Math.abs(hm.uniform.mean - hm.analytic.mean) < 0.01);
 * assert.ok(hm.uniform.mean > 0.85); // chance level is already near the seed's 0.88
 * ```
 *
 * @category PhaseGPT
 */
export function chanceLevelR(options: ChanceOptions = {}): ChanceReport {
  const shape = options.shape ?? { heads: 12, tokens: 512, oscillators: 32 };
  const settings = {
    reps: options.reps ?? 4,
    seed: options.seed ?? 0,
    dModel: options.dModel ?? 768,
    coupling: options.coupling ?? 1,
    steps: options.steps ?? 10,
    keepValues: options.keepValues ?? 2000,
  };
  const size = shape.heads * shape.tokens * shape.oscillators;
  const rng = new Prng(settings.seed, 0);
  const defs = ORDER_PARAMETER_DEFINITIONS;
  const uni: Record<string, number[]> = {}, unt: Record<string, Record<string, number[]>> = {};
  for (const d of defs) {
    uni[d] = [];
    unt[d] = { faithful: [], corrected: [] };
  }
  for (let r = 0; r < settings.reps; r++) {
    const th = new Float64Array(size);
    for (let i = 0; i < size; i++) th[i] = (rng.nextFloat() * 2 - 1) * Math.PI;
    const v = rValues(th, shape);
    for (const d of defs) uni[d].push(...v[d]);
    if (settings.dModel > 0) {
      for (const mode of ["faithful", "corrected"] as const) {
        const p = untrainedLayerPhases(shape, { ...settings, seed: settings.seed * 1000 + r, mode });
        const u = rValues(p, shape);
        for (const d of defs) unt[d][mode].push(...u[d]);
      }
    }
  }
  const analytic = analyticChanceR(shape);
  const pick = new Prng(settings.seed, 9);
  const definitions = Object.fromEntries(defs.map((d) => [d, {
    analytic: analytic[d],
    uniform: stats(uni[d]),
    untrained: settings.dModel > 0
      ? { faithful: stats(unt[d].faithful), corrected: stats(unt[d].corrected) }
      : null,
    values: {
      uniform: sample(uni[d], settings.keepValues, pick),
      untrained: settings.dModel > 0 ? sample(unt[d].faithful, settings.keepValues, pick) : [],
    },
  }])) as ChanceReport["definitions"];
  return { seed: SEED_R, shape, definitions, settings };
}
