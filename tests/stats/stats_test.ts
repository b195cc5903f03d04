// Statistics checked against hand computations and published textbook values.
import { assert, assertAlmostEquals, assertJsonEquals as assertEquals, assertThrows } from "../assert.ts";
import {
  averageRanks,
  betaQuantile,
  bootstrapInterval,
  clopperPearsonInterval,
  logGamma,
  meanOf,
  normalCdf,
  normalQuantile,
  pairedComparison,
  pairedEffectSize,
  pairedTTest,
  quantileSorted,
  regularizedGammaP,
  regularizedIncompleteBeta,
  standardDeviationOf,
  studentTCdf,
  studentTQuantile,
  studentTTwoSidedP,
  varianceOf,
  wilcoxonSignedRank,
  wilsonInterval,
} from "../../lib/stats/mod.ts";

// Student's sleep data (Cushny & Peebles 1905), as in R's `sleep` data set.
const SLEEP_G1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0];
const SLEEP_G2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4];

Deno.test("special functions match table values", () => {
  assertAlmostEquals(Math.exp(logGamma(5)), 24, 1e-10);
  assertAlmostEquals(Math.exp(logGamma(0.5)), Math.sqrt(Math.PI), 1e-12);
  assertAlmostEquals(logGamma(100), 359.1342053695754, 1e-9);
  assertAlmostEquals(regularizedIncompleteBeta(0.5, 2, 2), 0.5, 1e-14);
  // I_x(1, b) = 1 − (1 − x)^b and I_x(a, 1) = x^a in closed form.
  assertAlmostEquals(regularizedIncompleteBeta(0.3, 1, 4), 1 - Math.pow(0.7, 4), 1e-13);
  assertAlmostEquals(regularizedIncompleteBeta(0.8, 3, 1), Math.pow(0.8, 3), 1e-13);
  assertAlmostEquals(regularizedGammaP(1, 2), 1 - Math.exp(-2), 1e-13);
  assertAlmostEquals(normalCdf(1.96), 0.9750021048517795, 1e-13);
  assertAlmostEquals(normalCdf(-3), 0.0013498980316301, 1e-15);
  assertAlmostEquals(normalCdf(-8), 6.22096057427178e-16, 1e-24);
  assertAlmostEquals(normalQuantile(0.975), 1.959963984540054, 1e-12);
  assertAlmostEquals(normalQuantile(0.001), -3.090232306167813, 1e-11);
  // Student t critical values from any t table (two-sided 5 %).
  assertAlmostEquals(studentTQuantile(0.975, 9), 2.262157162798205, 1e-9);
  assertAlmostEquals(studentTQuantile(0.975, 10), 2.228138851986274, 1e-9);
  assertAlmostEquals(studentTQuantile(0.995, 30), 2.749995653567, 1e-8);
  assertAlmostEquals(studentTTwoSidedP(2.228138851986274, 10), 0.05, 1e-12);
  // df = 1 is the Cauchy distribution: P(T <= 1) = 3/4.
  assertAlmostEquals(studentTCdf(1, 1), 0.75, 1e-13);
  assertAlmostEquals(betaQuantile(0.5, 3, 3), 0.5, 1e-12);
  assertThrows(() => regularizedIncompleteBeta(1.5, 1, 1), RangeError);
});

Deno.test("descriptive statistics and midranks", () => {
  assertEquals(meanOf([1, 2, 3, 4]), 2.5);
  assertAlmostEquals(varianceOf([1, 2, 3, 4]), 5 / 3, 1e-15);
  assertEquals(standardDeviationOf([2, 4, 4, 4, 5, 5, 7, 9], 0), 2);
  assertEquals(quantileSorted([1, 2, 3, 4], 0.5), 2.5);
  assertEquals(quantileSorted([10, 20, 30], 0.25), 15);
  assertEquals(averageRanks([3, 1, 3, 2, 3]), { ranks: [4, 1, 4, 2, 4], ties: [3] });
});

Deno.test("paired t: Student's sleep data reproduces R's published t, df, p and CI", () => {
  const r = pairedTTest(SLEEP_G1, SLEEP_G2);
  assertAlmostEquals(r.meanDifference, -1.58, 1e-12);
  assertAlmostEquals(r.t, -4.062128, 1e-6);
  assertEquals(r.df, 9);
  assertAlmostEquals(r.pValue, 0.00283289, 1e-8);
  assertAlmostEquals(r.ciLower, -2.4598858, 1e-7);
  assertAlmostEquals(r.ciUpper, -0.7001142, 1e-7);
});

