import { createHash } from "node:crypto";
import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import {
  hubCacheDir,
  parseHubSource,
  resolveModelSource,
  resolveModelSourceDetailed,
  type ResolveModelSourceOptions,
} from "../../lib/io/hub.ts";
import { encodeSafetensors, openCheckpoint } from "../../lib/io/safetensors.ts";
import { tmpDir } from "./tmp.ts";

const enc = new TextEncoder();
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex") as string;
const gitSha1 = (b: Uint8Array) =>
  createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex") as string;
const COMMIT_A = "0123456789abcdef0123456789abcdef01234567";

interface FakeRepo {
  commit: string;
  files: Record<string, Uint8Array<ArrayBuffer>>;
}

/** Tampering switches for one test. */
interface Tamper {
  corruptBytes?: Set<string>;
  wrongSize?: Set<string>;
  commitHeader?: string;
  etag?: Record<string, string>;
  /** Renamed repos: old id -> new id, answered with a relative 307 like the Hub. */
  renamed?: Record<string, string>;
}

/**
 * A small Hub on 127.0.0.1: `/{repo}/resolve/{rev}/{file}` answers like huggingface.co (X-Repo-Commit,
 * ETag = git blob sha1 for plain files; for *.safetensors a 302 to `/cdn/...` carrying X-Linked-Etag =
 * sha256 and X-Linked-Size), 404s with X-Error-Code.
 */
function startHub(repos: Record<string, FakeRepo>, tamper: Tamper = {}) {
  const requests: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const url = new URL(req.url);
    requests.push(url.pathname);
    const cdn = url.pathname.match(/^\/cdn\/(.+?)\/-\/(.+)$/);
    if (cdn) {
      const repo = repos[decodeURIComponent(cdn[1])];
      const file = decodeURIComponent(cdn[2]);
      let bytes = repo?.files[file];
      if (!bytes) return new Response("no", { status: 404 });
      if (tamper.corruptBytes?.has(file)) {
        bytes = bytes.slice();
        bytes[bytes.length - 1] ^= 0xff;
      }
      return new Response(bytes);
    }
    const m = url.pathname.match(/^\/(.+?)\/resolve\/([^/]+)\/(.+)$/);
    if (!m) return new Response("bad path", { status: 400 });
    const [, repoId, revRaw, fileRaw] = m;
    const repo = repos[repoId];
    const moved = tamper.renamed?.[repoId];
    if (!repo && moved) {
      return new Response(null, {
        status: 307,
        headers: { location: `/${moved}/resolve/${revRaw}/${fileRaw}` },
      });
    }
    if (!repo) return new Response("repo", { status: 404, headers: { "x-error-code": "RepoNotFound" } });
    const rev = decodeURIComponent(revRaw);
    if (rev !== "main" && rev !== repo.commit) {
      return new Response("rev", { status: 404, headers: { "x-error-code": "RevisionNotFound" } });
    }
    const file = fileRaw.split("/").map(decodeURIComponent).join("/");
    const commit = tamper.commitHeader ?? repo.commit;
    const bytes = repo.files[file];
    if (!bytes) {
      return new Response("entry", {
        status: 404,
        headers: { "x-error-code": "EntryNotFound", "x-repo-commit": commit },
      });
    }
    if (file.endsWith(".safetensors")) {
      const size = bytes.length + (tamper.wrongSize?.has(file) ? 10 : 0);
      return new Response(null, {
        status: 302,
        headers: {
          location: `${url.origin}/cdn/${encodeURIComponent(repoId)}/-/${encodeURIComponent(file)}`,
          "x-repo-commit": commit,
          "x-linked-etag": `"${tamper.etag?.[file] ?? sha256(bytes)}"`,
          "x-linked-size": String(size),
        },
      });
    }
    return new Response(bytes, {
      headers: { "x-repo-commit": commit, etag: `"${tamper.etag?.[file] ?? gitSha1(bytes)}"` },
    });
  });
  const endpoint = `http://127.0.0.1:${server.addr.port}`;
  return { endpoint, requests, close: () => server.shutdown() };
}

