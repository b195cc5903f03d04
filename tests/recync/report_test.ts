import { assert, assertAlmostEquals, assertJsonEquals as assertEquals } from "../assert.ts";
import { computeUnitMetrics, type RecyncArmTrace } from "../../lib/recync/metrics.ts";
import { CosimMonitor } from "../../lib/recync/monitor.ts";
import type { RecyncUnitRecord } from "../../lib/recync/harness.ts";
import {
  formatRecyncTable,
  paperRowFor,
  readRecyncResults,
  summarizeRecync,
  writeRecyncReport,
} from "../../lib/recync/report.ts";
import { pairedTTest } from "../../lib/stats/paired.ts";
import { Prng } from "../../lib/random/prng.ts";

function arm(series: number[]): RecyncArmTrace & { text: string } {
  const m = new CosimMonitor();
  for (const v of series) m.push(v);
  return {
    text: "",
    tokens: series.map((_, i) => i % 7).concat([0]),
    cosim: [null, ...series],
    thr: [null, ...m.trace.map((r) => r.thr)],
    low: [false, ...m.trace.map((r) => r.low)],
    inCrisis: [false, ...m.trace.map((r) => r.inCrisis)],
    events: m.events.map((e) => ({ onset: e.onset, confirmedAt: e.confirmedAt })),
  };
}

/** A unit whose baseline dips for `baseLen` steps at step 30 and whose intervention dips for `intLen`. */
function unit(i: number, baseLen: number, intLen: number, rng: Prng): RecyncUnitRecord {
  const noise = () => 0.9 + 0.01 * rng.nextNormal();
  const series = (dip: number) =>
    Array.from({ length: 59 }, (_, t) => (t + 1 >= 30 && t + 1 < 30 + dip ? 0.5 : noise()));
  const baseline = arm(series(baseLen));
  // The intervention shares the baseline up to r, like a real restart.
  const intSeries = series(intLen).map((v, t) => (t + 1 <= 26 ? baseline.cosim[t + 1]! : v));
  const intervention = arm(intSeries);
  const r = baseline.events.length ? baseline.events[0].onset - 3 : null;
  return {
    schema: "coherence-lab/recync-unit@1",
    index: i,
    id: `toy|p${i}|0|v4|60`,
    model: "toy",
    promptId: `p${i}`,
    prompt: "",
    seed: 0,
    T: 60,
    policy: "v4",
    promptTokens: 1,
    baseline,
    intervention,
    r,
    intervened: r !== null,
    restarts: r !== null ? [{ restart: 1, onset: r + 3, confirmedAt: r + 5, r, seed: 10000 }] : [],
    interventions: [],
    prefixMatches: true,
    metrics: r !== null ? computeUnitMetrics(baseline, intervention, r) : null,
    config: {},
    elapsedMs: 10,
    backend: "cpu",
  };
}

function units(): RecyncUnitRecord[] {
  const rng = new Prng(5);
  const lens: [number, number][] = [[8, 0], [6, 3], [10, 0], [5, 5], [7, 9], [12, 4], [9, 0], [6, 0], [0, 0]];
  return lens.map(([b, i], k) => unit(k, b, i, rng));
}

Deno.test("summary: d, p, iatrogenic and crisis-free agree with the per-unit metrics", () => {
  const recs = units();
  const [s] = summarizeRecync(recs, { resamples: 2000, seed: 1 });
  assertEquals(s.nUnits, 9);
  // i.i.d. noise alone raises crises now and then (spec §2.6), so count them from the records.
  const withCrisis = recs.filter((r) => r.baseline.events.length > 0).length;
  assert(withCrisis >= 8);
  assertEquals(s.nBaselineCrisis, withCrisis);
  assertEquals(s.nIntervened, withCrisis);
  const used = recs.filter((r) => r.metrics);
  const b = used.map((r) => r.metrics!.baseline.crisisFraction);
  const i = used.map((r) => r.metrics!.intervention.crisisFraction);
  const t = pairedTTest(b, i);
  assertAlmostEquals(s.comparison!.t.pValue, t.pValue, 1e-12);
  assertAlmostEquals(s.comparison!.dz, t.meanDifference / t.sdDifference, 1e-12);
  // Units 4 ([7, 9]) is worse; unit 3 ([5, 5]) ties; the rest improve.
  assertEquals(s.iatrogenic.strictWorse, used.filter((r) => r.metrics!.delta.crisisFraction < 0).length);
  assert(s.iatrogenic.strictWorse >= 1);
  assertEquals(s.crisisFree.successes, used.filter((r) => r.metrics!.crisisFree).length);
  assertEquals(s.crisisFree.n, withCrisis);
  assert(s.comparison!.effectCi.lower < s.comparison!.dz && s.comparison!.dz < s.comparison!.effectCi.upper);
  const table = formatRecyncTable([s]);
  assert(table.includes(`| toy | v4 | 60 | ${withCrisis}/9 |`), table);
  assert(table.includes("Pythia-160M") && table.includes("+0.958"));
});

