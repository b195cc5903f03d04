import assert from "node:assert/strict";
import {
  CosimMonitor,
  type CosimMonitorOptions,
  type CosimWindowMode,
  cosineSimilarity,
  detectCrises,
  severityBucket,
  windowStats,
} from "../../lib/recync/monitor.ts";
import { Prng } from "../../lib/random/prng.ts";

/** Alternating 0.89 / 0.91: mean 0.9, population std 0.01; never three lows in a row. */
const baseline = (n: number): number[] => Array.from({ length: n }, (_, i) => (i % 2 === 0 ? 0.89 : 0.91));

const MODES: CosimWindowMode[] = ["excludeConfirmed", "all", "acceptNonLow"];
const COMBOS: CosimMonitorOptions[] = MODES.flatMap((windowMode) =>
  (["full", "partial"] as const).flatMap((warmup) =>
    ([0, 1] as const).map((stdDdof) => ({ windowMode, warmup, stdDdof }))
  )
);
const label = (o: CosimMonitorOptions) => `${o.windowMode}/${o.warmup}/ddof${o.stdDdof}`;
const onsets = (series: number[], o: CosimMonitorOptions) => detectCrises(series, o).map((e) => e.onset);

Deno.test("monitor: a 3-step dip after warm-up fires at onset 21 under every option combination", () => {
  const series = [...baseline(20), 0.5, 0.5, 0.5, ...baseline(10)];
  for (const o of COMBOS) {
    const events = detectCrises(series, o);
    assert.deepEqual(events.map((e) => [e.onset, e.confirmedAt]), [[21, 23]], label(o));
    assert.deepEqual(events[0].runValues, [0.5, 0.5, 0.5]);
  }
});

Deno.test("monitor: a 2-step dip never fires, under every option combination", () => {
  const series = [...baseline(20), 0.5, 0.5, 0.91, ...baseline(30), 0.3, 0.3, 0.95, ...baseline(20)];
  for (const o of COMBOS) assert.deepEqual(onsets(series, o), [], label(o));
});

Deno.test("monitor: a dip during warm-up fires only with partial warm-up", () => {
  // Steps 5-7 are 0.5 (inside the 20-step warm-up); a deep dip at steps 21-23 follows.
  const after = baseline(14).slice(1); // starts (and, at step 20, ends) with 0.91
  const series = [...baseline(4), 0.5, 0.5, 0.5, ...after, 0.1, 0.1, 0.1, ...baseline(5)];
  for (const o of COMBOS) {
    const expected = o.warmup === "full" ? [21] : [5, 21];
    assert.deepEqual(onsets(series, o), expected, label(o));
  }
});

Deno.test("monitor: two crises with re-arming in between; lows beyond k raise no new event", () => {
  // Crisis 1: steps 21-30 all low (one event); re-arm at 31; crisis 2 at 52-54.
  const series = [
    ...baseline(20),
    ...Array(10).fill(0.5),
    0.91,
    ...baseline(20),
    0.4,
    0.4,
    0.4,
    ...baseline(4),
  ];
  for (const o of COMBOS) {
    assert.deepEqual(onsets(series, o), [21, 52], label(o));
  }
  // Without any value ≥ thr between the dips, only the first dip counts (excludeConfirmed keeps thr fixed).
  const noRearm = [...baseline(20), ...Array(3).fill(0.5), ...Array(5).fill(0.6), 0.4, 0.4, 0.4];
  assert.deepEqual(onsets(noRearm, { windowMode: "excludeConfirmed" }), [21]);
});

Deno.test("monitor: comparison is strict and a value equal to the threshold re-arms", () => {
  // Constant window 0.5 (exact in binary): std 0, thr exactly 0.5.
  const m = new CosimMonitor();
  for (let t = 0; t < 20; t++) m.push(0.5);
  assert.equal(m.threshold, 0.5);
  assert.equal(m.observe(0.5).low, false, "cosim == thr is not low");
  assert.equal(m.push(0.25), null);
  assert.equal(m.push(0.25), null);
  const e1 = m.push(0.25);
  assert.ok(e1 !== null);
  assert.equal(e1.onset, 22);
  assert.equal(e1.bucket, "high"); // (0.5 - 0.25) / max(0, 1e-6)
  assert.equal(m.push(0.25), null, "still in crisis");
  assert.equal(m.inCrisis, true);
  assert.equal(m.observe(0.5).low, false); // re-arms
  assert.equal(m.inCrisis, false);
  m.push(0.25);
  m.push(0.25);
  assert.equal(m.push(0.25)?.onset, 27);
});

