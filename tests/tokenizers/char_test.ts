import { assertEquals, assertThrows } from "../assert.ts";
import { CharTokenizer } from "../../lib/tokenizers/mod.ts";

Deno.test("char: vocabulary is the sorted code points of the corpus", () => {
  const tok = CharTokenizer.fromCorpus("hello world");
  assertEquals(tok.chars, [" ", "d", "e", "h", "l", "o", "r", "w"]);
  assertEquals(tok.vocabSize, 8);
  assertEquals(tok.encode("hello"), [3, 2, 4, 4, 5]);
  assertEquals(tok.decode([7, 5, 6, 4, 1]), "world");
  assertEquals(tok.special, {});
});

Deno.test("char: astral characters are one token each and sort by code point", () => {
  // U+1F600 is two UTF-16 units; U+FF01 sorts before it by code point but after its high surrogate (D83D).
  const tok = CharTokenizer.fromCorpus("a😀！");
  assertEquals(tok.chars, ["a", "！", "😀"]);
  assertEquals(tok.encode("😀a😀"), [2, 0, 2]);
  assertEquals(tok.decode(tok.encode("！😀a")), "！😀a");
});

Deno.test("char: unknown characters throw clearly or map to unk; JSON round trip", () => {
  const strict = CharTokenizer.fromCorpus("abc");
  assertThrows(() => strict.encode("abz"), RangeError, 'character "z" (U+007A) at offset 2');
  const lenient = CharTokenizer.fromCorpus("abc", { unkToken: "\uFFFD" });
  assertEquals(lenient.special.unk, 3);
  assertEquals(lenient.encode("azc"), [0, 3, 2]);
  assertEquals(lenient.decode([0, 3, 2], { skipSpecialTokens: true }), "ac");
  const copy = CharTokenizer.fromJSON(JSON.parse(JSON.stringify(lenient)));
  assertEquals(copy.toJSON(), lenient.toJSON());
  assertEquals(copy.encode("azc"), [0, 3, 2]);
  assertThrows(() => strict.decode([3]), RangeError, "outside the vocabulary");
  assertThrows(() => CharTokenizer.fromJSON({ type: "bpe" } as never), TypeError, '"char"');
  assertThrows(() => new CharTokenizer(["a", "a"]), TypeError, "duplicate");
  assertThrows(() => new CharTokenizer(["ab"]), TypeError, "one code point");
});