function tinyRepo(sharded = false): FakeRepo {
  const files: Record<string, Uint8Array<ArrayBuffer>> = {
    "config.json": enc.encode(JSON.stringify({ model_type: "gpt2", n_embd: 4 })),
    "tokenizer.json": enc.encode(JSON.stringify({ version: "1.0", model: { type: "BPE" } })),
  };
  if (!sharded) {
    files["model.safetensors"] = encodeSafetensors({
      "wte.weight": { dtype: "F32", shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => i / 4) },
    }, { format: "pt" });
  } else {
    files["model-00001-of-00002.safetensors"] = encodeSafetensors({
      a: { dtype: "F32", shape: [2], data: [1, 2] },
    });
    files["model-00002-of-00002.safetensors"] = encodeSafetensors({
      b: { dtype: "I32", shape: [1], data: [9] },
    });
    files["model.safetensors.index.json"] = enc.encode(JSON.stringify({
      metadata: { total_size: 12 },
      weight_map: { a: "model-00001-of-00002.safetensors", b: "model-00002-of-00002.safetensors" },
    }));
  }
  return { commit: COMMIT_A, files };
}

const noEnv = { get: (_: string) => undefined };
const noFetch = (() => Promise.reject(new Error("no request expected"))) as typeof fetch;

async function tempCache(): Promise<string> {
  return await tmpDir();
}

async function listRecursive(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const rel = prefix + e.name;
    out.push(rel);
    if (e.isDirectory) out.push(...await listRecursive(`${dir}/${e.name}`, rel + "/"));
  }
  return out.sort();
}

Deno.test("git blob hash helper matches git itself", () => {
  // `printf 'hello\n' | git hash-object --stdin`
  assertEquals(gitSha1(enc.encode("hello\n")), "ce013625030ba8dba906f756967f9e9ca394464a");
});

Deno.test("parseHubSource validates repo ids and revisions", () => {
  assertEquals(parseHubSource("hf:org/name"), { repo: "org/name", revision: "main" });
  assertEquals(parseHubSource("hf:gpt2@v1.0"), { repo: "gpt2", revision: "v1.0" });
  assertEquals(parseHubSource("hf:Qwen/Qwen2-0.5B@refs/pr/1"), {
    repo: "Qwen/Qwen2-0.5B",
    revision: "refs/pr/1",
  });
  for (const bad of ["hf:../x", "hf:a/b/c", "hf:org/na me", "hf:org/..", "hf:", "hf:org/", "hf:/abs"]) {
    assertThrows(() => parseHubSource(bad), Error, "Invalid Hub repo id");
  }
  for (const bad of ["hf:o/n@../../etc", "hf:o/n@/abs", "hf:o/n@a\\b", "hf:o/n@", "hf:o/n@a//b"]) {
    assertThrows(() => parseHubSource(bad), Error, "Unsafe revision");
  }
  assertThrows(() => parseHubSource("org/name"), Error, "Not a Hub source");
});

Deno.test("hubCacheDir follows huggingface_hub's precedence", () => {
  const env = (vars: Record<string, string>) => ({ get: (k: string) => vars[k] });
  assertEquals(hubCacheDir(env({ HOME: "/home/u" })), "/home/u/.cache/huggingface/hub");
  assertEquals(hubCacheDir(env({ HOME: "/home/u", XDG_CACHE_HOME: "/xdg" })), "/xdg/huggingface/hub");
  assertEquals(hubCacheDir(env({ HOME: "/home/u", HF_HOME: "~/hf" })), "/home/u/hf/hub");
  assertEquals(hubCacheDir(env({ HF_HOME: "/hf", HF_HUB_CACHE: "/cache" })), "/cache");
});

