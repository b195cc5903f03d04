/**
 * The twelve reFlow interpretability experiments (spec §4) as pure functions: each takes a model and a
 * tokenizer (and options, every one with the spec's default) and returns a JSON-serialisable result
 * that names the definitions it used, plus Observable Plot figures where the seed has one. They never
 * change the model for good: the genetic hijack (#12) undoes its edit before it returns.
 *
 * @module
 */
import { tf } from "../../deps.ts";
import type { Tensor1D, Tensor2D, Tensor3D } from "../../tensor_types.ts";
import type { CausalLM, Hooks } from "../../models/types.ts";
import type { TextTokenizer } from "../../tokenizers/types.ts";
import type { PlotFigure } from "../../plot/plot.ts";
import { checkChoice, checkOptionKeys, closest } from "../../options.ts";
import { meanOf, quantileSorted, standardDeviationOf } from "../../stats/descriptive.ts";
import { Prng } from "../../random/prng.ts";
import {
  argmax,
  greedyContinuation,
  injectionHooks,
  lastResiduals,
  nextTokenProbs,
  probeToken,
  probeTokens,
  probsFromSignals,
  promptIds,
  rankOf,
  realVocabSize,
  recipeMatrix,
  recipeRows,
  type ReflowParts,
  reflowParts,
  residualHook,
  signalsOf,
} from "./access.ts";
import {
  clusterOrder,
  cosine,
  distanceMatrix,
  effectiveRank,
  gini,
  pca,
  silhouetteScore,
  symmetricEigen,
  topIndices,
} from "./maths.ts";
import { heatmapFigure, histogramFigure, lineFigure, scatterFigure, type SeriesPoint } from "./figures.ts";
import {
  DEFAULT_CATEGORIES,
  DEFAULT_PROMPTS,
  DEFAULT_SENTIMENT,
  DEFAULT_TRIPLES,
  DEFAULT_TYPOS,
} from "./defaults.ts";

/**
 * What every experiment returns: a JSON-serialisable `result` and its figures by name.
 *
 * @category reFlow
 */
export interface ExperimentOutput<R extends ExperimentResult = ExperimentResult> {
  /** The numbers (plain JSON). */
  result: R;
  /** Charts by file stem (e.g. `heatmap`); may be empty. */
  figures: Record<string, PlotFigure>;
}

/**
 * The fields every experiment result carries.
 *
 * @category reFlow
 */
export interface ExperimentResult {
  /** Experiment number 1..12 (spec §4). */
  id: number;
  /** Short key, e.g. `recipe-atlas`. */
  key: string;
  /** Display name. */
  name: string;
  /** The definitions used, in words (thresholds, spaces, rules). */
  definitions: Record<string, string>;
  /** The resolved options (defaults filled in). */
  options: Record<string, unknown>;
  /** Headline numbers (what the report tables show). */
  summary: Record<string, number | string | boolean | null>;
  /** Probe words that were skipped because they are not single tokens (`skipMissing`). */
  skipped?: string[];
}

/**
 * Options every experiment accepts.
 *
 * @category reFlow
 */
export interface CommonOptions {
  /** Real vocabulary size (rows past it are pad rows, excluded); default min(tokenizer, model rows). */
  realVocab?: number;
  /** Prefix probe words with a space (default true). */
  leadingSpace?: boolean;
  /** Skip probe words that are not single tokens instead of failing (default false); listed in `skipped`. */
  skipMissing?: boolean;
  /** Leave the tokenizer's special tokens (unk, pad, bos, eos) out of every search and prediction (default true). */
  excludeSpecial?: boolean;
}

const COMMON = ["realVocab", "leadingSpace", "skipMissing", "excludeSpecial"] as const;

interface Setup {
  parts: ReflowParts;
  realVocab: number;
  /** Token ids left out of searches and predictions (special tokens). */
  excluded: number[];
}

/**
 * The shared start of every experiment: rejects option keys other than the common ones and `keys`
 * (naming the experiment `where`), then reads the model's reFlow parts, its real vocabulary and the
 * special tokens to leave out.
 */
function setup(
  model: CausalLM,
  tokenizer: TextTokenizer,
  o: CommonOptions,
  where: string,
  keys: readonly string[] = [],
): Setup {
  checkOptionKeys(o, [...COMMON, ...keys], where);
  const parts = reflowParts(model);
  const sp = tokenizer.special;
  const excluded = o.excludeSpecial === false
    ? []
    : [...new Set([sp.unk, sp.pad, sp.bos, sp.eos].filter((x): x is number => x !== undefined))];
  return { parts, realVocab: realVocabSize(parts, tokenizer, o.realVocab), excluded };
}

/** Which special tokens the searches leave out, in words. */
function excludedNote(excluded: number[], tokenizer: TextTokenizer): string {
  return excluded.length
    ? `special tokens left out of searches and predictions: ${
      excluded.map((i) => `${JSON.stringify(decodeToken(tokenizer, i))} (${i})`).join(", ")
    }`
    : "no tokens left out besides pad rows";
}

/** A copy of `values` with the excluded ids at -Infinity (so argmax, ranks and top lists skip them). */
function masked(values: ArrayLike<number>, excluded: number[]): Float64Array {
  const out = Float64Array.from(values);
  for (const i of excluded) if (i < out.length) out[i] = -Infinity;
  return out;
}

/** Keeps the words that are single tokens (all of them unless skipMissing); the error lists every bad one. */
function resolveWords(
  tokenizer: TextTokenizer,
  words: readonly string[],
  o: CommonOptions,
  skipped: string[],
): { words: string[]; ids: number[] } {
  if (!o.skipMissing) return { words: [...words], ids: probeTokens(tokenizer, words, o) };
  const kept: string[] = [], ids: number[] = [];
  for (const w of words) {
    try {
      ids.push(probeToken(tokenizer, w, o));
      kept.push(w);
    } catch {
      skipped.push(w);
    }
  }
  return { words: kept, ids };
}

function decodeToken(tokenizer: TextTokenizer, id: number): string {
  try {
    return tokenizer.decode([id]);
  } catch {
    return `#${id}`;
  }
}

/** Cosine of `query` with every real row except `exclude`, best `k` as {id, token, cosine}. */
function nearest(
  rows: Float32Array[],
  query: ArrayLike<number>,
  realVocab: number,
  exclude: Set<number>,
  k: number,
  tokenizer: TextTokenizer,
): { id: number; token: string; cosine: number }[] {
  const sims = new Float64Array(realVocab);
  for (let v = 0; v < realVocab; v++) sims[v] = exclude.has(v) ? -Infinity : cosine(query, rows[v]);
  return topIndices(sims, k).map((id) => ({
    id,
    token: decodeToken(tokenizer, id),
    cosine: round(sims[id]),
  }));
}

function round(x: number, digits = 6): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function summaryStats(xs: number[]): { mean: number; sd: number; min: number; median: number; max: number } {
  const sorted = [...xs].sort((a, b) => a - b);
  return {
    mean: round(meanOf(xs)),
    sd: round(xs.length > 1 ? standardDeviationOf(xs) : 0),
    min: sorted[0],
    median: round(quantileSorted(sorted, 0.5)),
    max: sorted[sorted.length - 1],
  };
}

function layerList(layers: number[] | undefined, L: number): number[] {
  const list = layers ?? Array.from({ length: L + 1 }, (_, l) => l);
  for (const l of list) {
    if (!Number.isInteger(l) || l < 0 || l > L) {
      throw new Error(`layer ${l} is not a residual index of this ${L}-layer model (use 0..${L})`);
    }
  }
  return list;
}

// ---------------------------------------------------------------------------------------------------
// 1. Recipe atlas

/**
 * Options of {@linkcode recipeAtlas}.
 *
 * @category reFlow
 */
export interface RecipeAtlasOptions extends CommonOptions {
  /** Probe words (default: every word of the default categories). */
  words?: string[];
  /** Nearest neighbours listed per probe word, over the whole real vocabulary (default 5). */
  neighbours?: number;
  /** Most similar probe pairs listed (default 20). */
  topPairs?: number;
}

/**
 * Result of {@linkcode recipeAtlas}.
 *
 * @category reFlow
 */
export interface RecipeAtlasResult extends ExperimentResult {
  /** Each probe word's nearest vocabulary rows by recipe cosine (itself excluded). */
  neighbours: { word: string; id: number; nearest: { id: number; token: string; cosine: number }[] }[];
  /** The most similar probe pairs. */
  pairs: { a: string; b: string; cosine: number }[];
  /** Probe words in hierarchical-clustering order (the heat-map's order). */
  order: string[];
  /** Cosine matrix among the probe words, rows and columns in `words` order. */
  similarity: number[][];
  /** Probe words used (single tokens). */
  words: string[];
}

