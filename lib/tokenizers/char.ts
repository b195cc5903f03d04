/**
 * A character-level tokenizer (nanoGPT's Shakespeare setup): the vocabulary is the sorted set of Unicode
 * code points of a corpus, one id per character.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CharTokenizer } from "./char.ts";
 * const tok = CharTokenizer.fromCorpus("hello world");
 * assert.equal(tok.vocabSize, 8); // " ", d, e, h, l, o, r, w
 * assert.deepEqual(tok.encode("hello"), [3, 2, 4, 4, 5]);
 * assert.equal(tok.decode(tok.encode("hello")), "hello");
 * ```
 *
 * @module
 */
import type { SpecialTokens, TextTokenizer } from "./types.ts";

/**
 * The JSON form of a {@linkcode CharTokenizer} (what `toJSON()` returns and `fromJSON()` reads).
 *
 * @category Tokenizers
 */
export interface CharTokenizerJSON {
  /** Always "char". */
  type: "char";
  /** The characters in id order (each one Unicode code point). */
  chars: string[];
  /** Id of the unknown-character token, when unknown characters map to one. */
  unk?: number;
}

/**
 * Options for {@linkcode CharTokenizer.fromCorpus}.
 *
 * @category Tokenizers
 */
export interface CharTokenizerOptions {
  /**
   * Reserve a token for unknown characters: its text (e.g. "\uFFFD"), added to the vocabulary if the
   * corpus lacks it. Without it, encoding an unknown character throws.
   */
  unkToken?: string;
}

/**
 * Character-level {@linkcode TextTokenizer}: code points (not UTF-16 units), sorted by code point.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CharTokenizer } from "./char.ts";
 * const tok = CharTokenizer.fromCorpus("abc", { unkToken: "?" });
 * assert.equal(tok.encode("abz")[2], tok.encode("?")[0]); // the unknown "z" maps to the "?" id
 * const copy = CharTokenizer.fromJSON(JSON.parse(JSON.stringify(tok)));
 * assert.equal(copy.decode(copy.encode("cab")), "cab");
 * ```
 *
 * @category Tokenizers
 */
export class CharTokenizer implements TextTokenizer {
  /** Number of characters in the vocabulary. */
  readonly vocabSize: number;
  /** Only `unk`, when an unknown-character token is configured. */
  readonly special: SpecialTokens;
  readonly #chars: string[];
  readonly #ids: Map<string, number>;

  /**
   * A tokenizer over an explicit character list (ids in list order).
   *
   * @param chars distinct single code points
   * @param unk the id of the unknown-character token, if any
   */
  constructor(chars: string[], unk?: number) {
    if (!Array.isArray(chars) || chars.length === 0) {
      throw new TypeError("CharTokenizer: chars must be a non-empty array of characters");
    }
    this.#ids = new Map();
    chars.forEach((c, i) => {
      if (typeof c !== "string" || [...c].length !== 1) {
        throw new TypeError(
          `CharTokenizer: chars[${i}] must be exactly one code point, got ${JSON.stringify(c)}`,
        );
      }
      if (this.#ids.has(c)) {
        throw new TypeError(`CharTokenizer: chars[${i}] ${JSON.stringify(c)} is a duplicate`);
      }
      this.#ids.set(c, i);
    });
    if (unk !== undefined && !(Number.isInteger(unk) && unk >= 0 && unk < chars.length)) {
      throw new RangeError(`CharTokenizer: unk id ${unk} is outside [0, ${chars.length})`);
    }
    this.#chars = [...chars];
    this.vocabSize = chars.length;
    this.special = unk === undefined ? {} : { unk };
  }

  /** The vocabulary of a corpus: its distinct code points sorted by code point value. */
  static fromCorpus(corpus: string, options: CharTokenizerOptions = {}): CharTokenizer {
    const set = new Set<string>(corpus); // string iteration yields code points
    if (options.unkToken !== undefined) {
      if ([...options.unkToken].length !== 1) {
        throw new TypeError(
          `CharTokenizer: unkToken must be one character, got ${JSON.stringify(options.unkToken)}`,
        );
      }
      set.add(options.unkToken);
    }
    // Sort by code point, not by UTF-16 unit (astral characters would otherwise sort among surrogates).
    const chars = [...set].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
    const unk = options.unkToken === undefined ? undefined : chars.indexOf(options.unkToken);
    return new CharTokenizer(chars, unk);
  }

  /** Restores a tokenizer from {@linkcode CharTokenizer.toJSON} output; throws on malformed data. */
  static fromJSON(json: CharTokenizerJSON): CharTokenizer {
    if (json === null || typeof json !== "object" || json.type !== "char") {
      throw new TypeError('CharTokenizer.fromJSON: expected an object with type "char"');
    }
    return new CharTokenizer(json.chars, json.unk);
  }

  /** The JSON form (so `JSON.stringify(tokenizer)` works). */
  toJSON(): CharTokenizerJSON {
    const out: CharTokenizerJSON = { type: "char", chars: [...this.#chars] };
    if (this.special.unk !== undefined) out.unk = this.special.unk;
    return out;
  }

  /** The characters in id order. */
  get chars(): readonly string[] {
    return this.#chars;
  }

  /**
   * Text to ids, one per code point. Unknown characters map to the unk id when one is configured,
   * otherwise they throw naming the character and its offset. (A character tokenizer has no BOS, so
   * `addSpecialTokens` changes nothing.)
   */
  encode(text: string, _options: { addSpecialTokens?: boolean } = {}): number[] {
    const out: number[] = [];
    let offset = 0;
    for (const c of text) {
      const id = this.#ids.get(c);
      if (id !== undefined) out.push(id);
      else if (this.special.unk !== undefined) out.push(this.special.unk);
      else {
        const cp = c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
        throw new RangeError(
          `CharTokenizer.encode: character ${
            JSON.stringify(c)
          } (U+${cp}) at offset ${offset} is not in the ` +
            `vocabulary; build the tokenizer from a corpus that contains it, or pass { unkToken } to map ` +
            `unknown characters to one id`,
        );
      }
      offset += c.length;
    }
    return out;
  }

  /** Ids to text; `skipSpecialTokens` drops the unk token. */
  decode(ids: number[], options: { skipSpecialTokens?: boolean } = {}): string {
    let s = "";
    for (const id of ids) {
      const c = this.#chars[id];
      if (c === undefined || !Number.isInteger(id)) {
        throw new RangeError(
          `CharTokenizer.decode: id ${id} is outside the vocabulary [0, ${this.vocabSize})`,
        );
      }
      if (options.skipSpecialTokens && id === this.special.unk) continue;
      s += c;
    }
    return s;
  }
}
