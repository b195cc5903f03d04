import assert from "node:assert/strict";
import { QPInfeasibleError, solveQP } from "../../lib/recync/qp.ts";

function assertClose(actual: number[], expected: number[], tol = 1e-9): void {
  assert.equal(actual.length, expected.length, `length ${actual.length} != ${expected.length}`);
  actual.forEach((v, i) =>
    assert.ok(Math.abs(v - expected[i]) <= tol, `index ${i}: ${v} != ${expected[i]} (got [${actual}])`)
  );
}

const I2 = [[1, 0], [0, 1]];

Deno.test("qp: unconstrained minimiser solves Qx = -c", () => {
  // Q = [[4,1],[1,3]], c = [-1,-2]: x = Q⁻¹[1,2] = [1/11, 7/11]
  const r = solveQP({ Q: [[4, 1], [1, 3]], c: [-1, -2] });
  assertClose(r.x, [1 / 11, 7 / 11]);
  assert.deepEqual(r.active, []);
  assert.ok(Math.abs(r.objective - (-0.5 * (1 / 11 + 14 / 11))) < 1e-12);
});

Deno.test("qp: one active inequality (hand-solved projection onto a half-plane)", () => {
  // min ½‖x − (1,1)‖² s.t. x₀ + x₁ ≤ 1 → x = (½,½), multiplier ½
  const r = solveQP({ Q: I2, c: [-1, -1], A: [[1, 1]], b: [1] });
  assertClose(r.x, [0.5, 0.5]);
  assert.deepEqual(r.active, [0]);
  assertClose(r.multipliers, [0.5]);
});

Deno.test("qp: inactive inequality leaves the unconstrained solution", () => {
  const r = solveQP({ Q: I2, c: [-1, -1], A: [[1, 1]], b: [5] });
  assertClose(r.x, [1, 1]);
  assert.deepEqual(r.active, []);
  assertClose(r.multipliers, [0]);
});

Deno.test("qp: box corner with both upper bounds active", () => {
  const r = solveQP({ Q: I2, c: [-2, -3], lo: [0, 0], hi: [1, 1] });
  assertClose(r.x, [1, 1]);
  assert.deepEqual(r.active, [2, 3]); // upper bounds are indices m + n + i = 2, 3
  assertClose(r.upperMultipliers, [1, 2]);
  assertClose(r.lowerMultipliers, [0, 0]);
});

Deno.test("qp: mixed corner (lower bound + upper bound) with a weighted Q", () => {
  // min ½(2x₀² + x₁²) + 3x₀ − 5x₁ on [-1,1]²: unconstrained (-1.5, 5) → clip (-1, 1) (Q diagonal)
  const r = solveQP({ Q: [[2, 0], [0, 1]], c: [3, -5], lo: [-1, -1], hi: [1, 1] });
  assertClose(r.x, [-1, 1]);
  assert.deepEqual(r.active, [0, 3]);
  assertClose(r.lowerMultipliers, [1, 0]); // gradient 2(-1)+3 = 1
  assertClose(r.upperMultipliers, [0, 4]); // -(1 - 5) = 4
});

Deno.test("qp: inequality and box together (hand-solved KKT)", () => {
  // min ½‖x − (2,0)‖² s.t. x₀ − x₁ ≤ 1, x₁ ≤ 0.25 … solution on x₀ − x₁ = 1: x = (1.5, 0.5) violates x₁ ≤ .25,
  // so both active: x₁ = .25, x₀ = 1.25.
  const r = solveQP({ Q: I2, c: [-2, 0], A: [[1, -1]], b: [1], hi: [Infinity, 0.25] });
  assertClose(r.x, [1.25, 0.25]);
  assert.deepEqual(r.active, [0, 4]);
  // Stationarity: x − (2,0) + μ(1,−1) + ν(0,1) = 0 → μ = .75, ν = .5
  assertClose(r.multipliers, [0.75]);
  assertClose(r.upperMultipliers, [0, 0.5]);
});

Deno.test("qp: redundant and duplicated constraints (degenerate vertex)", () => {
  // Three constraints through the same optimum (½,½): x₀+x₁ ≤ 1 twice and 2x₀+2x₁ ≤ 2.
  const r = solveQP({ Q: I2, c: [-1, -1], A: [[1, 1], [1, 1], [2, 2]], b: [1, 1, 2] });
  assertClose(r.x, [0.5, 0.5]);
  assert.equal(r.active.length, 1, "only one of the parallel constraints enters the active set");
  // The multipliers still satisfy stationarity: Σ μᵢ aᵢ = (½,½).
  const [m0, m1, m2] = r.multipliers;
  assert.ok(Math.abs(m0 + m1 + 2 * m2 - 0.5) < 1e-9);
});

Deno.test("qp: more active constraints than a vertex needs (three lines through one point)", () => {
  // x₀ ≤ 0, x₁ ≤ 0, x₀ + x₁ ≤ 0, target (1, 1): optimum (0,0); the sum constraint is implied.
  const r = solveQP({ Q: I2, c: [-1, -1], A: [[1, 0], [0, 1], [1, 1]], b: [0, 0, 0] });
  assertClose(r.x, [0, 0]);
  const [a, b2, c] = r.multipliers;
  assertClose([a + c, b2 + c], [1, 1]);
  assert.ok(r.multipliers.every((v) => v >= -1e-12));
});

