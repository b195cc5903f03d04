/**
 * Generic maths for the reFlow experiments, on plain arrays (Float64 where precision matters): cosine
 * similarity, the Gini coefficient, singular values via a symmetric eigen-solver (cyclic Jacobi),
 * effective rank, seeded PCA by power iteration, silhouette score and an average-linkage leaf order for
 * clustered heat-maps. Kept here so every experiment uses one definition of each.
 *
 * @module
 */
import { meanOf } from "../../stats/descriptive.ts";
import { Prng } from "../../random/prng.ts";

/**
 * A dense matrix as an array of rows (plain arrays or typed arrays).
 *
 * @category reFlow
 */
export type Rows = ArrayLike<number>[];

/**
 * Cosine similarity of two equal-length vectors; 0 when either has zero norm (so a dead row is
 * "similar to nothing" rather than NaN).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cosine } from "./maths.ts";
 * assert.equal(cosine([1, 0], [0, 1]), 0);
 * assert.ok(Math.abs(cosine([1, 1], [2, 2]) - 1) < 1e-12);
 * ```
 *
 * @category reFlow
 */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`cosine: lengths differ (${a.length} vs ${b.length})`);
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return aa === 0 || bb === 0 ? 0 : ab / Math.sqrt(aa * bb);
}

/**
 * Gini coefficient of non-negative values, G = Σ_i (2i − n − 1)·x_(i) / (n·Σx) with x sorted ascending
 * and i = 1..n (0 = perfectly even, (n−1)/n = all mass on one entry). 0 for an all-zero vector.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gini } from "./maths.ts";
 * assert.equal(gini([5, 5, 5, 5]), 0);
 * assert.equal(gini([0, 0, 0, 1]), 0.75); // (n-1)/n
 * assert.ok(Math.abs(gini([1, 2, 3, 4]) - 0.25) < 1e-12);
 * ```
 *
 * @category reFlow
 */
export function gini(values: ArrayLike<number>): number {
  const x = Float64Array.from(values).sort();
  const n = x.length;
  if (n === 0) return NaN;
  if (x[0] < 0) throw new Error("gini: values must be non-negative");
  let total = 0, weighted = 0;
  for (let i = 0; i < n; i++) {
    total += x[i];
    weighted += (2 * (i + 1) - n - 1) * x[i];
  }
  return total === 0 ? 0 : weighted / (n * total);
}

/**
 * Eigenvalues and eigenvectors of a symmetric matrix by cyclic Jacobi rotations (exact to rounding;
 * O(n³) per sweep, fine up to n ≈ 1024). Eigenvalues descending; `vectors[k]` is the k-th eigenvector.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { symmetricEigen } from "./maths.ts";
 * const { values } = symmetricEigen([[2, 1], [1, 2]]);
 * assert.ok(Math.abs(values[0] - 3) < 1e-12 && Math.abs(values[1] - 1) < 1e-12);
 * ```
 *
 * @category reFlow
 */
export function symmetricEigen(matrix: Rows, maxSweeps = 60): { values: number[]; vectors: number[][] } {
  const n = matrix.length;
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    if (matrix[i].length !== n) throw new Error("symmetricEigen: the matrix must be square");
    for (let j = 0; j < n; j++) a[i * n + j] = matrix[i][j];
  }
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0, diag = 0;
    for (let i = 0; i < n; i++) {
      diag += a[i * n + i] * a[i * n + i];
      for (let j = i + 1; j < n; j++) off += a[i * n + j] * a[i * n + j];
    }
    if (off <= 1e-30 * Math.max(diag, 1e-300)) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (apq === 0) continue;
        const app = a[p * n + p], aqq = a[q * n + q];
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j] - a[i * n + i]);
  return {
    values: order.map((i) => a[i * n + i]),
    vectors: order.map((i) => Array.from({ length: n }, (_, k) => v[k * n + i])),
  };
}

/**
 * Singular values of a matrix (rows × cols), descending, as the square roots of the eigenvalues of the
 * smaller Gram matrix. min(rows, cols) values.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { singularValues } from "./maths.ts";
 * const s = singularValues([[3, 0], [0, -2], [0, 0]]);
 * assert.ok(Math.abs(s[0] - 3) < 1e-9 && Math.abs(s[1] - 2) < 1e-9);
 * ```
 *
 * @category reFlow
 */
export function singularValues(matrix: Rows): number[] {
  const r = matrix.length, c = r ? matrix[0].length : 0;
  const small = Math.min(r, c);
  const gram: number[][] = Array.from({ length: small }, () => new Array(small).fill(0));
  for (let i = 0; i < small; i++) {
    for (let j = i; j < small; j++) {
      let s = 0;
      if (r <= c) { for (let k = 0; k < c; k++) s += matrix[i][k] * matrix[j][k]; }
      else for (let k = 0; k < r; k++) s += matrix[k][i] * matrix[k][j];
      gram[i][j] = gram[j][i] = s;
    }
  }
  return symmetricEigen(gram).values.map((x) => Math.sqrt(Math.max(0, x)));
}