/**
 * #1 Recipe Atlas: cosine similarity between recipe rows R[v]; each probe word's nearest neighbours in
 * the real vocabulary, the most similar probe pairs, and a heat-map of the probe similarities in
 * average-linkage order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { recipeAtlas } from "./experiments.ts";
 * const { model, tokenizer } = tinyReflowModel();
 * const { result, figures } = await recipeAtlas(model, tokenizer, { words: ["king", "queen", "man"], topPairs: 2 });
 * assert.equal(result.pairs.length, 2);
 * assert.ok("heatmap" in figures);
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export async function recipeAtlas(
  model: CausalLM,
  tokenizer: TextTokenizer,
  options: RecipeAtlasOptions = {},
): Promise<ExperimentOutput<RecipeAtlasResult>> {
  const { parts, realVocab, excluded } = setup(model, tokenizer, options, "recipeAtlas", [
    "words",
    "neighbours",
    "topPairs",
  ]);
  const k = options.neighbours ?? 5, top = options.topPairs ?? 20;
  const skipped: string[] = [];
  const { words, ids } = resolveWords(
    tokenizer,
    options.words ?? Object.values(DEFAULT_CATEGORIES).flat(),
    options,
    skipped,
  );
  if (words.length < 2) throw new Error("recipeAtlas: needs at least two probe words that are single tokens");
  const rows = await recipeRows(parts);
  const neighbours = words.map((word, i) => ({
    word,
    id: ids[i],
    nearest: nearest(rows, rows[ids[i]], realVocab, new Set([ids[i], ...excluded]), k, tokenizer),
  }));
  const similarity = ids.map((a) => ids.map((b) => round(cosine(rows[a], rows[b]))));
  const pairs: { a: string; b: string; cosine: number }[] = [];
  for (let i = 0; i < words.length; i++) {
    for (let j = i + 1; j < words.length; j++) {
      pairs.push({ a: words[i], b: words[j], cosine: similarity[i][j] });
    }
  }
  pairs.sort((x, y) => y.cosine - x.cosine);
  const orderIdx = clusterOrder(similarity.map((r) => r.map((c) => 1 - c)));
  const order = orderIdx.map((i) => words[i]);
  const cells = orderIdx.flatMap((i) =>
    orderIdx.map((j) => ({ x: words[j], y: words[i], value: similarity[i][j] }))
  );
  const pairOf = (a: string, b: string): number | null => {
    const i = words.indexOf(a), j = words.indexOf(b);
    return i < 0 || j < 0 ? null : similarity[i][j];
  };
  return {
    result: {
      id: 1,
      key: "recipe-atlas",
      name: "Recipe Atlas",
      definitions: {
        excluded: excludedNote(excluded, tokenizer),
        similarity: "cosine similarity of effective recipe rows R[v] (TopK(ReLU(R)) for reflow-topk)",
        neighbours:
          `top ${k} rows of the real vocabulary (ids < ${realVocab}, pad rows excluded), the word itself excluded`,
        order: "average-linkage (UPGMA) clustering on 1 - cosine",
        tokens: "probe words in their leading-space form, single tokens only",
      },
      options: { words, neighbours: k, topPairs: top, realVocab },
      summary: {
        meanPairCosine: round(meanOf(pairs.map((p) => p.cosine))),
        topPairCosine: pairs[0]?.cosine ?? null,
        "three-four": pairOf("three", "four"),
        "king-queen": pairOf("king", "queen"),
        "France-Germany": pairOf("France", "Germany"),
      },
      neighbours,
      pairs: pairs.slice(0, top),
      order,
      similarity,
      words,
      ...(skipped.length ? { skipped } : {}),
    },
    figures: {
      heatmap: heatmapFigure(cells, {
        xOrder: order,
        yOrder: order,
        legend: "recipe cosine similarity",
        title: "Recipe atlas: cosine similarity of recipe rows (clustered order)",
        diverging: true,
      }),
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// 2. Sparsity profile

/**
 * How a recipe entry counts as "active" in {@linkcode sparsityProfile}.
 *
 * @category reFlow
 */
export type ActiveRule = "relative" | "absolute" | "positive";

/**
 * Options of {@linkcode sparsityProfile}.
 *
 * @category reFlow
 */
export interface SparsityProfileOptions extends CommonOptions {
  /**
   * "relative" (default): |R[v,s]| > threshold · max_s |R[v,s]|; "absolute": |R[v,s]| > threshold;
   * "positive": R[v,s] > threshold. Upstream's rule is unknown (spec §4.1 #2).
   */
  rule?: ActiveRule;
  /** The rule's threshold (default 0.5 for "relative", else 0). */
  threshold?: number;
}

/**
 * Result of {@linkcode sparsityProfile}.
 *
 * @category reFlow
 */
export interface SparsityProfileResult extends ExperimentResult {
  /** Active-signal counts per token: summary statistics. */
  activeCounts: { mean: number; sd: number; min: number; median: number; max: number };
  /** Histogram of active counts: count c → number of tokens. */
  histogram: { active: number; tokens: number }[];
  /** Per-signal usage: how many real tokens have each signal active. */
  usage: number[];
  /** Gini coefficient of `usage`. */
  gini: number;
}

/**
 * #2 Sparsity Profile: active signals per token row of R (real vocabulary only), the per-signal usage
 * across the vocabulary and its Gini coefficient.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { sparsityProfile } from "./experiments.ts";
 * const { model, tokenizer } = tinyReflowModel();
 * const { result } = await sparsityProfile(model, tokenizer);
 * assert.equal(result.usage.length, 8);
 * assert.ok(result.gini >= 0 && result.gini < 1);
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export async function sparsityProfile(
  model: CausalLM,
  tokenizer: TextTokenizer,
  options: SparsityProfileOptions = {},
): Promise<ExperimentOutput<SparsityProfileResult>> {
  const { parts, realVocab } = setup(model, tokenizer, options, "sparsityProfile", ["rule", "threshold"]);
  const rule = checkChoice(
    options.rule ?? "relative",
    ["relative", "absolute", "positive"] as const,
    "active rule",
  );
  const threshold = options.threshold ?? (rule === "relative" ? 0.5 : 0);
  const rows = await recipeRows(parts);
  const S = parts.signals;
  const counts: number[] = [];
  const usage = new Array(S).fill(0);
  for (let v = 0; v < realVocab; v++) {
    const r = rows[v];
    let cut = threshold;
    if (rule === "relative") {
      let m = 0;
      for (let s = 0; s < S; s++) m = Math.max(m, Math.abs(r[s]));
      cut = threshold * m;
    }
    let c = 0;
    for (let s = 0; s < S; s++) {
      const on = rule === "positive" ? r[s] > cut : Math.abs(r[s]) > cut;
      if (on) {
        c++;
        usage[s]++;
      }
    }
    counts.push(c);
  }
  const stats = summaryStats(counts);
  const hist = new Map<number, number>();
  for (const c of counts) hist.set(c, (hist.get(c) ?? 0) + 1);
  const g = round(gini(usage));
  const sortedUsage = [...usage].sort((a, b) => a - b);
  const total = sortedUsage.reduce((a, b) => a + b, 0) || 1;
  let cum = 0;
  const lorenz: SeriesPoint[] = [{ x: 0, y: 0, series: "signal usage (Lorenz curve)" }];
  sortedUsage.forEach((u, i) => {
    cum += u;
    lorenz.push({ x: (i + 1) / S, y: cum / total, series: "signal usage (Lorenz curve)" });
  });
  lorenz.push({ x: 0, y: 0, series: "perfect equality" }, { x: 1, y: 1, series: "perfect equality" });
  const ruleText = rule === "relative"
    ? `|R[v,s]| > ${threshold} x max_s |R[v,s]| (relative to the row's largest entry)`
    : rule === "absolute"
    ? `|R[v,s]| > ${threshold}`
    : `R[v,s] > ${threshold}`;
  return {
    result: {
      id: 2,
      key: "sparsity-profile",
      name: "Sparsity Profile",
      definitions: {
        active: ruleText,
        vocabulary: `real tokens only (ids < ${realVocab}); pad rows excluded`,
        gini: "G = sum_i (2i - n - 1) x_(i) / (n sum x), x = per-signal usage sorted ascending, i = 1..n",
      },
      options: { rule, threshold, realVocab },
      summary: {
        meanActive: stats.mean,
        signals: S,
        activeFraction: round(stats.mean / S),
        gini: g,
      },
      activeCounts: stats,
      histogram: [...hist.entries()].sort((a, b) => a[0] - b[0]).map(([active, tokens]) => ({
        active,
        tokens,
      })),
      usage,
      gini: g,
    },
    figures: {
      histogram: histogramFigure(counts, {
        xLabel: `active signals per token (of ${S})`,
        yLabel: "tokens (count)",
        title: "Sparsity profile: active signals per token",
        mean: stats.mean,
        meanLabel: `mean ${stats.mean.toFixed(1)} (${(100 * stats.mean / S).toFixed(1)} %)`,
      }),
      usage: lineFigure(lorenz, {
        xLabel: "share of signals, least used first",
        yLabel: "share of all activations",
        title: `Signal usage across the vocabulary (Gini ${g.toFixed(3)})`,
        yDomain: [0, 1],
      }),
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// 3. Basis geometry

/**
 * Result of {@linkcode basisGeometry}.
 *
 * @category reFlow
 */
export interface BasisGeometryResult extends ExperimentResult {
  /** Singular values of Φ, descending (min(S, d) of them). */
  singularValues: number[];
  /** exp(entropy of the normalised singular values). */
  effectiveRank: number;
  /** σ_max / σ_min (null when σ_min is 0). */
  conditionNumber: number | null;
  /** Mean and max |cosine| between distinct basis rows (redundancy). */
  redundancy: { meanAbsCosine: number; maxAbsCosine: number };
}

