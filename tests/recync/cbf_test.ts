import assert from "node:assert/strict";
import { affineBarrier, type Barrier, CbfSafetyFilter, defaultBarriers } from "../../lib/recync/cbf.ts";

const close = (a: number[], b: number[], tol = 1e-9) =>
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= tol, `index ${i}: [${a}] vs [${b}]`));

/** A flat potential (f ≈ 0 near the target) makes the hand calculations exact. */
const flat = { a: [0, 0, 0], b: [1e-12, 1e-12, 1e-12], target: [0, 0, 0] };

Deno.test("cbf: a safe request passes unchanged", () => {
  const f = new CbfSafetyFilter();
  const r = f.filter([0.3, 0.5, 1.0], [-0.1, -0.05]);
  assert.equal(r.changed, false);
  assert.equal(r.relaxed, false);
  close(r.u, [-0.1, -0.05]);
  assert.deepEqual(r.activeBarriers, []);
  close([r.sampling.temperature, r.sampling.topP], [0.9, 0.85]);
});

Deno.test("cbf: one binding barrier projects u_ref onto its half-plane (hand-solved)", () => {
  // Flat potential, G = I (2 × 2 on Z = [λ, z]), barrier h = 0.5 − λ, γ = 1, Z = (0.4, 0):
  // condition: −(u₀) ≥ −γ(0.1) → u₀ ≤ 0.1. A request u_ref = (0.3, 0.2) becomes (0.1, 0.2).
  const f = new CbfSafetyFilter({
    potential: { a: [0, 0], b: [1e-12, 1e-12] },
    G: [[1, 0], [0, 1]],
    barriers: [affineBarrier("lambdaMax", [-1, 0], 0.5)],
    gamma: 1,
    sigma: 0,
    temperatureRange: [0.1, 2],
    topPRange: [0.1, 1],
  });
  const r = f.filter([0.4, 0], [0.3, 0.05]);
  close(r.u, [0.1, 0.05]);
  assert.equal(r.changed, true);
  assert.deepEqual(r.activeBarriers, ["lambdaMax"]);
});

Deno.test("cbf: default barriers soften a strong cooling request near λ_max (hand-computed projection)", () => {
  const f = new CbfSafetyFilter({ potential: flat, sigma: 0 });
  // Z = (0.78, 0.5, 1): h₁ = 0.02, f = 0; row: (−0.5, −0.25)·u·(−1)… condition G_λ u ≤ γh₁ = 0.01.
  const uRef = [-0.35, -0.1];
  const a = [-0.5, -0.25];
  const bnd = 0.5 * 0.02;
  const viol = a[0] * uRef[0] + a[1] * uRef[1] - bnd;
  const norm2 = a[0] * a[0] + a[1] * a[1];
  const expected = uRef.map((v, i) => v - (viol / norm2) * a[i]);
  const r = f.filter([0.78, 0.5, 1.0], uRef);
  close(r.u, expected, 1e-9);
  assert.deepEqual(r.activeBarriers, ["lambdaMax"]);
  assert.ok(r.sampling.temperature > 0.65);
});

Deno.test("cbf: the box (temperature and top-p ranges) clips the request", () => {
  const f = new CbfSafetyFilter({ potential: flat });
  const r = f.filter([0.3, 0.5, 1.0], [-0.9, 0.5]); // T = 0.1, p = 1.4 requested
  close(r.u, [-0.5, 0.1]); // T_min 0.5, p_max 1.0
  assert.equal(r.changed, true);
  close([r.sampling.temperature, r.sampling.topP], [0.5, 1.0]);
});

Deno.test("cbf: infeasible barriers fall back to the least-violating control, flagged relaxed", () => {
  // λ far above λ_max: the barrier needs G_λ u ≤ γh = 0.5·(0.8 − 2) = −0.6, but within the box
  // G_λ u ≥ −0.5·0.5 − 0.25·0.1 = −0.275. The least violation is the box corner (ΔT, Δp) = (0.5, 0.1).
  const f = new CbfSafetyFilter({ potential: flat, sigma: 0 });
  const r = f.filter([2, 0.5, 1], [0, 0]);
  assert.equal(r.relaxed, true);
  close(r.u, [0.5, 0.1], 1e-3);
  assert.ok(r.slack > 0.3);
  assert.ok(r.u[0] <= f.uMax[0] + 1e-12 && r.u[1] <= f.uMax[1] + 1e-12);
});

Deno.test("cbf: the Itô term of a curved barrier tightens the constraint by ½σ² tr∇²h", () => {
  // h(Z) = 1 − ‖Z‖² on a 1-D Z with G = [[1, 0]]: ∇h = −2Z, ∇²h = −2.
  const ball: Barrier = {
    name: "ball",
    value: (Z) => 1 - Z[0] * Z[0],
    gradient: (Z) => [-2 * Z[0]],
    hessian: () => [[-2]],
  };
  const mk = (sigma: number) =>
    new CbfSafetyFilter({
      potential: { a: [0], b: [1e-12] },
      G: [[1, 0]],
      barriers: [ball],
      sigma,
      gamma: 1,
      temperatureRange: [0.1, 3],
    });
  // At Z = 0.5: −2·0.5·u₀ + ½σ²(−2) ≥ −(1 − 0.25) → u₀ ≤ 0.75 − σ².
  close(mk(0).filter([0.5], [2, 0]).u, [0.75, 0]);
  close(mk(0.5).filter([0.5], [2, 0]).u, [0.5, 0]);
  const { A, b } = mk(0.5).constraints([0.5]);
  close(A[0], [1, 0]);
  close(b, [0.5]);
});

Deno.test("cbf: drift of the potential enters the constraint", () => {
  // 1-D, U = (a/2)e² with a = 1, target 0, Z = 0.4: f = −0.4. h = 0.5 − Z, G = [[1, 0]], γ = 1:
  // −(f + u₀) ≥ −0.1 → u₀ ≤ 0.1 − f = 0.5.
  const f = new CbfSafetyFilter({
    potential: { a: [1], b: [1e-12] },
    G: [[1, 0]],
    barriers: [affineBarrier("max", [-1], 0.5)],
    gamma: 1,
    sigma: 0,
    temperatureRange: [0.1, 3],
  });
  close(f.filter([0.4], [1, 0]).u, [0.5, 0], 1e-9);
});

Deno.test("cbf: η channel, Ψ map and configuration errors", () => {
  const f3 = new CbfSafetyFilter({ controlDim: 3 });
  assert.equal(f3.G[0].length, 3);
  assert.deepEqual(f3.toSampling([-0.25, -0.05, 0.1]), { temperature: 0.75, topP: 0.85, eta: 0.1 });
  close(f3.fromSampling(0.75, 0.85, 0.1), [-0.25, -0.05, 0.1]);
  assert.throws(() => new CbfSafetyFilter().filter([0, 0, 0], [0, 0, 0]), /uRef has 3 entries, expected 2/);
  assert.throws(() => new CbfSafetyFilter({ gamma: 0 }), /gamma must be > 0/);
  assert.throws(() => new CbfSafetyFilter({ G: [[1, 0]] }), /G must be 3 × 2/);
  assert.throws(() => new CbfSafetyFilter().filter([NaN, 0, 0], [0, 0]), /non-finite/);
  assert.deepEqual(defaultBarriers({ zMin: 0.5 })[2].value([0, 0, 1]), 0.5);
});