Deno.test("paired t: degenerate and bad input", () => {
  assertEquals(pairedTTest([1, 2, 3], [0, 1, 2]).pValue, 0); // constant non-zero difference
  assertEquals(pairedTTest([1, 2, 3], [1, 2, 3]).pValue, 1);
  assertThrows(() => pairedTTest([1, 2], [1]), RangeError, "differ in length");
  assertThrows(() => pairedTTest([1, NaN], [1, 2]), RangeError, "pair 1");
});

Deno.test("effect sizes: d_z, d_av and pooled d by hand", () => {
  const a = [3, 4, 5, 6], b = [1, 3, 3, 5];
  // Δ = [2, 1, 2, 1]: mean 1.5, sd sqrt(1/3).
  assertAlmostEquals(pairedEffectSize(a, b, "dz"), 1.5 / Math.sqrt(1 / 3), 1e-12);
  // sd(a) = sqrt(5/3), sd(b) = sqrt(8/3).
  const sa = Math.sqrt(5 / 3), sb = Math.sqrt(8 / 3);
  assertAlmostEquals(pairedEffectSize(a, b, "dav"), 1.5 / ((sa + sb) / 2), 1e-12);
  assertAlmostEquals(pairedEffectSize(a, b, "pooled"), 1.5 / Math.sqrt((sa * sa + sb * sb) / 2), 1e-12);
  // Sleep data: d_z = t / sqrt(n).
  assertAlmostEquals(pairedEffectSize(SLEEP_G1, SLEEP_G2), -4.062128 / Math.sqrt(10), 1e-6);
  assert(Number.isNaN(pairedEffectSize([1, 2], [0, 1])));
});

Deno.test("Wilcoxon: Hollander & Wolfe example gives V = 40, exact p = 10/512", () => {
  const x = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30];
  const y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29];
  const d = x.map((v, i) => v - y[i]);
  const g = wilcoxonSignedRank(d, { alternative: "greater" });
  assertEquals(g.statistic, 40);
  assertEquals(g.method, "exact");
  assertAlmostEquals(g.pValue, 10 / 512, 1e-15); // R prints 0.01953
  assertAlmostEquals(wilcoxonSignedRank(d).pValue, 20 / 512, 1e-15);
  assertAlmostEquals(wilcoxonSignedRank(d, { alternative: "less" }).pValue, 1 - 7 / 512, 1e-15);
});

Deno.test("Wilcoxon: sleep data with a zero and ties reproduces R's V = 0, p = 0.009091", () => {
  const d = SLEEP_G1.map((v, i) => v - SLEEP_G2[i]);
  const r = wilcoxonSignedRank(d);
  assertEquals(r.statistic, 0);
  assertEquals(r.zeros, 1);
  assertEquals(r.n, 9);
  assert(r.hasTies);
  assertEquals(r.method, "normal");
  assertAlmostEquals(r.pValue, 0.009091, 5e-6);
  // Exact conditional distribution with ties: 1 of 2^9 sign patterns reaches V = 0 on each side.
  assertAlmostEquals(wilcoxonSignedRank(d, { method: "exact" }).pValue, 2 / 512, 1e-15);
});

Deno.test("Wilcoxon: exact and normal agree for moderate n without ties", () => {
  const d = Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? -1 : 1) * (i + 1) * 0.1);
  const ex = wilcoxonSignedRank(d, { method: "exact" }).pValue;
  const no = wilcoxonSignedRank(d, { method: "normal" }).pValue;
  assertAlmostEquals(ex, no, 0.01);
});