Deno.test("local folders are validated", async () => {
  const dir = await tmpDir();
  await Deno.writeTextFile(`${dir}/weights.txt`, "");
  await assertRejects(() => resolveModelSource(dir), Error, "has no config.json; it contains: weights.txt");
  await Deno.writeTextFile(`${dir}/config.json`, "{}");
  assertEquals(await resolveModelSource(dir + "/"), dir);
  await assertRejects(() => resolveModelSource(`${dir}/nope`), Error, "neither an existing folder");
  await assertRejects(() => resolveModelSource(`${dir}/config.json`), Error, "is a file");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a missing cached model gives the download command", async () => {
  const cacheDir = await tempCache();
  const err = await assertRejects(
    () => resolveModelSource("hf:org/tiny@v2", { cacheDir, env: noEnv, fetch: noFetch }),
    Error,
    "huggingface-cli download org/tiny --revision v2",
  );
  assert(err.message.includes("allowDownload"), err.message);
  // HF_HUB_OFFLINE wins over allowDownload.
  const offline = { get: (k: string) => (k === "HF_HUB_OFFLINE" ? "1" : undefined) };
  await assertRejects(
    () => resolveModelSource("hf:org/tiny", { cacheDir, env: offline, fetch: noFetch, allowDownload: true }),
    Error,
    "unset HF_HUB_OFFLINE",
  );
  await Deno.remove(cacheDir, { recursive: true });
});

Deno.test("a snapshot laid out by huggingface_hub is used offline via refs/main", async () => {
  const cacheDir = await tempCache();
  const repoDir = `${cacheDir}/models--org--tiny`;
  const repo = tinyRepo();
  // Exactly what Python leaves behind: blobs by hash, relative snapshot symlinks, refs/main without newline.
  await Deno.mkdir(`${repoDir}/blobs`, { recursive: true });
  await Deno.mkdir(`${repoDir}/refs`, { recursive: true });
  await Deno.mkdir(`${repoDir}/snapshots/${COMMIT_A}`, { recursive: true });
  await Deno.writeTextFile(`${repoDir}/refs/main`, COMMIT_A);
  for (const name of ["config.json", "model.safetensors"]) {
    const bytes = repo.files[name];
    const blob = name.endsWith(".safetensors") ? sha256(bytes) : gitSha1(bytes);
    await Deno.writeFile(`${repoDir}/blobs/${blob}`, bytes);
    await Deno.symlink(`../../blobs/${blob}`, `${repoDir}/snapshots/${COMMIT_A}/${name}`);
  }
  const opts = { cacheDir, env: noEnv, fetch: noFetch };
  const r = await resolveModelSourceDetailed("hf:org/tiny", opts);
  assertEquals(r, {
    folder: `${repoDir}/snapshots/${COMMIT_A}`,
    kind: "hub",
    repo: "org/tiny",
    revision: "main",
    commit: COMMIT_A,
    downloaded: [],
  });
  assertEquals(await resolveModelSource(`hf:org/tiny@${COMMIT_A}`, opts), r.folder);
  // The env route: HF_HOME/hub.
  const home = cacheDir.slice(0, -0) + "_home";
  await Deno.mkdir(home);
  await Deno.rename(cacheDir, `${home}/hub`);
  const viaEnv = { get: (k: string) => (k === "HF_HOME" ? home : undefined) };
  assertEquals(
    await resolveModelSource("hf:org/tiny", { env: viaEnv, fetch: noFetch }),
    `${home}/hub/models--org--tiny/snapshots/${COMMIT_A}`,
  );
  // A dangling snapshot link (blob deleted) counts as missing.
  await Deno.remove(`${home}/hub/models--org--tiny/blobs/${sha256(repo.files["model.safetensors"])}`);
  await assertRejects(
    () => resolveModelSource("hf:org/tiny", { env: viaEnv, fetch: noFetch }),
    Error,
    "lacks: model",
  );
  await Deno.remove(home, { recursive: true });
});

