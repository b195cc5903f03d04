import { assert, assertAlmostEquals, assertEquals, assertThrows } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import { initBackend } from "../../lib/backend/backend.ts";
import {
  clusterOrder,
  cosine,
  distanceMatrix,
  effectiveRank,
  gini,
  pca,
  silhouetteScore,
  singularValues,
  symmetricEigen,
} from "../../lib/reflow/experiments/maths.ts";
import {
  editRecipeRows,
  geneticHijack,
  parseExperimentIds,
  REFLOW_EXPERIMENTS,
  runReflowExperiments,
} from "../../lib/reflow/experiments/experiments.ts";
import { probeToken } from "../../lib/reflow/experiments/access.ts";
import { WordTokenizer } from "../../lib/reflow/experiments/word_tokenizer.ts";
import { tinyReflowModel } from "./tiny.ts";

await initBackend({ backend: "cpu" });

Deno.test("maths: Gini of known vectors", () => {
  assertEquals(gini([3, 3, 3]), 0);
  assertAlmostEquals(gini([0, 0, 0, 0, 10]), 0.8, 1e-12); // (n-1)/n
  assertAlmostEquals(gini([1, 2, 3, 4]), 0.25, 1e-12); // textbook: 1 - 2·(Lorenz area) = 0.25
  assertAlmostEquals(gini([4, 1, 3, 2]), 0.25, 1e-12); // order does not matter
  assertThrows(() => gini([-1, 2]), Error, "non-negative");
});

Deno.test("maths: effective rank = exp(entropy of normalised singular values)", () => {
  assertAlmostEquals(effectiveRank([1, 1, 1]), 3, 1e-12);
  assertEquals(effectiveRank([7, 0]), 1);
  // p = (0.5, 0.25, 0.25): H = 1.5 ln 2, exp(H) = 2^1.5.
  assertAlmostEquals(effectiveRank([2, 1, 1]), 2 ** 1.5, 1e-12);
});

Deno.test("maths: singular values and the symmetric eigen-solver", () => {
  // [[2, 0], [0, 1], [0, 0]] rotated: singular values are rotation invariant.
  const c = Math.cos(0.3), s = Math.sin(0.3);
  const m = [[2 * c, -1 * s], [2 * s, 1 * c], [0, 0]];
  const sv = singularValues(m);
  assertAlmostEquals(sv[0], 2, 1e-9);
  assertAlmostEquals(sv[1], 1, 1e-9);
  const { values, vectors } = symmetricEigen([[4, 1, 0], [1, 3, 0], [0, 0, 1]]);
  // Eigenvalues of [[4,1],[1,3]] are (7 ± √5)/2.
  assertAlmostEquals(values[0], (7 + Math.sqrt(5)) / 2, 1e-10);
  assertAlmostEquals(values[2], 1, 1e-10);
  assertAlmostEquals(Math.abs(vectors[2][2]), 1, 1e-10);
});

Deno.test("maths: PCA finds the principal axis and its variance", () => {
  // Points spread along (1, 2)/√5 with small noise orthogonal to it.
  const dir = [1 / Math.sqrt(5), 2 / Math.sqrt(5)], ortho = [-dir[1], dir[0]];
  const ts = [-2, -1, 0, 1, 2], noise = [0.1, -0.2, 0, 0.2, -0.1]; // uncorrelated with t, mean 0
  const rows = ts.map((t, i) => [t * dir[0] + noise[i] * ortho[0], t * dir[1] + noise[i] * ortho[1]]);
  const r = pca(rows, 2, { seed: 3 });
  assertAlmostEquals(Math.abs(cosine(r.components[0], dir)), 1, 1e-9);
  assertAlmostEquals(r.variances[0], 10 / 4, 1e-9); // Σt² / (n-1)
  assertAlmostEquals(r.variances[1], 0.1 / 4, 1e-9);
  assertAlmostEquals(r.explainedRatio[0] + r.explainedRatio[1], 1, 1e-9);
  // Seeded: same seed, same result.
  assertEquals(pca(rows, 2, { seed: 3 }).scores, r.scores);
});

Deno.test("maths: silhouette of a hand-made clustering", () => {
  // Cluster A = {0, 2}, B = {10}: s(0) = (10 - 2)/10 = 0.8, s(2) = (8 - 2)/8 = 0.75, s(10) = 0 (singleton).
  assertAlmostEquals(silhouetteScore([[0], [2], [10]], ["A", "A", "B"]), (0.8 + 0.75 + 0) / 3, 1e-12);
  // Swapped labels give a negative score.
  assert(silhouetteScore([[0], [1], [10], [11]], ["a", "b", "a", "b"]) < 0);
  assertThrows(() => silhouetteScore([[0], [1]], ["a", "a"]), Error, "clusters");
  assertEquals(distanceMatrix([[1, 0], [0, 1]], "cosine"), [[0, 1], [1, 0]]);
  assertEquals(clusterOrder([[0]]), [0]);
});

