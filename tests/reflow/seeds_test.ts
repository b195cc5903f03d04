/**
 * tools/reflow_seeds.ts: one JSON line per finished run, a rerun skips finished runs, and the reFlow runs
 * carry their sparsity and basis-geometry numbers. Self-contained (a temporary corpus, tiny models).
 */
import { assert, assertEquals } from "../assert.ts";
import { readJsonl } from "../../lib/io/atomic.ts";

const TOOL = new URL("../../tools/reflow_seeds.ts", import.meta.url).pathname;

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", TOOL, ...args] }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("reflow_seeds: resumable JSONL, finished runs skipped, reFlow sparsity and geometry recorded", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/corpus.txt`, "to be or not to be, that is the question. ".repeat(80));
    const config = (preset: string) => ({
      model: {
        preset,
        nLayers: 1,
        dModel: 32,
        nHeads: 2,
        ...(preset === "reflow-tiny" ? { embedding: { kind: "reflow", signals: 16 } } : {}),
      },
      data: { corpus: `${dir}/corpus.txt`, tokenizer: "char", valFraction: 0.2 },
      training: { steps: 2, batchSize: 2, blockSize: 16 },
      eval: { interval: 2, batches: 1 },
    });
    await Deno.writeTextFile(`${dir}/a.json`, JSON.stringify(config("reflow-tiny")));
    await Deno.writeTextFile(`${dir}/b.json`, JSON.stringify(config("reflow-gpt2-new-tiny")));
    const args = [
      "--out",
      `${dir}/out`,
      "--configs",
      `${dir}/a.json,${dir}/b.json`,
      "--seeds",
      "1,2",
      "--backend",
      "cpu",
    ];
    const first = await run(args);
    assertEquals(first.code, 0, first.stderr);
    const { records } = await readJsonl<Record<string, unknown>>(`${dir}/out/runs.jsonl`);
    assertEquals(records.length, 4);
    const rf = records.filter((r) => r.config === `${dir}/a.json`);
    assertEquals(rf.length, 2);
    for (const r of rf) {
      const m = r.reflow as {
        activeSignalsMean: number;
        usageGini: number;
        effectiveRank: number;
        silhouette: number | null;
        algebraTriples: number;
      };
      assert(
        m && m.activeSignalsMean > 0 && m.usageGini >= 0 && m.usageGini < 1 && m.effectiveRank > 1,
        JSON.stringify(m),
      );
      // A character tokenizer has none of the word probes: the word scores are recorded as absent.
      assertEquals([m.silhouette, m.algebraTriples], [null, 0]);
    }
    assert(records.every((r) => Number.isFinite(r.valLoss as number)));
    assert(first.stdout.includes("reFlow − baseline"), first.stdout);
    const second = await run(args);
    assertEquals(second.code, 0, second.stderr);
    assertEquals(second.stderr.match(/finished earlier/g)?.length, 4);
    assertEquals((await readJsonl(`${dir}/out/runs.jsonl`)).records.length, 4); // nothing appended twice
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
