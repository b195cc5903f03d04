import { assert, assertEquals } from "../assert.ts";
import { Prng } from "../../lib/random/prng.ts";
import {
  shamEligibleRange,
  shamMatchedPoint,
  shamRandomPoint,
  ShamScheduler,
  shamStream,
} from "../../lib/recync/sham.ts";

Deno.test("sham: eligible range follows the monitor and restart settings", () => {
  assertEquals(shamEligibleRange({ T: 100 }), { lo: 18, hi: 94 });
  assertEquals(shamEligibleRange({ T: 60, window: 10, k: 2, rewindOffset: 1 }), { lo: 10, hi: 57 });
  assertEquals(shamEligibleRange({ T: 100, warmup: "partial" }), { lo: 1, hi: 94 });
  assertEquals(shamRandomPoint(new Prng(1), { lo: 5, hi: 4 }), null);
});

Deno.test("sham-random: points are uniform over the eligible range and seeded", () => {
  const range = { lo: 18, hi: 27 };
  const counts = new Array(10).fill(0);
  const rng = new Prng(3);
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const s = shamRandomPoint(rng, range)!;
    assert(s >= 18 && s <= 27, `point ${s} outside range`);
    counts[s - 18]++;
  }
  // Chi-square with 9 degrees of freedom: 99.9 % quantile is 27.9.
  const chi2 = counts.reduce((a, c) => a + (c - n / 10) ** 2 / (n / 10), 0);
  assert(chi2 < 27.9, `chi2 ${chi2}`);
  // Same (seed, prompt, policy) → same point; another prompt → its own stream.
  const a = new ShamScheduler("sham-random", 4, "p1", { T: 100 }).plannedPoint;
  const b = new ShamScheduler("sham-random", 4, "p1", { T: 100 }).plannedPoint;
  assertEquals(a, b);
  assert(shamStream("p1", "sham-random") !== shamStream("p2", "sham-random"));
});

Deno.test("sham-matched: a uniform non-crisis step before onset − offset", () => {
  const inCrisis = Array(60).fill(false);
  inCrisis[20] = inCrisis[21] = true; // flagged steps are never chosen
  const counts = new Map<number, number>();
  const rng = new Prng(9);
  for (let i = 0; i < 6000; i++) {
    const s = shamMatchedPoint(rng, 28, inCrisis, { lo: 18, rewindOffset: 3 })!;
    counts.set(s, (counts.get(s) ?? 0) + 1);
  }
  assertEquals([...counts.keys()].sort((x, y) => x - y), [18, 19, 22, 23, 24]);
  for (const c of counts.values()) assert(Math.abs(c - 1200) < 150, `count ${c}`);
  assertEquals(shamMatchedPoint(new Prng(1), 21, inCrisis, { lo: 18 }), null);
});

Deno.test("sham scheduler: random acts at its point; matched waits for the baseline's confirmation", () => {
  const rnd = new ShamScheduler("sham-random", 1, "p", { T: 100 });
  const s = rnd.plannedPoint!;
  for (let t = 1; t < s; t++) assertEquals(rnd.observe(t, null, []), null);
  assertEquals(rnd.observe(s, null, [])?.r, s);
  assertEquals(rnd.observe(s + 1, null, []), null); // once
  const m = new ShamScheduler("sham-matched", 1, "p", { T: 100 });
  const ev = { onset: 40, confirmedAt: 42 };
  assertEquals(m.observe(30, null, []), null);
  assertEquals(m.observe(41, ev, []), null); // not yet confirmed at t = 41
  const d = m.observe(42, ev, Array(43).fill(false))!;
  assert(d.r >= 18 && d.r < 37 && d.onset === 40, JSON.stringify(d));
});
