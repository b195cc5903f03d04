/**
 * `http(s)://` folder sources and `bundled:` names, against a real server on 127.0.0.1.
 */
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { bundledModelNames, resolveBundledFrom, resolveModelSourceDetailed } from "../../lib/io/hub.ts";
import { loadModel } from "../../lib/models/load.ts";
import { loadTrainedModel } from "../../lib/train/run.ts";
import { useBackend } from "../fixtures.ts";
import { tmpDir } from "./tmp.ts";

await useBackend("cpu");
const MODELS = new URL("../../data/models/", import.meta.url).pathname;
const env = { get: (_: string) => undefined };

/** Serves data/models/ read-only; `hashes` sends each file's sha256 as its ETag, as the Hub does. */
function serve(hashes: boolean) {
  const requests: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    requests.push(path);
    if (path.includes("..")) return new Response("no", { status: 400 });
    try {
      const bytes = await Deno.readFile(`${MODELS}${path}`);
      const headers: Record<string, string> = {};
      if (hashes) {
        const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
        headers.etag = `"${Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("")}"`;
      }
      return new Response(bytes, { headers });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  return { server, base: `http://127.0.0.1:${server.addr.port}`, requests };
}

Deno.test("an http folder URL is fetched into the cache with its hashes checked, then used offline", async () => {
  const cacheDir = await tmpDir();
  const s = serve(true);
  try {
    const r = await resolveModelSourceDetailed(`${s.base}/tiny-gpt2/`, { cacheDir, env });
    assertEquals(r.kind, "url");
    assert(r.downloaded.includes("model.safetensors") && r.downloaded.includes("tokenizer.json"));
    assert(r.folder.startsWith(`${cacheDir}/urls--127.0.0.1--`), r.folder);
    const model = await loadModel(`${s.base}/tiny-gpt2`, { hub: { cacheDir, env } });
    assertEquals(model.config.vocabSize, 266);
    model.dispose();
  } finally {
    await s.server.shutdown();
  }
  // Server gone: the complete snapshot is used without a request.
  const again = await resolveModelSourceDetailed(`${s.base}/tiny-gpt2`, { cacheDir, env });
  assertEquals(again.downloaded, []);
});

Deno.test("an http folder whose server sends no content hash is refused, as Hub files are", async () => {
  const cacheDir = await tmpDir();
  const s = serve(false);
  try {
    await assertRejects(
      () => resolveModelSourceDetailed(`${s.base}/tiny-gpt2`, { cacheDir, env }),
      Error,
      "cannot be verified",
    );
    // A wrong expected hash is a mismatch, not a silent load.
    await assertRejects(
      () =>
        resolveModelSourceDetailed(`${s.base}/tiny-gpt2`, {
          cacheDir,
          env,
          checksums: { "config.json": { sha256: "0".repeat(64) } },
        }),
      Error,
      "mismatch",
    );
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("bundled:NAME loads from the checkout, and from a URL base checked against bundled.json", async () => {
  assertEquals(bundledModelNames().sort(), ["shakespeare-char", "tiny-gpt2"]);
  const local = await loadTrainedModel("bundled:shakespeare-char");
  assertEquals(local.model.config.nLayers, 4);
  local.model.dispose();
  await assertRejects(
    () => resolveModelSourceDetailed("bundled:shakespeare", {}),
    Error,
    "did you mean shakespeare-char",
  );
  // As if the library were imported by URL: the server sends no hashes, the shipped list has them.
  const cacheDir = await tmpDir();
  const s = serve(false);
  try {
    const r = await resolveBundledFrom("bundled:shakespeare-char", `${s.base}/`, { cacheDir, env });
    assertEquals(r.kind, "url");
    const { model, tokenizer } = await loadTrainedModel(r.folder);
    assertEquals(tokenizer.vocabSize, model.config.vocabSize);
    model.dispose();
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("bundled.json matches the files it lists", async () => {
  const list = JSON.parse(await Deno.readTextFile(`${MODELS}bundled.json`));
  for (const [name, files] of Object.entries(list as Record<string, Record<string, { sha256: string }>>)) {
    for (const [file, { sha256 }] of Object.entries(files)) {
      const d = new Uint8Array(
        await crypto.subtle.digest("SHA-256", await Deno.readFile(`${MODELS}${name}/${file}`)),
      );
      const got = Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
      assertEquals(got, sha256, `data/models/bundled.json is stale for ${name}/${file}: update its sha256`);
    }
  }
});
