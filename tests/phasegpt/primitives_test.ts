/** PhaseGPT primitives: Euler step by hand, the wrap, the mean-field identity, R definitions, regulariser. */
import { assert, assertAlmostEquals, assertEquals, assertThrows, maxDiff } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import {
  addFrequencyJitter,
  addPhaseNoise,
  coherenceRegularizer,
  kuramotoStep,
  orderParameter,
  wrapPhase,
} from "../../lib/phasegpt/mod.ts";
import { couplingField } from "../../lib/phasegpt/primitives.ts";
import { fillUniform, Prng } from "../../lib/random/prng.ts";
import { useBackend } from "../fixtures.ts";

await useBackend("cpu");

const t4 = (v: number[], shape: [number, number, number, number]) => tf.tensor4d(v, shape);
const vals = (t: tf.Tensor) => Array.from(t.dataSync());

/** The literal O(T²·N) step of the original (tests only): D = θ_i − θ_j, mean over j, optional mask. */
function literalStep(
  theta: number[][][][],
  omega: number[][],
  k: number[],
  o: { dt: number; sign: 1 | -1; causal: boolean; prefix: boolean; mask?: number[][] },
): number[][][][] {
  return theta.map((bh, b) =>
    bh.map((ht, h) =>
      ht.map((row, i) =>
        row.map((th, n) => {
          let sum = 0, count = 0;
          for (let j = 0; j < ht.length; j++) {
            if (o.causal && j > i) continue;
            const m = o.mask ? o.mask[b][j] : 1;
            sum += m * Math.sin(th - ht[j][n]);
            count += m;
          }
          const f = o.sign * k[h] * sum / (o.prefix ? Math.max(count, 1) : ht.length);
          const x = th + o.dt * (omega[h][n] + f);
          return x - 2 * Math.PI * Math.floor((x + Math.PI) / (2 * Math.PI));
        })
      )
    )
  );
}

Deno.test("kuramotoStep: two tokens by hand, both signs (spec §2.3 example)", () => {
  const theta = t4([0, Math.PI / 2], [1, 1, 2, 1]);
  const omega = tf.zeros([1, 1]) as tf.Tensor2D, k = tf.ones([1]) as tf.Tensor1D;
  const rep = vals(kuramotoStep(theta, omega, k));
  assertAlmostEquals(rep[0], -0.05, 1e-6);
  assertAlmostEquals(rep[1], Math.PI / 2 + 0.05, 1e-6);
  const att = vals(kuramotoStep(theta, omega, k, { sign: "attractive" }));
  assertAlmostEquals(att[0], 0.05, 1e-6);
  assertAlmostEquals(att[1], 1.5207963, 1e-6);
  tf.dispose([theta, omega, k]);
});

Deno.test("kuramotoStep: three tokens by hand, causal and non-causal, with ω", () => {
  // θ = [0, π/2, π], ω = 0.5, K = 2, dt 0.1.
  const th = [0, Math.PI / 2, Math.PI];
  const theta = t4(th, [1, 1, 3, 1]);
  const omega = tf.fill([1, 1], 0.5) as tf.Tensor2D, k = tf.fill([1], 2) as tf.Tensor1D;
  const s = (a: number, b: number) => Math.sin(a - b);
  // Non-causal, divisor T = 3, repulsive: F_i = K/3 Σ_j sin(θ_i − θ_j).
  const fNc = th.map((a) => (2 / 3) * th.reduce((acc, b) => acc + s(a, b), 0));
  // By hand: F_0 = 2/3·(0 − 1 + 0) = −2/3; F_1 = 2/3·(1 + 0 − 1) = 0; F_2 = 2/3·(0 + 1 + 0) = 2/3.
  assertAlmostEquals(fNc[0], -2 / 3, 1e-12);
  assertAlmostEquals(fNc[1], 0, 1e-12);
  assertAlmostEquals(fNc[2], 2 / 3, 1e-12);
  const wrap = (x: number) => x - 2 * Math.PI * Math.floor((x + Math.PI) / (2 * Math.PI));
  const expectNc = [0 + 0.1 * (0.5 - 2 / 3), Math.PI / 2 + 0.05, wrap(Math.PI + 0.1 * (0.5 + 2 / 3))];
  const got = vals(kuramotoStep(theta, omega, k));
  got.forEach((v, i) => assertAlmostEquals(v, expectNc[i], 1e-6, `non-causal ${i}`));
  // Causal, prefix divisor, attractive: F_i = K/(i+1) Σ_{j≤i} sin(θ_j − θ_i).
  // F_0 = 0; F_1 = 2/2·(sin(−π/2) + 0) = −1; F_2 = 2/3·(sin(−π) + sin(−π/2) + 0) = −2/3.
  const expectC = [0.05, Math.PI / 2 + 0.1 * (0.5 - 1), wrap(Math.PI + 0.1 * (0.5 - 2 / 3))];
  const gotC = vals(kuramotoStep(theta, omega, k, { causal: true, divisor: "prefix", sign: "attractive" }));
  gotC.forEach((v, i) => assertAlmostEquals(v, expectC[i], 1e-6, `causal ${i}`));
  // Causal with divisor T (code-consistent masked semantics): F_1 = 2/3·(−1) … repulsive sign flips.
  const expectCT = [0.05, Math.PI / 2 + 0.1 * (0.5 + 2 / 3), wrap(Math.PI + 0.1 * (0.5 + 2 / 3))];
  const gotCT = vals(kuramotoStep(theta, omega, k, { causal: true }));
  gotCT.forEach((v, i) => assertAlmostEquals(v, expectCT[i], 1e-6, `causal/T ${i}`));
  tf.dispose([theta, omega, k]);
});