Deno.test("probe words: a word that is not one token says which and suggests the leading-space form", () => {
  const tok = new WordTokenizer(["king"]);
  assertEquals(probeToken(tok, "king"), 1);
  assertThrows(() => probeToken(tok, "kingdom"), Error, 'probe word "kingdom" is not a single token');
  // With leadingSpace off, a two-word probe is two tokens, and the message proposes the spaced form.
  const err = assertThrows(() => probeToken(tok, "king king", { leadingSpace: false }), Error);
  assert(/2 tokens/.test(err.message) && /leading-space form/.test(err.message), err.message);
  // A BPE-like tokenizer: "king" splits, " king" is one token.
  const bpe = {
    vocabSize: 10,
    special: {},
    encode: (t: string) => (t === " king" ? [5] : [...t].map((_, i) => i)),
    decode: () => "",
  };
  const e2 = assertThrows(() => probeToken(bpe, "king", { leadingSpace: false }), Error);
  assert(e2.message.includes('its leading-space form " king" is one token'), e2.message);
});

Deno.test("experiment ids: unknown ids list the valid ones", () => {
  assertEquals(parseExperimentIds("1, 5 9"), [1, 5, 9]);
  assertEquals(parseExperimentIds("recipe-atlas,3"), [1, 3]);
  const e = assertThrows(() => parseExperimentIds("1,42"), Error);
  assert(e.message.includes("unknown experiment '42'") && e.message.includes("12 genetic-hijack"), e.message);
});

Deno.test("experiment options: keys that name no experiment and entries that are not objects are refused", async () => {
  const { model, tokenizer } = tinyReflowModel();
  try {
    const run = (o: unknown) => runReflowExperiments(model, tokenizer, [3], o as never);
    let e = await run({ "causal-ablaton": { maxK: 3 } }).then(() => null, (x: Error) => x);
    assert(e?.message.includes("did you mean causal-ablation"), String(e));
    e = await run({ "13": {} }).then(() => null, (x: Error) => x);
    assert(
      e?.message.includes("'13' names no experiment") && e.message.includes("12 genetic-hijack"),
      String(e),
    );
    e = await run({ "9": 5 }).then(() => null, (x: Error) => x);
    assert(e?.message.includes("options for experiment '9' must be an object"), String(e));
    e = await run([1, 2]).then(() => null, (x: Error) => x);
    assert(e?.message.includes("must be an object keyed by experiment id"), String(e));
    // An entry for an experiment that is not selected is fine (one options file for several runs).
    assertEquals((await run({ "9": { maxK: 2 }, "basis-geometry": {} })).map((o) => o.result.id), [3]);
  } finally {
    model.dispose();
  }
});

/** The documented keys every result has, and the per-experiment keys of its data. */
const SHAPES: Record<number, string[]> = {
  1: ["neighbours", "pairs", "order", "similarity", "words"],
  2: ["activeCounts", "histogram", "usage", "gini"],
  3: ["singularValues", "effectiveRank", "conditionNumber", "redundancy"],
  4: ["points", "explainedRatio", "silhouette"],
  5: ["triples", "hits"],
  6: ["byLayer", "pairs"],
  7: ["prompts"],
  8: ["signals", "values", "norms"],
  9: ["target", "ranking", "topKnockout", "randomKnockout"],
  10: ["baseline", "byLayer", "effectiveLayers"],
  11: ["byLayer", "effectiveLayers"],
  12: ["prompts", "restored"],
};

Deno.test("experiments: all twelve run on a tiny model, return the documented JSON shape, leak no tensors", async () => {
  const { model, tokenizer } = tinyReflowModel();
  const fast = { 9: { maxK: 4, randomTrials: 2 }, 10: { continuationTokens: 2 }, 11: { iterations: 4 } };
  // Warm up once: the reflow embedding keeps one cached E = R·Φ for hook-free forwards (a cache, not a leak).
  await runReflowExperiments(model, tokenizer, parseExperimentIds("all"), fast);
  const before = tf.memory().numTensors;
  const out = await runReflowExperiments(model, tokenizer, parseExperimentIds("all"), fast);
  assertEquals(tf.memory().numTensors, before);
  assertEquals(out.map((o) => o.result.id), REFLOW_EXPERIMENTS.map((e) => e.id));
  for (const { result, figures } of out) {
    for (const k of ["id", "key", "name", "definitions", "options", "summary", ...SHAPES[result.id]]) {
      assert(k in result, `experiment ${result.id} lacks '${k}'`);
    }
    assert(Object.keys(result.definitions).length > 0);
    // JSON round trip is lossless: plain data only (NaN would become null).
    assertEquals(JSON.parse(JSON.stringify(result)), result);
    for (const f of Object.values(figures)) {
      assert(f.tagName.toLowerCase() === "svg" || f.tagName.toLowerCase() === "figure");
    }
  }
  // Pad rows (ids >= tokenizer size) never appear as neighbours.
  const atlas = out[0].result as unknown as { neighbours: { nearest: { id: number }[] }[] };
  assert(atlas.neighbours.every((n) => n.nearest.every((x) => x.id < tokenizer.vocabSize)));
  // Special tokens (here <unk>, id 0) are left out of searches by default.
  assert(atlas.neighbours.every((n) => n.nearest.every((x) => x.id !== 0)));
  const algebra = out[4].result as unknown as { triples: { top: { id: number }[] }[] };
  assert(algebra.triples.every((t) => t.top.every((x) => x.id < tokenizer.vocabSize)));
  model.dispose();
});