Deno.test("qp: a constraint dropped on the way (partial step)", () => {
  // min ½‖x − (−1, 2)‖² s.t. x₁ ≤ 1, x₀ + x₁ ≥ 1 (as −x₀ − x₁ ≤ −1). Solution: x₁ = 1? check:
  // with x₁ = 1 and x₀+x₁ ≥ 1 → x₀ ≥ 0, minimise (x₀+1)² → x₀ = 0. KKT: grad = (1, −1) = μ₂(1,1)·… fine.
  const r = solveQP({ Q: I2, c: [1, -2], A: [[0, 1], [-1, -1]], b: [1, -1] });
  assertClose(r.x, [0, 1]);
  // Verify KKT directly: x − t + Σ μᵢ aᵢ = 0, μ ≥ 0.
  const g = [r.x[0] + 1, r.x[1] - 2];
  const A = [[0, 1], [-1, -1]];
  for (let i = 0; i < 2; i++) {
    const s = g[i] + r.multipliers[0] * A[0][i] + r.multipliers[1] * A[1][i];
    assert.ok(Math.abs(s) < 1e-9, `stationarity ${i}: ${s}`);
  }
  assert.ok(r.multipliers.every((v) => v >= -1e-12));
});

Deno.test("qp: randomised problems satisfy KKT conditions", () => {
  // Deterministic LCG keeps the test self-contained and reproducible.
  let s = 12345;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + (trial % 4);
    const m = trial % 5;
    const B = Array.from({ length: n }, () => Array.from({ length: n }, rnd));
    const Q = B.map((_, i) =>
      B.map((_, j) => B.reduce((acc, row) => acc + row[i] * row[j], 0) + (i === j ? 0.5 : 0))
    );
    const c = Array.from({ length: n }, () => 3 * rnd());
    const A = Array.from({ length: m }, () => Array.from({ length: n }, rnd));
    const b = Array.from({ length: m }, () => Math.abs(rnd()) + 0.1); // x = 0 feasible
    const lo = Array.from({ length: n }, () => -1 - Math.abs(rnd()));
    const hi = Array.from({ length: n }, () => 1 + Math.abs(rnd()));
    const r = solveQP({ Q, c, A, b, lo, hi });
    const tol = 1e-7;
    for (let i = 0; i < m; i++) {
      const ax = A[i].reduce((acc, v, j) => acc + v * r.x[j], 0);
      assert.ok(ax <= b[i] + tol, `trial ${trial}: A[${i}]x = ${ax} > ${b[i]}`);
      assert.ok(r.multipliers[i] >= -tol);
      assert.ok(r.multipliers[i] * (b[i] - ax) < tol, "complementary slackness");
    }
    for (let j = 0; j < n; j++) {
      assert.ok(r.x[j] >= lo[j] - tol && r.x[j] <= hi[j] + tol, `trial ${trial}: box ${j}`);
      const grad = Q[j].reduce((acc, v, k) => acc + v * r.x[k], 0) + c[j];
      const s2 = grad + A.reduce((acc, row, i) => acc + r.multipliers[i] * row[j], 0) -
        r.lowerMultipliers[j] +
        r.upperMultipliers[j];
      assert.ok(Math.abs(s2) < 1e-7, `trial ${trial}: stationarity ${j} residual ${s2}`);
    }
  }
});

Deno.test("qp: infeasible constraints throw QPInfeasibleError naming a constraint", () => {
  assert.throws(
    () => solveQP({ Q: [[1]], c: [0], A: [[1], [-1]], b: [-1, -1] }),
    (e: unknown) => e instanceof QPInfeasibleError && /infeasible/.test(e.message),
  );
  // A half-plane that misses the box.
  assert.throws(
    () => solveQP({ Q: I2, c: [0, 0], A: [[1, 1]], b: [-3], lo: [0, 0], hi: [1, 1] }),
    QPInfeasibleError,
  );
  // Crossed bounds are reported before solving.
  assert.throws(() => solveQP({ Q: [[1]], c: [0], lo: [2], hi: [1] }), /lo\[0\] = 2 > hi\[0\] = 1/);
});

Deno.test("qp: malformed input gets a clear error", () => {
  assert.throws(() => solveQP({ Q: [[1, 0]], c: [0, 0] }), /Q must be 2 × 2/);
  assert.throws(() => solveQP({ Q: [[1, 2], [0, 1]], c: [0, 0] }), /not symmetric/);
  assert.throws(() => solveQP({ Q: [[1, 0], [0, -1]], c: [0, 0] }), /not positive definite/);
  assert.throws(() => solveQP({ Q: [[1]], c: [0], A: [[1]], b: [] }), /b has 0 entries/);
  assert.throws(() => solveQP({ Q: [[1]], c: [NaN] }), /c\[0\] is not finite/);
});
