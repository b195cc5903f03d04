/**
 * One call from a config to a trained, checkpointed model: load and tokenise the corpus, build the model,
 * train (or resume), and save. The `deno task train` command and the notebooks both use it.
 *
 * @module
 */
import { checkOptionKeys } from "../options.ts";
import { ensureBackend } from "../backend/backend.ts";
import { resolveModelSource } from "../io/hub.ts";
import { registerModelFolderReader } from "../models/open.ts";
import { tf } from "../deps.ts";
import type { Tensor } from "../tensor_types.ts";
import { readJsonl, writeJsonAtomic, writeTextAtomic } from "../io/atomic.ts";
import { acquireLock, type HeldLock } from "../io/lock.ts";
import { loadCorpus } from "../data/corpus.ts";
import { BinTokenFile } from "../data/bin_files.ts";
import { Gpt2BpeTokenizer } from "../tokenizers/gpt2_bpe.ts";
import {
  buildTokenizer,
  readTokenFiles,
  type TokenFiles,
  type TokenIds,
  tokenizerFromRef,
  type TokenizerRef,
  writeTokenFiles,
} from "../data/token_files.ts";
import { createDecoder } from "../models/scratch.ts";
import { Decoder } from "../models/decoder.ts";
import type { DecoderConfig } from "../models/types.ts";
import type { TextTokenizer } from "../tokenizers/types.ts";
import { listCheckpoints, loadCheckpoint } from "./checkpoint.ts";
import { modelConfigFor, type ResolvedTrainConfig, resolveTrainConfig, type TrainConfig } from "./config.ts";
import { type MetricsRecord, type RunResult, Trainer } from "./trainer.ts";

/**
 * Options of {@linkcode trainFromConfig}.
 *
 * @category Training
 */
export interface TrainFromConfigOptions {
  /** The config (already resolved, or raw to be checked). */
  config: ResolvedTrainConfig | TrainConfig;
  /** Run folder: tokens/, checkpoints/, log.jsonl, config.json. */
  outDir: string;
  /** Total optimiser steps (overrides `training.steps`). */
  steps?: number;
  /**
   * With `resume`: when the newest checkpoint is unusable (corrupt, NaN weights, invalid state), resume
   * from the newest good older one instead of failing (the CLI's `--resume-good`).
   */
  resumeGood?: boolean;
  /** Continue from the newest checkpoint in `outDir`. Without it, a folder that already holds checkpoints is refused. */
  resume?: boolean;
  /** Called for every metrics record. */
  onMetrics?: (record: MetricsRecord) => void;
  /** Print progress lines (default true). */
  print?: boolean;
  /** Save and stop on SIGINT (Ctrl-C) instead of dying (default true outside tests). */
  handleSigint?: boolean;
  /** A stop request from the caller (notebooks): the loop saves and returns. */
  signal?: AbortSignal;
}

/**
 * What {@linkcode trainFromConfig} returns. The caller owns the model.
 *
 * @category Training
 */
export interface TrainFromConfigResult extends RunResult {
  /** The trained model; the caller disposes it. */
  model: Decoder;
  /** The tokenizer the model was trained with. */
  tokenizer: TextTokenizer;
  /** The architecture trained. */
  modelConfig: DecoderConfig;
  /** The run folder. */
  outDir: string;
}

async function prepareTokens(
  resolved: ResolvedTrainConfig,
  outDir: string,
  resume: boolean,
): Promise<RunTokens> {
  const tokDir = `${outDir}/tokens`;
  const d = resolved.config.data;
  const bin = await nanoGptTokens(d.corpus, d.tokenizer);
  if (bin) return bin;
  if (resume) return await readTokenFiles(tokDir);
  const corpus = await loadCorpus(d.corpus, { dataDir: d.dataDir, split: d.split });
  // A separate evaluation split (e.g. WikiText-2: train on valid, evaluate on test) replaces the holdout.
  const evalText = d.evalSplit === undefined
    ? undefined
    : (await loadCorpus(d.corpus, { dataDir: d.dataDir, split: d.evalSplit })).text;
  const { tokenizer, tokenizerJsonPath } = await buildTokenizer(
    d.tokenizer ?? "char",
    corpus.text + (evalText ?? ""),
  );
  await writeTokenFiles(corpus.text, tokenizer, tokDir, {
    valFraction: d.valFraction ?? 0.1,
    valText: evalText,
    tokenizerJsonPath,
    source: { name: corpus.name, files: corpus.files },
    minTokensPerSplit: resolved.settings.blockSize + 1,
  });
  return await readTokenFiles(tokDir);
}

