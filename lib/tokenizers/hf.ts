/**
 * Hugging Face `tokenizer.json` tokenizers (GPT-2/NeoX/Qwen2 byte-level BPE, Llama SentencePiece-style BPE
 * with byte fallback, ...) behind the {@linkcode TextTokenizer} interface.
 *
 * The heavy lifting is `@huggingface/tokenizers` (the pure-JS runtime transformers.js uses). This module
 * adds what a research loop needs around it: special-token ids resolved from `tokenizer_config.json` (and
 * `config.json` as a fallback), an `add_bos_token` flag honoured when the tokenizer.json has no template,
 * round-trip-friendly decoding defaults, and clear errors naming the file at fault.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadTokenizer } from "./hf.ts";
 * const tok = await loadTokenizer("tests/tokenizers/fixtures/gpt2-bpe");
 * const ids = tok.encode("hello world");
 * assert.deepEqual(ids, [260, 264]);
 * assert.equal(tok.decode(ids), "hello world");
 * ```
 *
 * @module
 */
import { HFTokenizerRuntime } from "../deps.ts";
import { checkLoaderOptions, type ResolveModelSourceOptions, resolveTokenizerSource } from "../io/hub.ts";
import { notRegularFileReason } from "../io/paths.ts";
import type { SpecialTokens, TextTokenizer } from "./types.ts";

/**
 * The parts of `tokenizer_config.json` this module reads (other fields pass through untouched).
 *
 * @category Tokenizers
 */
export interface HFTokenizerConfig {
  /** Beginning-of-sequence token text (or an AddedToken object). */
  bos_token?: string | { content: string } | null;
  /** End-of-sequence token text. */
  eos_token?: string | { content: string } | null;
  /** Padding token text. */
  pad_token?: string | { content: string } | null;
  /** Unknown token text. */
  unk_token?: string | { content: string } | null;
  /** Prepend BOS on encode (used when tokenizer.json has no template post-processor). */
  add_bos_token?: boolean;
  /** Append EOS on encode (same condition). */
  add_eos_token?: boolean;
  /** Whether decode rewrites " ," to "," etc.; default here is false (lossless round trip). */
  clean_up_tokenization_spaces?: boolean;
  /** Any other field, passed to the runtime unchanged. */
  [key: string]: unknown;
}

/**
 * Options for {@linkcode HFTokenizer}.
 *
 * @category Tokenizers
 */
export interface HFTokenizerOptions {
  /**
   * Fallback special-token ids (e.g. `bos_token_id`/`eos_token_id`/`pad_token_id` from a model's
   * `config.json`), used for roles the tokenizer config does not name.
   */
  fallbackIds?: SpecialTokens;
  /** Where the tokenizer came from, for error messages. */
  source?: string;
}

type RuntimeTokenizer = InstanceType<typeof HFTokenizerRuntime>;

function tokenContent(value: unknown, field: string, source: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value;
  if (typeof value === "object" && typeof (value as { content?: unknown }).content === "string") {
    return (value as { content: string }).content;
  }
  throw new TypeError(`${source}: ${field} must be a string or an object with a "content" string`);
}

const KNOWN_MODEL_TYPES = ["BPE", "WordPiece", "WordLevel", "Unigram"];
/** Largest token id accepted (ids index an embedding table). */
const MAX_TOKEN_ID = 2 ** 24;

/**
 * Checks the parts of a tokenizer.json the runtime trusts: a known `model.type`, a non-empty
 * `model.vocab` with integer ids that are unique, in range and (with `added_tokens`) dense from 0.
 */
