import assert from "node:assert/strict";
import { DEFAULT_GL_PARAMS, eulerMaruyamaStep, GLPotential, sdeDrift } from "../../lib/recync/potential.ts";
import { Prng } from "../../lib/random/prng.ts";

const close = (a: number, b: number, tol: number, what = "") =>
  assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b} (tol ${tol})`);

Deno.test("potential: value matches the formula on a hand-computed point", () => {
  const U = new GLPotential({ a: [1, -2, 0.5], b: [1, 2, 3], c: [[0, 0.5, -1], [0.5, 0, 2], [-1, 2, 0]] });
  const e = [1, -1, 2];
  // quadratic: .5·1 + (−1)·1 + .25·4 = .5 ; cross: .5·(1)(−1) + (−1)(1)(2) + 2(−1)(2) = −.5 − 2 − 4 = −6.5
  // quartic: .25·1 + .5·1 + .75·16 = 12.75 → total 6.75
  close(U.value(e), 6.75, 1e-12);
});

Deno.test("potential: gradient and Hessian agree with central finite differences", () => {
  const U = new GLPotential({
    a: [0.7, -1.3, 0.2],
    b: [0.5, 1.5, 2],
    c: [[0, 0.3, -0.4], [0, 0, 0.9], [0, 0, 0]],
  });
  const rng = new Prng(5);
  const h = 1e-5;
  for (let trial = 0; trial < 20; trial++) {
    const e = [0, 0, 0].map(() => 2 * rng.nextNormal());
    const g = U.gradient(e);
    const H = U.hessian(e);
    for (let i = 0; i < 3; i++) {
      const ep = [...e], em = [...e];
      ep[i] += h;
      em[i] -= h;
      close(g[i], (U.value(ep) - U.value(em)) / (2 * h), 1e-5 * Math.max(1, Math.abs(g[i])), `dU/de${i}`);
      const gp = U.gradient(ep), gm = U.gradient(em);
      for (let j = 0; j < 3; j++) {
        close(H[j][i], (gp[j] - gm[j]) / (2 * h), 1e-5 * Math.max(1, Math.abs(H[j][i])));
      }
    }
  }
  // The coupling is symmetric even when only the upper triangle was given.
  assert.deepEqual(U.c[1][0], 0.3);
});

Deno.test("potential: the double well has minima at ±√(−a/b), a barrier at 0, and EM descends into it", () => {
  const U = new GLPotential({ a: [-2], b: [0.5] }); // minima ±2, depth −a²/(4b) = −2
  assert.deepEqual(U.wellMinima(0), [-2, 2]);
  close(U.value([2]), -2, 1e-12);
  close(U.value([-2]), -2, 1e-12);
  close(U.gradient([2])[0], 0, 1e-12);
  assert.ok(U.hessian([2])[0][0] > 0 && U.hessian([0])[0][0] < 0, "minimum curves up, the origin down");
  // Deterministic EM = gradient descent: each start falls into the well on its side.
  for (const start of [0.1, -0.1, 5, -5]) {
    let Z = [start];
    for (let t = 0; t < 2000; t++) Z = eulerMaruyamaStep(U, Z, { dt: 0.01 });
    close(Z[0], Math.sign(start) * 2, 1e-6, `start ${start}`);
  }
  assert.deepEqual(new GLPotential({ a: [3], b: [1] }).wellMinima(0), [0]);
});

Deno.test("potential: Euler–Maruyama noise is seeded and has the Ornstein–Uhlenbeck variance", () => {
  const U = new GLPotential({ a: [1], b: [1e-12] }); // effectively quadratic
  const run = (seed: number) => {
    const rng = new Prng(seed);
    let Z = [0];
    let sum = 0, sum2 = 0;
    const n = 100_000;
    for (let t = 0; t < n; t++) {
      Z = eulerMaruyamaStep(U, Z, { dt: 0.05, sigma: 0.5, rng });
      sum += Z[0];
      sum2 += Z[0] * Z[0];
    }
    return { mean: sum / n, variance: sum2 / n - (sum / n) ** 2, last: Z[0] };
  };
  const a = run(42), b = run(42), c = run(43);
  assert.equal(a.last, b.last, "same seed, same path");
  assert.notEqual(a.last, c.last);
  // Discrete OU: Var = σ²dt / (1 − (1 − a·dt)²) = 0.25·0.05 / 0.0975 ≈ 0.1282
  close(a.variance, 0.0125 / 0.0975, 0.012, "stationary variance");
  close(a.mean, 0, 0.05, "stationary mean");
});

Deno.test("potential: drift adds the control through G; errors are clear", () => {
  const U = new GLPotential({ a: [1, 1], b: [1, 1], target: [0.5, 0] });
  assert.deepEqual(sdeDrift(U, [0.5, 0], [1, 2], [[1, 0], [0, -1]]), [1, -2]);
  assert.deepEqual(eulerMaruyamaStep(U, [0.5, 0], { u: [1, 2], G: [[1, 0], [0, -1]], dt: 0.5 }), [1, -1]);
  assert.throws(() => eulerMaruyamaStep(U, [0, 0], { sigma: 0.1 }), /seeded rng/);
  assert.throws(() => sdeDrift(U, [0, 0], [1]), /input matrix G/);
  assert.throws(() => new GLPotential({ a: [1], b: [0] }), /b\[0\] = 0 must be finite and > 0/);
  assert.throws(() => new GLPotential({ a: [1, 1], b: [1] }), /params.b has 1 entries/);
  assert.throws(() => U.value([1]), /expected 2 entries/);
  const D = new GLPotential(DEFAULT_GL_PARAMS);
  close(D.value(D.error([0.3, 0.5, 1.0])), 0, 1e-12, "target is the minimum of the default potential");
});
