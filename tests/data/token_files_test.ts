import { buildTokenizer, readTokenFiles, writeTokenFiles } from "../../lib/data/token_files.ts";
import { CharTokenizer } from "../../lib/tokenizers/char.ts";
import { assert, assertJsonEquals as assertEquals, assertRejects } from "../assert.ts";

const text = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n";

Deno.test("char token files round trip: split, dtype, meta, decode", async () => {
  const dir = (await Deno.makeTempDir()) + "/tokens";
  const tok = CharTokenizer.fromCorpus(text);
  const meta = await writeTokenFiles(text, tok, dir, { valFraction: 0.25, source: { name: "t", files: [] } });
  assertEquals(meta.dtype, "uint16");
  assertEquals(meta.trainTokens + meta.valTokens, [...text].length);
  assertEquals(meta.valTokens, Math.round(text.length * 0.25));
  const files = await readTokenFiles(dir);
  assert(files.train instanceof Uint16Array);
  assertEquals(
    files.tokenizer.decode(Array.from(files.train)) + files.tokenizer.decode(Array.from(files.val)),
    text,
  );
  assertEquals((await Deno.readFile(`${dir}/train.bin`)).length, meta.trainTokens * 2);
  // Nothing else left in the parent (no temp folders).
  const parent = dir.slice(0, dir.lastIndexOf("/"));
  assertEquals([...Deno.readDirSync(parent)].map((e) => e.name), ["tokens"]);
});

Deno.test("a large vocabulary switches to uint32", async () => {
  const dir = (await Deno.makeTempDir()) + "/t";
  const chars = Array.from({ length: 70000 }, (_, i) => String.fromCodePoint(0x4e00 + i));
  const tok = new CharTokenizer(chars);
  const body = chars.slice(65530, 65540).join("").repeat(3);
  const meta = await writeTokenFiles(body, tok, dir);
  assertEquals(meta.dtype, "uint32");
  const files = await readTokenFiles(dir);
  assert(files.train instanceof Uint32Array);
  assertEquals(files.tokenizer.decode([...files.train, ...files.val]), body);
});

Deno.test("tokenizer.json token files round trip (GPT-2 BPE fixture)", async () => {
  const fixture = new URL("../tokenizers/fixtures/gpt2-bpe", import.meta.url).pathname;
  const ok = await Deno.stat(`${fixture}/tokenizer.json`).then(() => true, () => false);
  if (!ok) return console.log("note: tokenizer fixture absent; skipped");
  const { tokenizer, tokenizerJsonPath } = await buildTokenizer(`${fixture}/tokenizer.json`, text);
  const dir = (await Deno.makeTempDir()) + "/bpe";
  const meta = await writeTokenFiles(text, tokenizer, dir, { tokenizerJsonPath, valFraction: 0.2 });
  assertEquals(meta.tokenizer, { type: "tokenizer.json", file: "tokenizer.json" });
  const files = await readTokenFiles(dir);
  assertEquals(
    files.tokenizer.decode([...files.train, ...files.val]),
    tokenizer.decode(tokenizer.encode(text, { addSpecialTokens: false })),
  );
});

Deno.test("corrupt or missing token files are named", async () => {
  const dir = (await Deno.makeTempDir()) + "/t";
  await writeTokenFiles(text, CharTokenizer.fromCorpus(text), dir);
  await Deno.writeFile(`${dir}/val.bin`, new Uint8Array(3));
  await assertRejects(() => readTokenFiles(dir), Error, `${dir}/val.bin`);
  await Deno.remove(`${dir}/train.bin`);
  await assertRejects(() => readTokenFiles(dir), Error, `${dir}/train.bin' is missing`);
  await assertRejects(() => readTokenFiles(`${dir}/none`), Error, "has no meta.json");
  await assertRejects(() => writeTokenFiles("", CharTokenizer.fromCorpus("a"), dir), Error, "empty");
});