Deno.test("binomial CIs match Newcombe (1998) Table I", () => {
  const cases: [number, number, number, number, number, number][] = [
    // x, n, Wilson lo, hi, Clopper-Pearson lo, hi
    [81, 263, 0.2553, 0.3662, 0.2527, 0.3676],
    [15, 148, 0.0624, 0.1605, 0.0578, 0.1617],
    [0, 20, 0, 0.1611, 0, 0.1684],
    [1, 29, 0.0061, 0.1718, 0.0009, 0.1776],
  ];
  for (const [x, n, wl, wh, cl, ch] of cases) {
    const w = wilsonInterval(x, n), c = clopperPearsonInterval(x, n);
    assertAlmostEquals(w.lower, wl, 6e-5, `Wilson lower ${x}/${n}`);
    assertAlmostEquals(w.upper, wh, 6e-5, `Wilson upper ${x}/${n}`);
    assertAlmostEquals(c.lower, cl, 6e-5, `CP lower ${x}/${n}`);
    assertAlmostEquals(c.upper, ch, 6e-5, `CP upper ${x}/${n}`);
  }
  assertEquals(wilsonInterval(5, 5).upper, 1);
  assertThrows(() => wilsonInterval(6, 5), RangeError, "successes <= n");
});

// Efron & Tibshirani's law school sample (15 schools): LSAT and GPA; correlation 0.776, bootstrap SE ≈ 0.13.
const LSAT = [576, 635, 558, 578, 666, 580, 555, 661, 651, 605, 653, 575, 545, 572, 594];
const GPA = [339, 330, 281, 303, 344, 307, 300, 343, 336, 313, 312, 274, 276, 288, 296];
function correlation(idx: Int32Array): number {
  const x = Array.from(idx, (i) => LSAT[i]), y = Array.from(idx, (i) => GPA[i]);
  const mx = meanOf(x), my = meanOf(y);
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < x.length; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

Deno.test("bootstrap: law school correlation SE near Efron & Tibshirani's 0.13, seeded, BCa", () => {
  const ci = bootstrapInterval(15, correlation, { seed: 3, resamples: 4000 });
  assertAlmostEquals(ci.estimate, 0.7764, 1e-4);
  assert(ci.standardError > 0.11 && ci.standardError < 0.15, `SE ${ci.standardError}`);
  assert(ci.lower < ci.estimate && ci.estimate < ci.upper);
  assert(ci.upper <= 1);
  const again = bootstrapInterval(15, correlation, { seed: 3, resamples: 4000 });
  assertEquals(again, ci);
  const other = bootstrapInterval(15, correlation, { seed: 4, resamples: 4000 });
  assert(other.lower !== ci.lower);
  const bca = bootstrapInterval(15, correlation, { seed: 3, resamples: 4000, method: "bca" });
  // The correlation's sampling distribution is left-skewed near 1, so BCa shifts the interval down.
  assert(bca.lower < ci.lower, `BCa ${bca.lower} vs percentile ${ci.lower}`);
});

Deno.test("bootstrap: mean of a normal sample covers like the t interval; degenerate resamples skipped", () => {
  const xs = [
    5.1,
    4.9,
    6.2,
    5.8,
    6.0,
    5.5,
    5.3,
    6.4,
    4.7,
    5.9,
    5.6,
    6.1,
    5.0,
    5.4,
    5.7,
    6.3,
    4.8,
    5.2,
    6.6,
    5.5,
  ];
  const ci = bootstrapInterval(xs.length, (idx) => meanOf(Array.from(idx, (i) => xs[i])), { seed: 11 });
  const t = pairedTTest(xs, xs.map(() => 0));
  assertAlmostEquals(ci.lower, t.ciLower, 0.06);
  assertAlmostEquals(ci.upper, t.ciUpper, 0.06);
  // A d_z on two units is infinite whenever both draws pick the same unit: those resamples are skipped.
  const r = pairedComparison([1, 3], [0, 0.5], { bootstrap: { seed: 1, resamples: 400 } });
  assert(r.effectCi.skipped > 100 && r.effectCi.skipped < 300, `skipped ${r.effectCi.skipped}`);
});

Deno.test("pairedComparison bundles d, CI, t and Wilcoxon consistently", () => {
  const r = pairedComparison(SLEEP_G2, SLEEP_G1, { bootstrap: { seed: 5, resamples: 2000 } });
  assertAlmostEquals(r.dz, 4.062128 / Math.sqrt(10), 1e-6);
  assertAlmostEquals(r.t.t, 4.062128, 1e-6);
  assertEquals(r.wilcoxon.statistic, 45);
  assert(r.effectCi.lower > 0 && r.effectCi.lower < r.dz && r.dz < r.effectCi.upper);
  assertEquals(r.effectCi.resamples, 2000);
});
