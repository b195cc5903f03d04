/** Hook points: capture every name, edits with predicted effects, zero-cost path equality, leaks. */
import { assert, assertEquals, assertThrows, maxDiff } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import { createDecoder, gpt2NewConfig, gpt2SmallConfig } from "../../lib/models/scratch.ts";
import { runWithCache, runWithHooks } from "../../lib/models/hooks.ts";
import type { Decoder } from "../../lib/models/decoder.ts";
import type { DecoderConfig } from "../../lib/models/types.ts";
import { useBackend } from "../fixtures.ts";

await useBackend("cpu");

const small = { nLayers: 2, dModel: 32, nHeads: 4, vocabSize: 61, maxPositions: 128 };
const CONFIGS: Record<string, DecoderConfig> = {
  "gpt2-style": gpt2SmallConfig(small),
  "rotary GQA": gpt2NewConfig({ ...small, nKvHeads: 2 }),
  "parallel partial-rotary": gpt2NewConfig({
    ...small,
    norm: "layernorm",
    normBias: true,
    mlp: "gelu",
    parallelResidual: true,
    rotaryDim: 4,
    qkvBias: true,
    tieEmbeddings: false,
  }),
};

function ids(b: number, t: number, seed = 1): tf.Tensor2D {
  const data = Int32Array.from({ length: b * t }, (_, i) => (i * 7919 + seed * 104729) % 61);
  return tf.tensor2d(data, [b, t], "int32");
}

function disposeResult(
  r: { logits: tf.Tensor; hidden: tf.Tensor; residual: tf.Tensor; activations?: Map<string, tf.Tensor> },
) {
  tf.dispose([r.logits, r.hidden, r.residual, ...(r.activations?.values() ?? [])]);
}

for (const [label, config] of Object.entries(CONFIGS)) {
  Deno.test(`hooks[${label}]: runWithCache captures every hook name with TransformerLens shapes`, () => {
    const model = createDecoder(config, { seed: 3 });
    const x = ids(2, 5);
    const before = tf.memory().numTensors;
    const { logits, cache } = runWithCache(model, x);
    assertEquals(cache.names, model.hookNames);
    const { nHeads: h, nKvHeads: hkv, headDim: hd, dModel: d, dMlp: f } = config;
    assertEquals(cache.get("hook_embed").shape, [2, 5, d]);
    assertEquals(cache.get("blocks.1.attn.hook_q").shape, [2, 5, h, hd]);
    assertEquals(cache.get("blocks.1.attn.hook_k").shape, [2, 5, hkv, hd]);
    assertEquals(cache.get("blocks.1.attn.hook_pattern").shape, [2, h, 5, 5]);
    assertEquals(cache.get("blocks.1.attn.hook_z").shape, [2, 5, h, hd]);
    assertEquals(cache.get("blocks.0.mlp.hook_post").shape, [2, 5, f]);
    assertEquals(model.hookNames.includes("blocks.0.mlp.hook_pre_linear"), config.mlp === "swiglu");
    if (config.mlp === "swiglu") assertEquals(cache.get("blocks.0.mlp.hook_pre_linear").shape, [2, 5, f]);
    assertEquals(cache.stack("hook_resid_post").length, config.nLayers);
    assertEquals(model.hookNames.includes("blocks.0.hook_resid_mid"), !config.parallelResidual);
    assertEquals(model.hookNames.includes("hook_pos_embed"), config.positional === "learned");
    // The pattern is causal and each row sums to one.
    const p = cache.get("blocks.0.attn.hook_pattern").arraySync() as number[][][][];
    p[1][2].forEach((row, t) => {
      assert(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-5, "pattern row does not sum to 1");
      row.forEach((v, l) => assert(l <= t || v === 0, `pattern attends to the future (t=${t}, l=${l})`));
    });
    // Residual bookkeeping: block outputs chain, final norm output is `hidden`.
    const plain = model.forward(x);
    assertEquals(
      cache.get("blocks.0.hook_resid_post").dataSync(),
      cache.get("blocks.1.hook_resid_pre").dataSync(),
    );
    assertEquals(cache.get("blocks.1.hook_resid_post").dataSync(), plain.residual.dataSync());
    assertEquals(cache.get("ln_final.hook_normalized").dataSync(), plain.hidden.dataSync());
    disposeResult(plain);
    const display = (cache as unknown as Record<symbol, () => Record<string, string>>)
      [Symbol.for("Jupyter.display")]();
    assert(display["text/html"].includes("blocks.1.attn.hook_pattern"));
    tf.dispose([logits]);
    cache.dispose();
    assertEquals(tf.memory().numTensors, before, "runWithCache leaked tensors");
    x.dispose();
    model.dispose();
  });

  Deno.test(`hooks[${label}]: identity hooks on every point leave the output bit-identical`, () => {
    const model = createDecoder(config, { seed: 4 });
    const x = ids(2, 6, 2);
    const plain = model.forward(x);
    const seen: string[] = [];
    const hooks = Object.fromEntries(model.hookNames.map((n, i) => [
      n,
      // Alternate "observe only" and "return a replacement" so both paths run.
      i % 2
        ? (_a: tf.Tensor, ctx: { name: string }) => void seen.push(ctx.name)
        : (a: tf.Tensor) => tf.add(a, 0),
    ]));
    const before = tf.memory().numTensors;
    const hooked = runWithHooks(model, x, hooks);
    assertEquals(tf.memory().numTensors, before + 1, "a hooked forward should leave only its logits");
    assertEquals(hooked.dataSync(), plain.logits.dataSync());
    assertEquals(seen, model.hookNames.filter((_, i) => i % 2));
    hooked.dispose();
    disposeResult(plain);
    x.dispose();
    model.dispose();
  });
}

