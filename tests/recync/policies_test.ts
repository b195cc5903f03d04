import { assert, assertEquals } from "../assert.ts";
import { CharTokenizer } from "../../lib/tokenizers/char.ts";
import {
  parsePolicyList,
  type RecyncPolicyName,
  type RecyncUnitRecord,
  runRecyncExperiment,
} from "../../lib/recync/harness.ts";
import { ShamScheduler } from "../../lib/recync/sham.ts";
import { generate } from "../../lib/generate/generate.ts";
import { readJsonl } from "../../lib/io/atomic.ts";
import { tinyRecyncModel, useBackend } from "../fixtures.ts";

await useBackend("cpu");

const tokenizer = CharTokenizer.fromCorpus("abcdefghijklmnopqrstuvwxyz .,");
const POLICIES: RecyncPolicyName[] = ["v4", "sham-random", "sham-matched", "v4-same-seed", "v3", "none"];

Deno.test("policies: comma lists are checked", () => {
  assertEquals(parsePolicyList("v4,sham-matched"), ["v4", "sham-matched"]);
  for (const bad of ["v9", "v4,v4", ""]) {
    let msg = "";
    try {
      parsePolicyList(bad);
    } catch (e) {
      msg = (e as Error).message;
    }
    assert(msg.length > 0, `no error for '${bad}'`);
  }
});

Deno.test("policies: several arms share one baseline row; shams rewind at their scheduled points", async () => {
  const model = tinyRecyncModel(tokenizer.vocabSize, 160, 5);
  const out = await Deno.makeTempFile({ suffix: ".jsonl" });
  try {
    const prompts = [{ id: "p1", text: "the quick brown fox" }, { id: "p2", text: "to be or not" }];
    const T = 70;
    const s = await runRecyncExperiment({
      model,
      tokenizer,
      modelLabel: "tiny",
      prompts,
      seeds: 3,
      T,
      policy: "v4",
      policies: POLICIES,
      out,
      batchUnits: 3,
      metrics: { window: "after-confirm" },
    });
    assertEquals([s.planned, s.ran], [6 * POLICIES.length, 6 * POLICIES.length]);
    const { records } = await readJsonl<RecyncUnitRecord>(out);
    const byPair = new Map<string, RecyncUnitRecord[]>();
    for (const r of records) byPair.set(r.pairId!, [...(byPair.get(r.pairId!) ?? []), r]);
    assertEquals(byPair.size, 6);
    let crisisUnits = 0;
    for (const group of byPair.values()) {
      assertEquals(group.map((r) => r.policy), POLICIES);
      const base = group[0].baseline;
      for (const r of group) {
        assertEquals(r.baseline.tokens, base.tokens); // the same baseline row for every arm
        assertEquals(r.conventions?.outcomeWindow, "after-confirm");
        assertEquals(r.conventions?.rewindOffset, 3);
        assert(r.prefixMatches, `${r.id}: arms diverged before the policy acted`);
        if (r.metrics) assertEquals(r.metrics.window, "after-confirm");
      }
      const [v4, rnd, matched, same, , none] = group;
      // sham-random: the scheduler's point for this (seed, prompt), with or without a crisis.
      const planned = new ShamScheduler("sham-random", rnd.seed, rnd.promptId, { T }).plannedPoint;
      assertEquals(
        rnd.restarts.map((x) => [x.kind, x.r, x.seed]),
        [["sham", planned, rnd.seed + 10000]] as unknown[],
      );
      assert(rnd.intervened && rnd.metrics !== null);
      // sham-matched: only with a baseline crisis, strictly before v4's rewind point, on a non-crisis step.
      if (base.events.length === 0) {
        assertEquals([matched.restarts.length, matched.intervened, v4.intervened], [0, false, false]);
      } else {
        crisisUnits++;
        const r = base.events[0].onset - 3;
        assertEquals(v4.restarts[0].r, r);
        assertEquals(same.restarts[0].r, r);
        assertEquals(same.restarts[0].seed, same.seed); // the original seed, its stream continued
        if (matched.restarts.length > 0) {
          const m = matched.restarts[0];
          assert(m.r >= 18 && m.r < r && !base.inCrisis[m.r], JSON.stringify(m));
          assertEquals(m.onset, base.events[0].onset);
        }
      }
      assertEquals(none.intervention.tokens, base.tokens);
    }
    assert(crisisUnits > 0, "the tiny model should produce at least one baseline crisis");
    // After a sham rewind the arm's cosims are those of its own tokens: teacher-force them and compare.
    const shamArms = records.filter((r) => r.policy === "sham-random");
    const forced = await generate(model, shamArms.map((r) => tokenizer.encode(r.prompt)), {
      maxNewTokens: T,
      seeds: shamArms.map((r) => r.seed),
      forceTokens: shamArms.map((r) => r.intervention.tokens),
    }).collect();
    shamArms.forEach((r, k) => {
      assertEquals(forced.rows[k].tokens, r.intervention.tokens);
      r.intervention.cosim.forEach((c, t) => {
        if (c !== null) assert(Math.abs(c - forced.rows[k].cosims[t]) < 1e-5, `${r.id} step ${t}`);
      });
    });
    // Resume: nothing left to do.
    const again = await runRecyncExperiment({
      model,
      tokenizer,
      modelLabel: "tiny",
      prompts,
      seeds: 3,
      T,
      policy: "v4",
      policies: POLICIES,
      out,
    });
    assertEquals([again.ran, again.skipped], [0, 6 * POLICIES.length]);
  } finally {
    model.dispose();
    await Deno.remove(out);
  }
});

const DEMO = new URL("../../data/models/shakespeare-char", import.meta.url).pathname;
let demoPresent = false;
try {
  demoPresent = (await Deno.stat(`${DEMO}/config.json`)).isFile;
} catch { /* absent */ }

Deno.test({
  name: "cli: run --policy list with the convention flags records them in every line",
  ignore: !demoPresent,
  fn: async () => {
    const { recyncMain } = await import("../../lib/cli/recync.ts");
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/p.txt`, "ROMEO:\n");
      const out = `${dir}/o.jsonl`;
      await recyncMain([
        "run",
        ...["--model", DEMO, "--prompts", `${dir}/p.txt`, "--seeds", "1", "--T", "60", "--backend", "cpu"],
        ...["--policy", "v4,sham-random", "--out", out, "--window", "after-crisis", "--ddof", "0"],
        ...["--rewind-offset", "2", "--seed-offset", "500", "--gate-delay", "3", "--warmup", "full"],
      ]);
      const { records } = await readJsonl<RecyncUnitRecord>(out);
      assertEquals(records.map((r) => r.policy), ["v4", "sham-random"]);
      for (const r of records) {
        assertEquals(r.conventions, {
          ddof: 0,
          windowMode: "excludeConfirmed",
          warmup: "full",
          rewindOffset: 2,
          seedOffset: 500,
          outcomeWindow: "after-crisis",
          gateDelay: 3,
        });
      }
      assertEquals(records[1].restarts[0].seed, records[1].seed + 500);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
