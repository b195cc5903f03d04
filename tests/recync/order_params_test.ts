import assert from "node:assert/strict";
import { tf } from "../../lib/deps.ts";
import {
  attentionSynchrony,
  FISHER_CLIP,
  gatherLaggedKeys,
  headAlignment,
  keyPersistence,
  newestQueryPattern,
  normalizedAttentionEntropy,
  residualUpdates,
  RunningMeanDirection,
  semanticCoherence,
  stackOrderParameters,
} from "../../lib/recync/order_params.ts";
import { Prng } from "../../lib/random/prng.ts";

await tf.setBackend("cpu");

const closeArr = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5, what = "") => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i] - b[i]) <= tol, `${what}[${i}]: ${Array.from(a)} vs ${Array.from(b)}`);
  }
};

// ---- pure-JS references -----------------------------------------------------------------------
const cos = (a: number[], b: number[]) => {
  let ab = 0, aa = 0, bb = 0;
  a.forEach((x, i) => {
    ab += x * b[i];
    aa += x * x;
    bb += b[i] * b[i];
  });
  return ab / Math.max(Math.sqrt(aa) * Math.sqrt(bb), 1e-8);
};
const refLambda = (rows: number[][], nValid: number) => {
  const H = rows.map((r) => {
    const e = -r.reduce((s, a) => s + (a > 0 ? a * Math.log(a) : 0), 0);
    return nValid > 1 ? e / Math.log(nValid) : 0;
  });
  let A = 1;
  if (rows.length > 1) {
    let s = 0, n = 0;
    for (let i = 0; i < rows.length; i++) {
      for (let j = i + 1; j < rows.length; j++) {
        s += cos(rows[i], rows[j]);
        n++;
      }
    }
    A = s / n;
  }
  return 0.5 * (1 - H.reduce((s, v) => s + v, 0) / H.length + A);
};
const pearson = (x: number[], y: number[]) => {
  const mx = x.reduce((s, v) => s + v, 0) / x.length, my = y.reduce((s, v) => s + v, 0) / y.length;
  return cos(x.map((v) => v - mx), y.map((v) => v - my));
};

/** Random softmax rows with some masked (zero) columns, like a padded cache. */
function randomPattern(rng: Prng, b: number, h: number, l: number, validPerRow: number[]) {
  const rows: number[][][] = [];
  for (let r = 0; r < b; r++) {
    const heads: number[][] = [];
    for (let k = 0; k < h; k++) {
      const logits = Array.from(
        { length: l },
        (_, c) => (c < l - validPerRow[r] ? -Infinity : 2 * rng.nextNormal()),
      );
      const mx = Math.max(...logits);
      const ex = logits.map((v) => (v === -Infinity ? 0 : Math.exp(v - mx)));
      const s = ex.reduce((a, v) => a + v, 0);
      heads.push(ex.map((v) => v / s));
    }
    rows.push(heads);
  }
  return rows;
}

Deno.test("order params: λ matches the JS reference on random padded patterns (with and without a mask)", () => {
  const rng = new Prng(9);
  const valid = [5, 3, 1];
  const rows = randomPattern(rng, 3, 4, 5, valid);
  const before = tf.memory().numTensors;
  const pattern = tf.tensor3d(rows);
  const mask = tf.tensor2d(valid.map((n) => Array.from({ length: 5 }, (_, c) => (c >= 5 - n ? 1 : 0))));
  const expected = rows.map((r, i) => refLambda(r, valid[i]));
  const withMask = attentionSynchrony(pattern, mask);
  const inferred = attentionSynchrony(pattern);
  closeArr(withMask.dataSync(), expected, 1e-5, "λ masked");
  closeArr(inferred.dataSync(), expected, 1e-5, "λ inferred");
  // A single valid key: entropy 0 and identical heads → λ = 1.
  assert.ok(Math.abs(withMask.dataSync()[2] - 1) < 1e-6);
  tf.dispose([pattern, mask, withMask, inferred]);
  assert.equal(tf.memory().numTensors, before, "no leaked tensors");
});

