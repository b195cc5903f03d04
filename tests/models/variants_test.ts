/**
 * The component contract, proven on two test variants (tests/variants.ts): a factorised tied embedding and
 * a stateful mixer with an aux loss. Each is described in a JSON training config, trains, saves, resumes
 * bit-exactly (cpu), reloads with `loadTrainedModel`, generates with per-row rewind equal to a full
 * recompute, and reports an exact parameter count; on cpu and wasm.
 */
import { assert, assertEquals, assertThrows } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import "../variants.ts";
import { CPU_BACKENDS, tinyRotaryConfig, useBackend } from "../fixtures.ts";
import { createDecoder, gpt2NewConfig, gpt2SmallConfig } from "../../lib/models/scratch.ts";
import { countParameters, decoderParameterShapes } from "../../lib/models/params.ts";
import { layerMixers, mixerKinds } from "../../lib/models/components.ts";
import type { KVCache } from "../../lib/models/kv_cache.ts";
import type { DecoderConfig } from "../../lib/models/types.ts";
import { loadTrainedModel, trainFromConfig } from "../../lib/train/run.ts";
import { resolveTrainConfig, type TrainConfig } from "../../lib/train/config.ts";
import { generate } from "../../lib/generate/generate.ts";

const VARIANT = {
  embedding: { kind: "test-factorised", signals: 8 },
  mixers: [{ kind: "attention" }, { kind: "test-running-mean", layers: [1] }],
};

function variantConfig(over: Partial<DecoderConfig> = {}): DecoderConfig {
  return tinyRotaryConfig({ ...VARIANT, ...over } as Partial<DecoderConfig>);
}

function allocatedSize(c: DecoderConfig): number {
  const m = createDecoder(c, { seed: 1 });
  const n = [...m.parameters().values()].reduce((a, v) => a + v.size, 0);
  m.dispose();
  return n;
}

Deno.test("variants: countParameters equals the allocated sizes for every preset and variant", async () => {
  await useBackend("cpu");
  const configs = [
    tinyRotaryConfig(),
    gpt2SmallConfig({ nLayers: 2, dModel: 16, nHeads: 2, vocabSize: 30, maxPositions: 32 }),
    gpt2NewConfig({ nLayers: 3, dModel: 24, nHeads: 4, nKvHeads: 2, vocabSize: 40, maxPositions: 16 }),
    variantConfig(),
    tinyRotaryConfig({ embedding: { kind: "test-factorised", signals: 5 } }),
    tinyRotaryConfig({ mixers: [{ kind: "test-running-mean" }] }),
    gpt2SmallConfig({
      nLayers: 2,
      dModel: 16,
      nHeads: 2,
      vocabSize: 30,
      maxPositions: 32,
      tieEmbeddings: false,
    }),
  ];
  for (const c of configs) assertEquals(countParameters(c), allocatedSize(c), JSON.stringify(c));
  // Exact, by hand: V·S + S·d for the embedding; layer 1 has W_mix [d, d] instead of q/k/v/o.
  const c = variantConfig();
  const base = countParameters(tinyRotaryConfig());
  const d = 16, s = 8, v = 30;
  assertEquals(countParameters(c), base - v * d + v * s + s * d - 4 * d * d + d * d);
  // A 500M-parameter config is counted without allocating.
  const before = tf.memory().numBytes;
  assertEquals(countParameters(gpt2NewConfig()), 514_008_064);
  assertEquals(tf.memory().numBytes, before);
});

Deno.test("variants: parameters, hook names and mixers come from the declarations", async () => {
  await useBackend("cpu");
  const m = createDecoder(variantConfig(), { seed: 2 });
  const p = m.parameters();
  assert(p.has("embed.W_recipe") && p.has("embed.W_basis") && !p.has("embed.W_E"));
  assert(p.has("blocks.1.attn.W_mix") && !p.has("blocks.1.attn.W_Q") && p.has("blocks.0.attn.W_Q"));
  assert(m.hookNames.includes("hook_signals") && m.hookNames.includes("blocks.1.attn.hook_mean"));
  assert(
    !m.hookNames.includes("blocks.1.attn.hook_pattern") && m.hookNames.includes("blocks.0.attn.hook_pattern"),
  );
  assertEquals([...decoderParameterShapes(variantConfig()).keys()], [...p.keys()]);
  // Basis init from its declaration: std 1/sqrt(S).
  const std = tf.tidy(() => Math.sqrt(tf.moments(p.get("embed.W_basis")!).variance.dataSync()[0]));
  assert(Math.abs(std - 1 / Math.sqrt(8)) < 0.1, `basis std ${std}`);
  m.dispose();
  assertEquals(layerMixers(variantConfig()).map((x) => x.kind), ["attention", "test-running-mean"]);
});

