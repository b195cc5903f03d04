import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { HFTokenizer, loadTokenizer } from "../../lib/tokenizers/mod.ts";

const FIX = new URL("./fixtures/", import.meta.url).pathname;

// Expected ids are derived by hand from the fixture files (see the notes beside each case):
// gpt2-bpe: ids 0..255 are GPT-2's byte alphabet in bytes_to_unicode order ("!" = 0, "Ġ" (space) = 220),
// then merges 256 "he", 257 "ll", 258 "Ġw", 259 "hell", 260 "hello", 261 "or", 262 "Ġwor", 263 "ld",
// 264 "Ġworld", and the added special token <|endoftext|> = 265.
Deno.test("hf: GPT-2 style byte-level BPE encodes to hand-derived ids and round trips", async () => {
  const tok = await loadTokenizer(`${FIX}gpt2-bpe`);
  assertEquals(tok.vocabSize, 266);
  assertEquals(tok.special, { bos: 265, eos: 265, pad: undefined, unk: 265 });
  // "hello" -> h e l l o -> he l l o -> he ll o -> hell o -> hello; " world" -> Ġworld.
  assertEquals(tok.encode("hello world"), [260, 264]);
  // "H" is byte 72 -> id 39; "e" 68; "ll" 257; "o" 78 (no "e ll" merge exists).
  assertEquals(tok.encode("Hello"), [39, 68, 257, 78]);
  // "é" = bytes C3 A9 -> alphabet ids 127 and 102.
  assertEquals(tok.encode("é"), [127, 102]);
  assertEquals(tok.encode("hello<|endoftext|>"), [260, 265]);
  assertEquals(tok.encode(" hello  world"), [220, 260, 220, 264]);
  for (const s of ["hello world", "Hello, world !", "é ü 😀", " hello  world\n"]) {
    assertEquals(tok.decode(tok.encode(s)), s);
  }
  assertEquals(tok.decode([260, 265]), "hello<|endoftext|>");
  assertEquals(tok.decode([260, 265], { skipSpecialTokens: true }), "hello");
  assertEquals(tok.decode([]), "");
  assertEquals(tok.tokenize("hello world"), ["hello", "Ġworld"]);
  assert(tok.isSpecial(265) && !tok.isSpecial(260));
});

// llama-bpe: <unk> 0, <s> 1, </s> 2, byte tokens <0x00>.. = 3..258, "▁" 259, "h" 260, "e" 261, "l" 262,
// "o" 263, "w" 264, "r" 265, "d" 266, merges "▁h" 267, "ll" 268, "▁he" 269, "▁hell" 270, "▁hello" 271,
// "▁w" 272, "or" 273, "▁wor" 274, "ld" 275, "▁world" 276. The template adds <s>.
Deno.test("hf: Llama style BPE with byte fallback and a BOS template", async () => {
  const tok = await loadTokenizer(`${FIX}llama-bpe`);
  assertEquals(tok.vocabSize, 277);
  assertEquals(tok.special, { bos: 1, eos: 2, pad: undefined, unk: 0 });
  assertEquals(tok.encode("hello world"), [1, 271, 276]);
  assertEquals(tok.encode("hello world", { addSpecialTokens: false }), [271, 276]);
  // "i" is not in the vocabulary: byte fallback gives <0x69> = 3 + 105.
  assertEquals(tok.encode("hi"), [1, 267, 108]);
  // "H" -> <0x48> = 75 after a lone "▁" (no "▁ H" merge).
  assertEquals(tok.encode("Hello"), [1, 259, 75, 261, 268, 263]);
  assertEquals(tok.encode("é", { addSpecialTokens: false }), [259, 198, 172]);
  assertEquals(tok.decode([1, 271, 276], { skipSpecialTokens: true }), "hello world");
  assertEquals(tok.decode(tok.encode("hi é", { addSpecialTokens: false })), "hi é");
});

Deno.test("hf: add_bos_token is honoured when tokenizer.json has no template", async () => {
  const json = JSON.parse(await Deno.readTextFile(`${FIX}llama-bpe/tokenizer.json`));
  json.post_processor = null;
  const plain = new HFTokenizer(json, { bos_token: "<s>", eos_token: "</s>" });
  assertEquals(plain.encode("hello"), [271]);
  const withBos = new HFTokenizer(json, {
    bos_token: "<s>",
    eos_token: "</s>",
    add_bos_token: true,
    add_eos_token: true,
  });
  assertEquals(withBos.encode("hello"), [1, 271, 2]);
  assertEquals(withBos.encode("hello", { addSpecialTokens: false }), [271]);
});

Deno.test("hf: special ids fall back to config.json, bad inputs give clear errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.copyFile(`${FIX}gpt2-bpe/tokenizer.json`, `${dir}/tokenizer.json`);
    await Deno.writeTextFile(
      `${dir}/config.json`,
      JSON.stringify({ bos_token_id: 265, eos_token_id: [265, 0] }),
    );
    const tok = await loadTokenizer(dir);
    assertEquals(tok.special.bos, 265);
    assertEquals(tok.special.eos, 265);
    await Deno.writeTextFile(`${dir}/tokenizer_config.json`, JSON.stringify({ eos_token: "<nope>" }));
    await assertRejects(() => loadTokenizer(dir), Error, "not in the tokenizer's vocabulary");
    await Deno.writeTextFile(`${dir}/tokenizer_config.json`, "{ broken");
    await assertRejects(() => loadTokenizer(dir), SyntaxError, "tokenizer_config.json");
    await Deno.remove(`${dir}/tokenizer.json`);
    await assertRejects(() => loadTokenizer(dir), Error, "tokenizer.json not found");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assertThrows(() => new HFTokenizer({ version: "1.0" }), TypeError, "model");
  const tok = await loadTokenizer(`${FIX}gpt2-bpe`);
  assertThrows(() => tok.decode([266]), RangeError, "outside the vocabulary");
});

Deno.test("hf: loadTokenizer resolves hf:org/name from a Hugging Face cache folder, offline", async () => {
  const cacheDir = await Deno.makeTempDir();
  try {
    const commit = "0123456789abcdef0123456789abcdef01234567";
    const repo = `${cacheDir}/models--test-org--tiny-tok`;
    const snap = `${repo}/snapshots/${commit}`;
    await Deno.mkdir(`${repo}/refs`, { recursive: true });
    await Deno.mkdir(snap, { recursive: true });
    await Deno.writeTextFile(`${repo}/refs/main`, commit);
    // A model snapshot needs config.json and weights; the tokenizer files ride along.
    await Deno.writeTextFile(
      `${snap}/config.json`,
      JSON.stringify({ model_type: "gpt2", eos_token_id: 265 }),
    );
    await Deno.writeFile(`${snap}/model.safetensors`, new Uint8Array(0));
    for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
      await Deno.copyFile(`${FIX}gpt2-bpe/${f}`, `${snap}/${f}`);
    }
    const tok = await loadTokenizer("hf:test-org/tiny-tok", { hub: { cacheDir } });
    assertEquals(tok.encode("hello world"), [260, 264]);
    await assertRejects(() => loadTokenizer("hf:test-org/absent", { hub: { cacheDir } }));
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});