Deno.test("hooks: zeroing one head's z changes hook_attn_out by exactly -z_h @ W_O[h]", () => {
  const config = CONFIGS["rotary GQA"];
  const model = createDecoder(config, { seed: 5 });
  const x = ids(1, 7, 3);
  const L = 1, head = 2, hd = config.headDim;
  const clean = runWithCache(model, x, { names: [`blocks.${L}.attn.hook_z`, `blocks.${L}.hook_attn_out`] });
  const ablated = runWithCache(model, x, {
    names: [`blocks.${L}.hook_attn_out`],
    hooks: {
      [`blocks.${L}.attn.hook_z`]: (z) => {
        const mask = tf.oneHot(head, config.nHeads).reshape([1, 1, config.nHeads, 1]);
        return tf.mul(z, tf.sub(1, mask));
      },
    },
  });
  const predicted = tf.tidy(() => {
    const zh = tf.slice(clean.cache.get(`blocks.${L}.attn.hook_z`), [0, 0, head, 0], [-1, -1, 1, -1]).reshape(
      [7, hd],
    );
    const wO = model.parameters().get(`blocks.${L}.attn.W_O`)!;
    const wOh = tf.slice(wO, [head * hd, 0], [hd, -1]);
    return tf.sub(clean.cache.get(`blocks.${L}.hook_attn_out`).reshape([7, -1]), tf.matMul(zh, wOh));
  });
  const got = ablated.cache.get(`blocks.${L}.hook_attn_out`).reshape([7, -1]);
  assert(maxDiff(got.dataSync(), predicted.dataSync()) < 1e-5, "ablation effect differs from the prediction");
  assert(
    maxDiff(clean.logits.dataSync(), ablated.logits.dataSync()) > 1e-4,
    "ablating a head changed nothing",
  );
  tf.dispose([predicted, got, clean.logits, ablated.logits, x]);
  clean.cache.dispose();
  ablated.cache.dispose();
  model.dispose();
});

Deno.test("hooks: bad names and shape-changing hooks fail clearly; lastOnly matches the full forward", () => {
  const model: Decoder = createDecoder(CONFIGS["gpt2-style"], { seed: 6 });
  const x = ids(2, 4);
  assertThrows(() => model.forward(x, { capture: ["blocks.0.hook_resid_psot"] }), "unknown hook name");
  assertThrows(
    () => model.forward(x, { hooks: { "blocks.9.hook_resid_post": () => {} } }),
    "unknown hook name",
  );
  const before = tf.memory().numTensors;
  assertThrows(
    () =>
      model.forward(x, {
        capture: true,
        hooks: { "blocks.0.mlp.hook_pre": (a) => tf.slice(a, [0, 0, 0], [-1, -1, 3]) },
      }),
    "must keep the shape",
  );
  assertEquals(tf.memory().numTensors, before, "a failed forward leaked tensors");
  const full = model.forward(x);
  const last = model.forward(x, { lastOnly: true });
  assertEquals(last.logits.shape, [2, 1, 61]);
  const tail = tf.slice(full.logits, [0, 3, 0], [-1, 1, -1]);
  assert(maxDiff(tail.dataSync(), last.logits.dataSync()) < 1e-6);
  tf.dispose([tail]);
  disposeResult(full);
  disposeResult(last);
  x.dispose();
  model.dispose();
});

Deno.test("hooks: no tensor leak across 100 cached decode steps with hooks and captures", () => {
  const model = createDecoder(CONFIGS["rotary GQA"], { seed: 7 });
  const before = tf.memory().numTensors;
  const cache = model.createCache(2);
  const prompt = ids(2, 3);
  disposeResult(model.forward(prompt, { cache }));
  prompt.dispose();
  let during = 0;
  for (let i = 0; i < 60; i++) {
    const step = tf.tensor2d([[i % 61], [(i * 3) % 61]], [2, 1], "int32");
    const r = model.forward(step, {
      cache,
      lastOnly: true,
      capture: ["blocks.1.attn.hook_pattern"],
      hooks: { "blocks.0.hook_resid_post": (a) => tf.mul(a, 1) },
    });
    disposeResult(r);
    step.dispose();
    if (i === 10) during = tf.memory().numTensors;
  }
  for (let i = 0; i < 40; i++) {
    const step = tf.tensor2d([[i % 61], [(i * 5) % 61]], [2, 1], "int32");
    disposeResult(model.forward(step, { cache, lastOnly: true }));
    step.dispose();
  }
  assertEquals(tf.memory().numTensors, during, "the tensor count grew during decoding");
  assertEquals(cache.rowLengths(), [103, 103]);
  cache.dispose();
  assertEquals(tf.memory().numTensors, before);
  model.dispose();
});
