import assert from "node:assert/strict";
import {
  resolveV3Config,
  V3BatchController,
  V3Controller,
  V3GenerationPolicy,
} from "../../lib/recync/controller.ts";

/** Alternating 0.89 / 0.91 → window mean 0.9, std 0.01, threshold 0.894. */
const baseline = (n: number): number[] => Array.from({ length: n }, (_, i) => (i % 2 === 0 ? 0.89 : 0.91));
const run = (ctl: V3Controller, series: number[]) => series.map((c) => ctl.observe(c));
const actions = (ctl: V3Controller) => ctl.log.map((e) => `${e.step}:${e.action}`);

Deno.test("v3: severity bucket picks T/p, holds for holdSteps tokens, then returns to base", () => {
  // Severity (0.894 − min)/0.01: low 0.888 → 0.6, mid 0.88 → 1.4, high 0.85 → 4.4.
  const cases = [
    { run: [0.89, 0.889, 0.888], bucket: "low", s: { temperature: 0.85, topP: 0.9 } },
    { run: [0.89, 0.885, 0.88], bucket: "mid", s: { temperature: 0.75, topP: 0.85 } },
    { run: [0.86, 0.855, 0.85], bucket: "high", s: { temperature: 0.65, topP: 0.8 } },
  ];
  for (const c of cases) {
    const ctl = new V3Controller();
    // Staying low (no recovery) keeps the intervention for the full hold.
    const out = run(ctl, [...baseline(20), ...c.run, ...Array(5).fill(c.run[2]), 0.91]);
    assert.deepEqual(out[22], c.s, c.bucket); // decided after step 23, applies from y_24
    for (let t = 23; t <= 27; t++) assert.deepEqual(out[t - 1], c.s, `${c.bucket} held at ${t}`);
    assert.deepEqual(out[27], { temperature: 1, topP: 0.9 }, "back to base after step 23 + 5");
    assert.deepEqual(actions(ctl), ["23:apply", "28:end"]);
    assert.equal(ctl.log[0].bucket, c.bucket);
    assert.equal(ctl.log[0].qpChanged, null);
  }
});

Deno.test("v3: the recovery gate skips an intervention when the 2-step slope shows recovery", () => {
  const series = [...baseline(20), 0.7, 0.85, 0.88, 0.91]; // rising by 0.18 over two steps
  const gated = new V3Controller();
  const out = run(gated, series);
  assert.deepEqual(actions(gated), ["23:skipGate"]);
  assert.deepEqual(out[22], { temperature: 1, topP: 0.9 });
  const ungated = new V3Controller({ gate: false });
  run(ungated, series);
  assert.deepEqual(actions(ungated), ["23:apply"]);
  assert.equal(ungated.log[0].bucket, "high"); // (0.894 − 0.7)/0.01
});

Deno.test("v3: the gate stops an intervention early once cosim is back at or above the threshold", () => {
  const ctl = new V3Controller();
  const out = run(ctl, [...baseline(20), 0.5, 0.5, 0.5, 0.5, 0.91, 0.89]);
  assert.deepEqual(actions(ctl), ["23:apply", "25:stopEarly"]);
  assert.deepEqual(out[24], { temperature: 1, topP: 0.9 });
  assert.equal(ctl.intervening, false);
});

Deno.test("v3: frequency cap allows one start per minInterval tokens", () => {
  // Crisis 1 confirmed at 23, re-arm at 24, crisis 2 confirmed at 27 (4 steps later).
  const series = [...baseline(20), 0.5, 0.5, 0.5, 0.91, 0.5, 0.5, 0.5, 0.91, ...baseline(2), 0.5, 0.5, 0.5];
  const capped = new V3Controller({ gate: false });
  run(capped, series);
  // The hold ends at 28 (23 + 5); without the gate the re-arm at 24 does not stop it.
  assert.deepEqual(actions(capped), ["23:apply", "27:skipCap", "28:end", "33:apply"]);
  const free = new V3Controller({ gate: false, minInterval: 0 });
  run(free, series);
  assert.deepEqual(actions(free).filter((a) => a.endsWith("apply")), ["23:apply", "27:apply", "33:apply"]);
});