function validateTokenizerJson(tj: Record<string, unknown>, source: string): void {
  const model = tj.model as Record<string, unknown>;
  const type = model.type ?? (Array.isArray(model.merges) ? "BPE" : undefined);
  if (typeof type !== "string" || !KNOWN_MODEL_TYPES.includes(type)) {
    throw new Error(
      `${source}: model.type ${JSON.stringify(model.type)} is not a known tokenizer model ` +
        `(expected one of ${KNOWN_MODEL_TYPES.join(", ")})`,
    );
  }
  const vocab = model.vocab;
  const ids = new Map<number, string>();
  const claim = (id: unknown, token: string, field: string) => {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id > MAX_TOKEN_ID) {
      throw new Error(
        `${source}: ${field} gives token ${JSON.stringify(token)} the id ${
          JSON.stringify(id)
        }; ids must be ` +
          `whole numbers in [0, ${MAX_TOKEN_ID}]`,
      );
    }
    const other = ids.get(id);
    if (other !== undefined && other !== token) {
      throw new Error(
        `${source}: ${field}: id ${id} is given to both ${JSON.stringify(other)} and ${
          JSON.stringify(token)
        }`,
      );
    }
    ids.set(id, token);
  };
  if (type === "Unigram") {
    if (!Array.isArray(vocab) || vocab.length === 0) {
      throw new Error(`${source}: model.vocab must be a non-empty array of [token, score] pairs for Unigram`);
    }
    vocab.forEach((entry, i) => {
      if (!Array.isArray(entry) || typeof entry[0] !== "string" || typeof entry[1] !== "number") {
        throw new Error(
          `${source}: model.vocab[${i}] must be a [token, score] pair, got ${JSON.stringify(entry)}`,
        );
      }
      ids.set(i, entry[0]);
    });
  } else {
    if (vocab === null || typeof vocab !== "object" || Array.isArray(vocab)) {
      throw new Error(
        `${source}: model.vocab must be an object mapping token -> id for ${type}, got ` +
          (Array.isArray(vocab) ? "an array" : JSON.stringify(vocab)),
      );
    }
    const entries = Object.entries(vocab as Record<string, unknown>);
    if (entries.length === 0) throw new Error(`${source}: model.vocab is empty; a tokenizer needs tokens`);
    for (const [token, id] of entries) claim(id, token, "model.vocab");
  }
  const added = tj.added_tokens;
  if (added !== undefined && added !== null) {
    if (!Array.isArray(added)) throw new Error(`${source}: added_tokens must be an array`);
    added.forEach((t, i) => {
      const content = (t as { content?: unknown })?.content;
      if (typeof content !== "string") {
        throw new Error(`${source}: added_tokens[${i}].content must be a string`);
      }
      claim((t as { id?: unknown }).id, content, `added_tokens[${i}]`);
    });
  }
  let max = -1;
  for (const id of ids.keys()) if (id > max) max = id;
  if (ids.size !== max + 1) {
    let gap = 0;
    while (ids.has(gap)) gap++;
    throw new Error(
      `${source}: token ids are not dense: ${ids.size} tokens but ids reach ${max} (id ${gap} is unused); ` +
        `model.vocab and added_tokens must number tokens 0..n-1`,
    );
  }
}

/**
 * A `tokenizer.json` tokenizer implementing {@linkcode TextTokenizer}.
 *
 * Decoding defaults to `clean_up_tokenization_spaces: false` unless the config says otherwise, so that
 * `decode(encode(s)) === s` for byte-level tokenizers (the runtime's own default would rewrite " ," etc.).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HFTokenizer } from "./hf.ts";
 * const json = JSON.parse(await Deno.readTextFile("tests/tokenizers/fixtures/llama-bpe/tokenizer.json"));
 * const tok = new HFTokenizer(json, { bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>" });
 * assert.deepEqual(tok.special, { bos: 1, eos: 2, pad: undefined, unk: 0 }); // ids of the token strings
 * assert.deepEqual(tok.encode("hello world"), [1, 271, 276]);
 * ```
 *
 * @category Tokenizers
 */
export class HFTokenizer implements TextTokenizer {
  /** Number of token ids: one more than the largest id in the vocabulary or added tokens. */
  readonly vocabSize: number;
  /** Special-token ids by role. */
  readonly special: SpecialTokens;
  readonly #rt: RuntimeTokenizer;
  readonly #addBos: boolean;
  readonly #addEos: boolean;
  readonly #cleanUp: boolean;
  readonly #specialIds: Set<number>;