Deno.test("monitor: thresholds follow the window statistics with the chosen ddof", () => {
  const series = baseline(20);
  for (const ddof of [0, 1] as const) {
    const m = new CosimMonitor({ stdDdof: ddof });
    for (const v of series) m.push(v);
    const std = 0.01 * (ddof === 1 ? Math.sqrt(20 / 19) : 1);
    assert.ok(Math.abs(m.threshold! - (0.9 - 0.6 * std)) < 1e-12);
    const rec = m.observe(0.8939); // between the two thresholds: 0.894 (ddof 0), 0.893844 (ddof 1)
    assert.equal(rec.low, ddof === 0);
    assert.ok(Math.abs(rec.windowStd! - std) < 1e-12);
  }
  assert.deepEqual(windowStats([1, 2, 3, 4], 1).mean, 2.5);
  assert.ok(Math.abs(windowStats([1, 2, 3, 4], 1).std - Math.sqrt(5 / 3)) < 1e-12);
});

Deno.test("monitor: window modes differ in what a short run and a crisis leave behind", () => {
  const dip = [...baseline(20), 0.8, 0.8, 0.91];
  const windowAfter = (mode: CosimWindowMode) => {
    const m = new CosimMonitor({ windowMode: mode });
    for (const v of dip) m.push(v);
    return m.windowValues;
  };
  // excludeConfirmed and all: the short run was flushed/kept in order; acceptNonLow dropped it.
  assert.deepEqual(windowAfter("excludeConfirmed").slice(-3), [0.8, 0.8, 0.91]);
  assert.deepEqual(windowAfter("all").slice(-3), [0.8, 0.8, 0.91]);
  assert.deepEqual(windowAfter("acceptNonLow").slice(-3), [0.89, 0.91, 0.91]);

  // While the run is pending, excludeConfirmed keeps the threshold fixed and "all" lowers it.
  const thrs = (mode: CosimWindowMode) => {
    const m = new CosimMonitor({ windowMode: mode });
    return [...baseline(20), 0.5, 0.5, 0.5].map((v) => m.observe(v).thr);
  };
  const ex = thrs("excludeConfirmed");
  assert.equal(ex[20], ex[22]);
  const all = thrs("all");
  assert.ok(all[22]! < all[20]!);

  // A confirmed crisis is discarded by excludeConfirmed, kept by all.
  const crisis = [...baseline(20), 0.5, 0.5, 0.5, 0.5, 0.91];
  const after = (mode: CosimWindowMode) => {
    const m = new CosimMonitor({ windowMode: mode });
    for (const v of crisis) m.push(v);
    return m.windowValues;
  };
  assert.ok(!after("excludeConfirmed").includes(0.5));
  assert.equal(after("all").filter((v) => v === 0.5).length, 4);
});

Deno.test("monitor: acceptNonLow drifts and fires on plain noise more often than excludeConfirmed", () => {
  const rng = new Prng(3);
  let drift = 0, base = 0;
  for (let run = 0; run < 300; run++) {
    const series = Array.from({ length: 100 }, () => 0.9 + 0.02 * rng.nextNormal());
    if (detectCrises(series, { windowMode: "acceptNonLow" }).length > 0) drift++;
    if (detectCrises(series).length > 0) base++;
  }
  assert.ok(drift > base, `acceptNonLow ${drift} vs excludeConfirmed ${base}`);
});

Deno.test("monitor: event fields and severity buckets", () => {
  const series = [...baseline(20), 0.89, 0.885, 0.88];
  const [e] = detectCrises(series);
  assert.equal(e.onset, 21);
  assert.equal(e.confirmedAt, 23);
  assert.ok(Math.abs(e.windowMean - 0.9) < 1e-12);
  assert.ok(Math.abs(e.windowStd - 0.01) < 1e-12);
  assert.ok(Math.abs(e.thresholdAtOnset - 0.894) < 1e-12);
  assert.ok(Math.abs(e.severity - (0.894 - 0.88) / 0.01) < 1e-9); // 1.4
  assert.equal(e.bucket, "mid");
  assert.deepEqual(e.runThresholds.length, 3);
  assert.equal(severityBucket(0.99), "low");
  assert.equal(severityBucket(1), "mid");
  assert.equal(severityBucket(2), "high");
  assert.equal(severityBucket(2, [3, 4]), "low");
  const low = detectCrises([...baseline(20), 0.89, 0.889, 0.888]);
  assert.equal(low[0].bucket, "low");
});

Deno.test("monitor: per-step records for plotting", () => {
  const m = new CosimMonitor();
  for (const v of [...baseline(20), 0.5, 0.5, 0.5, 0.91]) m.push(v);
  assert.equal(m.trace.length, 24);
  assert.equal(m.trace[0].step, 1);
  assert.equal(m.trace[19].thr, null);
  assert.equal(m.trace[20].low, true);
  assert.deepEqual(m.trace.map((r) => r.inCrisis).slice(19), [false, true, true, true, false]);
  assert.equal(m.trace[22].event?.onset, 21);
  assert.equal(new CosimMonitor({ recordTrace: false }).trace.length, 0);
});