Deno.test("wrapPhase: floor-mod onto [−π, π) with identity gradient", () => {
  const x = tf.tensor1d([Math.PI, -Math.PI, 3 * Math.PI + 0.25, -7, 0, 10]);
  const y = vals(wrapPhase(x));
  for (const v of y) assert(v >= -Math.PI - 1e-6 && v < Math.PI, `out of range: ${v}`);
  assertAlmostEquals(y[0], -Math.PI, 1e-6);
  assertAlmostEquals(y[1], -Math.PI, 1e-6);
  assertAlmostEquals(y[2], -Math.PI + 0.25, 1e-5);
  assertAlmostEquals(y[3], -7 + 2 * Math.PI, 1e-6);
  assertAlmostEquals(y[5], 10 - 4 * Math.PI, 1e-5);
  const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(wrapPhase(t), tf.range(1, 7))))(x);
  assertAlmostEquals(maxDiff(vals(g), [1, 2, 3, 4, 5, 6]), 0, 0);
  tf.dispose([x, g]);
});

Deno.test("kuramotoStep: mean-field identity equals the literal O(T²·N) sum (all modes, with mask)", () => {
  const [B, H, T, N] = [2, 3, 7, 4];
  const rng = new Prng(11);
  const data = fillUniform(new Float64Array(B * H * T * N), -Math.PI, Math.PI, rng);
  const om = fillUniform(new Float64Array(H * N), -0.3, 0.3, rng);
  const nested = Array.from(
    { length: B },
    (_, b) =>
      Array.from(
        { length: H },
        (_, h) =>
          Array.from({ length: T }, (_, t) =>
            Array.from({ length: N }, (_, n) => data[((b * H + h) * T + t) * N + n])),
      ),
  );
  const omega = Array.from({ length: H }, (_, h) => Array.from(om.slice(h * N, h * N + N)));
  const k = [0.5, -1, 2];
  const mask = [[1, 1, 0, 1, 1, 1, 0], [0, 0, 1, 1, 1, 1, 1]];
  const theta = tf.tensor4d(Float32Array.from(data), [B, H, T, N]);
  const omegaT = tf.tensor2d(omega), kT = tf.tensor1d(k), maskT = tf.tensor2d(mask);
  for (const sign of ["repulsive", "attractive"] as const) {
    for (const causal of [false, true]) {
      for (const divisor of ["T", "prefix"] as const) {
        for (const useMask of [false, true]) {
          const want = literalStep(nested, omega, k, {
            dt: 0.1,
            sign: sign === "repulsive" ? 1 : -1,
            causal,
            prefix: divisor === "prefix",
            mask: useMask ? mask : undefined,
          }).flat(3);
          const got = kuramotoStep(theta, omegaT, kT, {
            sign,
            causal,
            divisor,
            mask: useMask ? maskT : undefined,
          });
          // Compare on the circle (a value at the ±π seam may land on either side).
          const d = vals(got).map((v, i) => Math.abs(Math.sin((v - want[i]) / 2)));
          assert(Math.max(...d) < 1e-5, `${sign}/${causal}/${divisor}/${useMask}: ${Math.max(...d)}`);
          got.dispose();
        }
      }
    }
  }
  tf.dispose([theta, omegaT, kT, maskT]);
});

