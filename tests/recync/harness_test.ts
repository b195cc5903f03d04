import { assert, assertJsonEquals as assertEquals, assertThrows } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import { CharTokenizer } from "../../lib/tokenizers/char.ts";
import {
  loadPromptSet,
  parseShard,
  planRecyncUnits,
  type RecyncExperimentOptions,
  type RecyncPrompt,
  type RecyncUnitRecord,
  runRecyncExperiment,
  selectShard,
} from "../../lib/recync/harness.ts";
import { readRecyncResults } from "../../lib/recync/report.ts";
import { readJsonl } from "../../lib/io/atomic.ts";
import { tinyRecyncModel, useBackend } from "../fixtures.ts";

await useBackend("cpu");

const PROMPTS: RecyncPrompt[] = [
  { id: "p1", text: "the quick brown fox" },
  { id: "p2", text: "to be or not" },
  { id: "p3", text: "once upon a time" },
];
const tokenizer = CharTokenizer.fromCorpus("abcdefghijklmnopqrstuvwxyz .,");

function tinyModel() {
  return tinyRecyncModel(tokenizer.vocabSize, 160, 5);
}

/** A record without its timing, for comparing runs. */
function stable(r: RecyncUnitRecord): unknown {
  const { elapsedMs: _e, ...rest } = r;
  return rest;
}

/**
 * Deep equality where numbers may differ by 1e-6: a different batch composition (other prompts, other
 * padding) changes the float rounding of matmuls in the last bits, never a token, event or restart.
 */