/**
 * #3 Basis Geometry: singular values of the basis Φ [S, d], effective rank, condition number and the
 * redundancy of the basis rows.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { basisGeometry } from "./experiments.ts";
 * const { model, tokenizer } = tinyReflowModel();
 * const { result } = await basisGeometry(model, tokenizer);
 * assert.equal(result.singularValues.length, 8);
 * assert.ok(result.effectiveRank > 1 && result.effectiveRank <= 8);
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export async function basisGeometry(
  model: CausalLM,
  tokenizer: TextTokenizer,
  options: CommonOptions = {},
): Promise<ExperimentOutput<BasisGeometryResult>> {
  const { parts } = setup(model, tokenizer, options, "basisGeometry");
  const S = parts.signals, d = parts.dModel;
  // The Gram matrix of the shorter side carries all singular values; tf forms it, Jacobi solves it.
  const gram = tf.tidy(() =>
    S <= d
      ? tf.matMul(parts.basis, parts.basis, false, true)
      : tf.matMul(parts.basis, parts.basis, true, false)
  );
  const cosMat = tf.tidy(() => {
    const n = tf.div(parts.basis, tf.maximum(tf.norm(parts.basis, 2, 1, true), 1e-12));
    return tf.abs(tf.matMul(n, n, false, true));
  });
  const [g, c] = await Promise.all([gram.array() as Promise<number[][]>, cosMat.data()]);
  tf.dispose([gram, cosMat]);
  const sv = symmetricEigen(g).values.map((x) => Math.sqrt(Math.max(0, x)));
  let sum = 0, max = 0;
  for (let i = 0; i < S; i++) {
    for (let j = 0; j < S; j++) {
      if (i === j) continue;
      sum += c[i * S + j];
      max = Math.max(max, c[i * S + j]);
    }
  }
  const er = round(effectiveRank(sv));
  const minSv = sv[sv.length - 1];
  const cond = minSv > 1e-12 * sv[0] ? round(sv[0] / minSv) : null;
  const points = sv.map((y, i) => ({ x: i + 1, y, series: "singular value of the basis" }));
  return {
    result: {
      id: 3,
      key: "basis-geometry",
      name: "Basis Geometry",
      definitions: {
        singularValues: `of W_basis [${S}, ${d}] (from the eigenvalues of its ${Math.min(S, d)}x${
          Math.min(S, d)
        } Gram matrix)`,
        effectiveRank: "exp(H), H = -sum p_i ln p_i, p_i = sigma_i / sum sigma (Roy & Vetterli 2007)",
        conditionNumber: "sigma_max / sigma_min over the min(S, d) singular values",
        redundancy: "mean and max |cosine| between distinct basis rows",
      },
      options: {},
      summary: {
        effectiveRank: er,
        maxRank: Math.min(S, d),
        conditionNumber: cond,
        meanAbsCosine: round(sum / (S * (S - 1) || 1)),
      },
      singularValues: sv.map((x) => round(x)),
      effectiveRank: er,
      conditionNumber: cond,
      redundancy: { meanAbsCosine: round(sum / (S * (S - 1) || 1)), maxAbsCosine: round(max) },
    },
    figures: {
      spectrum: lineFigure(points, {
        xLabel: "index (largest first)",
        yLabel: "singular value",
        title: `Basis spectrum (effective rank ${er.toFixed(1)} of ${Math.min(S, d)})`,
        logY: true,
      }),
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// 4. Semantic galaxy

/**
 * Options of {@linkcode semanticGalaxy}.
 *
 * @category reFlow
 */
export interface SemanticGalaxyOptions extends CommonOptions {
  /** Category → words (default: numbers, royalty, people, countries, cities, time). */
  categories?: Record<string, readonly string[]>;
  /** Where the silhouette is computed: "pca" (the 2-D projection, default) or "recipe" (full rows). */
  silhouetteSpace?: "pca" | "recipe";
  /** Distance for the silhouette (default "euclidean", as scikit-learn's default). */
  metric?: "euclidean" | "cosine";
  /** Seed of the power iteration's start vector (default 0). */
  seed?: number;
}

/**
 * Result of {@linkcode semanticGalaxy}.
 *
 * @category reFlow
 */
export interface SemanticGalaxyResult extends ExperimentResult {
  /** Each probe word's 2-D PCA coordinates and category. */
  points: { word: string; category: string; x: number; y: number }[];
  /** Share of variance explained by PC1 and PC2. */
  explainedRatio: number[];
  /** Silhouette score of the category labels. */
  silhouette: number;
}

/**
 * #4 Semantic Galaxy: PCA of the probe words' recipe rows to 2-D and the silhouette score of their
 * semantic categories.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { semanticGalaxy } from "./experiments.ts";
 * const { model, tokenizer } = tinyReflowModel();
 * const { result } = await semanticGalaxy(model, tokenizer);
 * assert.ok(result.silhouette >= -1 && result.silhouette <= 1);
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export async function semanticGalaxy(
  model: CausalLM,
  tokenizer: TextTokenizer,
  options: SemanticGalaxyOptions = {},
): Promise<ExperimentOutput<SemanticGalaxyResult>> {
  const { parts } = setup(model, tokenizer, options, "semanticGalaxy", [
    "categories",
    "silhouetteSpace",
    "metric",
    "seed",
  ]);
  const space = checkChoice(options.silhouetteSpace ?? "pca", ["pca", "recipe"] as const, "silhouette space");
  const metric = checkChoice(options.metric ?? "euclidean", ["euclidean", "cosine"] as const, "metric");
  const seed = options.seed ?? 0;
  const cats = options.categories ?? DEFAULT_CATEGORIES;
  const skipped: string[] = [];
  const words: string[] = [], labels: string[] = [], ids: number[] = [];
  for (const [cat, list] of Object.entries(cats)) {
    const r = resolveWords(tokenizer, list, options, skipped);
    r.words.forEach((w, i) => {
      words.push(w);
      labels.push(cat);
      ids.push(r.ids[i]);
    });
  }
  const rows = await recipeRows(parts);
  const data = ids.map((id) => rows[id]);
  const p = pca(data, 2, { seed });
  const sil = round(silhouetteScore(space === "pca" ? p.scores : data, labels, metric));
  const points = words.map((word, i) => ({
    word,
    category: labels[i],
    x: round(p.scores[i][0]),
    y: round(p.scores[i][1] ?? 0),
  }));
  const pct = (i: number) => `${(100 * (p.explainedRatio[i] ?? 0)).toFixed(1)} %`;
  return {
    result: {
      id: 4,
      key: "semantic-galaxy",
      name: "Semantic Galaxy",
      definitions: {
        pca: "principal components of the centred recipe rows (power iteration with deflation, seeded)",
        silhouette: `mean silhouette (Rousseeuw) of the category labels, ${metric} distance, in ${
          space === "pca" ? "the 2-D PCA projection" : "full recipe space"
        }`,
      },
      options: { categories: cats, silhouetteSpace: space, metric, seed },
      summary: { silhouette: sil, words: words.length, categories: new Set(labels).size },
      points,
      explainedRatio: p.explainedRatio.map((x) => round(x)),
      silhouette: sil,
      ...(skipped.length ? { skipped } : {}),
    },
    figures: {
      galaxy: scatterFigure(points.map((q) => ({ x: q.x, y: q.y, label: q.word, group: q.category })), {
        xLabel: `PC1 of recipe rows (${pct(0)} of variance)`,
        yLabel: `PC2 (${pct(1)} of variance)`,
        title: `Semantic galaxy (silhouette ${sil.toFixed(3)})`,
      }),
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// 5. Semantic algebra

/**
 * Options of {@linkcode semanticAlgebra}.
 *
 * @category reFlow
 */
export interface SemanticAlgebraOptions extends CommonOptions {
  /** Triples: vector = R[b] + R[c] − R[a], expected `target` (default: the README's three). */
  triples?: { a: string; b: string; c: string; target: string }[];
  /** A hit is a target ranked within the top `hitRank` (default 5; the README counts a #2). */
  hitRank?: number;
  /** Candidates listed per triple (default 5). */
  listed?: number;
}

/**
 * Result of {@linkcode semanticAlgebra}.
 *
 * @category reFlow
 */
export interface SemanticAlgebraResult extends ExperimentResult {
  /** One entry per triple. */
  triples: {
    expression: string;
    target: string;
    rank: number;
    hit: boolean;
    top: { id: number; token: string; cosine: number }[];
  }[];
  /** Number of hits. */
  hits: number;
}

/**
 * #5 Semantic Algebra: rank of the target among all real vocabulary rows by cosine to R[b] + R[c] − R[a],
 * the three inputs excluded.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { semanticAlgebra } from "./experiments.ts";
 * const { model, tokenizer } = tinyReflowModel();
 * const { result } = await semanticAlgebra(model, tokenizer);
 * assert.equal(result.triples.length, 3);
 * assert.ok(result.triples.every((t) => t.rank >= 1));
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export async function semanticAlgebra(
  model: CausalLM,
  tokenizer: TextTokenizer,
  options: SemanticAlgebraOptions = {},
): Promise<ExperimentOutput<SemanticAlgebraResult>> {
  const { parts, realVocab, excluded } = setup(model, tokenizer, options, "semanticAlgebra", [
    "triples",
    "hitRank",
    "listed",
  ]);
  const hitRank = options.hitRank ?? 5, listed = options.listed ?? 5;
  const rows = await recipeRows(parts);
  const skipped: string[] = [];
  const out: SemanticAlgebraResult["triples"] = [];
  for (const t of options.triples ?? DEFAULT_TRIPLES) {
    const r = resolveWords(tokenizer, [t.a, t.b, t.c, t.target], options, skipped);
    if (r.words.length < 4) continue;
    const [a, b, c, target] = r.ids;
    const q = new Float64Array(parts.signals);
    for (let s = 0; s < q.length; s++) q[s] = rows[b][s] + rows[c][s] - rows[a][s];
    const exclude = new Set([a, b, c, ...excluded]);
    const sims = new Float64Array(realVocab);
    for (let v = 0; v < realVocab; v++) sims[v] = exclude.has(v) ? -Infinity : cosine(q, rows[v]);
    const rank = rankOf(sims, target, realVocab);
    out.push({
      expression: `${t.b} + ${t.c} - ${t.a}`,
      target: t.target,
      rank,
      hit: rank <= hitRank,
      top: topIndices(sims, listed).map((id) => ({
        id,
        token: decodeToken(tokenizer, id),
        cosine: round(sims[id]),
      })),
    });
  }
  const hits = out.filter((t) => t.hit).length;
  return {
    result: {
      id: 5,
      key: "semantic-algebra",
      name: "Semantic Algebra",
      definitions: {
        excluded: excludedNote(excluded, tokenizer),
        vector: "R[b] + R[c] - R[a] in recipe space (effective recipe rows)",
        ranking:
          `cosine to every real vocabulary row (ids < ${realVocab}, pad rows excluded), the three inputs excluded; rank 1 = best`,
        hit: `target rank <= ${hitRank}`,
      },
      options: { triples: options.triples ?? DEFAULT_TRIPLES, hitRank, listed, realVocab },
      summary: { hits, tested: out.length, hitRate: out.length ? round(hits / out.length) : null },
      triples: out,
      hits,
      ...(skipped.length ? { skipped } : {}),
    },
    figures: {},
  };
}

// ---------------------------------------------------------------------------------------------------
// 6. Typo resilience

/**
 * Options of {@linkcode typoResilience}.
 *
 * @category reFlow
 */
