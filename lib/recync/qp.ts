/**
 * A dependency-free dual active-set solver (Goldfarb–Idnani) for small dense convex quadratic programs:
 *
 *   minimise ½ xᵀQx + cᵀx   subject to   A x ≤ b,   lo ≤ x ≤ hi.
 *
 * Q must be symmetric positive definite. The dual method starts at the unconstrained minimiser and adds
 * the most violated constraint one at a time, so it needs no feasible starting point, never adds a
 * linearly dependent (redundant) constraint to the active set, and proves infeasibility when no
 * step can satisfy a violated constraint. Problems here have a handful of variables (the CBF filter has
 * 2 or 3), so plain dense algebra with re-factorisation per iteration is the clearest choice.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { solveQP } from "./qp.ts";
 * // min ½‖x‖² − x₀ − x₁  s.t.  x₀ + x₁ ≤ 1
 * const r = solveQP({ Q: [[1, 0], [0, 1]], c: [-1, -1], A: [[1, 1]], b: [1] });
 * assert.deepEqual(Array.from(r.x, (v) => +v.toFixed(9)), [0.5, 0.5]);
 * ```
 *
 * @module
 */

/**
 * A small dense convex QP: minimise ½ xᵀQx + cᵀx s.t. A x ≤ b and lo ≤ x ≤ hi.
 *
 * @category Recync
 */
export interface QPProblem {
  /** n × n symmetric positive definite matrix. */
  Q: number[][];
  /** Linear term, length n. */
  c: number[];
  /** m × n inequality matrix (rows aᵢ with aᵢᵀx ≤ bᵢ); omit for none. */
  A?: number[][];
  /** Right-hand sides, length m. */
  b?: number[];
  /** Lower bounds, length n; entries may be -Infinity. Omit for none. */
  lo?: number[];
  /** Upper bounds, length n; entries may be +Infinity. Omit for none. */
  hi?: number[];
}

/**
 * Options for {@link solveQP}.
 *
 * @category Recync
 */
export interface QPOptions {
  /** Feasibility / zero tolerance, relative to the data's scale. Default 1e-10. */
  tol?: number;
  /** Iteration cap (each add or drop of a constraint counts once). Default 50·(m + 2n + 1). */
  maxIterations?: number;
}

/**
 * The solution of {@link solveQP}.
 *
 * @category Recync
 */
export interface QPResult {
  /** The minimiser, length n. */
  x: number[];
  /** ½ xᵀQx + cᵀx at x. */
  objective: number;
  /**
   * Active constraints at the solution, as indices in the combined list: 0..m−1 are the rows of A,
   * m + i is `x[i] ≥ lo[i]`, m + n + i is `x[i] ≤ hi[i]`.
   */
  active: number[];
  /** Lagrange multipliers (≥ 0) of the rows of A, length m (0 for inactive rows). */
  multipliers: number[];
  /** Multipliers of the lower bounds, length n. */
  lowerMultipliers: number[];
  /** Multipliers of the upper bounds, length n. */
  upperMultipliers: number[];
  /** Iterations used. */
  iterations: number;
}

/**
 * Thrown by {@link solveQP} when the constraints admit no point (or the bounds cross). The
 * message names the constraint that could not be satisfied.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { QPInfeasibleError, solveQP } from "./qp.ts";
 * // x ≤ -1 and x ≥ 1
 * assert.throws(() => solveQP({ Q: [[1]], c: [0], A: [[1], [-1]], b: [-1, -1] }), QPInfeasibleError);
 * ```
 *
 * @category Recync
 */
export class QPInfeasibleError extends Error {
  /** Combined index of the constraint that could not be satisfied (see {@link QPResult.active}). */
  readonly constraint: number;
  /** Creates the error. */
  constructor(message: string, constraint: number) {
    super(message);
    this.name = "QPInfeasibleError";
    this.constraint = constraint;
  }
}

// ---- small dense linear algebra -------------------------------------------------------------------

/** Cholesky factor L (lower) of an SPD matrix, or null when it is not positive definite. */
function cholesky(M: number[][]): number[][] | null {
  const n = M.length;
  const L = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = M[i][j];
      for (let k = 0; k < j; k++) s -= L[i][k] * L[j][k];
      if (i === j) {
        if (!(s > 0)) return null;
        L[i][i] = Math.sqrt(s);
      } else {
        L[i][j] = s / L[j][j];
      }
    }
  }
  return L;
}

