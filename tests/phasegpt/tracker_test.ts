import assert from "node:assert/strict";
import { initBackend, tf } from "../../mod.ts";
import { CoherenceTracker } from "../../lib/phasegpt/mod.ts";

Deno.test("CoherenceTracker: records only logging steps, with the original's statistics", async () => {
  await initBackend({ backend: "cpu" });
  const before = tf.memory().numTensors;
  const tracker = new CoherenceTracker({ logInterval: 10 });
  // Per token: N = 4 oscillators at 0, 0, θ, θ → R = |cos(θ/2)|. Token 0: θ = 0 (R 1); token 1: θ = π (R 0).
  const make = (theta: number) => tf.tensor4d([0, 0, 0, 0, 0, 0, theta, theta], [1, 1, 2, 4]);
  const a = make(Math.PI), b = make(Math.PI / 2);
  assert.equal(await tracker.update(a, 3), undefined);
  const r0 = await tracker.update(a, 0); // mean of 1 and 0
  assert.ok(Math.abs(r0! - 0.5) < 1e-6);
  const r1 = await tracker.update(b, 20); // mean of 1 and cos(π/4)
  assert.ok(Math.abs(r1! - (1 + Math.SQRT1_2) / 2) < 1e-6);
  assert.deepEqual(tracker.history.map((h) => h.step), [0, 20]);
  const s = tracker.stats()!;
  const vals = [0.5, (1 + Math.SQRT1_2) / 2];
  const mean = (vals[0] + vals[1]) / 2;
  assert.equal(s.count, 2);
  assert.ok(Math.abs(s.rMean - mean) < 1e-6);
  assert.ok(Math.abs(s.rStd - Math.abs(vals[1] - vals[0]) / 2) < 1e-6); // population std of two values
  assert.ok(Math.abs(s.rMin - vals[0]) < 1e-6 && Math.abs(s.rMax - vals[1]) < 1e-6);
  assert.equal(s.rFinal, s.rMax);
  // Another definition: "layer" pools tokens and oscillators per head.
  const layer = new CoherenceTracker({ logInterval: 1, definition: "layer" });
  const rl = await layer.update(a, 7); // 0,0,0,0,0,0,π,π → |6 - 2| / 8
  assert.ok(Math.abs(rl! - 0.5) < 1e-6);
  tracker.reset();
  assert.equal(tracker.stats(), undefined);
  assert.deepEqual(tracker.history, []);
  a.dispose();
  b.dispose();
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("CoherenceTracker: bad options and steps say what is allowed", async () => {
  assert.throws(() => new CoherenceTracker({ logInterval: 0 }), /logInterval must be a positive integer/);
  assert.throws(() => new CoherenceTracker({ definition: "tokens" as never }), /layer, oscillators/);
  assert.throws(() => new CoherenceTracker({ logInterva: 5 } as never), /logInterval/);
  await assert.rejects(() => new CoherenceTracker().update(tf.zeros([1, 4]), -1), /non-negative integer/);
});
