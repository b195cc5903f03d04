/**
 * Token files: a corpus tokenised once into `train.bin` and `val.bin` (little-endian uint16, or uint32
 * when the vocabulary exceeds 65,536 ids) plus `meta.json` with the tokenizer and the counts. The split is
 * contiguous: the first `1 − valFraction` of the tokens train, the rest validate.
 *
 * @module
 */
import { CharTokenizer, type CharTokenizerJSON } from "../tokenizers/char.ts";
import { loadTokenizer } from "../tokenizers/hf.ts";
import { encodeDocuments, Gpt2BpeTokenizer, splitDocuments } from "../tokenizers/gpt2_bpe.ts";
import type { TextTokenizer } from "../tokenizers/types.ts";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import { writeDirAtomic } from "../io/atomic_dir.ts";

/**
 * Which tokenizer produced a token folder: a character vocabulary inline, or a copied `tokenizer.json`.
 *
 * @category Data
 */
export type TokenizerRef =
  | CharTokenizerJSON
  | { type: "tokenizer.json"; file: string }
  | { type: "gpt2-bpe"; vocabSize: number };

/**
 * The contents of `meta.json`.
 *
 * @category Data
 */
export interface TokenFilesMeta {
  /** Format tag, checked on read. */
  format: "coherence-lab/tokens@1";
  /** Element type of the `.bin` files (little-endian). */
  dtype: "uint16" | "uint32";
  /** Token ids are below this. */
  vocabSize: number;
  /** Tokens in `train.bin`. */
  trainTokens: number;
  /** Tokens in `val.bin`. */
  valTokens: number;
  /** Share of tokens held out at the end for validation. */
  valFraction: number;
  /** The tokenizer that produced the ids. */
  tokenizer: TokenizerRef;
  /** Where the text came from (corpus name or path, files). */
  source: { name: string; files: string[]; characters: number };
}

/**
 * Token ids of a split, as read from disk.
 *
 * @category Data
 */
export type TokenIds = Uint16Array | Uint32Array;

/**
 * A loaded token folder.
 *
 * @category Data
 */
export interface TokenFiles {
  /** The contents of `meta.json`. */
  meta: TokenFilesMeta;
  /** Training token ids. */
  train: TokenIds;
  /** Validation token ids. */
  val: TokenIds;
  /** The tokenizer, rebuilt from `meta.json`. */
  tokenizer: TextTokenizer;
}

/**
 * Options for {@linkcode writeTokenFiles}.
 *
 * @category Data
 */
export interface WriteTokenFilesOptions {
  /** Share of tokens held out at the end for validation, in [0, 1) (default 0.1). */
  valFraction?: number;
  /** Path of the `tokenizer.json` used (copied into the folder); omit for a character tokenizer. */
  tokenizerJsonPath?: string;
  /** Description of the source text for `meta.json`. */
  source?: { name: string; files: string[] };
  /**
   * Text of a separate evaluation split (e.g. WikiText-2 test while training on its valid split): when
   * given, `val.bin` holds its tokens and `valFraction` is not used.
   */
  valText?: string;
  /** Refuse (before writing anything) when either split has fewer tokens than this (e.g. blockSize + 1). */
  minTokensPerSplit?: number;
}

/**
 * The tokenizer a training run uses: `"char"` builds a character vocabulary from `text`; `"gpt2"` is GPT-2
 * BPE (offline, vocabulary padded to 50304, EOT between documents); any other value is a path to a
 * `tokenizer.json` (or a folder holding one).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildTokenizer } from "./token_files.ts";
 * const { tokenizer } = await buildTokenizer("char", "hello");
 * assert.equal(tokenizer.vocabSize, 4); // h, e, l, o
 * ```
 *
 * @category Data
 */