Deno.test("v3: the CBF filter softens the bucket when Z is near λ_max and logs qpChanged", () => {
  const cbf = { potential: { a: [0, 0, 0], b: [1e-12, 1e-12, 1e-12] }, sigma: 0 };
  const ctl = new V3Controller({ cbf, gate: false });
  const safeZ = [0.3, 0.5, 1.0];
  const nearMax = [0.79, 0.5, 1.0];
  const series = [...baseline(20), 0.5, 0.5, 0.5, 0.5, 0.5];
  const Zs = [...series.map(() => safeZ)];
  Zs[22] = nearMax; // step 23: confirmation with λ close to λ_max
  const out = series.map((c, i) => ctl.observe(c, Zs[i]));
  const applied = ctl.log[0];
  assert.equal(applied.action, "apply");
  assert.equal(applied.qpChanged, true);
  assert.equal(applied.qpRelaxed, false);
  assert.deepEqual(applied.Z, nearMax);
  assert.ok(out[22].temperature > 0.65, `filtered temperature ${out[22].temperature}`);
  // Step 24 has a safe Z again: the re-filter returns the bucket itself, logged because the sampling moved.
  assert.deepEqual(out[23], { temperature: 0.65, topP: 0.8 });
  assert.deepEqual(ctl.log.map((e) => [e.step, e.action, e.qpChanged]).slice(0, 2), [[23, "apply", true], [
    24,
    "refilter",
    false,
  ]]);
  assert.equal(ctl.log.length, 2, "unchanged held steps are not logged");
  // Without Z the filter cannot run: the bucket applies unfiltered.
  const noZ = new V3Controller({ cbf, gate: false });
  series.forEach((c) => noZ.observe(c));
  assert.equal(noZ.log[0].qpChanged, null);
  assert.equal(noZ.sampling.temperature, 0.65);
});

Deno.test("v3: batched rows keep independent monitors and controllers", () => {
  const policy = new V3BatchController(3, { gate: false });
  const crisis = [...baseline(20), 0.5, 0.5, 0.5];
  const calm = [...baseline(23)];
  let last = { temperature: [] as number[], topP: [] as number[] };
  for (let t = 0; t < 23; t++) {
    // Row 2 is finished after step 10 (inactive): it is never advanced.
    last = policy.observe([crisis[t], calm[t], crisis[t]], new Float32Array(9).fill(0.5), undefined, [
      1,
      1,
      t < 10,
    ]);
  }
  assert.deepEqual(last.temperature, [0.65, 1, 1]);
  assert.deepEqual(last.topP, [0.8, 0.9, 0.9]);
  assert.equal(policy.rows[2].monitor.lastStep, 10);
  assert.deepEqual(policy.interventions().map((e) => [e.row, e.step, e.action]), [[0, 23, "apply"]]);
  assert.throws(() => policy.observe([0.9]), /1 cosims for 3 rows/);
});

Deno.test("v3: configuration validation and reset", () => {
  assert.throws(() => resolveV3Config({ holdSteps: 0 }), /holdSteps/);
  assert.throws(
    () => resolveV3Config({ buckets: { low: { temperature: 0, topP: 0.9 } } as never }),
    /buckets.low.temperature/,
  );
  assert.throws(() => resolveV3Config({ base: { temperature: 1, topP: 1.5 } }), /base.topP/);
  const ctl = new V3Controller();
  run(ctl, [...baseline(20), 0.5, 0.5, 0.5]);
  assert.equal(ctl.intervening, true);
  ctl.reset();
  assert.equal(ctl.intervening, false);
  assert.equal(ctl.log.length, 0);
  assert.equal(ctl.monitor.lastStep, 0);
});

Deno.test("v3 policy: drives per-row sampling through a generation control, skipping t = 0 and re-produced steps", () => {
  const policy = new V3GenerationPolicy(2, { gate: false }, { orderParameterProbe: "recync.Z" });
  const sampling = [{ temperature: 1, topP: 0.9, topK: 7 }, { temperature: 1, topP: 0.9, topK: 7 }];
  const sets: [number, number, number][] = [];
  const control = {
    getSampling: (row: number) => ({ ...sampling[row] }),
    setSampling: (row: number, p: { temperature?: number; topP?: number; topK?: number }) => {
      sampling[row] = { temperature: p.temperature!, topP: p.topP!, topK: p.topK! };
      sets.push([row, p.temperature!, p.topP!]);
    },
  };
  const crisis = [NaN, ...baseline(20), 0.5, 0.5, 0.5]; // index 0 has no cosim
  const Z = { "recync.Z": [0.3, 0.5, 1.0] };
  for (let t = 0; t < crisis.length; t++) {
    policy.onStep({
      rows: [{ row: 0, t, cosim: crisis[t], probes: Z }, { row: 1, t, cosim: 0.9, probes: Z }],
    }, control);
  }
  // A re-produced index (after someone else's rewind) is ignored.
  policy.onStep({ rows: [{ row: 0, t: 20, cosim: 0.1, probes: Z, afterRewind: true }] }, control);
  assert.deepEqual(sets, [[0, 0.65, 0.8]]);
  assert.equal(sampling[0].topK, 7, "other sampling fields are kept");
  assert.equal(policy.controller.rows[0].monitor.lastStep, 23);
  assert.deepEqual(policy.interventions().map((e) => [e.row, e.step, e.action, e.qpChanged]), [[
    0,
    23,
    "apply",
    null,
  ]]);
  assert.throws(
    () => policy.onStep({ rows: [{ row: 0, t: 24, cosim: 0.9, probes: {} }] }, control),
    /no probe "recync.Z"/,
  );
});

