import { assert, assertAlmostEquals, assertEquals } from "../assert.ts";
import { Prng } from "../../lib/random/prng.ts";
import { CosimMonitor } from "../../lib/recync/monitor.ts";
import { simulateNull, traceMoments } from "../../lib/recync/null_process.ts";

/** The crisis flags of a series (index = step) by the library monitor, read off its trace. */
function flags(series: number[]): { inCrisis: boolean[]; onset: number | null } {
  const m = new CosimMonitor({ nonFinite: "low" });
  for (let t = 1; t < series.length; t++) m.push(series[t], t);
  const inCrisis = Array(series.length).fill(false);
  for (const rec of m.trace) inCrisis[rec.step] = rec.inCrisis;
  return { inCrisis, onset: m.events[0]?.onset ?? null };
}

Deno.test("null process: iid d_z matches an independent computation with the same streams", () => {
  const N = 40, T = 80, seed = 11, mean = 0.9, std = 0.02;
  const res = simulateNull({ process: { kind: "iid", mean, std }, N, T, seed, resamples: 200 });
  // Independent: draw each series directly from the documented streams, rewind at onset − 3, keep
  // values up to r, redraw after it, crisis fraction over [r, T), d_z = mean(Δ) / sd(Δ) (ddof 1).
  const deltas: number[] = [];
  let free = 0, worse = 0;
  for (let u = 0; u < N; u++) {
    const rb = new Prng(seed, 2 * u);
    const base = [NaN];
    for (let t = 1; t < T; t++) base.push(mean + std * rb.nextNormal());
    const fb = flags(base);
    if (fb.onset === null) continue;
    const r = Math.max(0, fb.onset - 3);
    const ri = new Prng(seed, 2 * u + 1);
    const redo = base.slice(0, r + 1);
    for (let t = r + 1; t < T; t++) redo.push(mean + std * ri.nextNormal());
    const fi = flags(redo);
    let cb = 0, ci = 0;
    for (let t = r; t < T; t++) {
      if (fb.inCrisis[t]) cb++;
      if (fi.inCrisis[t]) ci++;
    }
    const d = (cb - ci) / (T - r);
    deltas.push(d);
    if (ci === 0) free++;
    if (d < 0) worse++;
  }
  const n = deltas.length;
  const m = deltas.reduce((s, x) => s + x, 0) / n;
  const sd = Math.sqrt(deltas.reduce((s, x) => s + (x - m) ** 2, 0) / (n - 1));
  assertEquals(res.nCrisis, n);
  assert(n >= 10, `only ${n} crisis units`);
  assertAlmostEquals(res.dz, m / sd, 1e-9);
  assertEquals([res.crisisFree.successes, res.strictWorse.successes], [free, worse]);
  // The design's artefact: a redraw of pure noise "helps" the selected units.
  assert(res.dz > 0.3, `null d_z ${res.dz}`);
  assert(res.dzCi!.lower < res.dz && res.dz < res.dzCi!.upper);
});

Deno.test("null process: after-crisis shrinks the artefact; AR(1), block shuffles and moments", () => {
  const p = { kind: "iid" as const, mean: 0.9, std: 0.02 };
  const a = simulateNull({ process: p, N: 60, T: 100, seed: 2, resamples: 100 });
  const b = simulateNull({ process: p, N: 60, T: 100, seed: 2, resamples: 100, window: "after-crisis" });
  assert(Math.abs(b.dz) < a.dz, `after-crisis ${b.dz} vs from-rewind ${a.dz}`);
  const ar = simulateNull({
    process: { kind: "ar1", mean: 0.9, std: 0.02, phi: 0.5 },
    N: 20,
    T: 80,
    seed: 1,
  });
  assert(ar.nCrisis >= 0 && ar.units.every((u) => u.r >= 0));
  // A constant trace never dips: no crisis units.
  const flat = simulateNull({
    process: { kind: "block", traces: [Array(50).fill(0.9)], block: 10 },
    N: 5,
    T: 60,
  });
  assertEquals(flat.nCrisis, 0);
  const mo = traceMoments([[1, 2, 3, 4], [null, 4, 3]]);
  assertAlmostEquals(mo.mean, 17 / 6, 1e-12);
  assertEquals(mo.n, 6);
});

Deno.test("cli: recync null prints the null d for N and T", async () => {
  const { recyncMain } = await import("../../lib/cli/recync.ts");
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    await recyncMain(["null", "--N", "30", "--T", "60", "--seed", "4", "--resamples", "100"]);
  } finally {
    console.log = log;
  }
  const text = lines.join("\n");
  const direct = simulateNull({ process: { kind: "iid", mean: 0.9, std: 0.02 }, N: 30, T: 60, seed: 4 });
  assert(text.includes(`null d_z: ${direct.dz.toFixed(3)}`), text);
  assert(text.includes("N=30, T=60"), text);
});