export interface TypoResilienceOptions extends CommonOptions {
  /** (correct, misspelt) pairs; the misspelling may be several tokens (default: four common words). */
  pairs?: [string, string][];
  /** Residual layers compared (default all, 0..L). */
  layers?: number[];
  /** Layer of the headline numbers (default L, the last). */
  layer?: number;
}

/**
 * Result of {@linkcode typoResilience}.
 *
 * @category reFlow
 */
export interface TypoResilienceResult extends ExperimentResult {
  /** Per layer: mean cosine of correct vs typo, and of correct vs unrelated correct words. */
  byLayer: { layer: number; typo: number; unrelated: number }[];
  /** Per pair at the headline layer. */
  pairs: { correct: string; typo: string; cosine: number }[];
}

/**
 * #6 Typo Resilience: cosine similarity of the signal activations σ at the last position of " word"
 * and of its misspelling, per layer, against the baseline of unrelated correct words.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { typoResilience } from "./experiments.ts";
 * const { model, tokenizer } = tinyReflowModel();
 * const { result } = await typoResilience(model, tokenizer);
 * assert.equal(result.byLayer.length, 3); // layers 0..2
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export async function typoResilience(
  model: CausalLM,
  tokenizer: TextTokenizer,
  options: TypoResilienceOptions = {},
): Promise<ExperimentOutput<TypoResilienceResult>> {
  await Promise.resolve();
  const { parts } = setup(model, tokenizer, options, "typoResilience", ["pairs", "layers", "layer"]);
  const L = parts.layers;
  const layers = layerList(options.layers, L);
  const head = options.layer ?? layers[layers.length - 1];
  if (!layers.includes(head)) {
    throw new Error(`typoResilience: layer ${head} is not among layers ${layers.join(", ")}`);
  }
  const pairs = options.pairs ?? DEFAULT_TYPOS.map((p) => [...p] as [string, string]);
  if (pairs.length < 2) {
    throw new Error("typoResilience: needs at least two pairs (the baseline compares unrelated words)");
  }
  const sigOf = (word: string): number[][] => {
    const text = options.leadingSpace === false || word.startsWith(" ") ? word : ` ${word}`;
    const h = lastResiduals(model, promptIds(tokenizer, text));
    const s = signalsOf(model, parts, h);
    const arr = s.arraySync();
    tf.dispose([h, s]);
    return arr;
  };
  const correct = pairs.map(([c]) => sigOf(c)), typos = pairs.map(([, t]) => sigOf(t));
  const byLayer = layers.map((l) => {
    const typo = meanOf(pairs.map((_, i) => cosine(correct[i][l], typos[i][l])));
    const unrel: number[] = [];
    for (let i = 0; i < pairs.length; i++) {
      for (let j = 0; j < pairs.length; j++) if (i !== j) unrel.push(cosine(correct[i][l], correct[j][l]));
    }
    return { layer: l, typo: round(typo), unrelated: round(meanOf(unrel)) };
  });
  const h = byLayer.find((b) => b.layer === head)!;
  const points: SeriesPoint[] = byLayer.flatMap((b) => [
    { x: b.layer, y: b.typo, series: "word vs its misspelling" },
    { x: b.layer, y: b.unrelated, series: "word vs unrelated words" },
  ]);
  return {
    result: {
      id: 6,
      key: "typo-resilience",
      name: "Typo Resilience",
      definitions: {
        representation:
          "signals sigma = RMSNorm_f(h) W_basis^T at the last position of the leading-space word",
        similarity: "cosine; baseline = mean over ordered pairs of different correct words",
        resilience: "mean typo cosine minus the unrelated baseline at the headline layer",
      },
      options: { pairs, layers, layer: head },
      summary: {
        layer: head,
        typoCosine: h.typo,
        unrelatedCosine: h.unrelated,
        resilience: round(h.typo - h.unrelated),
      },
      byLayer,
      pairs: pairs.map(([c, t], i) => ({
        correct: c,
        typo: t,
        cosine: round(cosine(correct[i][head], typos[i][head])),
      })),
    },
    figures: {
      layers: lineFigure(points, {
        xLabel: "layer (residual after block; 0 = embedding)",
        yLabel: "cosine of signal activations",
        title: "Typo resilience",
        integerX: true,
      }),
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// 7. Layer evolution

/**
 * Options of {@linkcode layerEvolution}.
 *
 * @category reFlow
 */
export interface LayerEvolutionOptions extends CommonOptions {
  /** Prompts with their expected next word (default: two short prompts). */
  prompts?: { text: string; target: string }[];
  /**
   * Crystallisation: "top1" (default) = first layer from which the target stays the top-1 token at
   * every later layer; "threshold" = first layer from which its probability stays ≥ `threshold`.
   */
  rule?: "top1" | "threshold";
  /** Probability threshold for rule "threshold" (default 0.5). */
  threshold?: number;
}

/**
 * Result of {@linkcode layerEvolution}.
 *
 * @category reFlow
 */
export interface LayerEvolutionResult extends ExperimentResult {
  /** One entry per prompt. */
  prompts: {
    text: string;
    target: string;
    /** Target probability after each layer 0..L (logit lens). */
    probability: number[];
    /** Target rank after each layer (1 = top). */
    rank: number[];
    /** Top-1 token after each layer. */
    top1: string[];
    /** Crystallisation layer, null when the rule never holds through the last layer. */
    crystallisation: number | null;
  }[];
}

/**
 * #7 Layer Evolution: the logit lens softmax(σ_ℓ·Rᵀ) after every layer, the target's probability and
 * rank, and the crystallisation layer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { layerEvolution } from "./experiments.ts";
 * const { model, tokenizer } = tinyReflowModel();
 * const { result } = await layerEvolution(model, tokenizer);
 * assert.equal(result.prompts[0].probability.length, 3);
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export async function layerEvolution(
  model: CausalLM,
  tokenizer: TextTokenizer,
  options: LayerEvolutionOptions = {},
): Promise<ExperimentOutput<LayerEvolutionResult>> {
  await Promise.resolve();
  const { parts, realVocab, excluded } = setup(model, tokenizer, options, "layerEvolution", [
    "prompts",
    "rule",
    "threshold",
  ]);
  const rule = checkChoice(options.rule ?? "top1", ["top1", "threshold"] as const, "crystallisation rule");
  const threshold = options.threshold ?? 0.5;
  const prompts = options.prompts ?? DEFAULT_PROMPTS.map((p) => ({ ...p }));
  const recipe = recipeMatrix(parts);
  const out: LayerEvolutionResult["prompts"] = [];
  try {
    for (const p of prompts) {
      const target = probeToken(tokenizer, p.target, options);
      const probs = tf.tidy(() => {
        const h = lastResiduals(model, promptIds(tokenizer, p.text));
        return probsFromSignalsArray(recipe, signalsOf(model, parts, h));
      });
      const probability = probs.map((row) => round(row[target], 8));
      const rank = probs.map((row) => rankOf(masked(row, excluded), target, realVocab));
      const top1 = probs.map((row) => decodeToken(tokenizer, argmax(masked(row, excluded), realVocab)));
      const holds = rule === "top1" ? rank.map((r) => r === 1) : probability.map((x) => x >= threshold);
      let cryst: number | null = null;
      for (let l = holds.length - 1; l >= 0 && holds[l]; l--) cryst = l;
      out.push({ text: p.text, target: p.target, probability, rank, top1, crystallisation: cryst });
    }
  } finally {
    recipe.dispose();
  }
  const points = out.flatMap((p) =>
    p.probability.map((y, l) => ({ x: l, y, series: `${p.text} → ${p.target}` }))
  );
  return {
    result: {
      id: 7,
      key: "layer-evolution",
      name: "Layer Evolution",
      definitions: {
        excluded: excludedNote(excluded, tokenizer),
        lens:
          "softmax(sigma_l R^T), sigma_l = RMSNorm_f(h_l) W_basis^T, h_l = residual after layer l at the last position",
        crystallisation: rule === "top1"
          ? "first layer from which the target is the top-1 real token at every later layer"
          : `first layer from which the target's probability stays >= ${threshold}`,
      },
      options: { prompts, rule, threshold },
      summary: {
        layers: parts.layers,
        crystallised: out.filter((p) => p.crystallisation !== null).length,
        meanCrystallisation: out.some((p) => p.crystallisation !== null)
          ? round(meanOf(out.filter((p) => p.crystallisation !== null).map((p) => p.crystallisation!)))
          : null,
        finalTargetProbability: round(meanOf(out.map((p) => p.probability[p.probability.length - 1])), 8),
      },
      prompts: out,
    },
    figures: {
      lens: lineFigure(points, {
        xLabel: "layer (residual after block; 0 = embedding)",
        yLabel: "target probability (logit lens)",
        title: "Layer evolution",
        integerX: true,
      }),
    },
  };
}

function probsFromSignalsArray(recipe: Tensor2D, sig: Tensor2D): Float32Array[] {
  const data = probsFromSignals(recipe, sig).dataSync() as Float32Array;
  const V = recipe.shape[0];
  return Array.from({ length: sig.shape[0] }, (_, i) => data.slice(i * V, (i + 1) * V));
}

// ---------------------------------------------------------------------------------------------------
// 8. Signal flow

/**
 * Options of {@linkcode signalFlow}.
 *
 * @category reFlow
 */