/**
 * Effective rank (Roy & Vetterli 2007): exp of the Shannon entropy (natural log) of the singular values
 * normalised to sum 1. Equals k for k equal non-zero values; 1 for a rank-one matrix.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { effectiveRank } from "./maths.ts";
 * assert.ok(Math.abs(effectiveRank([2, 2, 2, 2]) - 4) < 1e-12);
 * assert.equal(effectiveRank([5, 0, 0]), 1);
 * ```
 *
 * @category reFlow
 */
export function effectiveRank(singular: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < singular.length; i++) total += Math.abs(singular[i]);
  if (total === 0) return 0;
  let h = 0;
  for (let i = 0; i < singular.length; i++) {
    const p = Math.abs(singular[i]) / total;
    if (p > 0) h -= p * Math.log(p);
  }
  return Math.exp(h);
}

/**
 * Result of {@linkcode pca}.
 *
 * @category reFlow
 */
export interface PcaResult {
  /** Projections of the rows on the components, [n][k]. */
  scores: number[][];
  /** Unit component directions, [k][dim]. */
  components: number[][];
  /** Variance along each component (divisor n − 1). */
  variances: number[];
  /** Share of the total variance each component explains. */
  explainedRatio: number[];
}

/**
 * Principal components of the rows (centred) by power iteration with deflation, from a seeded random
 * start (so signs and results are reproducible). Components have a fixed sign: the largest-magnitude
 * coordinate is positive.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pca } from "./maths.ts";
 * // Points on the line y = x: one component along (1, 1)/√2 explains everything.
 * const r = pca([[0, 0], [1, 1], [2, 2], [3, 3]], 1);
 * assert.ok(Math.abs(r.components[0][0] - Math.SQRT1_2) < 1e-6);
 * assert.ok(Math.abs(r.explainedRatio[0] - 1) < 1e-9);
 * ```
 *
 * @category reFlow
 */
export function pca(rows: Rows, k = 2, options: { seed?: number; iterations?: number } = {}): PcaResult {
  const n = rows.length;
  if (n < 2) throw new Error("pca: needs at least two rows");
  const dim = rows[0].length;
  const x = rows.map((r) => Float64Array.from(r));
  const mean = new Float64Array(dim);
  for (const r of x) for (let j = 0; j < dim; j++) mean[j] += r[j] / n;
  for (const r of x) for (let j = 0; j < dim; j++) r[j] -= mean[j];
  let totalVar = 0;
  for (const r of x) for (let j = 0; j < dim; j++) totalVar += r[j] * r[j] / (n - 1);
  const rng = new Prng(options.seed ?? 0);
  const iters = options.iterations ?? 500;
  const components: number[][] = [], variances: number[] = [];
  // Apply C·v = Xᵀ(X·v)/(n−1) without forming the covariance (dim may be large).
  const apply = (v: Float64Array): Float64Array => {
    const out = new Float64Array(dim);
    for (const r of x) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += r[j] * v[j];
      for (let j = 0; j < dim; j++) out[j] += s * r[j] / (n - 1);
    }
    for (const c of components) {
      // Deflate: remove what earlier components already explain.
      let s = 0;
      for (let j = 0; j < dim; j++) s += c[j] * v[j];
      const lam = variances[components.indexOf(c)];
      for (let j = 0; j < dim; j++) out[j] -= lam * s * c[j];
    }
    return out;
  };
  for (let comp = 0; comp < Math.min(k, dim); comp++) {
    let v: Float64Array = Float64Array.from({ length: dim }, () => rng.nextNormal());
    normalise(v);
    let lam = 0;
    for (let it = 0; it < iters; it++) {
      const w = apply(v);
      const norm = l2(w);
      if (norm === 0) break;
      for (let j = 0; j < dim; j++) w[j] /= norm;
      const delta = Math.abs(norm - lam);
      v = w;
      lam = norm;
      if (delta < 1e-12 * Math.max(1, lam)) break;
    }
    let big = 0;
    for (let j = 0; j < dim; j++) if (Math.abs(v[j]) > Math.abs(v[big])) big = j;
    if (v[big] < 0) { for (let j = 0; j < dim; j++) v[j] = -v[j]; }
    components.push(Array.from(v));
    variances.push(lam);
  }
  const scores = x.map((r) => components.map((c) => c.reduce((s, cj, j) => s + cj * r[j], 0)));
  return {
    scores,
    components,
    variances,
    explainedRatio: variances.map((v) => (totalVar > 0 ? v / totalVar : 0)),
  };
}

function l2(v: ArrayLike<number>): number {
  let s = 0;
  for (let j = 0; j < v.length; j++) s += v[j] * v[j];
  return Math.sqrt(s);
}

function normalise(v: Float64Array): void {
  const n = l2(v) || 1;
  for (let j = 0; j < v.length; j++) v[j] /= n;
}

/**
 * Distance used by {@linkcode silhouetteScore} and {@linkcode clusterOrder}.
 *
 * @category reFlow
 */
export type DistanceMetric = "euclidean" | "cosine";

