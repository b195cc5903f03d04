/**
 * Tokenizers: Hugging Face `tokenizer.json` files and a character-level tokenizer, both behind the
 * {@linkcode TextTokenizer} interface.
 *
 * @example
 * ```ts
 * import { CharTokenizer, loadTokenizer } from "./mod.ts";
 * const chars = CharTokenizer.fromCorpus("to be or not to be");
 * const bpe = await loadTokenizer("tests/tokenizers/fixtures/gpt2-bpe");
 * console.log(chars.encode("to be"), bpe.encode("hello world"));
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