Deno.test("paper rows match model labels", () => {
  assertEquals(paperRowFor("hf:gpt2")?.model, "GPT-2 Small");
  assertEquals(paperRowFor("hf:gpt2-medium")?.model, "GPT-2 Medium");
  assertEquals(paperRowFor("hf:Qwen/Qwen2-1.5B")?.model, "Qwen2-1.5B");
  assertEquals(paperRowFor("data/models/shakespeare-char"), undefined);
});

Deno.test("report merges shards, drops duplicates and torn lines, writes SVG and PNG", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const recs = units();
    const a = `${dir}/a.jsonl`, b = `${dir}/b.jsonl`;
    await Deno.writeTextFile(a, recs.slice(0, 5).map((r) => JSON.stringify(r)).join("\n") + "\n");
    // Shard b overlaps a by one unit and ends in a torn line.
    await Deno.writeTextFile(b, recs.slice(4).map((r) => JSON.stringify(r)).join("\n") + '\n{"schema": "coh');
    const merged = await readRecyncResults([a, b]);
    assertEquals(merged.records.length, 9);
    assertEquals(merged.duplicates, 1);
    assertEquals(merged.tornLines, 1);
    const out = await writeRecyncReport([a, b], `${dir}/report`, { resamples: 500, traces: 1 });
    assert(out.table.includes("duplicates dropped: 1"));
    for (const f of ["table.md", "summary.json", "forest.svg", "forest.png", "trace_1.svg", "trace_1.png"]) {
      const st = await Deno.stat(`${dir}/report/${f}`);
      assert(st.size > 100, `${f} is ${st.size} bytes`);
    }
    const png = await Deno.readFile(`${dir}/report/forest.png`);
    assertEquals([...png.slice(1, 4)], [0x50, 0x4e, 0x47]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("summary options: BCa interval, Clopper-Pearson crisis-free CI, other outcome and effect", () => {
  const recs = units();
  const [p] = summarizeRecync(recs, { resamples: 1000, seed: 2 });
  const [b] = summarizeRecync(recs, {
    resamples: 1000,
    seed: 2,
    ciMethod: "bca",
    proportionCi: "clopper-pearson",
  });
  assertEquals(b.comparison!.effectCi.method, "bca");
  assertEquals(b.crisisFree.method, "clopper-pearson");
  assertEquals(b.comparison!.dz, p.comparison!.dz);
  assert(b.comparison!.effectCi.lower !== p.comparison!.effectCi.lower);
  // Clopper-Pearson is never narrower than Wilson.
  assert(b.crisisFree.upper - b.crisisFree.lower >= p.crisisFree.upper - p.crisisFree.lower);
  const [m] = summarizeRecync(recs, { resamples: 200, outcome: "meanCosim", effect: "dav" });
  assertEquals(m.outcome, "meanCosim");
  assertAlmostEquals(m.variants.meanCosim!.d, m.comparison!.dav, 1e-12);
  assert(formatRecyncTable([b]).includes("bca bootstrap"));
});

Deno.test("formatRecyncTable: a v3-only run is compared with the paper's v3 result, not the v4 table", async () => {
  const { formatRecyncTable } = await import("../../lib/recync/report.ts");
  const recs = units();
  const [s] = summarizeRecync(recs.map((r) => ({ ...r, policy: "v3" })), { resamples: 100, seed: 1 });
  const v3 = formatRecyncTable([s]);
  if (!v3.includes("Recync v3, token level") || !v3.includes("+0.211") || v3.includes("Recync v4, spec")) {
    throw new Error(v3);
  }
  const [s4] = summarizeRecync(recs, { resamples: 100, seed: 1 });
  if (!formatRecyncTable([s4]).includes("Recync v4, spec")) throw new Error("v4 table missing");
});