Deno.test("monitor: snapshot/restore and restoreAfterStep reproduce the detector exactly", () => {
  const rng = new Prng(11);
  const series = Array.from({ length: 120 }, () => 0.9 + 0.02 * rng.nextNormal());
  for (const o of COMBOS) {
    const m = new CosimMonitor(o);
    const snaps = series.map((v) => {
      m.push(v);
      return JSON.parse(JSON.stringify(m.snapshot()));
    });
    const fullEvents = m.events.map((e) => e.onset);
    for (const r of [0, 5, 22, 47, 80, 120]) {
      const m2 = new CosimMonitor(o);
      for (let t = 1; t <= r; t++) m2.push(series[t - 1]);
      m.restoreAfterStep(r);
      assert.deepEqual(m.snapshot(), m2.snapshot(), `${label(o)} r=${r}`);
      assert.deepEqual(m.events.map((e) => e.onset), m2.events.map((e) => e.onset));
      assert.equal(m.trace.length, r);
      if (r > 0) assert.deepEqual(m.snapshot(), snaps[r - 1]);
      // Replaying the rest gives the original events again.
      for (let t = r + 1; t <= series.length; t++) m.push(series[t - 1], t);
      assert.deepEqual(m.events.map((e) => e.onset), fullEvents);
    }
    // restore() from a JSON snapshot taken mid-stream.
    const m3 = new CosimMonitor(o);
    m3.restore(snaps[59]);
    for (let t = 61; t <= series.length; t++) m3.push(series[t - 1]);
    assert.deepEqual(m3.snapshot(), snaps[119], label(o));
  }
});

Deno.test("monitor: restoreAfterStep inside a pending run unmarks the trace and drops the event", () => {
  const m = new CosimMonitor();
  for (const v of [...baseline(20), 0.5, 0.5, 0.5]) m.push(v);
  assert.equal(m.events.length, 1);
  m.restoreAfterStep(22);
  assert.equal(m.events.length, 0);
  assert.deepEqual(m.trace.slice(20).map((r) => r.inCrisis), [false, false]);
  assert.equal(m.snapshot().pending.length, 2);
  assert.equal(m.push(0.5)?.onset, 21);
});

Deno.test("monitor: explicit steps, reset and bad input", () => {
  const m = new CosimMonitor();
  m.push(0.9, 5);
  assert.equal(m.lastStep, 5);
  assert.throws(() => m.push(0.9, 5), /step must be an integer > 5/);
  m.push(0.9);
  assert.equal(m.lastStep, 6);
  m.reset();
  assert.equal(m.lastStep, 0);
  assert.deepEqual(m.windowValues, []);
  assert.throws(() => new CosimMonitor({ window: 1 }), /options.window/);
  assert.throws(() => new CosimMonitor({ windowMode: "nope" as CosimWindowMode }), /windowMode/);
  assert.throws(() => m.restoreAfterStep(3), /after the last step/);
});

Deno.test("monitor: non-finite values follow the documented policy", () => {
  const m = new CosimMonitor();
  for (const v of baseline(20)) m.push(v);
  assert.throws(() => m.push(NaN), /cosim at step 21 is NaN/);
  assert.equal(m.lastStep, 20, "a refused value consumes no step");

  const skip = new CosimMonitor({ nonFinite: "skip" });
  for (const v of baseline(20)) skip.push(v);
  const before = skip.snapshot();
  const rec = skip.observe(NaN);
  assert.equal(rec.thr, null);
  assert.deepEqual(skip.snapshot().window, before.window);
  assert.equal(skip.lastStep, 21);

  const low = new CosimMonitor({ nonFinite: "low" });
  for (const v of baseline(20)) low.push(v);
  low.push(0.5);
  low.push(Infinity);
  const e = low.push(NaN);
  assert.ok(e !== null);
  assert.equal(e.severity, Infinity);
  assert.equal(e.bucket, "high");
  assert.ok(low.windowValues.every(Number.isFinite));
});