Deno.test("v3 policy + order-parameter probe inside generate(): an injected dip is detected and T/p change", async () => {
  const { tf } = await import("../../lib/deps.ts");
  await tf.setBackend("cpu");
  const { createDecoder, gpt2SmallConfig } = await import("../../lib/models/scratch.ts");
  const { generate } = await import("../../lib/generate/generate.ts");
  const { OrderParameterProbe } = await import("../../lib/recync/order_params.ts");
  const model = createDecoder(
    gpt2SmallConfig({
      nLayers: 2,
      dModel: 32,
      nHeads: 4,
      headDim: 8,
      dMlp: 64,
      vocabSize: 64,
      maxPositions: 96,
    }),
    { seed: 3 },
  );
  const before = tf.memory().numTensors;
  // Pin the final hidden state near a fixed direction a (cosims ≈ 1 with a little model noise), and
  // switch to an orthogonal direction b at two forwards two apart: four consecutive cosims ≈ 0.
  const d = 32;
  const a = tf.tensor1d(Array.from({ length: d }, () => 5 / Math.sqrt(d)));
  const b = tf.tensor1d(Array.from({ length: d }, (_, i) => (i % 2 ? 5 : -5) / Math.sqrt(d)));
  let forwardCall = -1;
  const hooks = {
    "ln_final.hook_normalized": (x: import("../../lib/deps.ts").tf.Tensor) => {
      forwardCall++;
      return tf.add(tf.mul(x, 0.2), forwardCall === 26 || forwardCall === 28 ? b : a);
    },
  };
  const probe = new OrderParameterProbe({ nLayers: 2 });
  const policy = new V3GenerationPolicy(2, { gate: false, minInterval: 0, cbf: {} }, {
    orderParameterProbe: probe.name,
  });
  const seen: number[][] = [];
  const spy = {
    name: "spy",
    onStep: (step: { step: number }, control: { getSampling(r: number): { temperature?: number } }) => {
      seen[step.step] = [control.getSampling(0).temperature ?? 1, control.getSampling(1).temperature ?? 1];
    },
  };
  const trace = await generate(model, [[1, 2, 3, 4], [5, 6, 7]], {
    maxNewTokens: 40,
    seeds: [11, 12],
    sampling: { temperature: 1, topP: 0.9 },
    hooks,
    probes: [probe],
    policies: [probe.cachePolicy, policy, spy],
  }).collect();
  probe.dispose();
  const log = policy.interventions();
  tf.dispose([a, b]);
  const onset = trace.rows[0].cosims.findIndex((c, t) => t > 0 && c < 0.5);
  assert.ok(onset >= 21, `injected dip at ${onset}`);
  assert.ok(trace.rows[0].cosims.slice(onset, onset + 4).every((c) => c < 0.5), "four low cosims");
  const applied = log.find((e) => e.row === 0 && e.step === onset + 2 && e.action === "apply");
  assert.ok(
    applied,
    `expected an intervention at ${onset + 2}, got ${
      JSON.stringify(log.map((e) => [e.row, e.step, e.action]))
    }`,
  );
  assert.equal(applied.event?.onset, onset);
  assert.ok(applied.qpChanged !== null, "the CBF filter ran on the probe's Z");
  assert.equal(seen[onset + 2][0], applied.temperature, "the row's sampling changed after the confirmation");
  // Every change of row 0's temperature is explained by the log: the last entry at or before a step
  // sets the temperature sampled from the next step on (base 1 after "end"/"stopEarly").
  const row0 = log.filter((e) => e.row === 0);
  for (let t = 1; t < 40; t++) {
    const last = row0.filter((e) => e.step <= t && !e.action.startsWith("skip")).pop();
    assert.equal(seen[t][0], last ? last.temperature : 1, `step ${t}`);
  }
  // The probe's values reached the trace: λ in [0, 1], everything finite, z = 0 at t = 0 only.
  for (const row of trace.rows) {
    const Z = row.probes[probe.name];
    assert.equal(Z.length, 40);
    assert.ok(Z.every((v) => v.every(Number.isFinite)));
    assert.ok(Z.every(([lambda]) => lambda >= -1e-6 && lambda <= 1 + 1e-6));
    assert.equal(Z[0][2], 0);
    assert.ok(Z.slice(1).some(([, , z]) => z !== 0));
  }
  assert.equal(tf.memory().numTensors, before, "generation with the probe leaks no tensors");
  model.dispose();
});