export async function buildTokenizer(
  spec: string,
  text: string,
): Promise<{ tokenizer: TextTokenizer; tokenizerJsonPath?: string }> {
  if (spec === "char") return { tokenizer: CharTokenizer.fromCorpus(text) };
  if (spec === "gpt2") return { tokenizer: new Gpt2BpeTokenizer() };
  let folder = spec;
  let path = spec;
  if (spec.endsWith(".json")) folder = spec.slice(0, Math.max(0, spec.lastIndexOf("/"))) || ".";
  else path = `${spec.replace(/\/+$/, "")}/tokenizer.json`;
  if (!spec.endsWith("tokenizer.json") && spec.endsWith(".json")) {
    throw new Error(
      `tokenizer '${spec}': give "char", "gpt2", a tokenizer.json file, or a folder holding one`,
    );
  }
  return { tokenizer: await loadTokenizer(folder), tokenizerJsonPath: path };
}

function toBytes(ids: TokenIds): Uint8Array {
  // Typed arrays are little-endian on every platform Deno runs on (x86-64, aarch64).
  return new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength);
}

/**
 * Tokenises `text` and writes `train.bin`, `val.bin` and `meta.json` into `outDir` (replacing it as a
 * whole, atomically: a failure leaves no partial folder). Returns the metadata written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeTokenFiles } from "./token_files.ts";
 * import { CharTokenizer } from "../tokenizers/char.ts";
 * const text = "first citizen: before we proceed any further, hear me speak.";
 * const dir = (await Deno.makeTempDir()) + "/tokens";
 * const meta = await writeTokenFiles(text, CharTokenizer.fromCorpus(text), dir, { valFraction: 0.25 });
 * assert.equal(meta.dtype, "uint16");
 * assert.equal(meta.trainTokens + meta.valTokens, text.length);
 * ```
 *
 * @category Data
 */
export async function writeTokenFiles(
  text: string,
  tokenizer: TextTokenizer,
  outDir: string,
  options: WriteTokenFilesOptions = {},
): Promise<TokenFilesMeta> {
  const valFraction = options.valFraction ?? 0.1;
  if (!(valFraction >= 0 && valFraction < 1)) {
    throw new RangeError(`valFraction must be in [0, 1), got ${valFraction}`);
  }
  if (text.length === 0) {
    throw new Error("cannot write token files for an empty text: give a corpus with text in it");
  }
  // GPT-2 BPE: documents (WikiText articles) each followed by EOT, as nanoGPT prepares its data.
  const encode = (t: string): ArrayLike<number> =>
    tokenizer instanceof Gpt2BpeTokenizer
      ? encodeDocuments(splitDocuments(t), tokenizer)
      : tokenizer.encode(t, { addSpecialTokens: false });
  const ids = encode(text);
  const dtype = tokenizer.vocabSize <= 65536 ? "uint16" : "uint32";
  const typed = (a: ArrayLike<number>) => dtype === "uint16" ? Uint16Array.from(a) : Uint32Array.from(a);
  const all = typed(ids);
  const nTrain = options.valText !== undefined ? all.length : Math.round(all.length * (1 - valFraction));
  const train = all.subarray(0, nTrain);
  const val = options.valText !== undefined ? typed(encode(options.valText)) : all.subarray(nTrain);
  const min = options.minTokensPerSplit ?? 0;
  for (const [name, split] of [["train", train], ["validation", val]] as const) {
    if (split.length < min) {
      throw new Error(
        `the ${name} split has ${split.length} tokens, fewer than one block plus its target (${min}): use a longer ` +
          `corpus (it has ${ids.length} tokens), a smaller blockSize, or ${
            name === "train" ? "a smaller" : "a larger"
          } valFraction`,
      );
    }
  }
  let tokenizerRef: TokenizerRef;
  if (options.tokenizerJsonPath) tokenizerRef = { type: "tokenizer.json", file: "tokenizer.json" };
  else if (tokenizer instanceof CharTokenizer) tokenizerRef = tokenizer.toJSON();
  else if (tokenizer instanceof Gpt2BpeTokenizer) {
    tokenizerRef = { type: "gpt2-bpe", vocabSize: tokenizer.vocabSize };
  } else throw new Error("writeTokenFiles: give tokenizerJsonPath for a tokenizer other than CharTokenizer");
  const meta: TokenFilesMeta = {
    format: "coherence-lab/tokens@1",
    dtype,
    vocabSize: tokenizer.vocabSize,
    trainTokens: train.length,
    valTokens: val.length,
    valFraction: options.valText !== undefined ? 0 : valFraction,
    tokenizer: tokenizerRef,
    source: {
      name: options.source?.name ?? "<text>",
      files: options.source?.files ?? [],
      characters: text.length,
    },
  };
  await writeDirAtomic(outDir, async (tmp) => {
    await writeFileAtomic(`${tmp}/train.bin`, toBytes(train));
    await writeFileAtomic(`${tmp}/val.bin`, toBytes(val));
    if (options.tokenizerJsonPath) {
      await writeFileAtomic(`${tmp}/tokenizer.json`, await Deno.readFile(options.tokenizerJsonPath));
    }
    await writeJsonAtomic(`${tmp}/meta.json`, meta);
  });
  return meta;
}

