/**
 * `openModel`: the one function that opens any model source with its tokenizer — a Hugging Face folder or
 * `hf:org/name[@rev]`, or a folder written by this library's trainer (a run or a checkpoint, such as the
 * bundled `data/models/shakespeare-char`). The trainer registers its reader from `lib/train` (this layer
 * does not import the layers above it); importing `mod.ts` registers everything.
 *
 * @module
 */
import { resolveModelSource } from "../io/hub.ts";
import { loadTokenizer } from "../tokenizers/hf.ts";
import type { TextTokenizer } from "../tokenizers/types.ts";
import { isHuggingFaceModel, loadModel } from "./load.ts";
import type { CausalLM } from "./types.ts";

/**
 * A model opened from a source, with its tokenizer when the source has one.
 *
 * @category Models
 */
export interface OpenedModel {
  /** The model (the caller disposes it). */
  model: CausalLM;
  /** Its tokenizer; absent when the folder has none (e.g. an HF folder with weights only). */
  tokenizer?: TextTokenizer;
  /** The folder read. */
  source: string;
  /** Which reader opened it: "hf" or a registered reader's kind (the trainer's is "trained"). */
  kind: string;
}

/**
 * A reader for another kind of model folder (the trainer registers one for its runs).
 *
 * @category Models
 */
export interface ModelFolderReader {
  /** Its name, reported as {@linkcode OpenedModel.kind}. */
  kind: string;
  /** What such a folder holds, for the error when no reader recognises a folder. */
  describe: string;
  /** Whether `folder` is one of its folders (cheap: looks at file names only). */
  detect(folder: string): Promise<boolean>;
  /** Opens it. */
  open(folder: string): Promise<OpenedModel>;
}

const readers: ModelFolderReader[] = [];

/**
 * Registers a model-folder reader (consulted after the Hugging Face check, in registration order).
 *
 * @category Models
 */
export function registerModelFolderReader(reader: ModelFolderReader): void {
  if (!readers.some((r) => r.kind === reader.kind)) readers.push(reader);
}

/**
 * Opens `source` with its tokenizer, whatever kind of model folder it is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initBackend } from "../backend/backend.ts";
 * import { openModel } from "./open.ts";
 * import "../train/run.ts"; // registers the trainer's reader (mod.ts does this for you)
 * await initBackend({ backend: "cpu" });
 * const opened = await openModel("data/models/shakespeare-char");
 * assert.equal(opened.kind, "trained");
 * assert.equal(opened.tokenizer?.vocabSize, opened.model.config.vocabSize);
 * opened.model.dispose();
 * await assert.rejects(openModel("/nonexistent"), /not found/);
 * ```
 *
 * @category Models
 */
export async function openModel(source: string): Promise<OpenedModel> {
  // URL folders and bundled models become a local (cached) folder first; the checks below then apply.
  if (source.startsWith("bundled:") || /^https?:\/\//i.test(source)) {
    source = await resolveModelSource(source);
  }
  if (await isHuggingFaceModel(source)) {
    const folder = await resolveModelSource(source);
    const model = await loadModel(source);
    let tokenizer: TextTokenizer | undefined;
    try {
      if (await isFile(`${folder}/tokenizer.json`)) tokenizer = await loadTokenizer(folder);
    } catch (e) {
      model.dispose();
      throw new Error(`model ${source}: its tokenizer.json cannot be used (${(e as Error).message})`);
    }
    return { model, tokenizer, source: folder, kind: "hf" };
  }
  const folder = source.replace(/\/+$/, "");
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(folder);
  } catch {
    const hint = /^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/.test(source) && !source.startsWith(".")
      ? `; for a Hugging Face model use hf:${source}`
      : "";
    throw new Error(`model folder '${source}' not found (cwd ${Deno.cwd()})${hint}`);
  }
  if (!info.isDirectory) throw new Error(`model source '${source}' is a file; give the folder that holds it`);
  for (const r of readers) {
    if (await r.detect(folder)) return await r.open(folder);
  }
  const kinds = ["a Hugging Face folder (config.json with model_type, safetensors weights)"]
    .concat(readers.map((r) => r.describe));
  throw new Error(
    `model folder '${source}' is none of: ${kinds.join("; ")}` +
      (readers.length
        ? ""
        : " (trainer runs are recognised once lib/train is imported, e.g. through mod.ts)"),
  );
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}