Deno.test("variants: bad specs are refused with the registered kinds and allowed options", () => {
  assertThrows(
    () => countParameters(tinyRotaryConfig({ mixers: [{ kind: "nope" }] })),
    Error,
    "registered: ",
  );
  assert(mixerKinds().includes("attention") && mixerKinds().includes("test-running-mean"));
  assertThrows(
    () => countParameters(tinyRotaryConfig({ embedding: { kind: "test-factorised", signals: 8, typo: 1 } })),
    Error,
    "unknown option 'typo'; allowed: kind, signals",
  );
  assertThrows(
    () => countParameters(tinyRotaryConfig({ mixers: [{ kind: "attention", layers: [0] }] })),
    Error,
    "no entry covers layer 1",
  );
  assertThrows(
    () => countParameters(tinyRotaryConfig({ mixers: [{ kind: "attention", layers: [5] }] })),
    Error,
    "not a layer index",
  );
  assertThrows(
    () => countParameters(tinyRotaryConfig({ embedding: { kind: "test-factorised", signals: 0 } })),
    Error,
    "embedding.signals",
  );
});

Deno.test("variants: the forward reports the mixer's aux loss and metric with gradients", async () => {
  await useBackend("cpu");
  const m = createDecoder(variantConfig(), { seed: 3 });
  const x = tf.tensor2d([[1, 2, 3, 4]], [1, 4], "int32");
  const out = m.forward(x);
  assertEquals(Object.keys(out.aux ?? {}), ["toy_energy"]);
  assertEquals(Object.keys(out.metrics ?? {}), ["blocks.1.attn.mean_abs"]);
  const w = m.parameters().get("blocks.1.attn.W_mix")!;
  const g = tf.grad(() => m.forward(x, { training: true }).aux!.toy_energy)(w);
  assert(g.dataSync().some((v) => v !== 0), "the aux term has a gradient");
  tf.dispose([
    x,
    g,
    out.logits,
    out.hidden,
    out.residual,
    ...Object.values(out.aux!),
    ...Object.values(out.metrics!),
  ]);
  m.dispose();
});

for (const backend of CPU_BACKENDS) {
  Deno.test(`variants (${backend}): cached decoding with per-row rewind and row selection equals full recompute`, async () => {
    await useBackend(backend);
    const m = createDecoder(variantConfig(), { seed: 4 });
    const before = tf.memory().numTensors;
    const rows = [[1, 5, 9, 2, 6, 3], [4, 8, 1, 7, 2, 2]];
    const full = (ids: number[]) =>
      tf.tidy(() => {
        const t = tf.tensor2d([ids], [1, ids.length], "int32");
        return m.forward(t).logits.slice([0, ids.length - 1, 0], [1, 1, -1]).dataSync();
      });
    const cache = m.createCache(2) as KVCache;
    const feed = (ids: number[][]) =>
      tf.tidy(() => {
        const t = tf.tensor2d(ids, [ids.length, ids[0].length], "int32");
        const o = m.forward(t, { cache });
        return o.logits.slice([0, ids[0].length - 1, 0], [-1, 1, -1]).dataSync();
      });
    feed(rows.map((r) => r.slice(0, 4)));
    feed(rows.map((r) => [r[4]]));
    // Rewind row 1 to 3 positions and feed a different token there; row 0 goes on.
    cache.truncateRow(1, 3);
    const got = feed([[rows[0][5]], [9]]);
    const v = 30;
    const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) => {
      for (let i = 0; i < b.length; i++) {
        assert(Math.abs(a[i] - b[i]) < 1e-4, `${what} [${i}] ${a[i]} vs ${b[i]}`);
      }
    };
    close(got.slice(0, v), full(rows[0]), "row 0");
    close(got.slice(v), full([...rows[1].slice(0, 3), 9]), "row 1 after rewind");
    assertEquals(cache.rowLengths(), [6, 4]);
    // Keep only row 1, then continue it.
    cache.selectRows([1]);
    assertEquals(cache.batchSize, 1);
    const next = feed([[11]]);
    close(next, full([...rows[1].slice(0, 3), 9, 11]), "selected row");
    cache.dispose();
    assertEquals(tf.memory().numTensors, before, "no tensor leak");
    // generate() drives the variant too: greedy with a rewind regenerates the same tokens.
    const base = await generate(m, [1, 2, 3], { maxNewTokens: 8, sampling: { temperature: 0 } }).collect();
    let rewound = false;
    const again = await generate(m, [1, 2, 3], {
      maxNewTokens: 8,
      sampling: { temperature: 0 },
      onStep: (_s, control) => {
        if (!rewound && control.tokens(0).length === 6) {
          control.rewind(0, 2, 5);
          rewound = true;
        }
      },
    }).collect();
    assert(rewound);
    assertEquals(again.rows[0].tokens, base.rows[0].tokens);
    m.dispose();
  });
}