/**
 * Pairwise distance matrix of the rows ("cosine" = 1 − cosine similarity).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { distanceMatrix } from "./maths.ts";
 * assert.deepEqual(distanceMatrix([[0, 0], [3, 4]]), [[0, 5], [5, 0]]);
 * ```
 *
 * @category reFlow
 */
export function distanceMatrix(rows: Rows, metric: DistanceMetric = "euclidean"): number[][] {
  const n = rows.length;
  const d: number[][] = Array.from({ length: n }, () => new Array(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let v: number;
      if (metric === "cosine") v = 1 - cosine(rows[i], rows[j]);
      else {
        let s = 0;
        for (let k = 0; k < rows[i].length; k++) s += (rows[i][k] - rows[j][k]) ** 2;
        v = Math.sqrt(s);
      }
      d[i][j] = d[j][i] = v;
    }
  }
  return d;
}

/**
 * Mean silhouette score (Rousseeuw 1987): for each point s = (b − a) / max(a, b) with a = mean distance
 * to its own cluster and b = the smallest mean distance to another cluster; points alone in their
 * cluster score 0 (the scikit-learn convention). Needs at least two clusters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { silhouetteScore } from "./maths.ts";
 * // Two tight pairs far apart. Point 0: a = 1, b = mean(10, 11) = 10.5, s = 9.5 / 10.5; point 1: a = 1,
 * // b = 9.5, s = 8.5 / 9.5; the other pair mirrors them.
 * const s = silhouetteScore([[0], [1], [10], [11]], ["a", "a", "b", "b"]);
 * assert.ok(Math.abs(s - (9.5 / 10.5 + 8.5 / 9.5) / 2) < 1e-12);
 * ```
 *
 * @category reFlow
 */
export function silhouetteScore(
  rows: Rows,
  labels: readonly string[],
  metric: DistanceMetric = "euclidean",
): number {
  if (rows.length !== labels.length) throw new Error("silhouetteScore: one label per row");
  const groups = [...new Set(labels)];
  if (groups.length < 2 || groups.length >= rows.length) {
    throw new Error(`silhouetteScore: needs 2..n-1 clusters, got ${groups.length} for ${rows.length} points`);
  }
  const d = distanceMatrix(rows, metric);
  const s = rows.map((_, i) => {
    const own = labels[i];
    const byGroup = new Map<string, number[]>();
    for (let j = 0; j < rows.length; j++) {
      if (j === i) continue;
      const list = byGroup.get(labels[j]) ?? [];
      list.push(d[i][j]);
      byGroup.set(labels[j], list);
    }
    const ownList = byGroup.get(own);
    if (!ownList || ownList.length === 0) return 0;
    const a = meanOf(ownList);
    let b = Infinity;
    for (const [g, list] of byGroup) if (g !== own) b = Math.min(b, meanOf(list));
    const m = Math.max(a, b);
    return m === 0 ? 0 : (b - a) / m;
  });
  return meanOf(s);
}

/**
 * Leaf order of average-linkage (UPGMA) agglomerative clustering over a distance matrix: the order in
 * which a clustered heat-map lists its rows so that similar rows sit together. Ties merge the
 * lowest-index pair first (deterministic).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { clusterOrder, distanceMatrix } from "./maths.ts";
 * const order = clusterOrder(distanceMatrix([[0], [10], [1], [11]]));
 * // The two close pairs end up adjacent.
 * assert.equal(Math.abs(order.indexOf(0) - order.indexOf(2)), 1);
 * assert.equal(Math.abs(order.indexOf(1) - order.indexOf(3)), 1);
 * ```
 *
 * @category reFlow
 */
export function clusterOrder(distances: number[][]): number[] {
  const n = distances.length;
  if (n === 0) return [];
  let clusters = Array.from({ length: n }, (_, i) => ({ leaves: [i] }));
  const dist = (a: number[], b: number[]): number => {
    let s = 0;
    for (const i of a) for (const j of b) s += distances[i][j];
    return s / (a.length * b.length);
  };
  while (clusters.length > 1) {
    let best = Infinity, bi = 0, bj = 1;
    for (let i = 0; i < clusters.length; i++) {
      for (let j = i + 1; j < clusters.length; j++) {
        const v = dist(clusters[i].leaves, clusters[j].leaves);
        if (v < best) [best, bi, bj] = [v, i, j];
      }
    }
    const merged = { leaves: [...clusters[bi].leaves, ...clusters[bj].leaves] };
    clusters = clusters.filter((_, k) => k !== bi && k !== bj);
    clusters.splice(bi, 0, merged);
  }
  return clusters[0].leaves;
}

/**
 * Indices of the `k` largest values, largest first (ties: lower index first).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { topIndices } from "./maths.ts";
 * assert.deepEqual(topIndices([0.1, 0.9, 0.5, 0.9], 3), [1, 3, 2]);
 * ```
 *
 * @category reFlow
 */
export function topIndices(values: ArrayLike<number>, k: number): number[] {
  return Array.from({ length: values.length }, (_, i) => i)
    .sort((a, b) => values[b] - values[a] || a - b)
    .slice(0, Math.max(0, k));
}