Deno.test("order params: hand-made λ cases (uniform, locked, orthogonal heads)", () => {
  const p = tf.tensor3d([
    [[0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25]], // max entropy, aligned: ½(0 + 1)
    [[1, 0, 0, 0], [0, 1, 0, 0]], // zero entropy, orthogonal: ½(1 + 0)
    [[1, 0, 0, 0], [1, 0, 0, 0]], // locked: 1
  ]);
  const valid = tf.ones([3, 4]) as tf.Tensor2D;
  closeArr(attentionSynchrony(p, valid).dataSync(), [0.5, 0.5, 1]);
  closeArr(normalizedAttentionEntropy(p, valid).dataSync(), [1, 1, 0, 0, 0, 0]);
  closeArr(headAlignment(p).dataSync(), [1, 0, 1]);
  closeArr(headAlignment(tf.tensor3d([[[0.3, 0.7]]])).dataSync(), [1], 0, "single head");
  const hook = tf.tensor4d([[[[1, 0], [0.5, 0.5]]]]); // B=1, H=1, T=2, L=2
  closeArr(newestQueryPattern(hook).dataSync(), [0.5, 0.5]);
  assert.throws(() => attentionSynchrony(tf.zeros([2, 2]) as unknown as tf.Tensor3D), /pattern \[B, H, L\]/);
  assert.throws(() => attentionSynchrony(p, tf.ones([3, 5]) as tf.Tensor2D), /valid must be \[3, 4\]/);
});

Deno.test("order params: λ_sem from residual updates matches the JS reference", () => {
  const rng = new Prng(4);
  const B = 2, L = 3, d = 6;
  const xs = Array.from(
    { length: L + 1 },
    () => Array.from({ length: B }, () => Array.from({ length: d }, () => rng.nextNormal())),
  );
  const g = Array.from({ length: B }, () => Array.from({ length: d }, () => rng.nextNormal()));
  const expected = Array.from({ length: B }, (_, b) => {
    let s = 0;
    for (let l = 0; l < L; l++) s += cos(xs[l + 1][b].map((v, i) => v - xs[l][b][i]), g[b]);
    return s / L;
  });
  const upd = residualUpdates(xs.map((x) => tf.tensor2d(x)));
  assert.deepEqual(upd.shape, [B, L, d]);
  closeArr(semanticCoherence(upd, tf.tensor2d(g)).dataSync(), expected);
  // A zero update (a layer that changes nothing) contributes cosine 0, not NaN.
  const zero = semanticCoherence(tf.tensor3d([[[0, 0], [1, 0]]]), tf.tensor2d([[1, 0]]));
  closeArr(zero.dataSync(), [0.5]);
  assert.throws(() => residualUpdates([tf.zeros([1, 2]) as tf.Tensor2D]), /at least two/);
});