Deno.test("kuramotoStep: bad options name the allowed values", () => {
  const theta = tf.zeros([1, 1, 2, 1]) as tf.Tensor4D;
  const omega = tf.zeros([1, 1]) as tf.Tensor2D, k = tf.ones([1]) as tf.Tensor1D;
  assertThrows(() => kuramotoStep(theta, omega, k, { sign: "attracting" as never }), Error, "attractive");
  assertThrows(() => kuramotoStep(theta, omega, k, { divisor: "N" as never }), Error, "use one of T, prefix");
  assertThrows(() => kuramotoStep(theta, omega, k, { dt: 0 }), Error, "dt must be a positive number");
  assertThrows(() => kuramotoStep(theta, omega, k, { casual: true } as never), Error, "did you mean causal");
  assertThrows(() => kuramotoStep(theta, tf.zeros([2, 1]) as tf.Tensor2D, k), Error, "omega must be [H, N]");
  tf.dispose([theta, omega, k]);
});

Deno.test("orderParameter: each definition on hand-made phases", () => {
  // [1, 2, 2, 2]: head 0 all zeros; head 1 token 0 = [0, π] (R 0), token 1 = [π/2, π/2] (R 1).
  const p = t4([0, 0, 0, 0, 0, Math.PI, Math.PI / 2, Math.PI / 2], [1, 2, 2, 2]);
  // layer: per [B, H] over (T, N): head 0 → 1; head 1 → |(1 − 1 + i + i)/4| = 0.5.
  const layer = vals(orderParameter(p, "layer"));
  assertAlmostEquals(layer[0], 1, 1e-6);
  assertAlmostEquals(layer[1], 0.5, 1e-6);
  // oscillators: [B, H, T] over N.
  const osc = vals(orderParameter(p, "oscillators"));
  [1, 1, 0, 1].forEach((v, i) => assertAlmostEquals(osc[i], v, 1e-6, `osc ${i}`));
  // heads-mean: φ = mean over heads of the angles: token 0 → [0, π/2] → R = |1 + i|/2 = √2/2;
  // token 1 → [π/4, π/4] → R = 1.
  const hm = vals(orderParameter(p, "heads-mean"));
  assertAlmostEquals(hm[0], Math.SQRT1_2, 1e-6);
  assertAlmostEquals(hm[1], 1, 1e-6);
  // circular-heads: circular mean of {0, 0} = 0 and of {0, π} … use a clearer case below.
  const q = t4([0.2, -3.0, 0.2, 3.0], [1, 2, 1, 2]); // oscillator 1: heads at −3 and 3 (both near π)
  // Arithmetic mean of −3 and 3 is 0; the circular mean is π: so oscillators {0.2, 0} vs {0.2, π}.
  const arith = vals(orderParameter(q, "heads-mean"))[0];
  const circ = vals(orderParameter(q, "circular-heads"))[0];
  assertAlmostEquals(arith, Math.abs(Math.cos(0.1)), 1e-6); // |e^{0.2i} + 1|/2 = cos 0.1
  assertAlmostEquals(circ, Math.abs(Math.sin(0.1)), 1e-5); // |e^{0.2i} − 1|/2 = sin 0.1
  assertThrows(() => orderParameter(p, "token" as never), Error, "use one of layer, oscillators");
  assertThrows(() => orderParameter(tf.zeros([3, 4]), "layer"), Error, "[B, H, T, N]");
  tf.dispose([p, q]);
});

