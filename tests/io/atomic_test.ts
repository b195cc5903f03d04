import { assert, assertEquals, assertRejects } from "../assert.ts";
import {
  appendJsonl,
  readJsonl,
  writeFileAtomic,
  writeFileAtomicWith,
  writeJsonAtomic,
  writeTextAtomic,
} from "../../lib/io/atomic.ts";
import { tmpDir } from "./tmp.ts";

function listDir(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

Deno.test("atomic writers replace the file and leave no temp files", async () => {
  const dir = await tmpDir();
  const path = `${dir}/state.json`;
  await writeJsonAtomic(path, { step: 1 });
  await writeJsonAtomic(path, { step: 2, nested: [1, 2] });
  assertEquals(JSON.parse(await Deno.readTextFile(path)), { step: 2, nested: [1, 2] });
  assert((await Deno.readTextFile(path)).endsWith("\n"));
  await writeTextAtomic(`${dir}/a.txt`, "héllo");
  assertEquals(await Deno.readTextFile(`${dir}/a.txt`), "héllo");
  await writeFileAtomic(`${dir}/b.bin`, new Uint8Array([1, 2, 3]));
  assertEquals(await Deno.readFile(`${dir}/b.bin`), new Uint8Array([1, 2, 3]));
  // A relative path resolves against the working directory.
  const cwd = Deno.cwd();
  Deno.chdir(dir);
  try {
    await writeTextAtomic("rel.txt", "r");
  } finally {
    Deno.chdir(cwd);
  }
  assertEquals(listDir(dir), ["a.txt", "b.bin", "rel.txt", "state.json"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a failure at any stage leaves the previous file intact and removes the temp file", async () => {
  const dir = await tmpDir();
  const path = `${dir}/ckpt.bin`;
  await writeFileAtomic(path, new Uint8Array([1, 1, 1]));
  const fail = () => {
    throw new Error("simulated failure");
  };
  const stages = [
    { beforeWrite: (_t: string, written: number) => written > 0 ? fail() : undefined },
    { beforeSync: fail },
    { beforeRename: fail },
  ];
  for (const hooks of stages) {
    let sawTemp = "";
    await assertRejects(
      () =>
        writeFileAtomicWith(path, async (sink) => {
          sawTemp = sink.tempPath;
          await sink.write(new Uint8Array([2, 2]));
          await sink.write(new Uint8Array([2, 2]));
        }, { hooks }),
      Error,
      "simulated failure",
    );
    assert(sawTemp.startsWith(`${dir}/.ckpt.bin.tmp-`), sawTemp);
    assertEquals(await Deno.readFile(path), new Uint8Array([1, 1, 1]));
    assertEquals(listDir(dir), ["ckpt.bin"]);
  }
  // A producer that throws half way behaves the same.
  await assertRejects(
    () =>
      writeFileAtomicWith(path, async (sink) => {
        await sink.write(new Uint8Array(1000));
        throw new Error("producer died");
      }),
    Error,
    "producer died",
  );
  assertEquals(await Deno.readFile(path), new Uint8Array([1, 1, 1]));
  assertEquals(listDir(dir), ["ckpt.bin"]);
  await assertRejects(() => writeTextAtomic(`${dir}/no/such/dir/x.txt`, "x"), Error, "does not exist");
  // Non-serialisable JSON fails before touching the disk.
  await assertRejects(() => writeJsonAtomic(path, undefined), Error, "not JSON-serialisable");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("streamed writes of many chunks arrive complete", async () => {
  const dir = await tmpDir();
  const path = `${dir}/big.bin`;
  const chunk = new Uint8Array(1 << 16).map((_, i) => i & 0xff);
  await writeFileAtomicWith(path, async (sink) => {
    for (let i = 0; i < 64; i++) await sink.write(chunk);
    assertEquals(sink.bytesWritten, 64 << 16);
  });
  const got = await Deno.readFile(path);
  assertEquals(got.length, 64 << 16);
  assertEquals(got.subarray(got.length - 3), new Uint8Array([253, 254, 255]));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("appendJsonl and readJsonl, including a torn last line", async () => {
  const dir = await tmpDir();
  const path = `${dir}/log.jsonl`;
  assertEquals(await readJsonl(path, { allowMissing: true }), { records: [], tornTail: null });
  await assertRejects(() => readJsonl(path), Deno.errors.NotFound);
  await appendJsonl(path, { step: 1, text: "line\nbreak" });
  await appendJsonl(path, { step: 2 });
  assertEquals(await readJsonl(path), {
    records: [{ step: 1, text: "line\nbreak" }, { step: 2 }],
    tornTail: null,
  });

  // A crash mid-append leaves a fragment without a newline: reported, not thrown.
  await Deno.writeTextFile(path, '{"step": 3, "lo', { append: true });
  const torn = await readJsonl(path);
  assertEquals(torn.records, [{ step: 1, text: "line\nbreak" }, { step: 2 }]);
  assertEquals(torn.tornTail, { line: 3, text: '{"step": 3, "lo' });

  // The next append cuts the fragment off, so the new record is a clean line.
  await appendJsonl(path, { step: 3 });
  const healed = await readJsonl<{ step: number }>(path);
  assertEquals(healed.records.map((r) => r.step), [1, 2, 3]);
  assertEquals(healed.tornTail, null);

  // A complete last record lacking only its newline is kept.
  await Deno.writeTextFile(path, '{"step": 4}', { append: true });
  await appendJsonl(path, { step: 5 });
  assertEquals((await readJsonl<{ step: number }>(path)).records.map((r) => r.step), [1, 2, 3, 4, 5]);

  // Corruption in the middle is an error naming the line.
  await Deno.writeTextFile(path, '{"step": 1}\ngarbage\n{"step": 2}\n');
  await assertRejects(() => readJsonl(path), Error, `${path}:2 is not valid JSON`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("torn tails longer than the read-back chunk are cut correctly", async () => {
  const dir = await tmpDir();
  const path = `${dir}/log.jsonl`;
  await appendJsonl(path, { a: 1 });
  await Deno.writeTextFile(path, '{"blob": "' + "x".repeat(200_000), { append: true });
  await appendJsonl(path, { a: 2 });
  assertEquals(await readJsonl(path), { records: [{ a: 1 }, { a: 2 }], tornTail: null });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("concurrent appends never interleave inside a line", async () => {
  const dir = await tmpDir();
  const path = `${dir}/log.jsonl`;
  const payload = "y".repeat(5000);
  await Promise.all(Array.from({ length: 40 }, (_, i) => appendJsonl(path, { i, payload })));
  const { records, tornTail } = await readJsonl<{ i: number; payload: string }>(path);
  assertEquals(tornTail, null);
  assertEquals(records.map((r) => r.i).sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i));
  assert(records.every((r) => r.payload === payload));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("appendJsonl creates the log's missing parent folders (a fresh clone has no results/)", async () => {
  const dir = await tmpDir();
  await appendJsonl(`${dir}/results/deep/v4.jsonl`, { unit: 1 });
  assertEquals((await readJsonl(`${dir}/results/deep/v4.jsonl`)).records, [{ unit: 1 }]);
});
