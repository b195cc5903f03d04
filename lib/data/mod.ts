/**
 * Training data: text corpora (files, folders, named corpora with offline data folders, a download cache
 * and sha256 checks), token files (`train.bin`, `val.bin`, `meta.json`) and a seeded batch sampler whose
 * position is part of the training state.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BatchSampler, loadCorpus, readTokenFiles, writeTokenFiles } from "./mod.ts";
 * import { CharTokenizer } from "../tokenizers/mod.ts";
 * const path = await Deno.makeTempFile({ suffix: ".txt" });
 * await Deno.writeTextFile(path, "to be or not to be, that is the question");
 * const corpus = await loadCorpus(path);
 * const dir = (await Deno.makeTempDir()) + "/tokens";
 * await writeTokenFiles(corpus.text, CharTokenizer.fromCorpus(corpus.text), dir, { valFraction: 0.2 });
 * const { train } = await readTokenFiles(dir);
 * const batch = new BatchSampler(train, { batchSize: 2, blockSize: 8, seed: 1 }).next();
 * assert.equal(batch.x.length, 16); // batchSize × blockSize
 * ```
 *
 * @module
 */
export * from "./corpus.ts";
export * from "./token_files.ts";
export * from "./sampler.ts";
export * from "./bin_files.ts";