  /**
   * Builds a tokenizer from parsed `tokenizer.json` and (optional) `tokenizer_config.json` objects.
   *
   * @param tokenizerJson the parsed tokenizer.json
   * @param config the parsed tokenizer_config.json, or `{}`
   * @param options fallback ids and a source name for errors
   */
  constructor(tokenizerJson: unknown, config: HFTokenizerConfig = {}, options: HFTokenizerOptions = {}) {
    const source = options.source ?? "tokenizer.json";
    if (tokenizerJson === null || typeof tokenizerJson !== "object") {
      throw new TypeError(`${source}: expected a JSON object`);
    }
    const tj = tokenizerJson as {
      model?: { type?: string };
      added_tokens?: unknown;
      post_processor?: unknown;
    };
    if (!tj.model || typeof tj.model !== "object") {
      throw new TypeError(
        `${source}: missing the "model" section; is this really a Hugging Face tokenizer.json?`,
      );
    }
    validateTokenizerJson(tj as Record<string, unknown>, source);
    // Older files omit these; the runtime requires them to be present.
    const json = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...tj };
    if (!Array.isArray(json.added_tokens)) json.added_tokens = [];
    const cleanUp = config.clean_up_tokenization_spaces ?? false;
    try {
      this.#rt = new HFTokenizerRuntime(json, { ...config, clean_up_tokenization_spaces: cleanUp });
    } catch (e) {
      throw new Error(`${source}: the tokenizer could not be built: ${(e as Error).message}`);
    }
    this.#cleanUp = cleanUp;
    let maxId = -1;
    for (const id of this.#rt.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;

    const cfgSource = options.source ? `${options.source} (tokenizer_config.json)` : "tokenizer_config.json";
    const resolve = (role: keyof SpecialTokens, field: string): number | undefined => {
      const content = tokenContent(config[field], field, cfgSource);
      if (content === undefined) return options.fallbackIds?.[role];
      const id = this.#rt.token_to_id(content);
      if (id === undefined) {
        throw new Error(
          `${cfgSource}: ${field} ${JSON.stringify(content)} is not in the tokenizer's vocabulary`,
        );
      }
      return id;
    };
    this.special = {
      bos: resolve("bos", "bos_token"),
      eos: resolve("eos", "eos_token"),
      pad: resolve("pad", "pad_token"),
      unk: resolve("unk", "unk_token"),
    };
    // Without a post-processor template, transformers builds one from add_bos_token/add_eos_token.
    const hasTemplate = tj.post_processor !== null && tj.post_processor !== undefined &&
      (tj.post_processor as { type?: string }).type !== "ByteLevel";
    this.#addBos = !hasTemplate && config.add_bos_token === true && this.special.bos !== undefined;
    this.#addEos = !hasTemplate && config.add_eos_token === true && this.special.eos !== undefined;
    this.#specialIds = new Set<number>();
    for (const [id, tok] of this.#rt.get_added_tokens_decoder()) {
      if (tok.special) this.#specialIds.add(id);
    }
    for (const id of Object.values(this.special)) if (id !== undefined) this.#specialIds.add(id);
    this.#probe(source);
  }