/** Solves (L Lᵀ) x = v. */
function cholSolve(L: number[][], v: number[]): number[] {
  const n = L.length;
  const y = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    let s = v[i];
    for (let k = 0; k < i; k++) s -= L[i][k] * y[k];
    y[i] = s / L[i][i];
  }
  const x = new Array<number>(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < n; k++) s -= L[k][i] * x[k];
    x[i] = s / L[i][i];
  }
  return x;
}

function dot(a: number[], b: number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function checkProblem(p: QPProblem): void {
  const n = p.c.length;
  if (n === 0) throw new Error("solveQP: c is empty; the problem needs at least one variable");
  if (p.Q.length !== n || p.Q.some((row) => row.length !== n)) {
    throw new Error(`solveQP: Q must be ${n} × ${n} to match c (length ${n})`);
  }
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (!Number.isFinite(p.Q[i][j])) throw new Error(`solveQP: Q[${i}][${j}] is not finite`);
      const scale = Math.max(1, Math.abs(p.Q[i][j]));
      if (Math.abs(p.Q[i][j] - p.Q[j][i]) > 1e-9 * scale) {
        throw new Error(`solveQP: Q is not symmetric (Q[${i}][${j}] ≠ Q[${j}][${i}])`);
      }
    }
    if (!Number.isFinite(p.c[i])) throw new Error(`solveQP: c[${i}] is not finite`);
  }
  const m = p.A?.length ?? 0;
  if ((p.b?.length ?? 0) !== m) {
    throw new Error(`solveQP: A has ${m} rows but b has ${p.b?.length ?? 0} entries`);
  }
  for (let i = 0; i < m; i++) {
    if (p.A![i].length !== n) {
      throw new Error(`solveQP: A[${i}] has ${p.A![i].length} entries, expected ${n}`);
    }
    if (p.A![i].some((v) => !Number.isFinite(v))) throw new Error(`solveQP: A[${i}] has a non-finite entry`);
    if (Number.isNaN(p.b![i]) || p.b![i] === -Infinity) {
      throw new Error(`solveQP: b[${i}] must be a number or +Infinity, got ${p.b![i]}`);
    }
  }
  for (const [name, v] of [["lo", p.lo], ["hi", p.hi]] as const) {
    if (v !== undefined && v.length !== n) {
      throw new Error(`solveQP: ${name} has ${v.length} entries, expected ${n}`);
    }
    if (v?.some((x) => Number.isNaN(x))) throw new Error(`solveQP: ${name} contains NaN`);
  }
  for (let i = 0; i < n; i++) {
    const lo = p.lo?.[i] ?? -Infinity;
    const hi = p.hi?.[i] ?? Infinity;
    if (lo > hi) {
      throw new QPInfeasibleError(`solveQP: infeasible bounds, lo[${i}] = ${lo} > hi[${i}] = ${hi}`, m + i);
    }
  }
}

/**
 * Solves a small dense convex QP with the Goldfarb–Idnani dual active-set method.
 *
 * Throws {@link QPInfeasibleError} when no point satisfies the constraints, and a plain Error naming the
 * field for malformed input (wrong sizes, non-finite entries, Q not symmetric positive definite).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { solveQP } from "./qp.ts";
 * // Project (2, 2) onto the box [0, 1]²: min ½‖x − (2,2)‖²
 * const r = solveQP({ Q: [[1, 0], [0, 1]], c: [-2, -2], lo: [0, 0], hi: [1, 1] });
 * assert.deepEqual(Array.from(r.x, (v) => +v.toFixed(9)), [1, 1]);
 * assert.deepEqual(Array.from(r.active), [2, 3]); // m + n + i with m = 0, n = 2: upper bounds of x₀, x₁
 * ```
 *
 * @category Recync
 */