export interface SignalFlowOptions extends CommonOptions {
  /** The prompt (default: the first default prompt). */
  prompt?: string;
  /** Signals shown: the `topN` with the largest |σ| at any layer (default 16). */
  topN?: number;
}

/**
 * Result of {@linkcode signalFlow}.
 *
 * @category reFlow
 */
export interface SignalFlowResult extends ExperimentResult {
  /** The shown signal ids, in clustered order (heat-map rows). */
  signals: number[];
  /** σ of each shown signal after each layer, [signal][layer], in `signals` order. */
  values: number[][];
  /** L2 norm of the whole σ after each layer. */
  norms: number[];
}

/**
 * #8 Signal Flow: σ at the last position after every layer; a heat-map (signals × layers) of the
 * strongest signals, rows in average-linkage order of their layer profiles.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { signalFlow } from "./experiments.ts";
 * const { model, tokenizer } = tinyReflowModel();
 * const { result } = await signalFlow(model, tokenizer, { topN: 4 });
 * assert.equal(result.values.length, 4);
 * assert.equal(result.values[0].length, 3);
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export async function signalFlow(
  model: CausalLM,
  tokenizer: TextTokenizer,
  options: SignalFlowOptions = {},
): Promise<ExperimentOutput<SignalFlowResult>> {
  await Promise.resolve();
  const { parts } = setup(model, tokenizer, options, "signalFlow", ["prompt", "topN"]);
  const prompt = options.prompt ?? DEFAULT_PROMPTS[0].text;
  const topN = Math.min(options.topN ?? 16, parts.signals);
  const sig = tf.tidy(() =>
    signalsOf(model, parts, lastResiduals(model, promptIds(tokenizer, prompt))).arraySync()
  );
  const peak = new Float64Array(parts.signals);
  for (const row of sig) row.forEach((v, s) => (peak[s] = Math.max(peak[s], Math.abs(v))));
  const chosen = topIndices(peak, topN);
  const profiles = chosen.map((s) => sig.map((row) => row[s]));
  const order = clusterOrder(distanceMatrix(profiles, "cosine")).map((i) => chosen[i]);
  const values = order.map((s) => sig.map((row) => round(row[s])));
  const layerNames = sig.map((_, l) => String(l));
  const cells = order.flatMap((s, i) =>
    values[i].map((v, l) => ({ x: layerNames[l], y: `signal ${s}`, value: v }))
  );
  return {
    result: {
      id: 8,
      key: "signal-flow",
      name: "Signal Flow",
      definitions: {
        signals: "sigma_l = RMSNorm_f(h_l) W_basis^T at the last position, h_l = residual after layer l",
        selection: `the ${topN} signals with the largest |sigma| at any layer`,
        order: "average-linkage clustering of the signals' layer profiles (1 - cosine)",
      },
      options: { prompt, topN },
      summary: { prompt, shown: topN, finalNorm: round(Math.hypot(...sig[sig.length - 1])) },
      signals: order,
      values,
      norms: sig.map((row) => round(Math.hypot(...row))),
    },
    figures: {
      heatmap: heatmapFigure(cells, {
        xOrder: layerNames,
        yOrder: order.map((s) => `signal ${s}`),
        legend: "signal activation σ",
        title: `Signal flow: ${JSON.stringify(prompt)}`,
        xLabel: "layer (0 = embedding)",
        diverging: true,
      }),
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// 9. Causal ablation

/**
 * Options of {@linkcode causalAblation}.
 *
 * @category reFlow
 */
export interface CausalAblationOptions extends CommonOptions {
  /** Prompt (default: the first default prompt). */
  prompt?: string;
  /** Target word, or "prediction" for the model's own top-1 next token (default: the prompt's target). */
  target?: string;
  /** Knock out up to this many signals (default 20, capped at S). */
  maxK?: number;
  /** Random-control draws per k (default 5). */
  randomTrials?: number;
  /** Seed of the random control (default 0). */
  seed?: number;
}

/**
 * Result of {@linkcode causalAblation}.
 *
 * @category reFlow
 */
export interface CausalAblationResult extends ExperimentResult {
  /** Target token. */
  target: string;
  /** Signals by descending contribution c_s = σ_s·R[target, s] (the first maxK). */
  ranking: { signal: number; contribution: number }[];
  /** Target probability after zeroing the top-k signals, k = 0..maxK. */
  topKnockout: number[];
  /** Mean target probability after zeroing k random signals, k = 0..maxK. */
  randomKnockout: number[];
}

/**
 * #9 Causal Ablation: at the final layer, zero the signals with the largest contribution to the target
 * logit one after another (progressive knockout) and track the target probability; control: zero
 * random signals. σ is replaced through the model's signals hook when it has one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { causalAblation } from "./experiments.ts";
 * const { model, tokenizer } = tinyReflowModel();
 * const { result } = await causalAblation(model, tokenizer, { maxK: 3, randomTrials: 2 });
 * assert.equal(result.topKnockout.length, 4);
 * assert.equal(result.topKnockout[0], result.randomKnockout[0]); // k = 0: nothing ablated
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export async function causalAblation(
  model: CausalLM,
  tokenizer: TextTokenizer,
  options: CausalAblationOptions = {},
): Promise<ExperimentOutput<CausalAblationResult>> {
  await Promise.resolve();
  const { parts, realVocab, excluded } = setup(model, tokenizer, options, "causalAblation", [
    "prompt",
    "target",
    "maxK",
    "randomTrials",
    "seed",
  ]);
  const S = parts.signals;
  const prompt = options.prompt ?? DEFAULT_PROMPTS[0].text;
  const ids = promptIds(tokenizer, prompt);
  const maxK = Math.min(options.maxK ?? 20, S), trials = options.randomTrials ?? 5, seed = options.seed ?? 0;
  const recipe = recipeMatrix(parts);
  try {
    const sigma = tf.tidy(() => {
      const h = lastResiduals(model, ids);
      return signalsOf(model, parts, tf.slice(h, [parts.layers, 0], [1, -1]) as Tensor2D)
        .dataSync() as Float32Array;
    });
    const targetWord = options.target ??
      (options.prompt === undefined ? DEFAULT_PROMPTS[0].target : "prediction");
    const target = targetWord === "prediction"
      ? argmax(masked(nextTokenProbs(model, ids), excluded), realVocab)
      : probeToken(tokenizer, targetWord, options);
    const row = tf.tidy(() => tf.slice(recipe, [target, 0], [1, -1]).dataSync() as Float32Array);
    const contrib = Array.from(sigma, (s, i) => s * row[i]);
    const ranking = topIndices(contrib, S);
    const probWithout = (zeroed: number[]): number => {
      const mask = new Float32Array(S).fill(1);
      for (const s of zeroed) mask[s] = 0;
      if (parts.signalsHook) {
        const hooks: Hooks = {
          [parts.signalsHook]: (x) => {
            const t = x.shape[1] ?? 1;
            // Only the last position is ablated; earlier positions keep their signals.
            const m = tf.concat([tf.ones([1, t - 1, S]), tf.reshape(tf.tensor1d(mask), [1, 1, S])], 1);
            return tf.mul(x, m) as Tensor3D;
          },
        };
        return nextTokenProbs(model, ids, hooks)[target];
      }
      return tf.tidy(() => {
        const s = tf.mul(tf.tensor2d(sigma, [1, S]), tf.tensor2d(mask, [1, S])) as Tensor2D;
        return probsFromSignals(recipe, s).dataSync()[target];
      });
    };
    const topKnockout: number[] = [], randomKnockout: number[] = [];
    const rng = new Prng(seed);
    const perms = Array.from({ length: trials }, () => rng.shuffle(Array.from({ length: S }, (_, i) => i)));
    for (let k = 0; k <= maxK; k++) {
      topKnockout.push(round(probWithout(ranking.slice(0, k)), 8));
      randomKnockout.push(
        k === 0 ? topKnockout[0] : round(meanOf(perms.map((p) => probWithout(p.slice(0, k)))), 8),
      );
    }
    const p0 = topKnockout[0];
    const half = topKnockout.findIndex((p) => p <= p0 / 2);
    const points: SeriesPoint[] = [
      ...topKnockout.map((y, k) => ({ x: k, y, series: "top contributors first" })),
      ...randomKnockout.map((y, k) => ({ x: k, y, series: `random signals (mean of ${trials})` })),
    ];
    return {
      result: {
        id: 9,
        key: "causal-ablation",
        name: "Causal Ablation",
        definitions: {
          excluded: excludedNote(excluded, tokenizer),
          contribution:
            "c_s = sigma_s R[target, s] at the last position, final layer (sigma = RMSNorm_f(h_L) W_basis^T)",
          ablation: parts.signalsHook
            ? `sigma_s set to 0 at the last position through the ${parts.signalsHook} hook`
            : "sigma_s set to 0 and logits recomputed as sigma R^T",
          control: `k signals drawn uniformly without replacement, ${trials} draws (seed ${seed})`,
          probability: "softmax over the model's full output row",
        },
        options: { prompt, target: targetWord, maxK, randomTrials: trials, seed },
        summary: {
          target: decodeToken(tokenizer, target),
          baseline: p0,
          afterTop1: topKnockout[1] ?? null,
          afterRandom1: randomKnockout[1] ?? null,
          kToHalve: half < 0 ? null : half,
        },
        target: decodeToken(tokenizer, target),
        ranking: ranking.slice(0, maxK).map((s) => ({ signal: s, contribution: round(contrib[s]) })),
        topKnockout,
        randomKnockout,
      },
      figures: {
        knockout: lineFigure(points, {
          xLabel: "signals knocked out (k)",
          yLabel: `probability of ${JSON.stringify(decodeToken(tokenizer, target))}`,
          title: "Causal ablation: progressive knockout",
          integerX: true,
        }),
      },
    };
  } finally {
    recipe.dispose();
  }
}

// ---------------------------------------------------------------------------------------------------
// 10. Emotion surgery

/**
 * Options of {@linkcode emotionSurgery}.
 *
 * @category reFlow
 */
