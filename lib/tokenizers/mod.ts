/**
 * Tokenizers: Hugging Face `tokenizer.json` files and a character-level tokenizer, both behind the
 * {@linkcode TextTokenizer} interface.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CharTokenizer, loadTokenizer } from "./mod.ts";
 * const chars = CharTokenizer.fromCorpus("to be or not to be");
 * const bpe = await loadTokenizer("tests/tokenizers/fixtures/gpt2-bpe");
 * assert.deepEqual(chars.encode("to be"), [6, 4, 0, 1, 2]); // one id per character
 * assert.deepEqual(bpe.encode("hello world"), [260, 264]); // one id per merged word
 * assert.equal(bpe.decode(bpe.encode("hello world")), "hello world");
 * ```
 *
 * @module
 */
export type { SpecialTokens, TextTokenizer } from "./types.ts";
export {
  HFTokenizer,
  type HFTokenizerConfig,
  type HFTokenizerOptions,
  loadTokenizer,
  type LoadTokenizerOptions,
} from "./hf.ts";
export { CharTokenizer, type CharTokenizerJSON, type CharTokenizerOptions } from "./char.ts";
export { encodeDocuments, GPT2_EOT, Gpt2BpeTokenizer, splitDocuments } from "./gpt2_bpe.ts";