function assertClose(a: unknown, b: unknown, path = "record"): void {
  if (typeof a === "number" && typeof b === "number") {
    if (!(a === b || Math.abs(a - b) <= 1e-6)) throw new Error(`${path}: ${a} vs ${b}`);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) throw new Error(`${path}: length ${a.length} vs ${b.length}`);
    a.forEach((x, i) => assertClose(x, b[i], `${path}[${i}]`));
    return;
  }
  if (a && b && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a).sort(), kb = Object.keys(b).sort();
    assertEquals(ka, kb, `${path} keys`);
    for (const k of ka) {
      assertClose((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
    }
    return;
  }
  if (a !== b) throw new Error(`${path}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
}

async function withTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir();
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("prompt set: the shipped set has >= 60 prompts with unique ids; txt/json/jsonl and errors", async () => {
  const shipped = await loadPromptSet(
    new URL("../../data/prompts/recync_prompts.jsonl", import.meta.url).pathname,
  );
  assert(shipped.length >= 60, `only ${shipped.length} prompts`);
  assertEquals(new Set(shipped.map((p) => p.id)).size, shipped.length);
  assert(new Set(shipped.map((p) => p.category)).size >= 6);
  await withTemp(async (dir) => {
    await Deno.writeTextFile(`${dir}/a.txt`, "first line\n\nsecond\\nline\n");
    assertEquals(await loadPromptSet(`${dir}/a.txt`), [
      { id: "line-1", text: "first line" },
      { id: "line-2", text: "second\nline" },
    ]);
    await Deno.writeTextFile(`${dir}/b.json`, JSON.stringify(["x", { id: "k", text: "y" }]));
    assertEquals((await loadPromptSet(`${dir}/b.json`)).map((p) => p.id), ["line-1", "k"]);
    await Deno.writeTextFile(`${dir}/c.jsonl`, '{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n');
    let err = "";
    await loadPromptSet(`${dir}/c.jsonl`).catch((e) => err = e.message);
    assert(err.includes('duplicate prompt id "a"'), err);
    await Deno.writeTextFile(`${dir}/d.jsonl`, '{"id": "a"}\n');
    await loadPromptSet(`${dir}/d.jsonl`).catch((e) => err = e.message);
    assert(err.includes("entry 1") && err.includes('"text"'), err);
  });
});

Deno.test("prompts the model cannot run are listed, or skipped on request", async () => {
  const model = tinyModel();
  try {
    await withTemp(async (dir) => {
      const prompts = [
        { id: "ok", text: "the cat" },
        { id: "digits", text: "route 66" },
        { id: "long", text: "a".repeat(150) },
      ];
      const base = {
        model,
        tokenizer,
        modelLabel: "tiny",
        prompts,
        seeds: 1,
        T: 40,
        policy: "none" as const,
      };
      let err = "";
      await runRecyncExperiment({ ...base, out: `${dir}/a.jsonl` }).catch((e) => err = e.message);
      assert(err.includes("2 prompts cannot run") && err.includes("digits") && err.includes("long ("), err);
      assert(err.includes("--skip-unusable"), err);
      const notes: string[] = [];
      const s = await runRecyncExperiment({
        ...base,
        out: `${dir}/b.jsonl`,
        unusablePrompts: "skip",
        onNote: (n) => notes.push(n),
      });
      assertEquals(s.ran, 1);
      assert(notes[0].startsWith("skipped 2 of 3 prompts"), notes[0]);
    });
  } finally {
    model.dispose();
  }
});

Deno.test("plan and shards: deterministic ids, index mod n selection covers every unit once", () => {
  const units = planRecyncUnits({
    model: "m",
    prompts: PROMPTS,
    seeds: 4,
    baseSeed: 10,
    T: 50,
    policy: "v4",
  });
  assertEquals(units.length, 12);
  assertEquals(units[0].id, "m|p1|10|v4|50");
  assertEquals(units[3].id, "m|p1|11|v4|50");
  const shards = [0, 1, 2].map((i) => selectShard(units, parseShard(`${i}/3`)));
  assertEquals(shards.flat().map((u) => u.index).sort((a, b) => a - b), units.map((u) => u.index));
  assertEquals(shards[1].map((u) => u.index), [1, 4, 7, 10]);
  assertThrows(() => parseShard("3/3"), Error, "0 <= i < n");
  assertThrows(() => parseShard("a/b"), Error, "i/n");
  assertThrows(
    () => planRecyncUnits({ model: "m", prompts: PROMPTS, seeds: 1, T: 1, policy: "v4" }),
    Error,
    "T",
  );
});

Deno.test("runs are deterministic, resume after an interruption without losing or duplicating units, and shards merge to the same records", async () => {
  const model = tinyModel();
  try {
    await withTemp(async (dir) => {
      const base: Omit<RecyncExperimentOptions, "out"> = {
        model,
        tokenizer,
        modelLabel: "tiny",
        prompts: PROMPTS,
        seeds: 3,
        T: 80,
        policy: "v4",
        batchUnits: 4,
      };
      const full = await runRecyncExperiment({ ...base, out: `${dir}/full.jsonl` });
      assertEquals(full.ran, 9);
      const a = (await readJsonl<RecyncUnitRecord>(`${dir}/full.jsonl`)).records;
      assert(a.some((r) => r.restarts.length === 1), "no unit restarted: the test needs crises");
      assert(a.every((r) => r.prefixMatches));
      for (const r of a) {
        if (!r.intervened) continue;
        assertEquals(r.restarts[0].r, r.r);
        assertEquals(r.restarts[0].seed, r.seed + 10000);
        assertEquals(r.intervention.tokens.slice(0, r.r!), r.baseline.tokens.slice(0, r.r!));
      }

      // Interrupted after 5 units, then a crash tears a half-written line.
      const partial = await runRecyncExperiment({ ...base, out: `${dir}/resume.jsonl`, maxUnits: 5 });
      assertEquals(partial.ran, 5);
      await Deno.writeTextFile(`${dir}/resume.jsonl`, '{"schema":"coherence-lab/recync-unit@1","id":"ti', {
        append: true,
      });
      const rest = await runRecyncExperiment({ ...base, out: `${dir}/resume.jsonl` });
      assertEquals([rest.skipped, rest.ran], [5, 4]);
      const again = await runRecyncExperiment({ ...base, out: `${dir}/resume.jsonl` });
      assertEquals([again.skipped, again.ran], [9, 0]);
      const b = await readJsonl<RecyncUnitRecord>(`${dir}/resume.jsonl`);
      assertEquals(b.tornTail, null);
      assertEquals(b.records.map((r) => r.id), a.map((r) => r.id));
      assertClose(b.records.map(stable), a.map(stable));
      // The same batches give bit-identical records (seeded determinism).
      const rerun = await runRecyncExperiment({ ...base, out: `${dir}/rerun.jsonl` });
      assertEquals(rerun.ran, 9);
      const c = (await readJsonl<RecyncUnitRecord>(`${dir}/rerun.jsonl`)).records;
      assertEquals(c.map(stable), a.map(stable));
      // Without pipelining a rewound row's cache has one column fewer: same tokens, floats within 1e-6.
      await runRecyncExperiment({ ...base, out: `${dir}/nopipe.jsonl`, pipeline: false });
      assertClose(
        (await readJsonl<RecyncUnitRecord>(`${dir}/nopipe.jsonl`)).records.map(stable),
        a.map(stable),
      );

      // Shards batch different units together; rows are independent, so records are identical.
      for (const i of [0, 1]) {
        await runRecyncExperiment({
          ...base,
          out: `${dir}/s${i}.jsonl`,
          shard: { index: i, count: 2 },
          batchUnits: 3,
        });
      }
      const merged = await readRecyncResults([`${dir}/s0.jsonl`, `${dir}/s1.jsonl`, `${dir}/s1.jsonl`]);
      assertEquals(merged.duplicates, (await readJsonl(`${dir}/s1.jsonl`)).records.length);
      const byId = new Map(a.map((r) => [r.id, stable(r)]));
      assertEquals(merged.records.length, 9);
      for (const r of merged.records) assertClose(stable(r), byId.get(r.id), r.id);
    });
  } finally {
    model.dispose();
  }
});

Deno.test("v3 and none policies; 2R allows a second restart at seed + 20000", async () => {
  const model = tinyModel();
  try {
    await withTemp(async (dir) => {
      const base = {
        model,
        tokenizer,
        modelLabel: "tiny",
        prompts: PROMPTS,
        seeds: 3,
        T: 100,
        batchUnits: 9,
      };
      await runRecyncExperiment({ ...base, policy: "v3", out: `${dir}/v3.jsonl` });
      const v3 = (await readJsonl<RecyncUnitRecord>(`${dir}/v3.jsonl`)).records;
      assert(v3.some((r) => r.interventions.some((e) => e.detail?.action === "apply")));
      assert(v3.every((r) => r.prefixMatches && r.restarts.length === 0));
      for (const r of v3.filter((r) => r.intervened)) {
        const apply = r.interventions.find((e) => e.detail?.action === "apply")!;
        // Sampling changes from the token after the confirming step: everything up to it is shared.
        assertEquals(
          r.intervention.tokens.slice(0, apply.step + 1),
          r.baseline.tokens.slice(0, apply.step + 1),
        );
      }
      // With the CBF safety filter the harness probes Z(t) on the device and the filter sees it.
      await runRecyncExperiment({
        ...base,
        seeds: 1,
        policy: "v3",
        v3: { cbf: {} },
        out: `${dir}/cbf.jsonl`,
      });
      const cbf = (await readJsonl<RecyncUnitRecord>(`${dir}/cbf.jsonl`)).records;
      const filtered = cbf.flatMap((r) => r.interventions).filter((e) => e.detail?.action === "apply");
      assert(filtered.length > 0 && filtered.every((e) => typeof e.detail?.qpChanged === "boolean"));
      await runRecyncExperiment({ ...base, policy: "none", out: `${dir}/none.jsonl` });
      const none = (await readJsonl<RecyncUnitRecord>(`${dir}/none.jsonl`)).records;
      assert(none.every((r) => !r.intervened && r.metrics === null));
      assert(none.every((r) => JSON.stringify(r.intervention.tokens) === JSON.stringify(r.baseline.tokens)));
      await runRecyncExperiment({ ...base, policy: "v4-2r", seeds: 6, out: `${dir}/2r.jsonl` });
      const two = (await readJsonl<RecyncUnitRecord>(`${dir}/2r.jsonl`)).records;
      const second = two.flatMap((r) =>
        r.restarts.filter((x) => x.restart === 2).map((x) => [r.seed, x] as const)
      );
      assert(second.length > 0, "no second restart happened");
      for (const [seed, x] of second) assertEquals(x.seed, seed + 20000);
      assert(two.every((r) => r.restarts.length <= 2));
      // The arms share the prefix before the smallest rewind point, where the outcome segment starts.
      assert(two.every((r) => r.prefixMatches));
      for (const r of two.filter((x) => x.metrics)) {
        assertEquals(r.metrics!.from, Math.min(...r.restarts.map((x) => x.r)));
      }
    });
  } finally {
    model.dispose();
  }
});

Deno.test("no tensor leak across 100 units", async () => {
  const model = tinyModel();
  try {
    await withTemp(async (dir) => {
      const prompts = Array.from(
        { length: 10 },
        (_, i) => ({ id: `q${i}`, text: `prompt number ${"abcdefghij"[i]}` }),
      );
      // One warm-up unit first: a backend may create a persistent tensor on first use (wasm does).
      await runRecyncExperiment({
        model,
        tokenizer,
        modelLabel: "warm",
        prompts: prompts.slice(0, 1),
        seeds: 1,
        T: 40,
        policy: "v4",
        out: `${dir}/warm.jsonl`,
      });
      const before = tf.memory().numTensors;
      const s = await runRecyncExperiment({
        model,
        tokenizer,
        modelLabel: "tiny",
        prompts,
        seeds: 10,
        T: 40,
        policy: "v4",
        batchUnits: 50,
        out: `${dir}/leak.jsonl`,
      });
      assertEquals(s.ran, 100);
      assertEquals(tf.memory().numTensors, before);
      const recs = (await readJsonl<RecyncUnitRecord>(`${dir}/leak.jsonl`)).records;
      assert(recs.some((r) => r.restarts.length > 0));
    });
  } finally {
    model.dispose();
  }
});

// ---- The command line (deno task recync run/report). ----
import { recyncMain } from "../../lib/cli/recync.ts";

const DEMO = new URL("../../data/models/shakespeare-char", import.meta.url).pathname;
let demoPresent = false;
try {
  demoPresent = (await Deno.readDir(DEMO)[Symbol.asyncIterator]().next()).done === false;
} catch { /* absent */ }

Deno.test("cli: bad arguments give clear errors", async () => {
  const err = async (args: string[]) => {
    try {
      await recyncMain(args);
    } catch (e) {
      return (e as Error).message;
    }
    return "";
  };
  assert((await err(["frobnicate"])).includes("unknown command 'frobnicate'"));
  assert((await err(["run", "--prompts", "x.jsonl", "--out", "o.jsonl"])).includes("--model is required"));
  assert(
    (await err(["run", "--model", "m", "--prompts", "p", "--out", "o", "--policy", "v9"])).includes(
      "v4, v4-2r, v4-same-seed, sham-random, sham-matched, v3, v3-cbf, none",
    ),
  );
  assert((await err(["report"])).includes("at least one results"));
  assert((await err(["report", "a.jsonl", "--outcome", "joy"])).includes("--outcome 'joy'"));
});

Deno.test({
  name: "cli: run (resumable, sharded) and report on the bundled demo model",
  ignore: !demoPresent,
  fn: async () => {
    await withTemp(async (dir) => {
      const prompts = `${dir}/p.txt`;
      await Deno.writeTextFile(prompts, "ROMEO:\nJULIET:\nFirst Citizen:\n");
      const common = ["--model", DEMO, "--prompts", prompts, "--seeds", "2", "--T", "60", "--backend", "cpu"];
      for (const shard of ["0/2", "1/2"]) {
        await recyncMain([
          "run",
          ...common,
          "--policy",
          "v4",
          "--out",
          `${dir}/s${shard[0]}.jsonl`,
          "--shard",
          shard,
        ]);
      }
      const a = (await readJsonl<RecyncUnitRecord>(`${dir}/s0.jsonl`)).records;
      const b = (await readJsonl<RecyncUnitRecord>(`${dir}/s1.jsonl`)).records;
      assertEquals(a.length + b.length, 6);
      assert(a.every((r) => r.index % 2 === 0) && b.every((r) => r.index % 2 === 1));
      await recyncMain(["run", ...common, "--policy", "v4", "--out", `${dir}/s0.jsonl`, "--shard", "0/2"]);
      assertEquals((await readJsonl(`${dir}/s0.jsonl`)).records.length, a.length); // resumed: nothing new
      await recyncMain([
        "report",
        `${dir}/s0.jsonl`,
        `${dir}/s1.jsonl`,
        "--out-dir",
        `${dir}/rep`,
        "--resamples",
        "200",
      ]);
      const table = await Deno.readTextFile(`${dir}/rep/table.md`);
      assert(table.includes("| v4 | 60 |"), table);
      for (const f of ["forest.svg", "forest.png", "summary.json"]) {
        assert((await Deno.stat(`${dir}/rep/${f}`)).size > 0);
      }
    });
  },
});
