/**
 * The one small interface every tokenizer implements.
 *
 * @module
 */

/**
 * Encodes text to token ids and back.
 *
 * @category Tokenizers
 */
export interface TextTokenizer {
  /** Number of token ids (the embedding table's rows). */
  readonly vocabSize: number;
  /** Special tokens by role; ids are undefined where the tokenizer has none. */
  readonly special: SpecialTokens;
  /** Text to ids. `addSpecialTokens` (default true) adds BOS etc. where the tokenizer's template does. */
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  /** Ids to text. `skipSpecialTokens` defaults to false. */
  decode(ids: number[], options?: { skipSpecialTokens?: boolean }): string;
}

/**
 * Ids of special tokens, when defined.
 *
 * @category Tokenizers
 */
export interface SpecialTokens {
  /** Beginning-of-sequence token. */
  bos?: number;
  /** End-of-sequence token (generation stops on it by default). */
  eos?: number;
  /** Padding token. */
  pad?: number;
  /** Unknown-token id (what out-of-vocabulary input maps to). */
  unk?: number;
}
