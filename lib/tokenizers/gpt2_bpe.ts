/**
 * GPT-2 byte-level BPE (tiktoken's `gpt2` ranks, shipped in the js-tiktoken package, so it works offline):
 * the tokenizer of nanoGPT and reFlow. `<|endoftext|>` is id 50256; the vocabulary reported to models is
 * padded to 50304 (a multiple of 64, as nanoGPT does), the 47 pad ids decode to nothing.
 *
 * @module
 */
import { GPT2_BPE_RANKS, Tiktoken } from "../deps.ts";
import type { SpecialTokens, TextTokenizer } from "./types.ts";

/**
 * The `<|endoftext|>` id of GPT-2 BPE, written between documents.
 *
 * @category Tokenizers
 */
export const GPT2_EOT = 50256;

/** Real GPT-2 BPE ids (50257); ids from here up to the padded size are never produced. */
const REAL_VOCAB = 50257;

let shared: Tiktoken | null = null;

/**
 * GPT-2 BPE as a {@linkcode TextTokenizer}. `encode` is tiktoken's `encode_ordinary` (special-token text in
 * the input is treated as text, as nanoGPT's data preparation does); use {@linkcode encodeDocuments} to put
 * EOT between documents.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Gpt2BpeTokenizer } from "./gpt2_bpe.ts";
 * const tok = new Gpt2BpeTokenizer();
 * assert.deepEqual(tok.encode("Hello world"), [15496, 995]);
 * assert.equal(tok.decode([15496, 995, 50256]), "Hello world<|endoftext|>");
 * assert.equal(tok.vocabSize, 50304);
 * ```
 *
 * @category Tokenizers
 */
export class Gpt2BpeTokenizer implements TextTokenizer {
  /** Vocabulary size given to models (50304 by default: 50257 padded to a multiple of 64). */
  readonly vocabSize: number;
  /** Ids the encoder actually produces (50257); the pad rows up to `vocabSize` never see a token. */
  readonly realVocabSize: number = REAL_VOCAB;
  /** `eos` = `bos` = 50256. */
  readonly special: SpecialTokens = { eos: GPT2_EOT, bos: GPT2_EOT };
  readonly #enc: Tiktoken;

  /** `paddedVocabSize` (≥ 50257) is what `vocabSize` reports; default 50304. */
  constructor(paddedVocabSize = 50304) {
    if (!Number.isInteger(paddedVocabSize) || paddedVocabSize < REAL_VOCAB) {
      throw new Error(
        `Gpt2BpeTokenizer: paddedVocabSize must be an integer ≥ ${REAL_VOCAB}, got ${paddedVocabSize}`,
      );
    }
    this.vocabSize = paddedVocabSize;
    shared ??= new Tiktoken(GPT2_BPE_RANKS);
    this.#enc = shared;
  }

  /** Text to ids (ordinary encoding; no special tokens are added or recognised). */
  encode(text: string, _options?: { addSpecialTokens?: boolean }): number[] {
    return this.#enc.encode(text, [], []);
  }

  /** Ids to text; pad ids decode to nothing, EOT to `<|endoftext|>` unless `skipSpecialTokens`. */
  decode(ids: number[], options: { skipSpecialTokens?: boolean } = {}): string {
    const keep = ids.filter((i) => i < REAL_VOCAB && !(options.skipSpecialTokens && i === GPT2_EOT));
    return this.#enc.decode(keep);
  }
}

/**
 * Encodes documents with EOT (50256) after each one, nanoGPT style, as one id array.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeDocuments, Gpt2BpeTokenizer } from "./gpt2_bpe.ts";
 * const ids = encodeDocuments(["Hello", " world"], new Gpt2BpeTokenizer());
 * assert.deepEqual(Array.from(ids), [15496, 50256, 995, 50256]);
 * ```
 *
 * @category Tokenizers
 */
export function encodeDocuments(
  docs: Iterable<string>,
  tokenizer: TextTokenizer,
  eot = GPT2_EOT,
): Uint32Array {
  const parts: number[][] = [];
  let n = 0;
  for (const d of docs) {
    const ids = tokenizer.encode(d, { addSpecialTokens: false });
    ids.push(eot);
    parts.push(ids);
    n += ids.length;
  }
  const out = new Uint32Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Splits a corpus into documents: WikiText articles (a line ` = Title = ` starts one) when the text has
 * such headings, else the whole text as one document.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitDocuments } from "./gpt2_bpe.ts";
 * const docs = splitDocuments(" = A = \n text a\n = = Sub = = \n more\n = B = \n text b\n");
 * assert.equal(docs.length, 2);
 * assert.ok(docs[1].startsWith(" = B = "));
 * ```
 *
 * @category Tokenizers
 */
export function splitDocuments(text: string): string[] {
  const lines = text.split("\n");
  const heading = /^ = [^=].* = $/;
  const docs: string[] = [];
  let cur: string[] = [];
  for (const line of lines) {
    if (heading.test(line) && cur.some((l) => l.trim())) {
      docs.push(cur.join("\n"));
      cur = [];
    }
    cur.push(line);
  }
  if (cur.some((l) => l.trim())) docs.push(cur.join("\n"));
  return docs.length ? docs : [text];
}