/**
 * The tokenizer a token folder (or checkpoint) describes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tokenizerFromRef } from "./token_files.ts";
 * const tok = await tokenizerFromRef({ type: "char", chars: ["a", "b"] }, ".");
 * assert.equal(tok.decode([1, 0]), "ba");
 * ```
 *
 * @category Data
 */
export async function tokenizerFromRef(ref: TokenizerRef, dir: string): Promise<TextTokenizer> {
  if (ref.type === "char") return CharTokenizer.fromJSON(ref);
  if (ref.type === "tokenizer.json") return await loadTokenizer(dir);
  if (ref.type === "gpt2-bpe") return new Gpt2BpeTokenizer(ref.vocabSize);
  throw new Error(
    `${dir}: unknown tokenizer type '${
      (ref as { type: string }).type
    }' (expected "char", "tokenizer.json" or "gpt2-bpe")`,
  );
}

async function readIds(path: string, dtype: "uint16" | "uint32", expected: number): Promise<TokenIds> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `token file '${path}' is missing: re-create the token folder (writeTokenFiles / deno task train)`,
      );
    }
    throw e;
  }
  const width = dtype === "uint16" ? 2 : 4;
  if (bytes.byteLength !== expected * width) {
    throw new Error(
      `token file '${path}' has ${bytes.byteLength} bytes but meta.json promises ${expected} ${dtype} tokens ` +
        `(${expected * width} bytes): the folder is corrupt, re-create it`,
    );
  }
  const copy = bytes.slice().buffer; // aligned copy
  return dtype === "uint16" ? new Uint16Array(copy) : new Uint32Array(copy);
}

/**
 * Reads a token folder written by {@linkcode writeTokenFiles}, checking sizes against `meta.json`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readTokenFiles, writeTokenFiles } from "./token_files.ts";
 * import { CharTokenizer } from "../tokenizers/char.ts";
 * const dir = (await Deno.makeTempDir()) + "/t";
 * await writeTokenFiles("abcabcabc", CharTokenizer.fromCorpus("abc"), dir);
 * const { train, tokenizer } = await readTokenFiles(dir);
 * assert.equal(tokenizer.decode(Array.from(train)), "abcabcab");
 * ```
 *
 * @category Data
 */
export async function readTokenFiles(dir: string): Promise<TokenFiles> {
  let meta: TokenFilesMeta;
  const metaPath = `${dir}/meta.json`;
  try {
    meta = JSON.parse(await Deno.readTextFile(metaPath));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `token folder '${dir}' has no meta.json: create it with writeTokenFiles or deno task train`,
      );
    }
    throw new Error(`${metaPath} is not valid JSON (${(e as Error).message}): re-create the token folder`);
  }
  if (meta.format !== "coherence-lab/tokens@1") {
    throw new Error(
      `${metaPath}: format '${meta.format}' is not coherence-lab/tokens@1: re-create the token folder`,
    );
  }
  const train = await readIds(`${dir}/train.bin`, meta.dtype, meta.trainTokens);
  const val = await readIds(`${dir}/val.bin`, meta.dtype, meta.valTokens);
  return { meta, train, val, tokenizer: await tokenizerFromRef(meta.tokenizer, dir) };
}
