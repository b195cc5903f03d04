/** Loader options (`hub` nesting, named in messages) and tokenizer-only Hugging Face cache entries. */
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { loadModel } from "../../lib/models/load.ts";
import { loadTokenizer } from "../../lib/tokenizers/hf.ts";
import { useBackend } from "../fixtures.ts";
import { tmpDir } from "./tmp.ts";

await useBackend("cpu");
const TINY = new URL("../../data/models/tiny-gpt2", import.meta.url).pathname;
const env = { get: (_: string) => undefined };
const COMMIT = "0123456789abcdef0123456789abcdef01234567";

/** A cache entry laid out as huggingface_hub does, holding only `files`. */
async function cacheWith(files: string[]): Promise<string> {
  const cacheDir = await tmpDir();
  const repo = `${cacheDir}/models--org--tiny`;
  await Deno.mkdir(`${repo}/refs`, { recursive: true });
  await Deno.mkdir(`${repo}/snapshots/${COMMIT}`, { recursive: true });
  await Deno.writeTextFile(`${repo}/refs/main`, COMMIT);
  for (const f of files) await Deno.copyFile(`${TINY}/${f}`, `${repo}/snapshots/${COMMIT}/${f}`);
  return cacheDir;
}

Deno.test("loadModel/loadTokenizer: a flat Hub option is refused with the exact nested form", async () => {
  await assertRejects(
    () => loadModel("hf:org/tiny", { allowDownload: true } as never),
    Error,
    "loadModel: 'allowDownload' is a Hub option: pass it as { hub: { allowDownload: true } }",
  );
  await assertRejects(
    () => loadTokenizer("hf:org/tiny", { hub: { allowDownloads: true } as never }),
    Error,
    "loadTokenizer: hub: unknown option 'allowDownloads' (did you mean allowDownload",
  );
});

Deno.test("a cache miss names the exact option of loadModel", async () => {
  const cacheDir = await tmpDir();
  const err = await assertRejects(() => loadModel("hf:org/tiny", { hub: { cacheDir, env } }), Error);
  assert(err.message.includes("{ hub: { allowDownload: true } }"), err.message);
});

Deno.test("loadTokenizer: a cache entry holding only tokenizer.json is enough", async () => {
  const cacheDir = await cacheWith(["tokenizer.json", "tokenizer_config.json"]);
  const tok = await loadTokenizer("hf:org/tiny", { hub: { cacheDir, env } });
  assertEquals(tok.decode(tok.encode("Hello there")), "Hello there");
  // The model itself still needs its weights, and says so.
  await assertRejects(() => loadModel("hf:org/tiny", { hub: { cacheDir, env } }), Error, "lacks");
  const empty = await cacheWith([]);
  await assertRejects(
    () => loadTokenizer("hf:org/tiny", { hub: { cacheDir: empty, env } }),
    Error,
    "loadTokenizer(source, { hub: { allowDownload: true } })",
  );
});