export function solveQP(problem: QPProblem, options: QPOptions = {}): QPResult {
  checkProblem(problem);
  const n = problem.c.length;
  const m = problem.A?.length ?? 0;
  const L = cholesky(problem.Q);
  if (L === null) throw new Error("solveQP: Q is not positive definite (Cholesky failed); add a small ridge");

  // Every constraint as nᵢᵀx ≥ dᵢ (the Goldfarb–Idnani convention); box rows are unit vectors.
  const normals: number[][] = [];
  const rhs: number[] = [];
  for (let i = 0; i < m; i++) {
    normals.push(problem.A![i].map((v) => -v));
    rhs.push(-problem.b![i]);
  }
  for (let i = 0; i < n; i++) {
    const e = new Array<number>(n).fill(0);
    e[i] = 1;
    normals.push(e);
    rhs.push(problem.lo?.[i] ?? -Infinity);
  }
  for (let i = 0; i < n; i++) {
    const e = new Array<number>(n).fill(0);
    e[i] = -1;
    normals.push(e);
    rhs.push(-(problem.hi?.[i] ?? Infinity));
  }
  const total = normals.length;
  const tol = options.tol ?? 1e-10;
  const maxIterations = options.maxIterations ?? 50 * (total + 1);
  const dataScale = Math.max(
    1,
    ...problem.c.map(Math.abs),
    ...rhs.filter(Number.isFinite).map(Math.abs),
  );

  // Unconstrained minimiser.
  let x = cholSolve(L, problem.c.map((v) => -v));
  const active: number[] = [];
  let u: number[] = []; // multipliers of `active`
  const slack = (i: number, at: number[]): number => dot(normals[i], at) - rhs[i];

  let iterations = 0;
  for (;;) {
    // Step 1: the most violated constraint (largest violation, scaled by the normal's length).
    let p = -1;
    let worst = -tol * dataScale;
    for (let i = 0; i < total; i++) {
      if (active.includes(i) || !Number.isFinite(rhs[i])) continue;
      const s = slack(i, x) / Math.sqrt(dot(normals[i], normals[i]));
      if (s < worst) {
        worst = s;
        p = i;
      }
    }
    if (p < 0) break;

    let uPlus = [...u, 0];
    // Step 2: move x (primal) and the multipliers (dual) until constraint p is satisfied.
    for (;;) {
      if (++iterations > maxIterations) {
        throw new Error(
          `solveQP: no convergence after ${maxIterations} iterations (ill-conditioned problem?)`,
        );
      }
      const np = normals[p];
      const qinvNp = cholSolve(L, np);
      // With N the active normals: M = NᵀQ⁻¹N, r = M⁻¹NᵀQ⁻¹nₚ, z = Q⁻¹nₚ − Q⁻¹N r.
      const q = active.length;
      const qinvN = active.map((j) => cholSolve(L, normals[j]));
      let r: number[] = [];
      if (q > 0) {
        const M = active.map((_, a) => active.map((j) => dot(normals[j], qinvN[a])));
        const LM = cholesky(M);
        if (LM === null) {
          throw new Error("solveQP: active constraints became dependent (numerical breakdown)");
        }
        r = cholSolve(LM, active.map((j) => dot(normals[j], qinvNp)));
      }
      const z = qinvNp.map((v, i) => v - r.reduce((s, rj, a) => s + rj * qinvN[a][i], 0));
      const zn = dot(z, np);
      // Partial step: the largest dual step keeping the active multipliers ≥ 0.
      let t1 = Infinity;
      let drop = -1;
      for (let a = 0; a < q; a++) {
        if (r[a] > tol) {
          const ratio = uPlus[a] / r[a];
          if (ratio < t1) {
            t1 = ratio;
            drop = a;
          }
        }
      }
      const zIsZero = Math.sqrt(dot(z, z)) <= tol * Math.max(1, Math.sqrt(dot(np, np)));
      const t2 = zIsZero ? Infinity : -slack(p, x) / zn;
      const t = Math.min(t1, t2);
      if (t === Infinity) {
        throw new QPInfeasibleError(
          `solveQP: infeasible; constraint ${describe(p, m, n)} cannot be satisfied together with ` +
            `the active constraints [${active.map((j) => describe(j, m, n)).join(", ")}]`,
          p,
        );
      }
      if (!zIsZero) x = x.map((v, i) => v + t * z[i]);
      uPlus = uPlus.map((v, a) => (a < q ? v - t * r[a] : v + t));
      if (t === t2) {
        active.push(p);
        u = uPlus;
        break;
      }
      // Partial step: drop the constraint whose multiplier reached zero, then retry p.
      active.splice(drop, 1);
      uPlus.splice(drop, 1);
    }
  }

  const multipliers = new Array<number>(m).fill(0);
  const lowerMultipliers = new Array<number>(n).fill(0);
  const upperMultipliers = new Array<number>(n).fill(0);
  active.forEach((j, a) => {
    if (j < m) multipliers[j] = u[a];
    else if (j < m + n) lowerMultipliers[j - m] = u[a];
    else upperMultipliers[j - m - n] = u[a];
  });
  const Qx = problem.Q.map((row) => dot(row, x));
  return {
    x,
    objective: 0.5 * dot(x, Qx) + dot(problem.c, x),
    active: [...active].sort((a, b) => a - b),
    multipliers,
    lowerMultipliers,
    upperMultipliers,
    iterations,
  };
}

function describe(j: number, m: number, n: number): string {
  if (j < m) return `A[${j}]`;
  if (j < m + n) return `lo[${j - m}]`;
  return `hi[${j - m - n}]`;
}
