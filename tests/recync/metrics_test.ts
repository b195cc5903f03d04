import { assert, assertAlmostEquals, assertJsonEquals as assertEquals, assertThrows } from "../assert.ts";
import {
  armMetrics,
  computeUnitMetrics,
  crisisExtents,
  type RecyncArmTrace,
  textMetrics,
} from "../../lib/recync/metrics.ts";
import { CosimMonitor } from "../../lib/recync/monitor.ts";

/** Builds an arm trace by running the real monitor over a cosim series (index 0 = null). */
function armFrom(series: number[], tokens?: number[]): RecyncArmTrace {
  const m = new CosimMonitor();
  const T = series.length + 1;
  for (const v of series) m.push(v);
  const cosim: (number | null)[] = [null, ...series];
  const thr: (number | null)[] = [null, ...m.trace.map((r) => r.thr)];
  return {
    tokens: tokens ?? Array.from({ length: T }, (_, i) => i),
    cosim,
    thr,
    low: [false, ...m.trace.map((r) => r.low)],
    inCrisis: [false, ...m.trace.map((r) => r.inCrisis)],
    events: m.events.map((e) => ({ onset: e.onset, confirmedAt: e.confirmedAt })),
  };
}

const flat = (n: number) => Array.from({ length: n }, (_, i) => 0.9 + (i % 2 ? 0.01 : -0.01));

Deno.test("crisis extents run from onset to the re-arming step", () => {
  // Steps 1..20 warm-up, dip at 21..25 (5 lows), recovery at 26.
  const s = [...flat(20), 0.5, 0.5, 0.5, 0.5, 0.5, 0.9, ...flat(4)];
  const arm = armFrom(s);
  assertEquals(arm.events, [{ onset: 21, confirmedAt: 23 }]);
  assertEquals(crisisExtents(arm), [[21, 26]]);
  const m = armMetrics(arm, 18, arm.tokens.length);
  // Segment [18, 31): 13 steps, 5 in crisis.
  assertAlmostEquals(m.crisisFraction, 5 / 13, 1e-12);
  assertEquals(m.crisisCount, 1);
  assert(m.shortfall > 0);
});

Deno.test("unit metrics: improvement, crisis-free and iatrogenic flags by hand", () => {
  const base = armFrom([...flat(20), 0.5, 0.5, 0.5, 0.5, 0.9, ...flat(5)]);
  // Intervention: shared prefix up to r = 18, then no dip.
  const good = armFrom([...flat(20), 0.9, 0.91, 0.89, 0.9, 0.9, ...flat(5)]);
  const r = base.events[0].onset - 3;
  assertEquals(r, 18);
  const m = computeUnitMetrics(base, good, r);
  assertEquals(m.from, 18);
  assertAlmostEquals(m.delta.crisisFraction, 4 / 13, 1e-12);
  assertEquals(m.delta.crisisCount, 1);
  assert(m.delta.shortfall > 0 && m.delta.meanCosim > 0);
  assertEquals(m.crisisFree, true);
  assertEquals(m.iatrogenic.strictWorse, false);
  // Swapping the arms makes it harmful by every definition except newCrisis (baseline then has none).
  const worse = computeUnitMetrics(good, base, r);
  assertEquals(worse.iatrogenic.strictWorse, true);
  assertEquals(worse.iatrogenic.worseBy, true);
  assertEquals(worse.iatrogenic.newCrisis, true);
  assertEquals(worse.crisisFree, false);
  // A crisis one step longer in the intervention: Δ = −1/13 ≈ −0.077 is worse by more than δ = 0.05
  // but not by more than δ = 0.1.
  const slightly = armFrom([...flat(20), 0.5, 0.5, 0.5, 0.5, 0.5, 0.9, ...flat(4)]);
  const s = computeUnitMetrics(base, slightly, r);
  assertAlmostEquals(s.delta.crisisFraction, -1 / 13, 1e-12);
  assertEquals(s.iatrogenic.strictWorse, true);
  assertEquals(s.iatrogenic.worseBy, true);
  assertEquals(computeUnitMetrics(base, slightly, r, { worseByDelta: 0.1 }).iatrogenic.worseBy, false);
});

Deno.test("whole-sequence segment and bad input", () => {
  const base = armFrom([...flat(20), 0.5, 0.5, 0.5, 0.9, ...flat(6)]);
  const m = computeUnitMetrics(base, base, 18, { segment: "whole" });
  assertEquals(m.from, 1);
  assertEquals(m.delta.crisisFraction, 0);
  assertThrows(() => computeUnitMetrics(base, armFrom(flat(10)), 18), RangeError, "same T");
  assertThrows(() => computeUnitMetrics(base, base, 99), RangeError, "outside");
});

Deno.test("text metrics: distinct-n and trigram repetition by hand", () => {
  const m = textMetrics([1, 2, 3, 1, 2, 3, 1, 2, 3], 0, 9);
  assertAlmostEquals(m.distinct1, 3 / 9, 1e-15);
  assertAlmostEquals(m.distinct2, 3 / 8, 1e-15);
  assertAlmostEquals(m.distinct3, 3 / 7, 1e-15);
  assertAlmostEquals(m.repetitionRate, 4 / 7, 1e-15);
  // History before the segment counts: the segment [6, 9) repeats trigrams seen earlier.
  assertAlmostEquals(textMetrics([1, 2, 3, 1, 2, 3, 1, 2, 3], 6, 9).repetitionRate, 1, 1e-15);
  assertEquals(textMetrics([1, 2, 3, 4, 5], 0, 5).repetitionRate, 0);
});
