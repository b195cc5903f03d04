import { assertAlmostEquals, assertJsonEquals as assertEquals, assertThrows } from "../assert.ts";
import { learningRate, validateSchedule } from "../../lib/train/schedule.ts";

Deno.test("constant schedule: flat, with optional warm-up", () => {
  assertEquals(learningRate({ kind: "constant", lr: 3e-4 }, 0), 3e-4);
  assertEquals(learningRate({ kind: "constant", lr: 3e-4 }, 10_000), 3e-4);
  const w = { kind: "constant", lr: 1, warmupSteps: 4 } as const;
  assertEquals([0, 1, 2, 3, 4, 5].map((s) => learningRate(w, s)), [0, 0.25, 0.5, 0.75, 1, 1]);
});

Deno.test("cosine schedule: warm-up, mid-point, end and floor", () => {
  const s = { kind: "cosine", lr: 6e-4, minLr: 6e-5, warmupSteps: 100, decaySteps: 1100 } as const;
  assertEquals(learningRate(s, 0), 0); // the first update runs at lr 0, as in nanoGPT
  assertAlmostEquals(learningRate(s, 50), 3e-4, 1e-15);
  assertAlmostEquals(learningRate(s, 100), 6e-4, 1e-15);
  assertAlmostEquals(learningRate(s, 600), (6e-4 + 6e-5) / 2, 1e-15);
  // a quarter of the way: minLr + (lr - minLr) * (1 + cos(pi/4)) / 2
  assertAlmostEquals(learningRate(s, 350), 6e-5 + 5.4e-4 * (1 + Math.SQRT1_2) / 2, 1e-15);
  assertAlmostEquals(learningRate(s, 1100), 6e-5, 1e-15);
  assertEquals(learningRate(s, 5000), 6e-5);
  for (let i = 101; i < 1100; i++) {
    if (learningRate(s, i) > learningRate(s, i - 1)) throw new Error(`cosine rose at step ${i}`);
  }
});

Deno.test("linear schedule: straight line to the floor", () => {
  const s = { kind: "linear", lr: 1, minLr: 0, decaySteps: 10 } as const;
  assertEquals(learningRate(s, 0), 1);
  assertAlmostEquals(learningRate(s, 5), 0.5, 1e-15);
  assertEquals(learningRate(s, 10), 0);
  assertEquals(learningRate(s, 20), 0);
  const w = { kind: "linear", lr: 1, minLr: 0.1, warmupSteps: 2, decaySteps: 12 } as const;
  assertEquals(learningRate(w, 1), 0.5);
  assertAlmostEquals(learningRate(w, 7), 0.55, 1e-15);
});

Deno.test("schedule validation names the field", () => {
  assertThrows(
    () => validateSchedule({ kind: "cosine", lr: 1, minLr: 0, warmupSteps: 10, decaySteps: 5 }),
    Error,
    "decaySteps",
  );
  assertThrows(() => validateSchedule({ kind: "nope" } as never), Error, "constant, cosine, linear");
  assertThrows(() => validateSchedule({ kind: "constant", lr: -1 }), Error, "schedule.lr");
  assertThrows(() => learningRate({ kind: "constant", lr: 1 }, -1), RangeError);
});
