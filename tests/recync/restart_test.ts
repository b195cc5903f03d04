import { assert, assertJsonEquals as assertEquals, assertThrows } from "../assert.ts";
import { RecyncRestartController, resolveRestartOptions } from "../../lib/recync/restart.ts";
import { CosimMonitor } from "../../lib/recync/monitor.ts";
import { tinyRecyncModel, useBackend } from "../fixtures.ts";

const warm = Array.from({ length: 20 }, (_, i) => 0.9 + (i % 2 ? 0.01 : -0.01));

Deno.test("controller: r = onset - 3 in generated-step coordinates, seed + 10000, T=1.0/top-p 0.9", () => {
  const ctl = new RecyncRestartController([42]);
  const decisions = [...warm, 0.95, 0.5, 0.5, 0.5].map((c, i) => ctl.observe(0, i + 1, c));
  // Steps 1..20 fill the window; 21 is fine; lows at 22, 23, 24 → onset 22, confirmed at 24.
  assertEquals(decisions.slice(0, 23).every((d) => d === null), true);
  const d = decisions[23]!;
  assertEquals(d.event.onset, 22);
  assertEquals(d.event.confirmedAt, 24);
  assertEquals(d.r, 19);
  assertEquals(d.seed, 10042);
  assertEquals(d.sampling, { temperature: 1, topP: 0.9, topK: 0 });
  assertEquals(d.restart, 1);
  // The monitor is back to just after step r: the same state as a fresh monitor fed cosim(1..19).
  const fresh = new CosimMonitor({ nonFinite: "low" });
  [...warm].slice(0, 19).forEach((c) => fresh.push(c));
  assertEquals(ctl.monitors[0].lastStep, 19);
  assertEquals(ctl.monitors[0].snapshot(), fresh.snapshot());
  assertEquals(ctl.monitors[0].events.length, 0);
});

Deno.test("controller: a re-reported step r after the rewind is ignored; 1R stops acting", () => {
  const ctl = new RecyncRestartController([0]);
  const series = [...warm, 0.5, 0.5, 0.5];
  let d: ReturnType<typeof ctl.observe> = null;
  series.forEach((c, i) => d = ctl.observe(0, i + 1, c) ?? d);
  assertEquals(d!.r, 18);
  assertEquals(ctl.observe(0, 18, 0.123), null); // re-fed step r: already in the monitor
  assertEquals(ctl.monitors[0].lastStep, 18);
  // Regenerated continuation dips again: recorded, but 1R allows no second restart.
  const after = [0.9, 0.91, 0.3, 0.3, 0.3];
  const second = after.map((c, i) => ctl.observe(0, 19 + i, c));
  assert(second.every((x) => x === null));
  assertEquals(ctl.restartCount(0), 1);
  assertEquals(ctl.logs[0].allEvents.length, 2);
  assertEquals(ctl.monitors[0].events.length, 1); // the final sequence keeps only the new crisis
});

Deno.test("controller: 2R reseeds with seed + 20000 on the second crisis; rows are independent", () => {
  const ctl = new RecyncRestartController([5, 6], { maxRestarts: 2 });
  const series = [...warm, 0.5, 0.5, 0.5];
  const d0: (ReturnType<typeof ctl.observe>)[] = [];
  series.forEach((c, i) => {
    d0.push(ctl.observe(0, i + 1, c));
    ctl.observe(1, i + 1, 0.9 + (i % 2 ? 0.01 : -0.01)); // row 1: no crisis
  });
  assertEquals(d0[22]!.r, 18);
  const again = [0.9, 0.91, 0.3, 0.3, 0.3].map((c, i) => ctl.observe(0, 19 + i, c));
  const d2 = again[4]!;
  assertEquals(d2.restart, 2);
  assertEquals(d2.seed, 20005);
  assertEquals(d2.r, 21 - 3);
  assertEquals(ctl.restartCount(1), 0);
  assertEquals(ctl.monitors[1].lastStep, 23);
});

Deno.test("controller: options are checked; maxRestarts 0 is monitor-only", () => {
  assertThrows(() => resolveRestartOptions({ topP: 0 }), Error, "topP");
  assertThrows(() => resolveRestartOptions({ rewindOffset: -1 }), Error, "rewindOffset");
  const ctl = new RecyncRestartController([1], { maxRestarts: 0 });
  const ds = [...warm, 0.5, 0.5, 0.5].map((c, i) => ctl.observe(0, i + 1, c));
  assert(ds.every((d) => d === null));
  assertEquals(ctl.monitors[0].events.length, 1);
  // Partial warm-up can confirm a crisis before step 4: r is clamped at 0.
  const early = new RecyncRestartController([1], { monitor: { warmup: "partial" } });
  const es = [0.9, 0.91, 0.2, 0.2, 0.2].map((c, i) => early.observe(0, i + 1, c));
  assertEquals(es[4]!.r, 0);
});

// ---- The policy inside generate(): rewind correctness on a real (random-weight) decoder. ----
import { tf } from "../../lib/deps.ts";
import { generate } from "../../lib/generate/generate.ts";
import type { KVCache } from "../../lib/models/kv_cache.ts";
import { recyncRestartPolicy } from "../../lib/recync/restart.ts";