/** Token ids of a run: in memory, or (a nanoGPT `train.bin`) read by window. */
type RunTokens = Omit<TokenFiles, "train"> & { train: TokenIds | BinTokenFile };

/**
 * A nanoGPT data folder (`train.bin` and `val.bin` of uint16 GPT-2 BPE ids, no `meta.json`), or null. The
 * training file is read by window (OpenWebText's is ~17 GB); `val.bin` (~9 MB) is read whole.
 */
async function nanoGptTokens(corpus: string, tokenizer: string | undefined): Promise<RunTokens | null> {
  const dir = corpus.replace(/\/+$/, "");
  const isFile = (p: string) => Deno.stat(p).then((i) => i.isFile, () => false);
  if (!(await isFile(`${dir}/train.bin`)) || await isFile(`${dir}/meta.json`)) return null;
  if (!(await isFile(`${dir}/val.bin`))) {
    throw new Error(
      `data.corpus '${corpus}': has train.bin but no val.bin (nanoGPT's prepare.py writes both)`,
    );
  }
  if (tokenizer !== undefined && tokenizer !== "gpt2") {
    throw new Error(
      `data.corpus '${corpus}' is a nanoGPT folder of GPT-2 BPE ids: data.tokenizer must be "gpt2" or absent, got ` +
        JSON.stringify(tokenizer),
    );
  }
  const tok = new Gpt2BpeTokenizer();
  const train = BinTokenFile.open(`${dir}/train.bin`);
  const valFile = BinTokenFile.open(`${dir}/val.bin`);
  const val = valFile.read(0, valFile.length);
  valFile.close();
  return {
    tokenizer: tok,
    train,
    val,
    meta: {
      format: "coherence-lab/tokens@1",
      dtype: "uint16",
      vocabSize: tok.vocabSize,
      trainTokens: train.length,
      valTokens: val.length,
      valFraction: 0,
      tokenizer: { type: "gpt2-bpe", vocabSize: tok.vocabSize },
      source: { name: dir, files: [`${dir}/train.bin`, `${dir}/val.bin`], characters: 0 },
    },
  };
}

/**
 * Trains a model as a config describes, writing everything under `outDir`, and returns the trained model.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { trainFromConfig } from "./run.ts";
 * import { initBackend } from "../backend/backend.ts";
 * await initBackend({ backend: "cpu" });
 * const corpus = await Deno.makeTempFile({ suffix: ".txt" });
 * await Deno.writeTextFile(corpus, "To be, or not to be, that is the question. ".repeat(40));
 * const result = await trainFromConfig({
 *   outDir: await Deno.makeTempDir(),
 *   print: false,
 *   config: {
 *     model: { preset: "gpt2-new", nLayers: 1, dModel: 32, nHeads: 2 },
 *     data: { corpus },
 *     training: { steps: 3, batchSize: 4, blockSize: 16 },
 *   },
 * });
 * assert.equal(result.step, 3);
 * result.model.dispose();
 * ```
 *
 * @category Training
 */