  /** Encodes and decodes a probe string: a tokenizer that cannot is refused at load, not at first use. */
  #probe(source: string): void {
    const probe = "hello world";
    let ids: number[];
    try {
      ids = this.encode(probe, { addSpecialTokens: false });
    } catch (e) {
      throw new Error(
        `${source}: the tokenizer fails to encode ${JSON.stringify(probe)}: ${(e as Error).message}`,
      );
    }
    if (ids.length === 0) {
      throw new Error(
        `${source}: the tokenizer encodes ${JSON.stringify(probe)} to no tokens at all; its model.vocab ` +
          `cannot represent ordinary text`,
      );
    }
    const bad = ids.find((id) => !Number.isInteger(id) || id < 0 || id >= this.vocabSize);
    if (bad !== undefined) {
      throw new Error(
        `${source}: the tokenizer produced id ${bad} outside its vocabulary [0, ${this.vocabSize})`,
      );
    }
    try {
      this.decode(ids);
    } catch (e) {
      throw new Error(`${source}: the tokenizer fails to decode its own ids: ${(e as Error).message}`);
    }
  }

  /** Text to ids; `addSpecialTokens` (default true) applies the tokenizer's template (e.g. Llama's BOS). */
  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    const add = options.addSpecialTokens ?? true;
    const ids = this.#rt.encode(text, { add_special_tokens: add }).ids;
    if (add && this.#addBos) ids.unshift(this.special.bos!);
    if (add && this.#addEos) ids.push(this.special.eos!);
    return ids;
  }

  /** Ids to text; `skipSpecialTokens` drops special tokens (BOS/EOS/pad and added special tokens). */
  decode(ids: number[], options: { skipSpecialTokens?: boolean } = {}): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(`HFTokenizer.decode: id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
      }
    }
    const kept = options.skipSpecialTokens ? ids.filter((id) => !this.#specialIds.has(id)) : ids;
    if (kept.length === 0) return "";
    return this.#rt.decode(kept, {
      skip_special_tokens: false,
      clean_up_tokenization_spaces: this.#cleanUp,
    });
  }

  /** The token strings `text` encodes to (no special tokens). */
  tokenize(text: string): string[] {
    return this.#rt.tokenize(text, { add_special_tokens: false });
  }

  /** The id of a token string, or undefined. */
  tokenToId(token: string): number | undefined {
    return this.#rt.token_to_id(token);
  }

  /** The token string of an id, or undefined. */
  idToToken(id: number): string | undefined {
    return this.#rt.id_to_token(id);
  }

  /** Whether `id` is a special token (added special tokens and the bos/eos/pad/unk roles). */
  isSpecial(id: number): boolean {
    return this.#specialIds.has(id);
  }
}

async function readJsonIfExists(path: string): Promise<unknown | undefined> {
  // Checked before reading: a FIFO would block and a device (/dev/zero) would never end.
  const why = await notRegularFileReason(path);
  if (why === "does not exist") return undefined;
  if (why) throw new Error(`${path} ${why}; expected a JSON file`);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(`${path}: invalid JSON: ${(e as Error).message}`);
  }
}

function firstId(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isInteger(value)) return value;
  if (Array.isArray(value) && typeof value[0] === "number") return value[0];
  return undefined;
}

/**
 * Options of {@linkcode loadTokenizer}.
 *
 * @category Tokenizers
 */
export interface LoadTokenizerOptions {
  /** How `hf:org/name[@revision]` sources are resolved (cache folder, `allowDownload`, ...). */
  hub?: ResolveModelSourceOptions;
}

/**
 * Loads `tokenizer.json` from a model folder, with `tokenizer_config.json` when present. Special-token
 * roles the tokenizer config leaves out fall back to `bos_token_id`/`eos_token_id`/`pad_token_id` in
 * `generation_config.json` and `config.json`.
 *
 * @param source a local folder, or `hf:org/name[@revision]` resolved like `loadModel` does (the Hugging
 *   Face cache, and the Hub with `hub.allowDownload`)
 * @param options Hub resolution options
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadTokenizer } from "./hf.ts";
 * const tok = await loadTokenizer("tests/tokenizers/fixtures/llama-bpe");
 * assert.deepEqual(tok.encode("hello world"), [1, 271, 276]); // BOS then two merged words
 * ```
 *
 * @category Tokenizers
 */
export async function loadTokenizer(
  source: string,
  options: LoadTokenizerOptions = {},
): Promise<HFTokenizer> {
  checkLoaderOptions(options, [], "loadTokenizer");
  const folder = await resolveTokenizerSource(source, options.hub);
  const base = folder.replace(/\/+$/, "");
  const tokenizerPath = `${base}/tokenizer.json`;
  const json = await readJsonIfExists(tokenizerPath);
  if (json === undefined) {
    throw new Error(
      `${tokenizerPath} not found: loadTokenizer needs a Hugging Face tokenizer.json (slow-only tokenizers with ` +
        `just vocab.json/merges.txt or tokenizer.model must be converted with transformers' ` +
        `AutoTokenizer.from_pretrained(...).save_pretrained(...) first)`,
    );
  }
  const config = (await readJsonIfExists(`${base}/tokenizer_config.json`) ?? {}) as HFTokenizerConfig;
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new TypeError(`${base}/tokenizer_config.json: expected a JSON object`);
  }
  const fallbackIds: SpecialTokens = {};
  for (const file of ["generation_config.json", "config.json"]) {
    const c = await readJsonIfExists(`${base}/${file}`) as Record<string, unknown> | undefined;
    if (!c || typeof c !== "object") continue;
    fallbackIds.bos ??= firstId(c.bos_token_id);
    fallbackIds.eos ??= firstId(c.eos_token_id);
    fallbackIds.pad ??= firstId(c.pad_token_id);
  }
  return new HFTokenizer(json, config, { fallbackIds, source: tokenizerPath });
}