Deno.test("orderParameter: finite zero gradient at R = 0, finite elsewhere", () => {
  // 0, 0, π, −π: the cosines cancel exactly (float32 cos π = −1) and so do the sines (sin −x = −sin x), so
  // R is exactly 0, where √ has an infinite derivative; a plain tf.sqrt gives NaN gradients here.
  const half = tf.tensor2d([[0, 0, Math.PI, -Math.PI]]);
  assertEquals(vals(orderParameter(half, "oscillators")), [0]);
  const g = tf.grad((x: tf.Tensor) => tf.sum(orderParameter(x, "oscillators")))(half);
  assert(vals(g).every((v) => v === 0), `grad ${vals(g)}`); // 0 (or −0), not NaN
  const r = tf.randomUniform([2, 3, 5, 4], -3, 3, "float32", 1);
  for (const d of ["layer", "oscillators", "heads-mean", "circular-heads"] as const) {
    const gg = tf.grad((x: tf.Tensor) => tf.sum(orderParameter(x, d)))(r);
    assert(vals(gg).every(Number.isFinite), d);
    gg.dispose();
  }
  tf.dispose([half, g, r]);
});

Deno.test("coherenceRegularizer: values of the three modes and a gradient into the phases", () => {
  const z = tf.zeros([10, 32]);
  assertAlmostEquals(vals(coherenceRegularizer(z))[0], 0.03025, 1e-7);
  assertAlmostEquals(vals(coherenceRegularizer(z, { mode: "center" }))[0], 0.03025, 1e-7);
  assertAlmostEquals(vals(coherenceRegularizer(z, { mode: "band" }))[0], 0.02025, 1e-7);
  assert(
    vals(coherenceRegularizer(z, { lambda: 0.1 }))[0] > vals(coherenceRegularizer(z, { lambda: 0.01 }))[0],
  );
  // Half 0 / half π: R̄ = 0 → ceiling 0, center λ·0.45², band λ·0.35².
  const h = tf.concat([tf.zeros([1, 16]), tf.fill([1, 16], Math.PI)], 1);
  assertAlmostEquals(vals(coherenceRegularizer(h))[0], 0, 1e-7);
  assertAlmostEquals(vals(coherenceRegularizer(h, { mode: "center" }))[0], 0.1 * 0.45 ** 2, 1e-6);
  assertAlmostEquals(vals(coherenceRegularizer(h, { mode: "band" }))[0], 0.1 * 0.35 ** 2, 1e-6);
  // Nearly synchronised phases: R̄ ≈ 0.99 → a non-zero gradient that pushes R̄ down.
  const near = tf.randomUniform([4, 32], 0, 0.5, "float32", 3);
  const g = tf.grad((x: tf.Tensor) => coherenceRegularizer(x))(near);
  const norm = Math.hypot(...vals(g));
  assert(norm > 1e-4 && Number.isFinite(norm), `gradient norm ${norm}`);
  assertThrows(
    () => coherenceRegularizer(z, { mode: "floor" as never }),
    Error,
    "use one of ceiling, center, band",
  );
  tf.dispose([z, h, near, g]);
});

Deno.test("addPhaseNoise / addFrequencyJitter: seeded, shape-preserving, zero is identity", () => {
  for (const shape of [[10, 32], [5, 12, 64, 32], [2, 3, 4, 5, 16]]) {
    const z = tf.zeros(shape);
    const n = addPhaseNoise(z, 0.3, 1);
    assert(n.shape.join() === shape.join());
    n.dispose();
    z.dispose();
  }
  const z = tf.zeros([10, 32]);
  assert(vals(tf.mean(orderParameter(addPhaseNoise(z, 0.3, new Prng(5)))))[0] < 1);
  assertAlmostEquals(maxDiff(vals(addPhaseNoise(z, 0, 5)), vals(z)), 0, 0);
  const w = addFrequencyJitter(tf.ones([32]), 0.1, 9);
  const m = tf.moments(w);
  assert(vals(m.variance)[0] > 0 && vals(m.mean)[0] !== 1);
  assertAlmostEquals(
    maxDiff(vals(addFrequencyJitter(tf.ones([12, 64]), 0, 1)), vals(tf.ones([12, 64]))),
    0,
    0,
  );
  assertThrows(() => addPhaseNoise(z, -1), Error, "sigma must be a non-negative number");
  tf.dispose([z, w, m.mean, m.variance]);
});

