/**
 * A whitespace word-level tokenizer: one id per word, id 0 = `<unk>`. Each word stands for its
 * leading-space form (" king" and "king" encode alike), so the reFlow probe rules hold on small models
 * trained on word-level corpora such as WikiText-2, where a GPT-2 BPE tokenizer is not available.
 *
 * @module
 */
import type { SpecialTokens, TextTokenizer } from "../../tokenizers/types.ts";

/**
 * Word-level {@linkcode TextTokenizer}: `encode` splits on whitespace; unknown words map to `<unk>` (id 0);
 * `decode` joins words with a leading space each.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { WordTokenizer } from "./word_tokenizer.ts";
 * const tok = new WordTokenizer(["the", "king"]);
 * assert.deepEqual(tok.encode(" the king wept"), [1, 2, 0]);
 * assert.equal(tok.decode([1, 2]), " the king");
 * assert.equal(WordTokenizer.fromJSON(tok.toJSON()).vocabSize, 3);
 * ```
 *
 * @category reFlow
 */
export class WordTokenizer implements TextTokenizer {
  /** Words plus `<unk>`. */
  readonly vocabSize: number;
  /** `unk` = 0. */
  readonly special: SpecialTokens = { unk: 0 };
  readonly #words: string[];
  readonly #ids: Map<string, number>;

  /** A tokenizer over these distinct words (ids 1..n in list order; 0 is `<unk>`). */
  constructor(words: readonly string[]) {
    this.#words = ["<unk>", ...words.filter((w) => w !== "<unk>")];
    this.#ids = new Map(this.#words.map((w, i) => [w, i]));
    if (this.#ids.size !== this.#words.length) throw new Error("WordTokenizer: words must be distinct");
    this.vocabSize = this.#words.length;
  }

  /**
   * The `maxWords` most frequent words of a corpus (ties: first seen first), as a tokenizer.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { WordTokenizer } from "./word_tokenizer.ts";
   * const tok = WordTokenizer.fromCorpus("a b b c c c", 2);
   * assert.deepEqual(tok.encode("c b a"), [1, 2, 0]);
   * ```
   */
  static fromCorpus(text: string, maxWords: number): WordTokenizer {
    const counts = new Map<string, number>();
    for (const w of text.split(/\s+/)) if (w) counts.set(w, (counts.get(w) ?? 0) + 1);
    const words = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, maxWords).map(([w]) => w);
    return new WordTokenizer(words);
  }

  /** A tokenizer from {@linkcode WordTokenizer.toJSON}. */
  static fromJSON(json: { type: "word"; words: string[] }): WordTokenizer {
    if (json?.type !== "word" || !Array.isArray(json.words)) {
      throw new Error("WordTokenizer.fromJSON: not a word tokenizer");
    }
    return new WordTokenizer(json.words.slice(1));
  }

  /** Ids of the whitespace-separated words of `text`. */
  encode(text: string): number[] {
    return text.split(/\s+/).filter((w) => w).map((w) => this.#ids.get(w) ?? 0);
  }

  /** Words of `ids`, each with a leading space. */
  decode(ids: number[]): string {
    return ids.map((i) => ` ${this.#words[i] ?? "<unk>"}`).join("");
  }

  /**
   * The same vocabulary as a Hugging Face `tokenizer.json` (whitespace split, whole words only), so a
   * trained model folder can carry it and `openModel` / `deno task train` read it.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { WordTokenizer } from "./word_tokenizer.ts";
   * const json = new WordTokenizer(["king"]).toTokenizerJson() as { model: { vocab: Record<string, number> } };
   * assert.equal(json.model.vocab.king, 1);
   * ```
   */
  toTokenizerJson(): Record<string, unknown> {
    return {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: [
        {
          id: 0,
          content: "<unk>",
          single_word: false,
          lstrip: false,
          rstrip: false,
          normalized: false,
          special: true,
        },
      ],
      normalizer: null,
      pre_tokenizer: { type: "WhitespaceSplit" },
      post_processor: null,
      decoder: null,
      model: {
        // WordPiece without "##" pieces acts as a word-level model (a word not in the vocabulary becomes
        // <unk>) and, unlike WordLevel in the JS runtime, needs no tokenizer_config.json for its unk token.
        type: "WordPiece",
        vocab: Object.fromEntries(this.#words.map((w, i) => [w, i])),
        unk_token: "<unk>",
        continuing_subword_prefix: "##",
        max_input_chars_per_word: 100,
      },
    };
  }

  /** Plain JSON form (all words in id order, `<unk>` first). */
  toJSON(): { type: "word"; words: string[] } {
    return { type: "word", words: [...this.#words] };
  }
}