export interface EmotionSurgeryOptions extends CommonOptions {
  /** Positive words (default: good, great, happy, love, best). */
  positive?: string[];
  /** Negative words (default: bad, poor, sad, hate, worst). */
  negative?: string[];
  /** Neutral prompt (default "The film was"). */
  prompt?: string;
  /** Layers to steer at (default all, 0..L). */
  layers?: number[];
  /** Strength: the injected vector is alpha · (mean residual norm at that layer) · unit(u·Φ) (default 1). */
  alpha?: number;
  /** A layer is "effective" when its shift is at least this share of the largest shift (default 0.5). */
  effectiveFraction?: number;
  /** Greedy continuation length shown per layer (default 6; 0 = none). */
  continuationTokens?: number;
}

/**
 * Result of {@linkcode emotionSurgery}.
 *
 * @category reFlow
 */
export interface EmotionSurgeryResult extends ExperimentResult {
  /** Unsteered sentiment score and continuation. */
  baseline: { score: number; continuation: string };
  /** Per layer: steered score, shift over the baseline, continuation. */
  byLayer: { layer: number; score: number; shift: number; continuation: string }[];
  /** Layers whose shift reaches `effectiveFraction` of the largest. */
  effectiveLayers: number[];
}

/**
 * #10 Emotion Surgery: the sentiment direction u = mean R[positive] − mean R[negative] mapped to the
 * residual stream (u·Φ) and added at one layer for all positions; the shift of the next-token
 * sentiment score per layer shows where steering works.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { emotionSurgery } from "./experiments.ts";
 * const { model, tokenizer } = tinyReflowModel();
 * const { result } = await emotionSurgery(model, tokenizer, { continuationTokens: 2 });
 * assert.equal(result.byLayer.length, 3);
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export async function emotionSurgery(
  model: CausalLM,
  tokenizer: TextTokenizer,
  options: EmotionSurgeryOptions = {},
): Promise<ExperimentOutput<EmotionSurgeryResult>> {
  await Promise.resolve();
  const { parts, realVocab, excluded } = setup(model, tokenizer, options, "emotionSurgery", [
    "positive",
    "negative",
    "prompt",
    "layers",
    "alpha",
    "effectiveFraction",
    "continuationTokens",
  ]);
  const L = parts.layers;
  const layers = layerList(options.layers, L);
  const alpha = options.alpha ?? 1, frac = options.effectiveFraction ?? 0.5;
  const nCont = options.continuationTokens ?? 6;
  const prompt = options.prompt ?? "The film was";
  const ids = promptIds(tokenizer, prompt);
  const skipped: string[] = [];
  const pos = resolveWords(tokenizer, options.positive ?? [...DEFAULT_SENTIMENT.positive], options, skipped);
  const neg = resolveWords(tokenizer, options.negative ?? [...DEFAULT_SENTIMENT.negative], options, skipped);
  if (!pos.ids.length || !neg.ids.length) {
    throw new Error("emotionSurgery: needs positive and negative words");
  }
  const recipe = recipeMatrix(parts);
  const direction = tf.tidy(() => {
    const mp = tf.mean(tf.gather(recipe, tf.tensor1d(pos.ids, "int32")), 0);
    const mn = tf.mean(tf.gather(recipe, tf.tensor1d(neg.ids, "int32")), 0);
    const v = tf.reshape(tf.matMul(tf.reshape(tf.sub(mp, mn), [1, -1]), parts.basis), [-1]);
    return tf.div(v, tf.maximum(tf.norm(v), 1e-12)) as Tensor1D;
  });
  const norms = residualNorms(model, ids);
  const score = (p: Float32Array): number =>
    meanOf(pos.ids.map((i) => Math.log(p[i] + 1e-30))) - meanOf(neg.ids.map((i) => Math.log(p[i] + 1e-30)));
  try {
    const base = score(nextTokenProbs(model, ids));
    const baseline = {
      score: round(base),
      continuation: nCont
        ? greedyContinuation(model, tokenizer, ids, nCont, undefined, realVocab, excluded)
        : "",
    };
    const byLayer = layers.map((l) => {
      const vec = tf.mul(direction, alpha * norms[l]) as Tensor1D;
      const hooks = injectionHooks(l, L, vec);
      const s = score(nextTokenProbs(model, ids, hooks));
      const continuation = nCont
        ? greedyContinuation(model, tokenizer, ids, nCont, hooks, realVocab, excluded)
        : "";
      vec.dispose();
      return { layer: l, score: round(s), shift: round(s - base), continuation };
    });
    const best = Math.max(...byLayer.map((b) => b.shift));
    const effectiveLayers = best > 0 ? byLayer.filter((b) => b.shift >= frac * best).map((b) => b.layer) : [];
    return {
      result: {
        id: 10,
        key: "emotion-surgery",
        name: "Emotion Surgery",
        definitions: {
          excluded: excludedNote(excluded, tokenizer),
          direction:
            "u = mean R[positive] - mean R[negative] (recipe space), steering vector = unit(u W_basis)",
          injection:
            `add alpha x (mean L2 norm of the residual at that layer on the prompt) x unit(u W_basis) to the residual after the layer, every position; alpha = ${alpha}`,
          score: "mean log p(positive words) - mean log p(negative words) for the next token",
          effective: `shift >= ${frac} x the largest shift`,
        },
        options: {
          positive: pos.words,
          negative: neg.words,
          prompt,
          layers,
          alpha,
          effectiveFraction: frac,
          continuationTokens: nCont,
        },
        summary: {
          baselineScore: baseline.score,
          bestLayer: byLayer.find((b) => b.shift === best)?.layer ?? null,
          bestShift: round(best),
          lastEffectiveLayer: effectiveLayers.length ? Math.max(...effectiveLayers) : null,
          layers: L,
        },
        baseline,
        byLayer,
        effectiveLayers,
        ...(skipped.length ? { skipped } : {}),
      },
      figures: {
        steering: lineFigure(byLayer.map((b) => ({ x: b.layer, y: b.shift, series: `alpha ${alpha}` })), {
          xLabel: "injection layer (residual after block; 0 = embedding)",
          yLabel: "sentiment score shift (nats)",
          title: "Emotion surgery: effect of steering by layer",
          integerX: true,
        }),
      },
    };
  } finally {
    tf.dispose([recipe, direction]);
  }
}

/** Mean L2 norm over positions of the residual after each layer 0..L, on one prompt. */
function residualNorms(model: CausalLM, ids: number[]): number[] {
  const L = model.config.nLayers;
  const names = Array.from({ length: L + 1 }, (_, l) => residualHook(l, L));
  return tf.tidy(() => {
    const input = tf.tensor2d([ids], [1, ids.length], "int32");
    const r = model.forward(input, { capture: names });
    const acts = r.activations!;
    // One packed readback for all L+1 norms rather than one per layer.
    const out = Array.from(tf.stack(names.map((n) => tf.mean(tf.norm(acts.get(n)!, 2, -1)))).dataSync());
    for (const a of acts.values()) a.dispose();
    return out;
  });
}

// ---------------------------------------------------------------------------------------------------
// 11. Concept inception

/**
 * Options of {@linkcode conceptInception}.
 *
 * @category reFlow
 */
export interface ConceptInceptionOptions extends CommonOptions {
  /** Prompt (default "The film was"). */
  prompt?: string;
  /** Concept word to implant (default "queen"). */
  concept?: string;
  /** Layers to inject at (default all, 0..L). */
  layers?: number[];
  /** Largest strength tried, in units of the layer's mean residual norm (default 16). */
  maxAlpha?: number;
  /** Bisection steps (default 16). */
  iterations?: number;
}

/**
 * Result of {@linkcode conceptInception}.
 *
 * @category reFlow
 */
export interface ConceptInceptionResult extends ExperimentResult {
  /** Per layer: the minimal strength α* that makes the concept the top-1 token (null = none up to the cap). */
  byLayer: { layer: number; alpha: number | null }[];
  /** Layers where some α ≤ maxAlpha works. */
  effectiveLayers: number[];
}

