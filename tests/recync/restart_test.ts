import { assert, assertEquals, assertThrows } from "../stats/_assert.ts";
import { RecyncRestartController, resolveRestartOptions } from "../../lib/recync/restart.ts";
import { CosimMonitor } from "../../lib/recync/monitor.ts";

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