await useBackend("cpu");

function tinyModel() {
  return tinyRecyncModel(48, 256, 11);
}

Deno.test("policy: batched rows rewind on their own; kept prefix, KV cache and monitor state are exact", async () => {
  const model = tinyModel();
  const prompts = [[1, 2, 3, 4], [5, 6], [7, 8, 9]];
  const seeds = [101, 102, 103];
  const T = 90;
  try {
    // Reference: the same rows without any policy (the baseline trajectories).
    const base = await generate(model, prompts, { maxNewTokens: T, seeds, sampling: { topP: 0.9 } })
      .collect();
    const controller = new RecyncRestartController(seeds, {}, [1, 1, 0]); // row 2 only monitors
    const policy = recyncRestartPolicy(controller);
    const kvChecks: string[] = [];
    const restored = new Map<number, ReturnType<CosimMonitor["snapshot"]>>();
    const run = generate(model, prompts, {
      maxNewTokens: T,
      seeds,
      sampling: { topP: 0.9 },
      policies: [policy],
      onStep: (step, control) => {
        // At the step that re-produces index r, the row's cache holds prompt + y_0 … y_{r−1}:
        // compare it with a fresh prefill of exactly that prefix.
        for (const row of step.rows) {
          if (!row.afterRewind) continue;
          // The policy ignores this step (cosim(r) is already in the monitor): this is the restored state.
          restored.set(row.row, controller.monitors[row.row].snapshot());
          const kept = control.tokens(row.row).slice(0, row.t);
          const fresh = model.createCache(1);
          const ids = tf.tensor2d([[...prompts[row.row], ...kept]], undefined, "int32");
          const out = model.forward(ids, { cache: fresh, lastOnly: true });
          const a = (control.cache as KVCache).snapshotRow(row.row);
          const b = (fresh as KVCache).snapshotRow(0);
          let maxDiff = 0;
          for (let l = 0; l < a.length; l++) {
            assertEquals(a[l].k.shape, b[l].k.shape);
            maxDiff = Math.max(
              maxDiff,
              tf.max(tf.abs(tf.sub(a[l].k, b[l].k))).dataSync()[0],
              tf.max(tf.abs(tf.sub(a[l].v, b[l].v))).dataSync()[0],
            );
          }
          kvChecks.push(`${row.row}@${row.t}:${maxDiff}`);
          assert(maxDiff < 1e-5, `row ${row.row}: cache differs from a fresh prefill by ${maxDiff}`);
          tf.dispose([ids, out.logits, out.hidden, out.residual, ...a.flatMap((s) => [s.k, s.v])]);
          tf.dispose(b.flatMap((s) => [s.k, s.v]));
          fresh.dispose();
        }
      },
    });
    const trace = await run.collect();
    for (let row = 0; row < 3; row++) {
      const log = controller.logs[row];
      const got = trace.rows[row], ref = base.rows[row];
      assertEquals(got.tokens.length, T);
      if (row === 2 || log.restarts.length === 0) {
        assertEquals(got.tokens, ref.tokens); // untouched rows are unaffected by the others' rewinds
        continue;
      }
      const d = log.restarts[0];
      assertEquals(d.r, d.event.onset - 3);
      // The first crisis is the baseline's first crisis, found on identical cosims.
      const solo = new CosimMonitor({ nonFinite: "low" });
      let firstEvent = null;
      for (let t = 1; t < T && !firstEvent; t++) firstEvent = solo.push(ref.cosims[t], t);
      assertEquals(firstEvent!.onset, d.event.onset);
      assertEquals(got.tokens.slice(0, d.r), ref.tokens.slice(0, d.r));
      assertEquals(got.rewinds[0].to, d.r);
      assertEquals(got.rewinds[0].seed, seeds[row] + 10000);
      assertEquals(got.seed, seeds[row] + 10000);
      // Monitor: the state after the restart equals a fresh monitor fed the baseline's cosim(1..r),
      // and what follows r in the final sequence comes from the regenerated continuation.
      const replay = new CosimMonitor({ nonFinite: "low" });
      for (let t = 1; t <= d.r; t++) replay.push(ref.cosims[t], t);
      const check = new CosimMonitor({ nonFinite: "low" });
      for (let t = 1; t < T; t++) check.push(got.cosims[t], t);
      assertEquals(controller.monitors[row].events.map((e) => e.onset), check.events.map((e) => e.onset));
      for (let t = 1; t <= d.r; t++) assertAlmostEqualsLoose(got.cosims[t], ref.cosims[t]);
      const snap = restored.get(row)!;
      assertEquals(snap.lastStep, d.r);
      assertEquals(snap.pending.length, replay.snapshot().pending.length);
      assertEquals(snap.inCrisis, replay.snapshot().inCrisis);
      snap.window.forEach((v, i) => assertAlmostEqualsLoose(v, replay.snapshot().window[i]));
    }
    assert(kvChecks.length >= 1, "no row restarted: pick other seeds");
    assertEquals(trace.rows[2].rewinds.length, 0);
  } finally {
    model.dispose();
  }
});

function assertAlmostEqualsLoose(a: number, b: number): void {
  assert(Math.abs(a - b) <= 1e-6, `cosim ${a} vs ${b}`);
}
