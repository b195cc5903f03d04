/**
 * The model that examples (notebooks, `deno task demo`) run on: a path given by the user, else the
 * bundled demo model (data/models/shakespeare-char, trained by `deno task train`), else a tiny
 * Hugging Face model shipped beside it (data/models/tiny-gpt2).
 *
 * @module
 */
import { currentBackend, initBackend } from "../backend/backend.ts";
import { openModel } from "../models/open.ts";
import type { CausalLM } from "../models/types.ts";
import type { TextTokenizer } from "../tokenizers/types.ts";
import "../train/run.ts"; // registers the trainer-run reader of openModel

/**
 * A model ready for an example, with how it was found.
 *
 * @category Notebook
 */
export interface ExampleModel {
  /** The model (dispose it when done). */
  model: CausalLM;
  /** Its tokenizer, when the model folder has one (the tiny HF fixtures have none). */
  tokenizer?: TextTokenizer;
  /** The folder loaded. */
  source: string;
  /** "trained": a checkpoint written by this library's trainer; "hf": a Hugging Face folder. */
  kind: "trained" | "hf";
  /** Why the default was not used, when a fallback was taken. */
  notes: string[];
  /**
   * Text to prompt ids: the tokenizer's, or (no tokenizer) UTF-8 bytes modulo the vocabulary, a stand-in
   * that gives a deterministic prompt for the id-only fixtures.
   */
  encode(text: string): number[];
  /** Ids to text: the tokenizer's, or the ids as numbers in brackets. */
  decode(ids: number[]): string;
}

/**
 * Options for {@linkcode loadExampleModel}.
 *
 * @category Notebook
 */
export interface LoadExampleModelOptions {
  /** Repository root for the defaults (default: two folders above this module, when it is a file). */
  repoRoot?: string;
}

/**
 * Loads `path` as a Hugging Face folder (config.json with a model_type) or a trainer checkpoint / run folder.
 * Initialises the default backend first when none was chosen.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadModelFolder } from "./example_model.ts";
 * const ex = await loadModelFolder("data/models/tiny-gpt2");
 * assert.equal(ex.kind, "hf");
 * assert.equal(ex.model.config.nLayers, 2);
 * ex.model.dispose();
 * ```
 *
 * @category Notebook
 */
export async function loadModelFolder(path: string): Promise<ExampleModel> {
  let dir: string;
  // Any model source works: hf:org/name, an http(s) folder URL or bundled:NAME are resolved by openModel.
  if (/^(hf:|bundled:|https?:\/\/)/i.test(path)) dir = path;
  else {
    try {
      dir = await Deno.realPath(path);
    } catch {
      throw new Error(`model folder '${path}' not found (cwd ${Deno.cwd()})${hubHint(path)}`);
    }
  }
  if (!currentBackend()) await initBackend(); // weights are uploaded to the backend: pick one first
  const opened = await openModel(dir);
  return withCodec({
    model: opened.model,
    tokenizer: opened.tokenizer,
    source: opened.source,
    kind: opened.kind === "hf" ? "hf" : "trained",
    notes: [],
  });
}

/** `gpt2` or `org/name` that is no local folder is probably a Hub id missing its `hf:` prefix. */
function hubHint(path: string): string {
  return /^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/.test(path) && !/^\.|\/\./.test(path)
    ? `; for a Hugging Face model use hf:${path} (from the local Hugging Face cache)`
    : "";
}

function withCodec(ex: Omit<ExampleModel, "encode" | "decode">): ExampleModel {
  const tok = ex.tokenizer;
  const vocab = ex.model.config.vocabSize;
  return {
    ...ex,
    encode: tok
      ? (text) => tok.encode(text)
      : (text) => Array.from(new TextEncoder().encode(text), (b) => b % vocab),
    decode: tok ? (ids) => tok.decode(ids) : (ids) => ids.map((i) => `[${i}]`).join(""),
  };
}

/** The repository root when this module is a local file, else undefined. */
function defaultRepoRoot(): string | undefined {
  const url = new URL("../../", import.meta.url);
  return url.protocol === "file:" ? decodeURIComponent(url.pathname).replace(/\/$/, "") : undefined;
}

/**
 * The example model: `path` when given (errors are not hidden), else the bundled demo model, else the
 * tiny-gpt2 fixture beside the repository. Throws with every place tried when none loads.
 *
 * @example
 * ```ts
 * import { loadExampleModel } from "./example_model.ts";
 * const ex = await loadExampleModel(Deno.env.get("COHERENCE_MODEL"));
 * console.log(ex.source, ex.kind, ex.notes);
 * ex.model.dispose();
 * ```
 *
 * @category Notebook
 */
export async function loadExampleModel(
  path?: string,
  options: LoadExampleModelOptions = {},
): Promise<ExampleModel> {
  if (path) return await loadModelFolder(path);
  const root = options.repoRoot ?? defaultRepoRoot();
  if (!root) {
    throw new Error(
      "loadExampleModel: no local repository to find the demo model in; pass a model folder path",
    );
  }
  const candidates = [`${root}/data/models/shakespeare-char`, `${root}/data/models/tiny-gpt2`];
  const notes: string[] = [];
  for (const dir of candidates) {
    try {
      const ex = await loadModelFolder(dir);
      ex.notes.push(...notes);
      return ex;
    } catch (e) {
      notes.push(`${dir}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  throw new Error(
    `loadExampleModel: no model found. Tried:\n  ${notes.join("\n  ")}\n` +
      "Train the demo model (deno task train) or pass a model folder (COHERENCE_MODEL or --model).",
  );
}