Deno.test("cosineSimilarity: eps convention, zero norm and non-finite input", () => {
  assert.ok(Math.abs(cosineSimilarity([1, 0], [1, 1]) - Math.SQRT1_2) < 1e-12);
  assert.equal(cosineSimilarity(new Float32Array([0, 0, 0]), new Float32Array([1, 2, 3])), 0);
  assert.equal(cosineSimilarity([0, 0], [0, 0]), 0);
  assert.ok(Number.isNaN(cosineSimilarity([NaN, 1], [1, 1])));
  assert.ok(Number.isNaN(cosineSimilarity([Infinity, 1], [1, 1])));
  assert.equal(cosineSimilarity([2, 0], [-3, 0]), -1);
  // Tiny but non-zero norms: ‖a‖‖b‖ = 1e-10 < eps, so the result is shrunk towards 0, not blown up.
  assert.ok(Math.abs(cosineSimilarity([1e-5, 0], [1e-5, 0]) - 1e-10 / 1e-8) < 1e-15);
  assert.throws(() => cosineSimilarity([1], [1, 2]), /differ in length/);
  const m = new CosimMonitor();
  assert.equal(m.pushHidden(new Float32Array([1, 0])), null);
  assert.ok(Math.abs(m.pushHidden(new Float32Array([1, 1]))!.cosim - Math.SQRT1_2) < 1e-7);
  assert.equal(m.lastStep, 1);
});

Deno.test("monitor: false-alarm rate on i.i.d. Gaussian cosim matches spec §2.6", () => {
  // 2000 runs of N(0.9, 0.02²); spec: P(crisis) 0.86 / 0.99 for T = 100 / 200 (excludeConfirmed),
  // 0.77 / 0.97 with windowMode "all"; median first onset ≈ 43 (T = 100). Standard error ≈ 0.008.
  const expected = [
    { mode: "excludeConfirmed" as const, T: 100, p: 0.86, median: 43 },
    { mode: "excludeConfirmed" as const, T: 200, p: 0.99, median: 49 },
    { mode: "all" as const, T: 100, p: 0.77 },
    { mode: "all" as const, T: 200, p: 0.97 },
  ];
  for (const { mode, T, p, median } of expected) {
    const rng = new Prng(2026);
    const first: number[] = [];
    for (let run = 0; run < 2000; run++) {
      const m = new CosimMonitor({ windowMode: mode, recordTrace: false });
      for (let t = 1; t <= T; t++) {
        const e = m.push(0.9 + 0.02 * rng.nextNormal());
        if (e) {
          first.push(e.onset);
          break;
        }
      }
    }
    const rate = first.length / 2000;
    assert.ok(Math.abs(rate - p) < 0.03, `${mode} T=${T}: rate ${rate} vs spec ${p}`);
    if (median !== undefined) {
      first.sort((a, b) => a - b);
      const med = first[Math.floor(first.length / 2)];
      assert.ok(Math.abs(med - median) <= 4, `${mode} T=${T}: median onset ${med} vs spec ≈ ${median}`);
    }
    assert.ok(first.every((s) => s >= 21), "earliest onset with full warm-up is 21");
  }
});

Deno.test("cosineSimilarity agrees with generate()'s on-device cosim (post- and pre-norm, zero-norm states)", async () => {
  const { tf } = await import("../../lib/deps.ts");
  await tf.setBackend("cpu");
  const { createDecoder, gpt2SmallConfig } = await import("../../lib/models/scratch.ts");
  const { generate } = await import("../../lib/generate/generate.ts");
  const model = createDecoder(
    gpt2SmallConfig({
      nLayers: 2,
      dModel: 32,
      nHeads: 4,
      headDim: 8,
      dMlp: 64,
      vocabSize: 64,
      maxPositions: 64,
    }),
    { seed: 5 },
  );
  // Zero the final hidden state at two forwards: both sides must give cosine 0 there, not NaN.
  let call = -1;
  const hooks = {
    "ln_final.hook_normalized": (x: import("../../lib/deps.ts").tf.Tensor) => {
      call++;
      return call === 6 || call === 7 ? tf.zerosLike(x) : undefined;
    },
  };
  for (const hiddenSource of ["postNorm", "preNorm"] as const) {
    call = -1;
    const trace = await generate(model, [[1, 2, 3], [4, 5]], {
      maxNewTokens: 12,
      seeds: [1, 2],
      returnHidden: true,
      hiddenSource,
      hooks,
    }).collect();
    for (const row of trace.rows) {
      assert.ok(Number.isNaN(row.cosims[0]));
      for (let t = 1; t < row.cosims.length; t++) {
        const ref = cosineSimilarity(row.hiddens![t], row.hiddens![t - 1]);
        assert.ok(
          Math.abs(ref - row.cosims[t]) < 1e-5,
          `${hiddenSource} row ${row.row} t ${t}: ${ref} vs ${row.cosims[t]}`,
        );
      }
      if (hiddenSource === "postNorm") {
        const zeros = row.cosims.filter((c) => c === 0).length;
        assert.ok(zeros >= 2, `zero-norm states give cosine 0 on the device too (${row.cosims})`);
      }
    }
  }
  model.dispose();
});
