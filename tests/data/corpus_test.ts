import { loadCorpus, NAMED_CORPORA, sha256Hex } from "../../lib/data/corpus.ts";
import { assert, assertJsonEquals as assertEquals, assertRejects } from "../assert.ts";

const SHARED = new URL("../../../shared/data/", import.meta.url).pathname;
const hasShared = await Deno.stat(`${SHARED}/tinyshakespeare/input.txt`).then(() => true, () => false);

Deno.test("a file, and a folder of files in sorted order", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/b.txt`, "second");
  await Deno.mkdir(`${dir}/a`);
  await Deno.writeTextFile(`${dir}/a/1.txt`, "first");
  await Deno.writeTextFile(`${dir}/.hidden`, "skipped");
  const folder = await loadCorpus(dir);
  assertEquals(folder.text, "first\nsecond");
  assertEquals(folder.origin, "folder");
  const file = await loadCorpus(`${dir}/b.txt`);
  assertEquals(file.text, "second");
});

Deno.test("bad sources get one clear message each", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/empty.txt`, "");
  await assertRejects(() => loadCorpus(`${dir}/empty.txt`), Error, "is empty");
  await assertRejects(() => loadCorpus("shakespear"), Error, "tinyshakespeare, wikitext-2");
  await Deno.mkdir(`${dir}/none`);
  await assertRejects(() => loadCorpus(`${dir}/none`), Error, "holds no files");
  await assertRejects(
    () => loadCorpus("tinyshakespeare", { dataDir: `${dir}/nope` }),
    Error,
    `data folder '${dir}/nope'`,
  );
  await assertRejects(
    () => loadCorpus("wikitext-2", { split: "dev", dataDir: dir }),
    Error,
    "train, valid, test",
  );
  await assertRejects(
    () => loadCorpus("tinyshakespeare", { dataDir: dir, cacheDir: `${dir}/cache`, download: false }),
    Error,
    "downloads are off",
  );
});

Deno.test({
  name: "named corpora from the offline data folder, hash-checked",
  ignore: !hasShared,
  fn: async () => {
    const ts = await loadCorpus("tinyshakespeare", { dataDir: SHARED, download: false });
    assertEquals(ts.text.length, 1115394);
    assertEquals(ts.origin, "data-dir");
    const wt = await loadCorpus("wikitext-2", { dataDir: SHARED, split: "valid", download: false });
    assert(wt.text.includes("<unk>"));
  },
});
if (!hasShared) console.log("note: ../shared/data absent; skipping the offline data-folder test");

Deno.test("download from a local server into the cache, sha256 checked, then served from the cache", async () => {
  const body = "First Citizen:\nBefore we proceed any further, hear me speak.\n";
  const bytes = new TextEncoder().encode(body);
  let hits = 0;
  let serve = bytes;
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    (req) => {
      hits++;
      return new URL(req.url).pathname.endsWith("input.txt")
        ? new Response(serve)
        : new Response("no", { status: 404 });
    },
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const spec = NAMED_CORPORA.tinyshakespeare.files[0];
  const saved = spec.sha256;
  const cache = await Deno.makeTempDir();
  try {
    (spec as { sha256?: string }).sha256 = await sha256Hex(bytes);
    const mirror = { from: "https://raw.githubusercontent.com", to: base };
    const a = await loadCorpus("tinyshakespeare", { cacheDir: cache, mirror, dataDir: undefined });
    assertEquals(a.origin, "download");
    assertEquals(a.text, body);
    const b = await loadCorpus("tinyshakespeare", { cacheDir: cache, mirror });
    assertEquals(b.origin, "cache");
    assertEquals(hits, 1);
    // A corrupted download is refused and nothing is written to the cache.
    const cache2 = await Deno.makeTempDir();
    serve = new TextEncoder().encode(body + "tampered");
    await assertRejects(() => loadCorpus("tinyshakespeare", { cacheDir: cache2, mirror }), Error, "sha256");
    assertEquals(
      [...Deno.readDirSync(cache2)].flatMap((e) =>
        e.isDirectory ? [...Deno.readDirSync(`${cache2}/${e.name}`)] : [e]
      ).length,
      0,
    );
    // A corrupt cached file is named.
    await Deno.writeTextFile(`${cache}/tinyshakespeare/input.txt`, "garbage");
    await assertRejects(
      () => loadCorpus("tinyshakespeare", { cacheDir: cache, mirror }),
      Error,
      `${cache}/tinyshakespeare/input.txt`,
    );
    // A server error says what to do.
    await assertRejects(
      () => loadCorpus("wikitext-2", { split: "test", cacheDir: cache, mirror }),
      Error,
      "HTTP 404",
    );
  } finally {
    (spec as { sha256?: string }).sha256 = saved;
    ac.abort();
    await server.finished;
  }
});