Deno.test("primitives leak no tensors", () => {
  const theta = tf.randomUniform([2, 2, 6, 3], -3, 3, "float32", 2) as tf.Tensor4D;
  const omega = tf.zeros([2, 3]) as tf.Tensor2D, k = tf.ones([2]) as tf.Tensor1D;
  const before = tf.memory().numTensors;
  const outs = [
    kuramotoStep(theta, omega, k, { causal: true, divisor: "prefix" }),
    wrapPhase(theta),
    orderParameter(theta, "layer"),
    orderParameter(theta, "circular-heads"),
    coherenceRegularizer(theta, { mode: "band" }),
    addPhaseNoise(theta, 0.1, 1),
    addFrequencyJitter(omega, 0.1, 1),
  ];
  const g = tf.grad((x: tf.Tensor) => coherenceRegularizer(x))(theta);
  outs.push(g);
  assertAlmostEquals(tf.memory().numTensors - before, outs.length, 0);
  tf.dispose([...outs, theta, omega, k]);
});

Deno.test("coupling direction (spec §8): repulsive R falls as K grows, attractive R rises", () => {
  const rng = new Prng(21);
  const theta = tf.tensor4d(fillUniform(new Float32Array(2 * 64 * 8), -Math.PI, Math.PI, rng), [2, 1, 64, 8]);
  const omega = tf.zeros([1, 8]) as tf.Tensor2D;
  const finalR = (k: number, sign: "repulsive" | "attractive", steps = 10) =>
    tf.tidy(() => {
      let th: tf.Tensor4D = theta;
      for (let s = 0; s < steps; s++) th = kuramotoStep(th, omega, tf.tensor1d([k]), { sign });
      return tf.mean(orderParameter(th, "layer")).dataSync()[0];
    });
  const rep = [0, 0.5, 1, 2, 5].map((k) => finalR(k, "repulsive"));
  const att = [0, 0.5, 1, 2, 5].map((k) => finalR(k, "attractive"));
  for (let i = 1; i < rep.length; i++) {
    assert(rep[i] < rep[i - 1], `repulsive R ${rep}`);
    assert(att[i] > att[i - 1], `attractive R ${att}`);
  }
  // The original test's expectation (K = 2 syncs more than K = 0.1) holds only for the textbook sign.
  assert(finalR(2, "attractive") > finalR(0.1, "attractive"));
  assert(finalR(2, "repulsive") < finalR(0.1, "repulsive"));
  tf.dispose([theta, omega]);
});

Deno.test("couplingField: the hand-written gradient equals autodiff of the plain formula (all modes, mask)", () => {
  const theta = tf.randomUniform([2, 3, 6, 4], -3, 3, "float32", 5) as tf.Tensor4D;
  const k = tf.tensor1d([0.7, -1.2, 2]);
  const w = tf.randomNormal([2, 3, 6, 4], 0, 1, "float32", 6); // a generic downstream weighting
  const mask = tf.tensor2d([[1, 0, 1, 1, 1, 0], [0, 1, 1, 1, 1, 1]]);
  for (const sign of ["repulsive", "attractive"] as const) {
    for (const causal of [false, true]) {
      for (const divisor of ["T", "prefix"] as const) {
        for (const m of [undefined, mask]) {
          const o = { sign, causal, divisor, mask: m, scale: 0.1 };
          const loss = (totals: boolean) => (th: tf.Tensor, kk: tf.Tensor) =>
            tf.sum(tf.mul(couplingField(th as tf.Tensor4D, kk as tf.Tensor1D, { ...o, totals }).field, w));
          const [gA, kA] = tf.grads(loss(false))([theta, k]);
          const [gB, kB] = tf.grads(loss(true))([theta, k]);
          const what = `${sign}/${causal}/${divisor}/${m ? "mask" : "none"}`;
          assert(maxDiff(vals(gA), vals(gB)) < 1e-5, `${what} dθ ${maxDiff(vals(gA), vals(gB))}`);
          assert(maxDiff(vals(kA), vals(kB)) < 1e-4, `${what} dK ${maxDiff(vals(kA), vals(kB))}`);
          const fA = couplingField(theta, k, o).field,
            fB = couplingField(theta, k, { ...o, totals: true }).field;
          assert(maxDiff(vals(fA), vals(fB)) < 1e-6, `${what} value`);
          tf.dispose([gA, kA, gB, kB, fA, fB]);
        }
      }
    }
  }
  tf.dispose([theta, k, w, mask]);
});