/**
 * #11 Concept Inception: for each layer, the smallest strength α (bisection) such that adding
 * α·‖h‖·unit(R[concept]·Φ) to the residual after that layer makes the concept the top-1 next token.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { conceptInception } from "./experiments.ts";
 * const { model, tokenizer } = tinyReflowModel();
 * const { result } = await conceptInception(model, tokenizer, { iterations: 4 });
 * assert.equal(result.byLayer.length, 3);
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export async function conceptInception(
  model: CausalLM,
  tokenizer: TextTokenizer,
  options: ConceptInceptionOptions = {},
): Promise<ExperimentOutput<ConceptInceptionResult>> {
  await Promise.resolve();
  const { parts, realVocab, excluded } = setup(model, tokenizer, options, "conceptInception", [
    "prompt",
    "concept",
    "layers",
    "maxAlpha",
    "iterations",
  ]);
  const L = parts.layers;
  const layers = layerList(options.layers, L);
  const prompt = options.prompt ?? "The film was";
  const conceptWord = options.concept ?? "queen";
  const concept = probeToken(tokenizer, conceptWord, options);
  const maxAlpha = options.maxAlpha ?? 16, iters = options.iterations ?? 16;
  const ids = promptIds(tokenizer, prompt);
  const recipe = recipeMatrix(parts);
  const dir = tf.tidy(() => {
    const v = tf.reshape(tf.matMul(tf.slice(recipe, [concept, 0], [1, -1]), parts.basis), [-1]);
    return tf.div(v, tf.maximum(tf.norm(v), 1e-12)) as Tensor1D;
  });
  const norms = residualNorms(model, ids);
  const works = (l: number, a: number): boolean => {
    const vec = tf.mul(dir, a * norms[l]) as Tensor1D;
    const p = nextTokenProbs(model, ids, injectionHooks(l, L, vec));
    vec.dispose();
    return argmax(masked(p, excluded), realVocab) === concept;
  };
  try {
    const already = argmax(masked(nextTokenProbs(model, ids), excluded), realVocab) === concept;
    const byLayer = layers.map((l) => {
      if (already) return { layer: l, alpha: 0 };
      if (!works(l, maxAlpha)) return { layer: l, alpha: null };
      let lo = 0, hi = maxAlpha;
      for (let i = 0; i < iters; i++) {
        const mid = (lo + hi) / 2;
        if (works(l, mid)) hi = mid;
        else lo = mid;
      }
      return { layer: l, alpha: round(hi, 4) };
    });
    const effective = byLayer.filter((b) => b.alpha !== null).map((b) => b.layer);
    const shown = byLayer.map((b) => ({ x: b.layer, y: b.alpha ?? NaN, series: "minimal strength alpha*" }));
    return {
      result: {
        id: 11,
        key: "concept-inception",
        name: "Concept Inception",
        definitions: {
          excluded: excludedNote(excluded, tokenizer),
          injection:
            "add alpha x (mean L2 norm of the residual at that layer) x unit(R[concept] W_basis) after the layer, every position",
          success: "the concept is the top-1 real token for the next position",
          search:
            `bisection on [0, ${maxAlpha}], ${iters} steps (assumes success is monotone in alpha); null = fails at the cap`,
        },
        options: { prompt, concept: conceptWord, layers, maxAlpha, iterations: iters },
        summary: {
          concept: conceptWord,
          effectiveLayers: effective.length,
          lastEffectiveLayer: effective.length ? Math.max(...effective) : null,
          minAlpha: effective.length
            ? Math.min(...byLayer.filter((b) => b.alpha !== null).map((b) => b.alpha!))
            : null,
          layers: L,
        },
        byLayer,
        effectiveLayers: effective,
      },
      figures: {
        strength: lineFigure(shown.filter((p) => Number.isFinite(p.y)), {
          xLabel: "injection layer (residual after block; 0 = embedding)",
          yLabel: "minimal strength alpha* (x residual norm)",
          title: `Concept inception of ${
            JSON.stringify(conceptWord)
          } (missing layer = inert up to ${maxAlpha})`,
          integerX: true,
        }),
      },
    };
  } finally {
    tf.dispose([recipe, dir]);
  }
}

// ---------------------------------------------------------------------------------------------------
// 12. Genetic hijack

/**
 * One recipe-row edit for {@linkcode editRecipeRows}.
 *
 * @category reFlow
 */
export interface RecipeEdit {
  /** Row to overwrite. */
  token: number;
  /** The new row [S]. */
  row: ArrayLike<number>;
}

/**
 * Overwrites recipe rows in place and returns the undo, which writes back the exact old values.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { editRecipeRows } from "./experiments.ts";
 * const { model } = tinyReflowModel();
 * const r = model.parameters().get("embed.W_recipe")!;
 * const before = r.dataSync().slice();
 * const undo = editRecipeRows(model, [{ token: 1, row: new Array(8).fill(0) }]);
 * undo();
 * assert.deepEqual(r.dataSync(), before);
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export function editRecipeRows(model: CausalLM, edits: RecipeEdit[]): () => void {
  const parts = reflowParts(model);
  const v = parts.recipeVar;
  const S = parts.signals;
  const tokens = edits.map((e) => e.token);
  for (const e of edits) {
    if (!Number.isInteger(e.token) || e.token < 0 || e.token >= parts.vocab) {
      throw new Error(`editRecipeRows: token ${e.token} out of range`);
    }
    if (e.row.length !== S) {
      throw new Error(`editRecipeRows: row for token ${e.token} has ${e.row.length} values, expected ${S}`);
    }
  }
  const old = tf.tidy(() => tf.gather(v, tf.tensor1d(tokens, "int32")).dataSync().slice() as Float32Array);
  const write = (rows: Float32Array) =>
    tf.tidy(() => {
      const idx = tf.tensor2d(tokens.map((t) => [t]), [tokens.length, 1], "int32");
      const upd = tf.tensor2d(rows, [tokens.length, S]);
      // Scatter the rows into a copy of R (tensorScatterUpdate keeps the other rows bit-exact).
      v.assign(tf.tensorScatterUpdate(v, idx, upd));
    });
  const rows = new Float32Array(tokens.length * S);
  edits.forEach((e, i) => rows.set(Array.from(e.row), i * S));
  write(rows);
  let undone = false;
  return () => {
    if (undone) return;
    undone = true;
    write(old);
  };
}

/**
 * Options of {@linkcode geneticHijack}.
 *
 * @category reFlow
 */
export interface GeneticHijackOptions extends CommonOptions {
  /** The token whose recipe is rewritten (default "king"). */
  source?: string;
  /** The donor token (default "queen"). */
  donor?: string;
  /** "copy" (R[source] ← R[donor], default), "swap" (exchange both rows) or "blend" (mix by `weight`). */
  mode?: "copy" | "swap" | "blend";
  /** Blend weight of the donor row (default 0.5). */
  weight?: number;
  /** Prompts to compare before and after (default: prompts that contain the source word). */
  prompts?: string[];
  /** Next-token candidates listed (default 5). */
  listed?: number;
}

/**
 * Result of {@linkcode geneticHijack}.
 *
 * @category reFlow
 */
export interface GeneticHijackResult extends ExperimentResult {
  /** Per prompt: top next tokens and probabilities of source/donor before and after the edit. */
  prompts: {
    text: string;
    before: { top: { token: string; p: number }[]; pSource: number; pDonor: number };
    after: { top: { token: string; p: number }[]; pSource: number; pDonor: number };
    /** Whether the top-1 prediction changed. */
    changed: boolean;
  }[];
  /** The edit was undone and R equals its original bit for bit. */
  restored: boolean;
}

/**
 * #12 Genetic Hijack: rewrite the recipe row of one token (copy, swap or blend with a donor), compare
 * next-token predictions before and after, then undo the edit and check R is restored exactly. Because R
 * drives input and output alike, the source is both read and written as the donor.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { geneticHijack } from "./experiments.ts";
 * const { model, tokenizer } = tinyReflowModel();
 * const { result } = await geneticHijack(model, tokenizer);
 * assert.equal(result.restored, true);
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export async function geneticHijack(
  model: CausalLM,
  tokenizer: TextTokenizer,
  options: GeneticHijackOptions = {},
): Promise<ExperimentOutput<GeneticHijackResult>> {
  const { parts, realVocab, excluded } = setup(model, tokenizer, options, "geneticHijack", [
    "source",
    "donor",
    "mode",
    "weight",
    "prompts",
    "listed",
  ]);
  const mode = checkChoice(options.mode ?? "copy", ["copy", "swap", "blend"] as const, "hijack mode");
  const weight = options.weight ?? 0.5, listed = options.listed ?? 5;
  const sourceWord = options.source ?? "king", donorWord = options.donor ?? "queen";
  const [src, don] = probeTokens(tokenizer, [sourceWord, donorWord], options);
  const prompts = options.prompts ?? [`The ${sourceWord} and the`, `the ${sourceWord}`];
  const idsList = prompts.map((p) => promptIds(tokenizer, p));
  const S = parts.signals;
  const R = parts.recipeVar;
  const original = await R.data() as Float32Array;
  const snapshot = original.slice();
  const rowOf = (t: number) => snapshot.subarray(t * S, (t + 1) * S);
  const edits: RecipeEdit[] = mode === "copy"
    ? [{ token: src, row: rowOf(don) }]
    : mode === "swap"
    ? [{ token: src, row: rowOf(don) }, { token: don, row: rowOf(src) }]
    : [{ token: src, row: Array.from(rowOf(src), (x, i) => (1 - weight) * x + weight * rowOf(don)[i]) }];
  const look = (p: Float32Array) => ({
    top: topIndices(masked(p.subarray(0, realVocab), excluded), listed).map((i) => ({
      token: decodeToken(tokenizer, i),
      p: round(p[i], 8),
    })),
    pSource: round(p[src], 8),
    pDonor: round(p[don], 8),
  });
  const before = idsList.map((ids) => look(nextTokenProbs(model, ids)));
  const undo = editRecipeRows(model, edits);
  let after: ReturnType<typeof look>[];
  try {
    after = idsList.map((ids) => look(nextTokenProbs(model, ids)));
  } finally {
    undo();
  }
  const now = await R.data() as Float32Array;
  let restored = now.length === snapshot.length;
  for (let i = 0; restored && i < now.length; i++) if (!Object.is(now[i], snapshot[i])) restored = false;
  const rows = prompts.map((text, i) => ({
    text,
    before: before[i],
    after: after[i],
    changed: before[i].top[0]?.token !== after[i].top[0]?.token,
  }));
  return {
    result: {
      id: 12,
      key: "genetic-hijack",
      name: "Genetic Hijack",
      definitions: {
        excluded: excludedNote(excluded, tokenizer),
        edit: mode === "copy"
          ? `R[${JSON.stringify(sourceWord)}] <- R[${JSON.stringify(donorWord)}]`
          : mode === "swap"
          ? `rows of ${JSON.stringify(sourceWord)} and ${JSON.stringify(donorWord)} exchanged`
          : `R[source] <- (1 - ${weight}) R[source] + ${weight} R[donor]`,
        scope: "global: R feeds both the input embedding and the output projection",
        undo: "the old rows are written back; restored = R equals its snapshot bit for bit",
      },
      options: { source: sourceWord, donor: donorWord, mode, weight, prompts, listed },
      summary: {
        changedPredictions: rows.filter((r) => r.changed).length,
        prompts: rows.length,
        meanDonorGain: round(meanOf(rows.map((r) => r.after.pDonor - r.before.pDonor)), 8),
        restored,
      },
      prompts: rows,
      restored,
    },
    figures: {},
  };
}

// ---------------------------------------------------------------------------------------------------
// Registry

/**
 * Any experiment function.
 *
 * @category reFlow
 */
