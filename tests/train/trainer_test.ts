import { tf } from "../../lib/deps.ts";
import { createDecoder, gpt2NewConfig, gpt2SmallConfig } from "../../lib/models/scratch.ts";
import type { DecoderConfig } from "../../lib/models/types.ts";
import { Trainer, type TrainerSettings, TrainingDivergedError } from "../../lib/train/trainer.ts";
import { loadCheckpoint } from "../../lib/train/checkpoint.ts";
import { assert, assertAlmostEquals, assertJsonEquals as assertEquals, assertRejects } from "../assert.ts";
import { useBackend } from "../fixtures.ts";

await useBackend("cpu");

const V = 11;
const ids = Uint16Array.from({ length: 600 }, (_, i) => (i * 7 + (i >> 3)) % V);

function settings(over: Partial<TrainerSettings> = {}): TrainerSettings {
  return {
    batchSize: 2,
    blockSize: 8,
    gradAccum: 1,
    gradClip: 1,
    seed: 5,
    optimizer: {
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-8,
      groups: [{ minRank: 2, weightDecay: 0.1 }, { weightDecay: 0 }],
    },
    schedule: { kind: "cosine", lr: 1e-2, minLr: 1e-3, warmupSteps: 2, decaySteps: 10 },
    evalInterval: 0,
    evalBatches: 2,
    evalBatchSize: 2,
    perplexity: "token_mean",
    logInterval: 100,
    checkpointInterval: 0,
    keepLast: 2,
    ...over,
  };
}

const tinyGpt2 = (over: Partial<DecoderConfig> = {}) =>
  gpt2SmallConfig({ vocabSize: V, dModel: 16, nLayers: 2, nHeads: 2, maxPositions: 8, ...over });

function weightsOf(model: { parameters(): Map<string, tf.Variable> }): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [k, v] of model.parameters()) out.set(k, v.dataSync() as Float32Array);
  return out;
}

Deno.test("accumulating 4 micro-batches of 2 equals one batch of 8 (within float tolerance)", async () => {
  const cfg = tinyGpt2();
  const a = createDecoder(cfg, { seed: 1 });
  const b = createDecoder(cfg, { seed: 1 });
  const ta = new Trainer({
    model: a,
    settings: settings({ batchSize: 8, gradAccum: 1 }),
    train: ids,
    val: ids,
    print: false,
  });
  const tb = new Trainer({
    model: b,
    settings: settings({ batchSize: 2, gradAccum: 4 }),
    train: ids,
    val: ids,
    print: false,
  });
  for (let i = 0; i < 3; i++) {
    const la = await ta.trainStep();
    const lb = await tb.trainStep();
    assertAlmostEquals(la.loss, lb.loss, 1e-5, `loss at step ${i}`);
    assertAlmostEquals(la.gradNorm, lb.gradNorm, 1e-4, `grad norm at step ${i}`);
  }
  const wa = weightsOf(a), wb = weightsOf(b);
  let maxDiff = 0;
  for (const [k, x] of wa) {
    const y = wb.get(k)!;
    for (let i = 0; i < x.length; i++) maxDiff = Math.max(maxDiff, Math.abs(x[i] - y[i]));
  }
  assert(maxDiff < 1e-5, `weights differ by ${maxDiff}`);
  // And the run changed them at all (the test could not pass vacuously).
  const init = weightsOf(createDecoder(cfg, { seed: 1 }));
  assert(
    [...init].some(([k, x]) => x.some((v, i) => v !== wa.get(k)![i])),
    "training did not move the weights",
  );
  ta.dispose();
  tb.dispose();
  a.dispose();
  b.dispose();
});

Deno.test("resume is exact: N steps, save, restore, N more = 2N straight (cpu, with dropout)", async () => {
  const cfg = gpt2NewConfig({
    vocabSize: V,
    dModel: 16,
    nLayers: 2,
    nHeads: 2,
    maxPositions: 8,
    dropout: 0.1,
  });
  const N = 3;
  const straight = createDecoder(cfg, { seed: 2 });
  const ts = new Trainer({ model: straight, settings: settings(), train: ids, val: ids, print: false });
  await ts.run(2 * N);

  const dir = await Deno.makeTempDir();
  const first = createDecoder(cfg, { seed: 2 });
  const t1 = new Trainer({
    model: first,
    settings: settings(),
    train: ids,
    val: ids,
    print: false,
    outDir: dir,
  });
  const r1 = await t1.run(N);
  assertEquals(r1.step, N);
  t1.dispose();
  first.dispose();

  const second = createDecoder(cfg, { seed: 99 }); // different init: everything must come from the checkpoint
  const t2 = new Trainer({
    model: second,
    settings: settings(),
    train: ids,
    val: ids,
    print: false,
    outDir: dir,
  });
  t2.restore(await loadCheckpoint(dir));
  assertEquals(t2.step, N);
  await t2.run(2 * N);
  const ws = weightsOf(straight), w2 = weightsOf(second);
  for (const [k, x] of ws) assertEquals(Array.from(w2.get(k)!), Array.from(x), `parameter ${k}`);
  const log = (await Deno.readTextFile(`${dir}/log.jsonl`)).trim().split("\n").map((l) => JSON.parse(l));
  assert(log.some((r) => r.kind === "eval" && r.step === 2 * N), "final eval logged");
  ts.dispose();
  t2.dispose();
  straight.dispose();
  second.dispose();
});

Deno.test("a non-finite loss stops with a clear message and leaves the weights and checkpoint intact", async () => {
  const model = createDecoder(tinyGpt2(), { seed: 3 });
  const dir = await Deno.makeTempDir();
  const t = new Trainer({
    model,
    settings: settings({ checkpointInterval: 1 }),
    train: ids,
    val: ids,
    print: false,
    outDir: dir,
  });
  await t.run(2);
  const good = t.lastCheckpoint!;
  const wE = model.parameters().get("embed.W_E")!;
  tf.tidy(() => wE.assign(tf.fill(wE.shape as [number, number], NaN)));
  const before = wE.dataSync().slice();
  const err = await assertRejects(() => t.run(5), TrainingDivergedError, "diverged at step 2");
  assert(err.message.includes(good), "message names the last good checkpoint");
  assertEquals(t.step, 2);
  assertEquals((await loadCheckpoint(dir)).state.step, 2);
  assert(wE.dataSync().every((v, i) => Number.isNaN(v) && Number.isNaN(before[i])));
  t.dispose();
  model.dispose();
});

Deno.test("training does not leak tensors", async () => {
  const model = createDecoder(tinyGpt2(), { seed: 4 });
  const t = new Trainer({ model, settings: settings({ gradAccum: 2 }), train: ids, val: ids, print: false });
  await t.trainStep(); // moments are created on the first step
  const n = tf.memory().numTensors;
  await t.trainStep();
  await t.trainStep();
  await t.evaluate();
  assertEquals(tf.memory().numTensors, n);
  t.dispose();
  model.dispose();
});

Deno.test("a stop request saves a checkpoint and returns", async () => {
  const model = createDecoder(tinyGpt2(), { seed: 6 });
  const dir = await Deno.makeTempDir();
  const t = new Trainer({
    model,
    settings: settings({ logInterval: 1 }),
    train: ids,
    val: ids,
    print: false,
    outDir: dir,
    onMetrics: (r) => {
      if (r.kind === "train" && r.step === 2) t.requestStop();
    },
  });
  const r = await t.run(10);
  assertEquals(r.reason, "stopped");
  assertEquals(r.step, 2);
  assertEquals((await loadCheckpoint(dir)).state.step, 2);
  t.dispose();
  model.dispose();
});
