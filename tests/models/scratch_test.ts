/** From-scratch decoders: closed-form parameter counts, seeded initialisation, dropout determinism. */
import { assert, assertEquals, assertThrows, maxDiff } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import { initBackend } from "../../lib/backend/backend.ts";
import {
  countParameters,
  createDecoder,
  gpt2NewConfig,
  gpt2SmallConfig,
  swigluHidden,
} from "../../lib/models/scratch.ts";
import { decoderParameterShapes } from "../../lib/models/params.ts";
import { Decoder } from "../../lib/models/decoder.ts";
import type { DecoderConfig } from "../../lib/models/types.ts";
import { useBackend } from "../fixtures.ts";

await useBackend("cpu");

const sumOfShapes = (c: DecoderConfig) =>
  [...decoderParameterShapes(c).values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);

Deno.test("countParameters: closed form equals the sum of parameter sizes across architectures", () => {
  const configs: DecoderConfig[] = [
    gpt2SmallConfig(),
    gpt2NewConfig(),
    gpt2NewConfig({ nLayers: 3, dModel: 96, nHeads: 6, nKvHeads: 2, tieEmbeddings: false }),
    gpt2SmallConfig({
      nLayers: 2,
      dModel: 48,
      nHeads: 4,
      normBias: false,
      qkvBias: false,
      attnOutBias: false,
      mlpBias: false,
    }),
    gpt2NewConfig({
      nLayers: 2,
      dModel: 64,
      nHeads: 4,
      headDim: 24,
      norm: "layernorm",
      normBias: true,
      qkvBias: true,
    }),
    gpt2SmallConfig({ nLayers: 1, dModel: 32, nHeads: 2, mlp: "relu", dMlp: 100, positional: "rotary" }),
    gpt2NewConfig({ nLayers: 2, dModel: 32, nHeads: 2, mlpBias: true, qkvBias: true, attnOutBias: true }),
  ];
  for (const c of configs) assertEquals(countParameters(c), sumOfShapes(c), JSON.stringify(c));
});

Deno.test("countParameters: reproduces the published totals (GPT-2 124M, reFlow spec GPT-2-New 514.01M)", () => {
  assertEquals(countParameters(gpt2SmallConfig()), 124_439_808);
  assertEquals(countParameters(gpt2NewConfig()), 514_008_064);
  // reFlow spec baseline GPT-2: 36 layers, d=1024, V=50304, bias-free LayerNorm and Linears, tied: 505,619,456.
  const baseline = gpt2SmallConfig({
    nLayers: 36,
    dModel: 1024,
    nHeads: 16,
    vocabSize: 50304,
    normBias: false,
    qkvBias: false,
    attnOutBias: false,
    mlpBias: false,
  });
  assertEquals(countParameters(baseline), 505_619_456);
  assertEquals([swigluHidden(1024), swigluHidden(512)], [2816, 1536]);
});

Deno.test("createDecoder: reproducible from the seed, nanoGPT init statistics", () => {
  const c = gpt2NewConfig({ nLayers: 4, dModel: 128, nHeads: 4, vocabSize: 300 });
  const a = createDecoder(c, { seed: 1337 }),
    b = createDecoder(c, { seed: 1337 }),
    other = createDecoder(c, { seed: 1 });
  const pa = a.parameters(), pb = b.parameters(), po = other.parameters();
  assertEquals(a.numParameters, countParameters(c));
  for (const [name, v] of pa) assertEquals(v.dataSync(), pb.get(name)!.dataSync(), name);
  assert(maxDiff(pa.get("blocks.0.attn.W_Q")!.dataSync(), po.get("blocks.0.attn.W_Q")!.dataSync()) > 0.01);
  const std = (t: tf.Tensor) => tf.tidy(() => Math.sqrt(tf.moments(t).variance.dataSync()[0]));
  assert(Math.abs(std(pa.get("embed.W_E")!) - 0.02) < 0.001, "embedding std should be 0.02");
  assert(
    Math.abs(std(pa.get("blocks.1.mlp.W_out")!) - 0.02 / Math.sqrt(8)) < 0.0005,
    "scaled residual projection",
  );
  assertEquals(Array.from(new Set(pa.get("blocks.2.ln1.w")!.dataSync())), [1]);
  const n = createDecoder(c, { seed: 1337, init: "normal" });
  assert(Math.abs(std(n.parameters().get("blocks.1.mlp.W_out")!) - 0.02) < 0.001, "normal init is unscaled");
  for (const m of [a, b, other, n]) m.dispose();
});