Deno.test("experiments: bad probe words fail with the word named; skipMissing lists them instead", async () => {
  const { model, tokenizer } = tinyReflowModel();
  const err = await REFLOW_EXPERIMENTS[0].run(model, tokenizer, { words: ["king", "zebra"] }).then(
    () => null,
    (e: Error) => e,
  );
  assert(err && err.message.includes('"zebra" is not a single token'), err?.message);
  const ok = await REFLOW_EXPERIMENTS[0].run(model, tokenizer, {
    words: ["king", "queen", "zebra"],
    skipMissing: true,
  });
  assertEquals(ok.result.skipped, ["zebra"]);
  const e2 = await REFLOW_EXPERIMENTS[1].run(model, tokenizer, { treshold: 1 }).then(
    () => null,
    (e: Error) => e,
  );
  assert(e2 && e2.message.includes("did you mean threshold"), e2?.message);
  model.dispose();
});

Deno.test("genetic hijack: the edit changes the model and the undo restores the weights exactly", async () => {
  const { model, tokenizer } = tinyReflowModel({ seed: 4 });
  const r = model.parameters().get("embed.W_recipe")!;
  const snapshot = (await r.data()).slice();
  const undo = editRecipeRows(model, [{ token: 3, row: new Array(8).fill(0.5) }]);
  const edited = await r.data();
  assertEquals(Array.from(edited.slice(3 * 8, 4 * 8)), new Array(8).fill(0.5));
  assert(edited.some((x, i) => x !== snapshot[i]));
  undo();
  assertEquals(await r.data(), snapshot);
  for (const mode of ["copy", "swap", "blend"] as const) {
    const { result } = await geneticHijack(model, tokenizer, { mode });
    assertEquals(result.restored, true);
    assertEquals(await r.data(), snapshot);
  }
  // A copy makes " king" read exactly as " queen": same next-token distribution after the edit.
  const { result } = await geneticHijack(model, tokenizer, { prompts: ["the king", "the queen"] });
  assertEquals(result.prompts[0].after.top, result.prompts[1].after.top);
  model.dispose();
});

Deno.test("experiments: reFlow-TopK models (recipe and signal placement) use the sparsified recipe and signals", async () => {
  for (const sparsify of ["recipe", "signals"] as const) {
    const { model, tokenizer } = tinyReflowModel({ topK: 3, sparsify });
    const out = await runReflowExperiments(model, tokenizer, [2, 7, 9], { 9: { maxK: 3, randomTrials: 1 } });
    const sp = out[0].result as unknown as { activeCounts: { max: number } };
    // Recipe placement: at most k entries of a row are non-zero, so at most k are active.
    if (sparsify === "recipe") assert(sp.activeCounts.max <= 3, JSON.stringify(sp.activeCounts));
    // The logit lens at the last layer equals the model's own output distribution.
    const lens = out[1].result as unknown as {
      prompts: { probability: number[]; text: string; target: string }[];
    };
    const { nextTokenProbs, probeToken, promptIds } = await import("../../lib/reflow/experiments/access.ts");
    const p = lens.prompts[0];
    const direct = nextTokenProbs(model, promptIds(tokenizer, p.text))[probeToken(tokenizer, p.target)];
    assertAlmostEquals(p.probability.at(-1)!, direct, 1e-5);
    model.dispose();
  }
});

Deno.test("GPT-2 BPE: pad rows 50257.. are excluded and probe errors suggest the leading-space form", async () => {
  const { Gpt2BpeTokenizer } = await import("../../lib/tokenizers/gpt2_bpe.ts");
  const { realVocabSize, reflowParts } = await import("../../lib/reflow/experiments/access.ts");
  const tok = new Gpt2BpeTokenizer();
  const { model } = tinyReflowModel({ signals: 4, dModel: 8 });
  const parts = { ...reflowParts(model), vocab: 50304 };
  assertEquals(realVocabSize(parts, tok), 50257);
  model.dispose();
  assertEquals(probeToken(tok, "king"), tok.encode(" king")[0]);
  const e = assertThrows(() => probeToken(tok, "queen", { leadingSpace: false }), Error);
  assert(e.message.includes('its leading-space form " queen" is one token'), e.message);
  const e2 = assertThrows(() => probeToken(tok, "Zyzzyva"), Error);
  assert(e2.message.includes('" Zyzzyva" encodes to 3 tokens'), e2.message);
});