Deno.test("download fills the cache layout, then cache hits make no request", async () => {
  const hub = startHub({ "org/tiny": tinyRepo() });
  const cacheDir = await tempCache();
  try {
    const progress: { file: string; received: number; total?: number }[] = [];
    const opts: ResolveModelSourceOptions = {
      cacheDir,
      env: noEnv,
      endpoint: hub.endpoint,
      allowDownload: true,
      onProgress: (p) => progress.push(p),
    };
    const r = await resolveModelSourceDetailed("hf:org/tiny", opts);
    const repoDir = `${cacheDir}/models--org--tiny`;
    assertEquals(r.folder, `${repoDir}/snapshots/${COMMIT_A}`);
    assertEquals(r.commit, COMMIT_A);
    assertEquals(r.downloaded, ["config.json", "tokenizer.json", "model.safetensors"]);
    assertEquals(await Deno.readTextFile(`${repoDir}/refs/main`), COMMIT_A);
    const files = tinyRepo().files;
    const cfgBlob = gitSha1(files["config.json"]), wBlob = sha256(files["model.safetensors"]);
    assertEquals(await listRecursive(repoDir), [
      ".no_exist",
      `.no_exist/${COMMIT_A}`,
      `.no_exist/${COMMIT_A}/generation_config.json`,
      `.no_exist/${COMMIT_A}/model.safetensors.index.json`,
      `.no_exist/${COMMIT_A}/tokenizer_config.json`,
      "blobs",
      ...[cfgBlob, gitSha1(files["tokenizer.json"]), wBlob].sort().map((b) => `blobs/${b}`),
      "refs",
      "refs/main",
      "snapshots",
      `snapshots/${COMMIT_A}`,
      `snapshots/${COMMIT_A}/config.json`,
      `snapshots/${COMMIT_A}/model.safetensors`,
      `snapshots/${COMMIT_A}/tokenizer.json`,
    ]);
    assert((await Deno.lstat(`${r.folder}/config.json`)).isSymlink);
    assertEquals(await Deno.readLink(`${r.folder}/config.json`), `../../blobs/${cfgBlob}`);
    assertEquals(await Deno.readLink(`${r.folder}/model.safetensors`), `../../blobs/${wBlob}`);
    assertEquals(await Deno.readFile(`${r.folder}/model.safetensors`), files["model.safetensors"]);
    const last = progress.filter((p) => p.file === "model.safetensors").at(-1)!;
    assertEquals(last, {
      file: "model.safetensors",
      received: files["model.safetensors"].length,
      total: last.total,
    });
    assertEquals(last.total, files["model.safetensors"].length);
    const ckpt = await openCheckpoint(r.folder);
    assertEquals(Array.from((await ckpt.read("wte.weight")).data as Float32Array).slice(0, 3), [
      0,
      0.25,
      0.5,
    ]);
    ckpt.close();

    // Second call: everything (including known-missing optional files) is cached: no request.
    const before = hub.requests.length;
    assertEquals(await resolveModelSource("hf:org/tiny", opts), r.folder);
    assertEquals(await resolveModelSource("hf:org/tiny", { cacheDir, env: noEnv, fetch: noFetch }), r.folder);
    assertEquals(hub.requests.length, before);
  } finally {
    await hub.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("sharded checkpoints: index and every shard are fetched", async () => {
  const hub = startHub({ "org/big": tinyRepo(true) });
  const cacheDir = await tempCache();
  try {
    const r = await resolveModelSourceDetailed(`hf:org/big@${COMMIT_A}`, {
      cacheDir,
      env: noEnv,
      endpoint: hub.endpoint,
      allowDownload: true,
    });
    assertEquals(r.downloaded, [
      "config.json",
      "tokenizer.json",
      "model.safetensors.index.json",
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
    ]);
    // A commit revision writes no ref.
    assertEquals(await listRecursive(`${cacheDir}/models--org--big`).then((l) => l.includes("refs")), false);
    const ckpt = await openCheckpoint(r.folder);
    assertEquals(ckpt.names(), ["a", "b"]);
    assertEquals(Array.from((await ckpt.read("b")).data as Int32Array), [9]);
    ckpt.close();
  } finally {
    await hub.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
});

async function expectNoWeights(cacheDir: string): Promise<void> {
  const all = await listRecursive(cacheDir);
  assert(!all.some((p) => p.endsWith("model.safetensors")), `no snapshot entry: ${all.join(", ")}`);
  assert(!all.some((p) => p.includes(".incomplete")), `no temp left: ${all.join(", ")}`);
  assert(!all.some((p) => p.endsWith(sha256(tinyRepo().files["model.safetensors"]))), "no blob");
}

Deno.test("a corrupted download is rejected and leaves nothing behind", async () => {
  const hub = startHub({ "org/tiny": tinyRepo() }, { corruptBytes: new Set(["model.safetensors"]) });
  const cacheDir = await tempCache();
  try {
    const opts = { cacheDir, env: noEnv, endpoint: hub.endpoint, allowDownload: true };
    await assertRejects(() => resolveModelSource("hf:org/tiny", opts), Error, "sha256 mismatch");
    await expectNoWeights(cacheDir);
  } finally {
    await hub.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("a plain file that does not match its git blob hash is rejected", async () => {
  const hub = startHub({ "org/tiny": tinyRepo() }, { etag: { "config.json": "f".repeat(40) } });
  const cacheDir = await tempCache();
  try {
    const opts = { cacheDir, env: noEnv, endpoint: hub.endpoint, allowDownload: true };
    await assertRejects(() => resolveModelSource("hf:org/tiny", opts), Error, "git blob sha1 mismatch");
    assert(!(await listRecursive(cacheDir)).some((p) => p.endsWith("config.json")));
  } finally {
    await hub.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("a size mismatch is rejected and leaves nothing behind", async () => {
  const hub = startHub({ "org/tiny": tinyRepo() }, { wrongSize: new Set(["model.safetensors"]) });
  const cacheDir = await tempCache();
  try {
    const opts = { cacheDir, env: noEnv, endpoint: hub.endpoint, allowDownload: true };
    await assertRejects(() => resolveModelSource("hf:org/tiny", opts), Error, "size mismatch");
    await expectNoWeights(cacheDir);
  } finally {
    await hub.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("404s name the file, the endpoint and the likely cause", async () => {
  const hub = startHub({ "org/tiny": tinyRepo() });
  const cacheDir = await tempCache();
  try {
    const opts = { cacheDir, env: noEnv, endpoint: hub.endpoint, allowDownload: true };
    const e1 = await assertRejects(
      () => resolveModelSource("hf:org/nope", opts),
      Error,
      "HTTP 404, RepoNotFound",
    );
    assert(
      e1.message.includes(`hf:org/nope@main file "config.json" not found on ${hub.endpoint}`),
      e1.message,
    );
    await assertRejects(
      () => resolveModelSource("hf:org/tiny@v9", opts),
      Error,
      "HTTP 404, RevisionNotFound",
    );
    // A repo without safetensors weights.
    const noWeights = tinyRepo();
    delete noWeights.files["model.safetensors"];
    await hub.close();
    const hub2 = startHub({ "org/pkl": noWeights });
    try {
      await assertRejects(
        () => resolveModelSource("hf:org/pkl", { ...opts, endpoint: hub2.endpoint }),
        Error,
        "neither model.safetensors nor model.safetensors.index.json",
      );
    } finally {
      await hub2.close();
    }
  } finally {
    await hub.close().catch(() => {});
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("names from the network cannot escape the cache folder", async () => {
  const outer = await tmpDir();
  const cacheDir = `${outer}/cache`;
  await Deno.mkdir(cacheDir);
  const evil = tinyRepo(true);
  evil.files["model.safetensors.index.json"] = enc.encode(JSON.stringify({
    weight_map: { a: "../../../../evil.safetensors" },
  }));
  evil.files["../../../../evil.safetensors"] = encodeSafetensors({});
  const hub = startHub({ "org/evil": evil });
  try {
    const opts = { cacheDir, env: noEnv, endpoint: hub.endpoint, allowDownload: true };
    await assertRejects(() => resolveModelSource("hf:org/evil", opts), Error, "Unsafe shard file name");
    assertEquals(await listRecursive(outer).then((l) => l.filter((p) => p.includes("evil.safetensors"))), []);
    // Revisions and repo ids are checked before any request.
    const before = hub.requests.length;
    await assertRejects(() => resolveModelSource("hf:org/evil@../../../x", opts), Error, "Unsafe revision");
    await assertRejects(() => resolveModelSource("hf:../evil", opts), Error, "Invalid Hub repo id");
    assertEquals(hub.requests.length, before);
  } finally {
    await hub.close();
  }
  // A server-sent commit that is not a hash is refused; an odd etag never becomes a path.
  const hub2 = startHub({ "org/tiny": tinyRepo() }, { commitHeader: "../../../../pwned" });
  try {
    const opts = { cacheDir, env: noEnv, endpoint: hub2.endpoint, allowDownload: true };
    await assertRejects(() => resolveModelSource("hf:org/tiny", opts), Error, "invalid X-Repo-Commit");
  } finally {
    await hub2.close();
  }
  const hub3 = startHub({ "org/tiny": tinyRepo() }, { etag: { "config.json": "../../../x" } });
  try {
    const opts = { cacheDir: `${outer}/cache3`, env: noEnv, endpoint: hub3.endpoint, allowDownload: true };
    await assertRejects(() => resolveModelSource("hf:org/tiny", opts), Error, "cannot be verified");
    const warnings: string[] = [];
    const onWarning = (m: string) => void warnings.push(m);
    const folder = await resolveModelSource("hf:org/tiny", { ...opts, allowUnverified: true, onWarning });
    const cfg = tinyRepo().files["config.json"];
    assertEquals(await Deno.readLink(`${folder}/config.json`), `../../blobs/${sha256(cfg)}.unverified`);
    assert(warnings.some((w) => w.includes("could not be verified")), warnings.join("\n"));
  } finally {
    await hub3.close();
  }
  assertEquals((await listRecursive(outer)).filter((p) => !p.startsWith("cache")), []);
  await Deno.remove(outer, { recursive: true });
});

Deno.test("a renamed repo's relative redirect is followed and cached under the requested id", async () => {
  const hub = startHub({ "org/tiny": tinyRepo() }, { renamed: { "org/old": "org/tiny" } });
  const cacheDir = await tmpDir();
  try {
    const opts = { cacheDir, env: noEnv, endpoint: hub.endpoint, allowDownload: true };
    const folder = await resolveModelSource("hf:org/old", opts);
    assertEquals(folder, `${cacheDir}/models--org--old/snapshots/${COMMIT_A}`);
    assert(hub.requests.includes("/org/old/resolve/main/config.json"));
    assert(hub.requests.includes("/org/tiny/resolve/main/config.json"));
    assertEquals(await Deno.readFile(`${folder}/config.json`), tinyRepo().files["config.json"]);
  } finally {
    await hub.close();
  }
});

Deno.test("a complete cached snapshot missing optional files: fetched pinned to its commit, or skipped offline", async () => {
  const hub = startHub({ "org/tiny": tinyRepo() });
  const cacheDir = await tmpDir();
  try {
    const opts = { cacheDir, env: noEnv, endpoint: hub.endpoint, allowDownload: true };
    const folder = await resolveModelSource("hf:org/tiny", opts);
    // Forget the tokenizer (as if Python had fetched only config + weights).
    await Deno.remove(`${folder}/tokenizer.json`);
    await Deno.remove(`${cacheDir}/models--org--tiny/.no_exist`, { recursive: true });
    // Offline (the fetch fails): the cached snapshot is still returned.
    const failing = (() => Promise.reject(new TypeError("network down"))) as typeof fetch;
    const r1 = await resolveModelSourceDetailed("hf:org/tiny", { ...opts, fetch: failing });
    assertEquals([r1.folder, r1.downloaded], [folder, []]);
    // Online: the missing tokenizer is fetched by commit into the same snapshot.
    const before = hub.requests.length;
    const r2 = await resolveModelSourceDetailed("hf:org/tiny", opts);
    assertEquals([r2.folder, r2.downloaded], [folder, ["tokenizer.json"]]);
    assert(hub.requests.slice(before).includes(`/org/tiny/resolve/${COMMIT_A}/tokenizer.json`));
    assertEquals(await Deno.readFile(`${folder}/tokenizer.json`), tinyRepo().files["tokenizer.json"]);
  } finally {
    await hub.close();
  }
});