Deno.test("training mode: seeded dropout is deterministic, needs a seed, and is off at inference", () => {
  const c = gpt2SmallConfig({ nLayers: 2, dModel: 32, nHeads: 2, vocabSize: 40, dropout: 0.1 });
  const model = createDecoder(c, { seed: 2 });
  const x = tf.tensor2d([[1, 2, 3, 4]], [1, 4], "int32");
  const run = (opts: object) => {
    const r = model.forward(x, opts);
    const v = Array.from(r.logits.dataSync());
    tf.dispose([r.logits, r.hidden, r.residual]);
    return v;
  };
  const s1 = run({ training: true, dropoutSeed: 5 }), s1b = run({ training: true, dropoutSeed: 5 });
  const s2 = run({ training: true, dropoutSeed: 6 }), eval1 = run({}), eval2 = run({});
  assertEquals(s1, s1b);
  assert(maxDiff(s1, s2) > 1e-4, "different dropout seeds gave the same output");
  assert(maxDiff(s1, eval1) > 1e-4, "dropout had no effect in training mode");
  assertEquals(eval1, eval2);
  assertThrows(() => model.forward(x, { training: true }), "dropoutSeed");
  assertThrows(
    () => model.forward(x, { training: true, dropoutSeed: 1, cache: model.createCache(1) }),
    "without a KV cache",
  );
  // Gradients flow to every parameter.
  const params = [...model.parameters().values()];
  const { grads } = tf.variableGrads(() =>
    tf.tidy(() => {
      const r = model.forward(x, { training: true, dropoutSeed: 1 });
      return tf.mean(tf.square(r.logits)) as tf.Scalar;
    }), params);
  assertEquals(Object.keys(grads).length, params.length);
  tf.dispose([x, ...Object.values(grads)]);
  model.dispose();
});

Deno.test("training on wasm: every parameter's gradient matches the cpu backend (embedding grad, tied head)", async () => {
  const configs: DecoderConfig[] = [
    gpt2SmallConfig({ nLayers: 2, dModel: 16, nHeads: 2, vocabSize: 20, dropout: 0.1 }),
    gpt2NewConfig({ nLayers: 2, dModel: 16, nHeads: 4, nKvHeads: 2, vocabSize: 20, dropout: 0.1 }),
  ];
  try {
    for (const config of configs) {
      const grads: Record<string, Map<string, Float32Array>> = {};
      for (const backend of ["cpu", "wasm"] as const) {
        await initBackend({ backend });
        const model = createDecoder(config, { seed: 1 });
        const x = tf.tensor2d([[1, 2, 3, 1, 1, 7]], [1, 6], "int32"); // repeated ids: gradients must add up
        const warm = model.forward(x); // on wasm this builds the inference-only [d, V] head copy
        tf.dispose([warm.logits, warm.hidden, warm.residual]);
        const params = model.parameters();
        const { value, grads: g } = tf.variableGrads(
          () =>
            tf.tidy(() =>
              tf.sum(tf.square(model.forward(x, { training: true, dropoutSeed: 3 }).logits)) as tf.Scalar
            ),
          [
            ...params.values(),
          ],
        );
        const names = [...params.keys()];
        grads[backend] = new Map(Object.values(g).map((t, i) => [names[i], t.dataSync() as Float32Array]));
        tf.dispose([x, value, ...Object.values(g)]);
        model.dispose();
      }
      for (const [name, cpu] of grads.cpu) {
        const wasm = grads.wasm.get(name)!;
        const scale = Math.max(1e-3, ...Array.from(cpu, Math.abs));
        assert(maxDiff(cpu, wasm) / scale < 1e-4, `${name}: wasm gradient differs from cpu`);
      }
      assert(grads.wasm.get("embed.W_E")!.some((v) => v !== 0));
    }
  } finally {
    await initBackend({ backend: "cpu" });
  }
});

Deno.test("Decoder: a refused parameter map names every problem and frees the tensors it was given", () => {
  const c = gpt2SmallConfig({ nLayers: 1, dModel: 8, nHeads: 2, vocabSize: 10, maxPositions: 16 });
  const before = tf.memory().numTensors;
  const tensors = new Map<string, tf.Tensor>();
  for (const [name, shape] of decoderParameterShapes(c)) tensors.set(name, tf.zeros(shape));
  tensors.get("blocks.0.mlp.W_in")!.dispose();
  tensors.delete("blocks.0.mlp.W_in");
  tensors.get("ln_final.w")!.dispose();
  tensors.set("ln_final.w", tf.zeros([9]));
  tensors.set("blocks.0.attn.W_X", tf.zeros([2]));
  const err = assertThrows(() => new Decoder(c, tensors), "missing: blocks.0.mlp.W_in");
  assert(err.message.includes("unexpected: blocks.0.attn.W_X"));
  assert(err.message.includes("ln_final.w: expected [8], got [9]"));
  assertEquals(tf.memory().numTensors - before, 0, "refused tensors leaked");
  assertThrows(() => new Decoder({ ...c, nKvHeads: 3 }, new Map()), "DecoderConfig.nKvHeads");
});
