import { assert, assertEquals } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import { CharTokenizer } from "../../lib/tokenizers/char.ts";
import { judgeNll, judgeRecyncUnit } from "../../lib/recync/judge.ts";
import { runRecyncExperiment } from "../../lib/recync/harness.ts";
import { formatRecyncTable, readRecyncResults, summarizeRecync } from "../../lib/recync/report.ts";
import { tinyRecyncModel, useBackend } from "../fixtures.ts";

await useBackend("cpu");

const genTok = CharTokenizer.fromCorpus("abcdefghijklmnopqrstuvwxyz .,");
// The judge has another vocabulary (other ids, one extra symbol), so scores must go through text.
const judgeTok = CharTokenizer.fromCorpus(" .,zyxwvutsrqponmlkjihgfedcba!");

/** NLL of `cont` after `ctx` computed independently: full logits read back, log-softmax on the host. */
function referenceNll(model: ReturnType<typeof tinyRecyncModel>, ctx: number[], cont: number[]): number {
  const ids = [...ctx, ...cont];
  const logits = tf.tidy(() =>
    model.forward(tf.tensor2d([ids.slice(0, -1)], [1, ids.length - 1], "int32")).logits.arraySync()
  ) as number[][][];
  let total = 0;
  cont.forEach((tok, k) => {
    const row = logits[0][ctx.length - 1 + k];
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
    total += lse - row[tok];
  });
  return total / cont.length;
}

Deno.test("judgeNll equals an independent host computation, and cuts the context from the left", () => {
  const model = tinyRecyncModel(judgeTok.vocabSize, 24, 3);
  try {
    const judge = { model, tokenizer: judgeTok, label: "judge" };
    const s = judgeNll(judge, "the cat ", "sat on");
    assertEquals(s.tokens, 6);
    const want = referenceNll(model, judgeTok.encode("the cat "), judgeTok.encode("sat on"));
    assert(Math.abs(s.nll - want) < 1e-5, `${s.nll} vs ${want}`);
    // 30 context characters do not fit 24 positions with 6 continuation tokens: the last 18 are kept.
    const long = "abcdefghijklmnopqrstuvwxyz abc";
    const cut = judgeNll(judge, long, "sat on");
    const wantCut = referenceNll(model, judgeTok.encode(long).slice(-18), judgeTok.encode("sat on"));
    assert(Math.abs(cut.nll - wantCut) < 1e-5, `${cut.nll} vs ${wantCut}`);
    assertEquals(judgeNll(judge, "x", ""), { nll: NaN, tokens: 0 });
    let err = "";
    try {
      judgeNll(judge, "a", "a".repeat(30));
    } catch (e) {
      err = (e as Error).message;
    }
    assert(err.includes("more than its 24 positions"), err);
  } finally {
    model.dispose();
  }
});

