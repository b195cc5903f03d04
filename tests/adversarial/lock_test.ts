/**
 * One writer per output: a second process on the same `recync run --out` or training run folder refuses
 * with a clear message; a lock left by a killed process is recovered.
 */
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { acquireLock, LockHeldError } from "../../lib/io/lock.ts";
import { trainFromConfig } from "../../lib/train/run.ts";
import { runRecyncExperiment } from "../../lib/recync/harness.ts";
import { createDecoder, gpt2NewConfig } from "../../lib/models/scratch.ts";
import { CharTokenizer } from "../../lib/tokenizers/char.ts";
import { tmpDir } from "../io/tmp.ts";
import { useBackend } from "../fixtures.ts";

await useBackend("cpu");

Deno.test("a held lock refuses a second taker, naming the owner; release frees it", async () => {
  const dir = await tmpDir();
  const a = await acquireLock(`${dir}/x.lock`, { what: "the output" });
  const err = await assertRejects(() => acquireLock(`${dir}/x.lock`, { what: "the output" }), LockHeldError);
  assert(err.message.includes(`the output is in use by another process (pid ${Deno.pid}`), err.message);
  await a.release();
  const b = await acquireLock(`${dir}/x.lock`);
  await b.release();
  assertEquals([...Deno.readDirSync(dir)].length, 0);
});

Deno.test("a stale lock (dead pid) or an old torn lock is taken over; a fresh torn one is not", async () => {
  const dir = await tmpDir();
  await Deno.writeTextFile(
    `${dir}/x.lock`,
    JSON.stringify({ pid: 999999999, host: Deno.hostname(), since: "then" }),
  );
  const a = await acquireLock(`${dir}/x.lock`);
  await a.release();
  await Deno.writeTextFile(`${dir}/y.lock`, "{tor");
  await assertRejects(() => acquireLock(`${dir}/y.lock`), LockHeldError);
  const old = new Date(Date.now() - 3600_000);
  await Deno.utime(`${dir}/y.lock`, old, old);
  const b = await acquireLock(`${dir}/y.lock`);
  await b.release();
});

Deno.test("a lock held by another live process is refused; after that process is SIGKILLed it is recovered", async () => {
  const dir = await tmpDir();
  const lockUrl = new URL("../../lib/io/lock.ts", import.meta.url).href;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { acquireLock } from "${lockUrl}"; await acquireLock("${dir}/out.lock"); ` +
      `console.log("locked"); await new Promise(() => setInterval(() => {}, 1000));`,
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const reader = child.stdout.getReader();
    const { value } = await reader.read();
    assertEquals(new TextDecoder().decode(value).trim(), "locked");
    reader.releaseLock();
    const err = await assertRejects(() => acquireLock(`${dir}/out.lock`), LockHeldError);
    assertEquals(err.owner.pid, child.pid);
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await child.stdout.cancel().catch(() => {});
  }
  const lock = await acquireLock(`${dir}/out.lock`);
  await lock.release();
});

Deno.test("training: a run folder in use by another trainer is refused before anything is written", async () => {
  const dir = await tmpDir();
  const corpus = `${dir}/corpus.txt`;
  await Deno.writeTextFile(corpus, "the quick brown fox jumps over the lazy dog. ".repeat(20));
  const out = `${dir}/run`;
  await Deno.mkdir(out);
  const other = await acquireLock(`${out}/.lock`);
  try {
    const cfg = {
      model: { preset: "gpt2-new" as const, nLayers: 1, dModel: 16, nHeads: 2 },
      data: { corpus },
      training: { steps: 1, batchSize: 2, blockSize: 8 },
    };
    await assertRejects(
      () => trainFromConfig({ config: cfg, outDir: out, print: false, handleSigint: false }),
      Error,
      `training run folder "${out}" is in use by another process`,
    );
    assertEquals([...Deno.readDirSync(out)].map((e) => e.name), [".lock"]);
  } finally {
    await other.release();
  }
});

Deno.test("recync: a second writer on the same --out refuses; another --out is unaffected; the lock is released", async () => {
  const dir = await tmpDir();
  const tokenizer = CharTokenizer.fromCorpus("abcdefghijklmnopqrstuvwxyz ");
  const model = createDecoder(
    gpt2NewConfig({ nLayers: 1, dModel: 16, nHeads: 2, vocabSize: tokenizer.vocabSize, maxPositions: 96 }),
    { seed: 1 },
  );
  try {
    const opts = {
      model,
      tokenizer,
      modelLabel: "tiny",
      prompts: [{ id: "a", text: "the cat" }],
      seeds: 1,
      T: 60,
      policy: "none" as const,
    };
    const out = `${dir}/a.jsonl`;
    const other = await acquireLock(`${out}.lock`);
    await assertRejects(
      () => runRecyncExperiment({ ...opts, out }),
      Error,
      `recync output "${out}" is in use`,
    );
    await other.release();
    const s = await runRecyncExperiment({ ...opts, out: `${dir}/b.jsonl` });
    assertEquals(s.ran, 1);
    assert(!(await Deno.stat(`${dir}/b.jsonl.lock`).then(() => true, () => false)), "lock left behind");
  } finally {
    model.dispose();
  }
});