export type ExperimentFn = (
  model: CausalLM,
  tokenizer: TextTokenizer,
  options?: Record<string, unknown>,
) => Promise<ExperimentOutput>;

/**
 * One entry of {@linkcode REFLOW_EXPERIMENTS}.
 *
 * @category reFlow
 */
export interface ExperimentInfo {
  /** 1..12. */
  id: number;
  /** Short key (`recipe-atlas`). */
  key: string;
  /** Display name. */
  name: string;
  /** Spec §4 group. */
  group: string;
  /** What upstream reported for it (README / forum, reFlow-1-Big, 36 layers, S = 1024), or null. */
  reported: string | null;
  /** The function. */
  run: ExperimentFn;
}

const A = "A. Signal identity",
  B = "B. Semantic properties",
  C = "C. Mechanistic",
  D = "D. Control & steering";

/**
 * The twelve experiments by number (spec §4), with upstream's reported numbers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { REFLOW_EXPERIMENTS } from "./experiments.ts";
 * assert.deepEqual(REFLOW_EXPERIMENTS.map((e) => e.id), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
 * ```
 *
 * @category reFlow
 */
export const REFLOW_EXPERIMENTS: readonly ExperimentInfo[] = [
  {
    id: 1,
    key: "recipe-atlas",
    name: "Recipe Atlas",
    group: A,
    reported:
      "three-four 0.7551, king-queen 0.54, France-Germany 0.53; top-20 NN pairs all semantically valid",
    run: recipeAtlas as ExperimentFn,
  },
  {
    id: 2,
    key: "sparsity-profile",
    name: "Sparsity Profile",
    group: A,
    reported:
      "mean 116.6 / 1024 active signals per token (11.38 %), Gini 0.085 (activation rule not published)",
    run: sparsityProfile as ExperimentFn,
  },
  {
    id: 3,
    key: "basis-geometry",
    name: "Basis Geometry",
    group: A,
    reported: null,
    run: basisGeometry as ExperimentFn,
  },
  {
    id: 4,
    key: "semantic-galaxy",
    name: "Semantic Galaxy",
    group: B,
    reported: "silhouette 0.1052 (Big), -0.02 (TopK-64 Big); categories not published",
    run: semanticGalaxy as ExperimentFn,
  },
  {
    id: 5,
    key: "semantic-algebra",
    name: "Semantic Algebra",
    group: B,
    reported: "3/3 hits: queen #1, ran #1, Beijing #2 (TopK-64 Big: 0/3)",
    run: semanticAlgebra as ExperimentFn,
  },
  {
    id: 6,
    key: "typo-resilience",
    name: "Typo Resilience",
    group: B,
    reported: null,
    run: typoResilience as ExperimentFn,
  },
  {
    id: 7,
    key: "layer-evolution",
    name: "Layer Evolution",
    group: C,
    reported: "crystallisation mid-stack: about layer 18 of 36 for short contexts, up to 28 for long ones",
    run: layerEvolution as ExperimentFn,
  },
  {
    id: 8,
    key: "signal-flow",
    name: "Signal Flow",
    group: C,
    reported: null,
    run: signalFlow as ExperimentFn,
  },
  {
    id: 9,
    key: "causal-ablation",
    name: "Causal Ablation",
    group: C,
    reported: "single-signal ablation: target probability 8.31 % -> 0.03 %",
    run: causalAblation as ExperimentFn,
  },
  {
    id: 10,
    key: "emotion-surgery",
    name: "Emotion Surgery",
    group: D,
    reported: "effective at L0-L12, inert beyond L18 (of 36)",
    run: emotionSurgery as ExperimentFn,
  },
  {
    id: 11,
    key: "concept-inception",
    name: "Concept Inception",
    group: D,
    reported: "same boundary: effective L0-L12, inert beyond L18 (of 36)",
    run: conceptInception as ExperimentFn,
  },
  {
    id: 12,
    key: "genetic-hijack",
    name: "Genetic Hijack",
    group: D,
    reported: null,
    run: geneticHijack as ExperimentFn,
  },
];

/**
 * Parses an experiment selection: "all", or numbers and keys separated by commas or spaces ("1,5,9",
 * "recipe-atlas 3"). Unknown entries are an error listing the valid ids.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseExperimentIds } from "./experiments.ts";
 * assert.deepEqual(parseExperimentIds("1,5,9"), [1, 5, 9]);
 * assert.equal(parseExperimentIds("all").length, 12);
 * assert.throws(() => parseExperimentIds("13"), /valid ids: 1 recipe-atlas/);
 * ```
 *
 * @category reFlow
 */
export function parseExperimentIds(selection: string): number[] {
  const s = selection.trim();
  if (s === "all") return REFLOW_EXPERIMENTS.map((e) => e.id);
  const parts = s.split(/[\s,]+/).filter((x) => x);
  if (!parts.length) throw new Error(`no experiments selected; ${validIds()}`);
  const out: number[] = [];
  for (const p of parts) {
    const e = REFLOW_EXPERIMENTS.find((x) => String(x.id) === p || x.key === p);
    if (!e) throw new Error(`unknown experiment '${p}'; ${validIds()}`);
    if (!out.includes(e.id)) out.push(e.id);
  }
  return out;
}

function validIds(): string {
  return `valid ids: ${REFLOW_EXPERIMENTS.map((e) => `${e.id} ${e.key}`).join(", ")}, or all`;
}

/**
 * Checks a per-experiment options object: keys are experiment ids or keys (a misspelt one gets a
 * did-you-mean, not silence), values are objects.
 */
function checkExperimentOptions(options: unknown): void {
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new Error(
      `experiment options must be an object keyed by experiment id or key, e.g. { "9": { "maxK": 10 } }; ` +
        `got ${Array.isArray(options) ? "an array" : JSON.stringify(options)}`,
    );
  }
  const names = REFLOW_EXPERIMENTS.flatMap((e) => [String(e.id), e.key]);
  for (const [k, v] of Object.entries(options)) {
    if (!names.includes(k)) {
      const near = /^\d+$/.test(k) ? [] : closest(k, REFLOW_EXPERIMENTS.map((e) => e.key));
      throw new Error(
        `experiment options: '${k}' names no experiment${
          near.length ? ` (did you mean ${near.join(", ")}?)` : ""
        }; ` +
          validIds().replace(", or all", ""),
      );
    }
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      throw new Error(
        `experiment options: the options for experiment '${k}' must be an object, got ${JSON.stringify(v)}`,
      );
    }
  }
}

/**
 * Runs the selected experiments in order; `options[id]` (or `options[key]`) holds each one's options.
 * A key that names no experiment, or an entry that is not an object, is refused. The model is unchanged
 * afterwards.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { runReflowExperiments } from "./experiments.ts";
 * const { model, tokenizer } = tinyReflowModel();
 * const out = await runReflowExperiments(model, tokenizer, [3, 5]);
 * assert.deepEqual(out.map((o) => o.result.id), [3, 5]);
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export async function runReflowExperiments(
  model: CausalLM,
  tokenizer: TextTokenizer,
  ids: number[],
  options: Record<string, Record<string, unknown>> = {},
  common: CommonOptions = {},
): Promise<ExperimentOutput[]> {
  checkExperimentOptions(options);
  const out: ExperimentOutput[] = [];
  for (const id of ids) {
    const e = REFLOW_EXPERIMENTS.find((x) => x.id === id);
    if (!e) throw new Error(`unknown experiment ${id}; ${validIds()}`);
    const own = options[String(id)] ?? options[e.key] ?? {};
    out.push(await e.run(model, tokenizer, { ...common, ...own }));
  }
  return out;
}