Deno.test("a run with a judge stores both arms' window NLL; the report shows text quality", async () => {
  const model = tinyRecyncModel(genTok.vocabSize, 160, 5);
  const judgeModel = tinyRecyncModel(judgeTok.vocabSize, 200, 9);
  const dir = await Deno.makeTempDir();
  try {
    const judge = { model: judgeModel, tokenizer: judgeTok, label: "tiny-judge" };
    await runRecyncExperiment({
      model,
      tokenizer: genTok,
      modelLabel: "tiny",
      prompts: [{ id: "p1", text: "the quick brown fox" }, { id: "p2", text: "to be or not" }],
      seeds: 4,
      T: 60,
      policy: "v4",
      out: `${dir}/r.jsonl`,
      judge,
    });
    const { records } = await readRecyncResults([`${dir}/r.jsonl`]);
    const judged = records.filter((r) => r.metrics);
    assert(judged.length > 0, "no intervened unit to judge");
    for (const r of records) {
      if (!r.metrics) {
        assertEquals(r.judge, null);
        continue;
      }
      const j = r.judge!;
      assertEquals([j.model, j.from, j.to], ["tiny-judge", r.metrics.from, r.metrics.to]);
      // A character judge scores one token per character of the window's text.
      assertEquals(j.baseline.tokens, genTok.decode(r.baseline.tokens.slice(j.from, j.to)).length);
      assertEquals(judgeRecyncUnit(judge, r, genTok), j); // recomputed from the stored line
    }
    const [s] = summarizeRecync(records, { resamples: 100 });
    assertEquals(s.judge, "tiny-judge");
    const nll = s.text.judgeNll!;
    assertEquals(nll.n, judged.length);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    assert(Math.abs(nll.baseline - mean(judged.map((r) => r.judge!.baseline.nll))) < 1e-12);
    const rep = s.text.repetitionRate!;
    assert(
      Math.abs(rep.intervention - mean(judged.map((r) => r.metrics!.intervention.repetitionRate))) < 1e-12,
    );
    const table = formatRecyncTable([s]);
    assert(table.includes("### Text quality") && table.includes("under tiny-judge"), table);
    assert(/\| tiny \| v4 \| [0-9.]+ → [0-9.]+ \(d_z /.test(table), table);
  } finally {
    model.dispose();
    judgeModel.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("text outcomes: d_z is oriented so that positive means better text", () => {
  const unit = (b: number, i: number, db: number, di: number) => ({
    model: "m",
    policy: "v4",
    T: 10,
    intervened: true,
    prefixMatches: true,
    elapsedMs: 0,
    restarts: [],
    interventions: [],
    baseline: { events: [{ onset: 1, confirmedAt: 2 }] },
    metrics: {
      window: "from-rewind",
      baseline: { repetitionRate: b, distinct2: db, crisisFraction: 0.5, crisisFree: false },
      intervention: { repetitionRate: i, distinct2: di, crisisFraction: 0.2 },
      iatrogenic: {},
      crisisFree: true,
    },
  });
  // Lower repetition and higher distinct-2 in every intervention arm: both d_z positive.
  const records = [unit(0.5, 0.2, 0.4, 0.6), unit(0.4, 0.3, 0.5, 0.9), unit(0.6, 0.2, 0.3, 0.4)];
  const [s] = summarizeRecync(records as never, { resamples: 10 });
  assert(s.text.repetitionRate!.dz > 0 && s.text.distinct2!.dz > 0);
  // Hand-computed: repetition deltas 0.3, 0.1, 0.4 → mean 0.2667, sd (n − 1) 0.1528 → d_z 1.7457.
  assert(Math.abs(s.text.repetitionRate!.dz - 1.7457) < 1e-3, String(s.text.repetitionRate!.dz));
  assertEquals(s.text.judgeNll, undefined);
});

Deno.test("v3-cbf: the paired filter-on run shares v3's baselines, and the binding filter changes decisions", async () => {
  const model = tinyRecyncModel(genTok.vocabSize, 160, 5);
  const dir = await Deno.makeTempDir();
  try {
    await runRecyncExperiment({
      model,
      tokenizer: genTok,
      modelLabel: "tiny",
      prompts: [{ id: "p1", text: "the quick brown fox" }, { id: "p2", text: "to be or not" }],
      seeds: 6,
      T: 80,
      policy: "v3",
      policies: ["v3", "v3-cbf"],
      out: `${dir}/r.jsonl`,
    });
    const { records } = await readRecyncResults([`${dir}/r.jsonl`]);
    const plain = records.filter((r) => r.policy === "v3"),
      filtered = records.filter((r) => r.policy === "v3-cbf");
    assertEquals(plain.length, filtered.length);
    // Same baseline row for both policies of a (prompt, seed).
    for (const r of plain) {
      const twin = filtered.find((f) => f.pairId === r.pairId)!;
      assertEquals(twin.baseline.tokens, r.baseline.tokens);
    }
    const summaries = summarizeRecync(records, { resamples: 10 });
    const off = summaries.find((s) => s.policy === "v3")!, on = summaries.find((s) => s.policy === "v3-cbf")!;
    assertEquals(off.cbfFiltered.decisions, 0); // no filter on plain v3 rows
    assert(on.cbfFiltered.decisions > 0, "the v3-cbf rows made no filtered decision");
    assert(
      on.cbfFiltered.changed > 0,
      `binding filter changed ${on.cbfFiltered.changed}/${on.cbfFiltered.decisions}`,
    );
    assertEquals(filtered[0].config.v3 && (filtered[0].config.v3 as { cbf: unknown }).cbf, { gamma: 0.05 });
  } finally {
    model.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});
