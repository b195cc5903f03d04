/**
 * Checkpoints never regress: state that parses but is wrong, NaN weights, a missing AdamW moment or a
 * missing `latest` are refused before the first step, in the user's terms, offering (or with
 * --resume-good taking) the newest good older checkpoint; keepLast never deletes the newest good one;
 * log.jsonl has no re-done steps twice.
 */
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import { readJsonl } from "../../lib/io/atomic.ts";
import { readSafetensors, writeSafetensors } from "../../lib/io/safetensors.ts";
import { listCheckpoints, saveCheckpoint } from "../../lib/train/checkpoint.ts";
import { trainFromConfig } from "../../lib/train/run.ts";
import { parseTrainArgs } from "../../lib/cli/train.ts";
import { tmpDir } from "../io/tmp.ts";
import { useBackend } from "../fixtures.ts";

await useBackend("cpu");

/** A finished 2-step run with checkpoints step-1 and step-2 (latest). */
async function twoStepRun(): Promise<{ out: string; cfg: Record<string, unknown> }> {
  const dir = await tmpDir();
  const corpus = `${dir}/corpus.txt`;
  await Deno.writeTextFile(corpus, "the quick brown fox jumps over the lazy dog. ".repeat(20));
  const cfg = {
    model: { preset: "gpt2-new" as const, nLayers: 1, dModel: 16, nHeads: 2 },
    data: { corpus },
    training: { steps: 2, batchSize: 2, blockSize: 8 },
    log: { interval: 1 },
    checkpoint: { interval: 1, keepLast: 3 },
  };
  const out = `${dir}/run`;
  const r = await trainFromConfig({ config: cfg, outDir: out, print: false, handleSigint: false });
  r.model.dispose();
  return { out, cfg };
}

const S1 = "step-00000001", S2 = "step-00000002";

async function editState(out: string, edit: (s: Record<string, unknown>) => void) {
  const p = `${out}/checkpoints/${S2}/state.json`;
  const s = JSON.parse(await Deno.readTextFile(p));
  edit(s);
  await Deno.writeTextFile(p, JSON.stringify(s));
}

async function editTensors(
  path: string,
  edit: (m: Map<string, { dtype: string; shape: number[]; data: Float32Array }>) => void,
) {
  const m = await readSafetensors(path) as unknown as Map<
    string,
    { dtype: string; shape: number[]; data: Float32Array }
  >;
  edit(m);
  await writeSafetensors(path, m as never);
}

const resume = (out: string, cfg: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  trainFromConfig({
    config: cfg as never,
    outDir: out,
    steps: 3,
    resume: true,
    print: false,
    handleSigint: false,
    ...extra,
  });

const corruptions: [string, (out: string) => Promise<void>, string][] = [
  [
    'optimizerStep: "eight"',
    (o) => editState(o, (s) => void (s.optimizerStep = "eight")),
    `"optimizerStep": "eight"`,
  ],
  ["step: 3.5", (o) => editState(o, (s) => void (s.step = 3.5)), `"step": 3.5; it must be a whole number`],
  ["step: 1e9", (o) => editState(o, (s) => void (s.step = 1e9)), `the folder is ${S2}`],
  [
    'sampler: "x"',
    (o) => editState(o, (s) => void (s.sampler = "x")),
    `"sampler": "x"; it must be an object`,
  ],
  ["a missing AdamW moment", async (o) => {
    await editTensors(`${o}/checkpoints/${S2}/optimizer.safetensors`, (m) => {
      m.delete([...m.keys()].find((k) => k.startsWith("v."))!);
    });
  }, "lacks AdamW moments needed for an exact resume: v."],
  ["NaN weights", async (o) => {
    await editTensors(`${o}/checkpoints/${S2}/model.safetensors`, (m) => {
      for (const t of m.values()) t.data.fill(NaN);
    });
  }, "has a non-finite value (NaN)"],
];

for (const [name, corrupt, expected] of corruptions) {
  Deno.test(`--resume on a latest checkpoint with ${name}: refused naming file and field, offering the good one`, async () => {
    const { out, cfg } = await twoStepRun();
    await corrupt(out);
    const before = tf.memory().numTensors;
    const err = await assertRejects(() => resume(out, cfg), Error, expected);
    assert(err.message.includes(`${out}/checkpoints/${S2}/`), err.message);
    assert(err.message.includes(`newest good older checkpoint is ${out}/checkpoints/${S1}`), err.message);
    assert(err.message.includes("--resume-good"), err.message);
    assert(!/Prng|BatchSampler|DecoderConfig/.test(err.message), err.message);
    assertEquals(tf.memory().numTensors, before);
    // Nothing was trained or deleted.
    assertEquals(await listCheckpoints(`${out}/checkpoints`), [S1, S2]);
  });
}

Deno.test("--resume-good takes the newest good older checkpoint, and log.jsonl does not repeat re-done steps", async () => {
  const { out, cfg } = await twoStepRun();
  await editState(out, (s) => void (s.step = 3.5));
  const skipped: string[] = [];
  const r = await resume(out, cfg, { resumeGood: true });
  r.model.dispose();
  assertEquals(r.step, 3);
  const { records } = await readJsonl<{ kind: string; step: number }>(`${out}/log.jsonl`);
  const keys = records.map((x) => `${x.kind}@${x.step}`);
  assertEquals(keys.length, new Set(keys).size, `duplicated log records: ${keys.join(" ")}`);
  assert(records.some((x) => x.step === 3));
  void skipped;
});

Deno.test("the CLI has --resume-good", () => {
  const a = parseTrainArgs(["--config", "c.json", "--out", "o", "--resume-good"]);
  assertEquals([a?.resume, a?.resumeGood], [true, true]);
});

Deno.test("a missing latest pointer with step folders says so and names them", async () => {
  const { out, cfg } = await twoStepRun();
  await Deno.remove(`${out}/checkpoints/latest`);
  const err = await assertRejects(() => resume(out, cfg), Error, "but no 'latest' file");
  assert(err.message.includes(`${S1}, ${S2}`), err.message);
  const r = await resume(out, cfg, { resumeGood: true });
  r.model.dispose();
  assertEquals(r.step, 3);
});

Deno.test("keepLast never deletes the newest good checkpoint when a NaN one is saved", async () => {
  const dir = await tmpDir();
  const w = (v: number) => new Map([["w", tf.tensor1d([v, 1])]]);
  const state = (step: number) => ({ format: "coherence-lab/checkpoint@1" as const, step });
  const save = async (step: number, v: number) => {
    const weights = w(v);
    await saveCheckpoint(dir, { weights, optimizer: new Map(), state: state(step) }, { keepLast: 1 });
    tf.dispose([...weights.values()]);
  };
  await save(1, 0.5);
  await save(2, NaN);
  await save(3, Infinity);
  assertEquals(await listCheckpoints(dir), ["step-00000001", "step-00000002", "step-00000003"]);
  await save(4, 0.25);
  assertEquals(await listCheckpoints(dir), ["step-00000004"]);
});