async function corpusFile(dir: string): Promise<string> {
  const path = `${dir}/corpus.txt`;
  await Deno.writeTextFile(
    path,
    "Now is the winter of our discontent made glorious summer by this sun. ".repeat(20),
  );
  return path;
}

function trainConfig(corpus: string, weight = 0.5): TrainConfig {
  return {
    model: { preset: "gpt2-new", nLayers: 2, dModel: 16, nHeads: 2, ...VARIANT } as TrainConfig["model"],
    data: { corpus },
    training: { steps: 4, batchSize: 2, blockSize: 16, seed: 5 },
    schedule: { kind: "constant", lr: 3e-3 },
    eval: { interval: 2, batches: 2 },
    log: { interval: 1 },
    checkpoint: { interval: 2, keepLast: 3 },
    loss: { terms: { toy_energy: weight } },
  };
}

Deno.test("variants: a JSON training config trains, logs the aux term, resumes bit-exactly and reloads", async () => {
  await useBackend("cpu");
  const dir = await Deno.makeTempDir();
  try {
    const corpus = await corpusFile(dir);
    const cfg = JSON.parse(JSON.stringify(trainConfig(corpus)));
    // The config validator accepts embedding/mixers and the loss section; a typo in loss is named.
    resolveTrainConfig(cfg);
    assertThrows(() => resolveTrainConfig({ ...cfg, loss: { term: {} } }), Error, "unknown key 'loss.term'");
    const straight = await trainFromConfig({
      config: cfg,
      outDir: `${dir}/a`,
      print: false,
      handleSigint: false,
    });
    const want = new Map([...straight.model.parameters()].map(([n, p]) => [n, p.dataSync().slice()]));
    straight.model.dispose();
    // Two steps, then resume to four.
    const half = await trainFromConfig({
      config: cfg,
      outDir: `${dir}/b`,
      steps: 2,
      print: false,
      handleSigint: false,
    });
    half.model.dispose();
    const resumed = await trainFromConfig({
      config: cfg,
      outDir: `${dir}/b`,
      resume: true,
      print: false,
      handleSigint: false,
    });
    for (const [n, p] of resumed.model.parameters()) {
      assertEquals(p.dataSync(), want.get(n), `${n} after resume`);
    }
    resumed.model.dispose();
    const log = (await Deno.readTextFile(`${dir}/a/log.jsonl`)).trim().split("\n").map((l) => JSON.parse(l));
    const train = log.filter((r) => r.kind === "train"), evals = log.filter((r) => r.kind === "eval");
    assert(train.every((r) => r.terms?.toy_energy > 0 && r.metrics?.["blocks.1.attn.mean_abs"] > 0));
    assert(train.every((r) => Math.abs(r.objective - (r.loss + 0.5 * r.terms.toy_energy)) < 1e-4));
    assert(evals.length >= 2 && evals.every((r) => r.terms?.toy_energy > 0));
    // Reload into the same variant, from its own checkpoint.
    const loaded = await loadTrainedModel(`${dir}/a`);
    assertEquals(loaded.model.config.embedding, VARIANT.embedding);
    assert(loaded.model.parameters().has("embed.W_recipe"));
    for (const [n, p] of loaded.model.parameters()) assertEquals(p.dataSync(), want.get(n), `${n} reloaded`);
    loaded.model.dispose();
    // The weight changes the objective: with weight 0 the term is logged but not minimised.
    const unweighted = await trainFromConfig({
      config: trainConfig(corpus, 0),
      outDir: `${dir}/c`,
      print: false,
      handleSigint: false,
    });
    const diff = [...unweighted.model.parameters()].some(([n, p]) =>
      p.dataSync().some((x, i) => x !== want.get(n)![i])
    );
    assert(diff, "the aux weight enters the gradient");
    unweighted.model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("variants (wasm): trains from a config and reloads", async () => {
  await useBackend("wasm");
  const dir = await Deno.makeTempDir();
  try {
    const corpus = await corpusFile(dir);
    const r = await trainFromConfig({
      config: trainConfig(corpus),
      outDir: `${dir}/w`,
      print: false,
      handleSigint: false,
    });
    assertEquals(r.step, 4);
    r.model.dispose();
    const loaded = await loadTrainedModel(`${dir}/w`);
    assertEquals(loaded.model.numParameters, countParameters(loaded.model.config));
    loaded.model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
    await useBackend("cpu");
  }
});