Deno.test("order params: running mean direction (prompt seeding, row masks, snapshot/restore, no leaks)", () => {
  const before = tf.memory().numTensors;
  const g = new RunningMeanDirection();
  const prompt = tf.tensor3d([[[1, 0], [3, 0]], [[0, 0], [0, 4]]]);
  g.addMany(prompt, [[1, 1], [0, 1]]); // row 1's first position is padding
  prompt.dispose();
  assert.deepEqual(g.counts, [2, 1]);
  const snap = g.snapshot();
  const step = tf.tensor2d([[2, 0], [0, 100]]);
  g.add(step, [1, 0]); // row 1 finished: not added
  step.dispose();
  const m1 = g.mean();
  closeArr(m1.dataSync(), [2, 0, 0, 4]);
  g.restore(snap);
  const m2 = g.mean();
  closeArr(m2.dataSync(), [2, 0, 0, 4]);
  assert.deepEqual(g.counts, [2, 1]);
  tf.dispose([m1, m2, snap.sum!]);
  g.dispose();
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("order params: z from lagged keys matches the JS reference; clip and availability", () => {
  const rng = new Prng(21);
  const B = 2, H = 3, L = 5, hd = 4;
  const keys = Array.from(
    { length: B },
    () =>
      Array.from(
        { length: H },
        () => Array.from({ length: L }, () => Array.from({ length: hd }, () => rng.nextNormal())),
      ),
  );
  // Row 0: all valid → newest col 4, previous col 3. Row 1: cols 1 and 3 valid only → newest 3, previous 1.
  const validity = [Uint8Array.from([1, 1, 1, 1, 1]), Uint8Array.from([0, 1, 0, 1, 0])];
  const pick = [[4, 3], [3, 1]];
  const expected = pick.map(([n, p], b) => {
    const rho = keys[b].reduce((s, head) => s + pearson(head[n], head[p]), 0) / H;
    return Math.atanh(Math.max(-FISHER_CLIP, Math.min(FISHER_CLIP, rho)));
  });
  const kt = tf.tensor4d(keys);
  const { newest, previous, available } = gatherLaggedKeys(kt, validity);
  assert.deepEqual(available, [true, true]);
  closeArr(newest.dataSync(), pick.flatMap(([n], b) => keys[b].flatMap((head) => head[n])));
  closeArr(keyPersistence(newest, previous, available).dataSync(), expected, 1e-4);
  // Identical keys clip to atanh(0.999); a row with one valid key is unavailable → 0.
  const lone = gatherLaggedKeys(kt, [validity[0], Uint8Array.from([0, 0, 1, 0, 0])]);
  assert.deepEqual(lone.available, [true, false]);
  const z = keyPersistence(lone.newest, lone.previous, lone.available).dataSync();
  assert.equal(z[1], 0);
  closeArr(keyPersistence(lone.newest, lone.newest).dataSync(), [Math.atanh(0.999), Math.atanh(0.999)], 1e-3);
  assert.throws(() => gatherLaggedKeys(kt, [validity[0]]), /validity has 1 rows/);
  assert.throws(() => gatherLaggedKeys(kt, [validity[0], new Uint8Array(5)]), /row 1 has no valid key/);
});

Deno.test("order params: stacking Z", () => {
  const z = stackOrderParameters(tf.tensor1d([0.1, 0.2]), tf.tensor1d([0.3, 0.4]), tf.tensor1d([0.5, 0.6]));
  assert.deepEqual(z.shape, [2, 3]);
  closeArr(z.dataSync(), [0.1, 0.3, 0.5, 0.2, 0.4, 0.6]);
});

Deno.test("order params: the generation probe on a real decoder matches references from the captured activations", async () => {
  const { createDecoder, gpt2SmallConfig } = await import("../../lib/models/scratch.ts");
  const { OrderParameterProbe } = await import("../../lib/recync/order_params.ts");
  const model = createDecoder(
    gpt2SmallConfig({
      nLayers: 2,
      dModel: 32,
      nHeads: 4,
      headDim: 8,
      dMlp: 64,
      vocabSize: 50,
      maxPositions: 32,
    }),
    { seed: 7 },
  );
  const before = tf.memory().numTensors;
  const probe = new OrderParameterProbe({ nLayers: 2 });
  const cache = model.createCache(2);
  // Row 1 is left-padded by two positions.
  const ids = tf.tensor2d([[3, 4, 5, 6, 7], [0, 0, 8, 9, 10]], [2, 5], "int32");
  const mask = tf.tensor2d([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]]);
  const res = model.forward(ids, { cache, capture: probe.capture, attentionMask: mask });
  const acts = res.activations!;
  const z0 = tf.tidy(() => probe.compute({ step: 0, isPrefill: true, activations: acts, batchSize: 2 }));
  const got0 = z0.arraySync();

  // References from the captured activations.
  const pat = (acts.get("blocks.1.attn.hook_pattern") as tf.Tensor4D).arraySync(); // [B, H, T, L]
  const validN = [5, 3];
  const lam0 = [0, 1].map((b) => refLambda(pat[b].map((h) => h[4]), validN[b]));
  const fin = (acts.get("ln_final.hook_normalized") as tf.Tensor3D).arraySync();
  const g0 = [0, 1].map((b) => {
    const rows = fin[b].filter((_, t) => t >= 5 - validN[b]);
    return rows[0].map((_, i) => rows.reduce((s, r) => s + r[i], 0) / rows.length);
  });
  const stream = (name: string, b: number, t: number) => (acts.get(name) as tf.Tensor3D).arraySync()[b][t];
  const semRef = (b: number, t: number, g: number[]) => {
    const xs = [
      stream("blocks.0.hook_resid_pre", b, t),
      stream("blocks.1.hook_resid_pre", b, t),
      stream("blocks.1.hook_resid_post", b, t),
    ];
    return (cos(xs[1].map((v, i) => v - xs[0][i]), g) + cos(xs[2].map((v, i) => v - xs[1][i]), g)) / 2;
  };
  closeArr(got0.map((r) => r[0]), lam0, 1e-5, "λ prefill");
  closeArr(got0.map((r) => r[1]), [semRef(0, 4, g0[0]), semRef(1, 4, g0[1])], 1e-5, "λ_sem prefill");
  closeArr(got0.map((r) => r[2]), [0, 0], 0, "z prefill");
  tf.dispose([ids, mask, res.logits, res.hidden, res.residual, z0, ...acts.values()]);

  // One decode step: the cache (via the policy) supplies key validity and the keys for z.
  probe.cachePolicy.onStep(null, { cache });
  const next = tf.tensor2d([[11], [12]], [2, 1], "int32");
  const res1 = model.forward(next, { cache, capture: probe.capture });
  const acts1 = res1.activations!;
  const z1 = tf.tidy(() => probe.compute({ step: 1, isPrefill: false, activations: acts1, batchSize: 2 }));
  const got1 = z1.arraySync();
  const pat1 = (acts1.get("blocks.1.attn.hook_pattern") as tf.Tensor4D).arraySync();
  closeArr(
    got1.map((r) => r[0]),
    [0, 1].map((b) => refLambda(pat1[b].map((h) => h[0]), validN[b] + 1)),
    1e-5,
    "λ step 1",
  );
  const fin1 = (acts1.get("ln_final.hook_normalized") as tf.Tensor3D).arraySync();
  const g1 = [0, 1].map((b) => g0[b].map((v, i) => (v * validN[b] + fin1[b][0][i]) / (validN[b] + 1)));
  const stream1 = (name: string, b: number) => (acts1.get(name) as tf.Tensor3D).arraySync()[b][0];
  const sem1 = [0, 1].map((b) => {
    const xs = [
      stream1("blocks.0.hook_resid_pre", b),
      stream1("blocks.1.hook_resid_pre", b),
      stream1("blocks.1.hook_resid_post", b),
    ];
    return (cos(xs[1].map((v, i) => v - xs[0][i]), g1[b]) + cos(xs[2].map((v, i) => v - xs[1][i]), g1[b])) /
      2;
  });
  closeArr(got1.map((r) => r[1]), sem1, 1e-5, "λ_sem step 1");
  const keys = cache.past(1)!.k.arraySync(); // [B, H, L, hd]
  const validity = cache.validity();
  const zRef = [0, 1].map((b) => {
    const cols = [...validity[b].keys()].filter((c) => validity[b][c]);
    const [n, p] = [cols[cols.length - 1], cols[cols.length - 2]];
    const rho = keys[b].reduce((s, head) => s + pearson(head[n], head[p]), 0) / keys[b].length;
    return Math.atanh(Math.max(-FISHER_CLIP, Math.min(FISHER_CLIP, rho)));
  });
  closeArr(got1.map((r) => r[2]), zRef, 1e-4, "z step 1");
  tf.dispose([next, res1.logits, res1.hidden, res1.residual, z1, ...acts1.values()]);
  probe.dispose();
  cache.dispose();
  assert.equal(tf.memory().numTensors, before, "probe and loop leave no tensors behind");
  model.dispose();
});
