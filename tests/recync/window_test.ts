import { assertAlmostEquals, assertEquals, assertThrows } from "../assert.ts";
import { computeUnitMetrics, outcomeWindowStart, type RecyncArmTrace } from "../../lib/recync/metrics.ts";

/** An arm of length 20 whose crises cover the given [start, end) extents (events confirmed at start+2). */
function arm(extents: [number, number][]): RecyncArmTrace {
  const T = 20;
  const inCrisis = Array(T).fill(false);
  for (const [a, b] of extents) for (let t = a; t < b; t++) inCrisis[t] = true;
  return {
    tokens: Array.from({ length: T }, (_, i) => i),
    cosim: [null, ...Array(T - 1).fill(0.9)],
    thr: Array(T).fill(null),
    low: Array(T).fill(false),
    inCrisis,
    events: extents.map(([a]) => ({ onset: a, confirmedAt: a + 2 })),
  };
}

Deno.test("outcome windows on a hand-made trace", () => {
  const baseline = arm([[8, 12]]); // onset 8, confirmed 10, crisis ends before 12; r = 5
  assertEquals(outcomeWindowStart("from-rewind", 5, baseline), 5);
  assertEquals(outcomeWindowStart("after-confirm", 5, baseline), 11);
  assertEquals(outcomeWindowStart("after-crisis", 5, baseline), 12);
  // A later rewind point wins; no baseline crisis: r.
  assertEquals(outcomeWindowStart("after-confirm", 15, baseline), 15);
  assertEquals(outcomeWindowStart("after-crisis", 7, arm([])), 7);
  const intervention = arm([[14, 17]]);
  // from-rewind [5, 20): baseline 4/15, intervention 3/15.
  const a = computeUnitMetrics(baseline, intervention, 5);
  assertEquals([a.from, a.window], [5, "from-rewind"]);
  assertAlmostEquals(a.delta.crisisFraction, 1 / 15, 1e-12);
  // after-confirm [11, 20): baseline 1/9, intervention 3/9, the same window for both arms.
  const b = computeUnitMetrics(baseline, intervention, 5, { window: "after-confirm" });
  assertEquals([b.from, b.window], [11, "after-confirm"]);
  assertAlmostEquals(b.baseline.crisisFraction, 1 / 9, 1e-12);
  assertAlmostEquals(b.intervention.crisisFraction, 3 / 9, 1e-12);
  assertEquals(b.iatrogenic.strictWorse, true);
  // after-crisis [12, 20): baseline 0/8, intervention 3/8; the triggering crisis no longer counts.
  const c = computeUnitMetrics(baseline, intervention, 5, { window: "after-crisis" });
  assertEquals([c.from, c.baseline.crisisFraction, c.baseline.crisisCount], [12, 0, 0]);
  assertAlmostEquals(c.delta.crisisFraction, -3 / 8, 1e-12);
  assertEquals(c.iatrogenic.newCrisis, true);
  // A window that starts at T has no outcome.
  assertThrows(() => computeUnitMetrics(arm([[15, 20]]), intervention, 10, { window: "after-crisis" }));
});