export async function trainFromConfig(options: TrainFromConfigOptions): Promise<TrainFromConfigResult> {
  checkOptionKeys(options, [
    "config",
    "outDir",
    "steps",
    "resumeGood",
    "resume",
    "onMetrics",
    "print",
    "handleSigint",
    "signal",
  ], "trainFromConfig");
  await ensureBackend();
  const resolved = "settings" in options.config ? options.config : resolveTrainConfig(options.config);
  const outDir = options.outDir.replace(/\/+$/, "");
  const ckptDir = `${outDir}/checkpoints`;
  const existing = await listCheckpoints(ckptDir);
  if (options.resume && existing.length === 0) {
    throw new Error(
      `--resume: '${outDir}' holds no checkpoint to resume from; drop --resume to start a new run there`,
    );
  }
  if (!options.resume && existing.length > 0) {
    throw new Error(
      `'${outDir}' already holds checkpoints (${
        existing.at(-1)
      }): pass --resume to continue that run, or choose a new --out folder`,
    );
  }
  const createdOut = !(await Deno.stat(outDir).then(() => true, () => false));
  const { settings } = resolved;
  let tokens: RunTokens;
  let modelConfig: DecoderConfig;
  let lock: HeldLock | undefined;
  try {
    await Deno.mkdir(outDir, { recursive: true });
    // One trainer per run folder: a second process (or a second --resume) refuses instead of interleaving.
    lock = await acquireLock(`${outDir}/.lock`, { what: `training run folder "${outDir}"` });
    tokens = await prepareTokens(resolved, outDir, options.resume ?? false);
    modelConfig = modelConfigFor(resolved.config.model, tokens.meta.vocabSize, settings.blockSize);
    if (!options.resume) await writeJsonAtomic(`${outDir}/config.json`, resolved.config);
  } catch (e) {
    // Nothing was trained yet: leave no half-prepared run folder behind.
    await lock?.release();
    if (createdOut) await Deno.remove(outDir, { recursive: true }).catch(() => {});
    throw e;
  }
  const model = createDecoder(modelConfig, {
    seed: settings.seed,
    init: resolved.config.model.init ?? "scaled",
    std: resolved.config.model.initStd ?? 0.02,
  });
  const extraFiles = new Map<string, Uint8Array>();
  if (tokens.meta.tokenizer.type === "tokenizer.json") {
    extraFiles.set("tokenizer.json", await Deno.readFile(`${outDir}/tokens/tokenizer.json`));
  }
  const trainer = new Trainer({
    model,
    settings,
    train: tokens.train,
    val: tokens.val,
    outDir,
    onMetrics: options.onMetrics,
    print: options.print,
    extraFiles,
    stateExtras: {
      config: resolved.config,
      tokenizer: tokens.meta.tokenizer,
      tokens: { ...tokens.meta, tokenizer: undefined },
    },
  });
  const onSigint = () => {
    console.error(
      "\ninterrupted: saving a checkpoint after this step, then exiting (press Ctrl-C again to abort)",
    );
    trainer.requestStop();
    Deno.removeSignalListener("SIGINT", onSigint);
  };
  const onAbort = () => trainer.requestStop();
  try {
    if (options.resume) {
      // Validated as a whole (state fields, finite weights, every AdamW moment) before the first step.
      const ckpt = await loadCheckpoint(ckptDir, {
        requireMoments: true,
        fallbackToGood: options.resumeGood ?? false,
        onFallback: (skipped, why, used) => {
          if (options.print ?? true) console.error(`skipping ${skipped}: ${why}\nresuming from ${used}`);
        },
      });
      try {
        trainer.restore(ckpt);
      } catch (e) {
        // Say it in the checkpoint's terms: the file and its field, not the class that read it.
        const msg = (e as Error).message
          .replace(/^Prng\.setState:?\s*/, 'field "sampler.prng": ')
          .replace(/^BatchSampler\.setState:?\s*/, 'field "sampler": ');
        throw new Error(`checkpoint file '${ckpt.dir}/state.json' cannot be resumed: ${msg}`);
      }
      await truncateLog(`${outDir}/log.jsonl`, trainer.step);
      // The model matched the checkpoint; the loop settings may have changed (e.g. more steps): record them.
      await writeJsonAtomic(`${outDir}/config.json`, resolved.config);
      if (options.print ?? true) console.log(`resumed from ${ckpt.dir} at step ${trainer.step}`);
    }
    if (options.handleSigint ?? true) Deno.addSignalListener("SIGINT", onSigint);
    options.signal?.addEventListener("abort", onAbort);
    const total = options.steps ?? resolved.steps;
    if (options.resume && total <= trainer.step && (options.print ?? true)) {
      console.error(
        `nothing to run: the checkpoint is at step ${trainer.step} and ${
          options.steps !== undefined ? `--steps ${total}` : `the config's training.steps (${total})`
        } is the total, counted from the start, not the number of steps to add; pass --steps ` +
          `${trainer.step + 1} or more to continue`,
      );
    }
    const result = await trainer.run(total);
    return { ...result, model, tokenizer: tokens.tokenizer, modelConfig, outDir };
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    if (options.handleSigint ?? true) {
      try {
        Deno.removeSignalListener("SIGINT", onSigint);
      } catch { /* already removed */ }
    }
    options.signal?.removeEventListener("abort", onAbort);
    trainer.dispose();
    if (tokens.train instanceof BinTokenFile) tokens.train.close();
    await lock.release();
  }
}

/**
 * Drops `log.jsonl` records after `step` (they are redone by the resumed run), atomically: a crash leaves
 * either the old log or the truncated one.
 */
async function truncateLog(path: string, step: number): Promise<void> {
  const { records, tornTail } = await readJsonl<{ step?: unknown }>(path, { allowMissing: true });
  const kept = records.filter((r) => !(typeof r?.step === "number" && r.step > step));
  if (kept.length === records.length && !tornTail) return;
  await writeTextAtomic(path, kept.map((r) => JSON.stringify(r) + "\n").join(""));
}

/**
 * A trained model loaded from a checkpoint, with its tokenizer and saved state.
 *
 * @category Training
 */
export interface TrainedModel {
  /** The trained model; the caller disposes it. */
  model: Decoder;
  /** The tokenizer the model was trained with. */
  tokenizer: TextTokenizer;
  /** The checkpoint folder read. */
  dir: string;
  /** Optimiser steps the checkpoint was trained for. */
  step: number;
  /** The checkpoint's `state.json` (config, metrics, RNG states). */
  state: Record<string, unknown>;
}

/**
 * Loads a model trained by {@linkcode trainFromConfig} (a run folder or a checkpoint folder) for sampling
 * or analysis. Optimiser moments are not kept.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadTrainedModel } from "./run.ts";
 * import { initBackend } from "../backend/backend.ts";
 * await initBackend({ backend: "cpu" });
 * const { model, tokenizer, step } = await loadTrainedModel("bundled:shakespeare-char"); // or a folder path
 * assert.ok(step > 0 && tokenizer.vocabSize === model.config.vocabSize);
 * model.dispose();
 * ```
 *
 * @category Training
 */
export async function loadTrainedModel(path: string): Promise<TrainedModel> {
  await ensureBackend();
  if (path.startsWith("bundled:") || /^https?:\/\//i.test(path)) path = await resolveModelSource(path);
  const ckpt = await loadCheckpoint(path, { optimizer: false });
  const config = ckpt.state.modelConfig as DecoderConfig | undefined;
  const ref = ckpt.state.tokenizer as TokenizerRef | undefined;
  if (!config || !ref) {
    throw new Error(
      `checkpoint ${ckpt.dir}/state.json lacks modelConfig or tokenizer: it was not written by the trainer`,
    );
  }
  const tensors = new Map<string, Tensor>();
  for (const [name, t] of ckpt.weights) {
    tensors.set(name, tf.tensor(t.data as Float32Array, t.shape, "float32"));
  }
  let model: Decoder;
  try {
    model = new Decoder(config, tensors, { source: ckpt.dir });
  } catch (e) {
    tf.dispose([...tensors.values()]);
    throw new Error(
      `checkpoint ${ckpt.dir}/model.safetensors does not match its modelConfig: ${(e as Error).message}`,
    );
  }
  const tokenizer = await tokenizerFromRef(ref, ckpt.dir);
  return { model, tokenizer, dir: ckpt.dir, step: ckpt.state.step, state: ckpt.state };
}

async function pathExists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

// Trainer runs and checkpoints open through the one `openModel` of lib/models.
registerModelFolderReader({
  kind: "trained",
  describe: "a run or checkpoint folder written by the trainer (state.json, or checkpoints/ with latest)",
  detect: async (folder) =>
    await pathExists(`${folder}/state.json`) || await pathExists(`${folder}/checkpoints`) ||
    await pathExists(`${folder}/latest`),
  open: async (folder) => {
    const t = await loadTrainedModel(folder);
    return { model: t.model, tokenizer: t.tokenizer, source: t.dir, kind: "trained" };
  },
});
