/**
 * The training config: one JSON object (or a TS module whose default export is one) holding the model,
 * data, loop, optimiser, schedule, evaluation, logging and checkpoint settings. Unknown keys are errors,
 * so a typo never silently falls back to a default.
 *
 * @module
 */
import { DECODER_CONFIG_FIELDS, type DecoderConfig } from "../models/types.ts";
import { modelPreset, presetNames } from "../models/presets.ts";
import { checkChoice, didYouMean } from "../options.ts";
import { decoderParameterSpecs } from "../models/params.ts";
import { DECAY_MATRICES_ONLY, PARAM_GROUP_RULE_SETS, type ParamGroupRule } from "./adamw.ts";
import { PERPLEXITY_DEFINITIONS, type PerplexityDefinition } from "./loss.ts";
import { type LrSchedule, validateSchedule } from "./schedule.ts";
import type { TrainerSettings } from "./trainer.ts";

/**
 * The library's own model presets; research folders register more (see `presetNames()`), and a config's
 * `model.preset` may name any registered one.
 *
 * @category Training
 */
export const MODEL_PRESETS = ["gpt2", "gpt2-new"] as const;

/**
 * The model section: a preset plus any {@linkcode DecoderConfig} fields to override. `vocabSize` comes from
 * the tokenizer and `maxPositions` defaults to the training block size.
 *
 * @category Training
 */
export interface ModelSection extends Partial<Omit<DecoderConfig, "family">> {
  /** The registered preset the overrides apply to, e.g. "gpt2" (LayerNorm, learned positions, GELU-tanh, biases) or "gpt2-new" (RMSNorm, RoPE, SwiGLU, no biases); see `presetNames()`. */
  preset: string;
  /** "scaled" (default): residual output projections get std / sqrt(2 · nLayers); "normal": all std. */
  init?: "normal" | "scaled";
  /** Standard deviation of the weight matrices (default 0.02). */
  initStd?: number;
}

/**
 * Where the text comes from and how it is tokenised.
 *
 * @category Training
 */
export interface DataSection {
  /**
   * A file, a folder, a named corpus (`tinyshakespeare`, `wikitext-2`), or a nanoGPT data folder
   * (`train.bin` and `val.bin` of GPT-2 BPE uint16 ids, no `meta.json`; `train.bin` is read by window).
   */
  corpus: string;
  /** `"char"` (default), `"gpt2"` (GPT-2 BPE, V padded to 50304) or a path to a `tokenizer.json` (or a folder holding one). */
  tokenizer?: string;
  /** Share of tokens at the end held out for validation (default 0.1). */
  valFraction?: number;
  /** Offline data folder for named corpora (default `$COHERENCE_DATA_DIR`). */
  dataDir?: string;
  /** Split of a named corpus (default its first). */
  split?: string;
  /**
   * A split of the same named corpus to evaluate on instead of holding out `valFraction` (WikiText-2 has
   * no offline train split: train on `split: "valid"`, evaluate on `evalSplit: "test"`).
   */
  evalSplit?: string;
}

/**
 * A whole training config as written by a user.
 *
 * @category Training
 */
export interface TrainConfig {
  /** Architecture and initialisation. */
  model: ModelSection;
  /** Corpus, tokenizer and split. */
  data: DataSection;
  /** Loop settings. */
  training: {
    /** Total optimiser steps of the run. */
    steps: number;
    batchSize: number;
    blockSize: number;
    gradAccum?: number;
    /** Global-norm clip; 0 turns it off (default 1). */
    gradClip?: number;
    seed?: number;
  };
  /** AdamW settings. */
  optimizer?: {
    beta1?: number;
    beta2?: number;
    eps?: number;
    /** Weight decay of the default rule (rank ≥ 2 decayed), when `groups` is not given (default 0.1). */
    weightDecay?: number;
    /** Rules in priority order, or a rule-set name: `"rank"` (default) or `"phasegpt-names"`. */
    groups?: ParamGroupRule[] | string;
  };
  /** Learning-rate schedule (default constant 3e-4). */
  schedule?: LrSchedule;
  /** Evaluation on the validation split: every `interval` steps (0: only at the end), at most `batches` batches of `batchSize`, perplexity by definition name. */
  eval?: { interval?: number; batches?: number; batchSize?: number; perplexity?: PerplexityDefinition };
  /** Train metrics every `interval` steps (default 10). */
  log?: { interval?: number };
  /** Checkpoint every `interval` steps (0: only at the end and on Ctrl-C), keeping the newest `keepLast` (default 2). */
  checkpoint?: { interval?: number; keepLast?: number };
  /**
   * The objective: cross-entropy plus `weight × term` for each auxiliary term the model's components
   * report (e.g. `{ terms: { coherence: 0.1 } }`); terms without a weight are logged only.
   */
  loss?: { terms?: Record<string, number> };
}

const SECTION_KEYS: Record<string, string[]> = {
  "": ["model", "data", "training", "optimizer", "schedule", "eval", "log", "checkpoint", "loss"],
  // Every DecoderConfig field (the list the compiler keeps complete) except `family`, plus the preset's.
  model: ["preset", "init", "initStd", ...Object.keys(DECODER_CONFIG_FIELDS).filter((k) => k !== "family")],
  data: ["corpus", "tokenizer", "valFraction", "dataDir", "split", "evalSplit"],
  training: ["steps", "batchSize", "blockSize", "gradAccum", "gradClip", "seed"],
  optimizer: ["beta1", "beta2", "eps", "weightDecay", "groups"],
  eval: ["interval", "batches", "batchSize", "perplexity"],
  log: ["interval"],
  checkpoint: ["interval", "keepLast"],
  loss: ["terms"],
};

function checkKeys(obj: unknown, section: string, where: string): Record<string, unknown> {
  const name = section || "config";
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    throw new Error(`${where}: '${name}' must be an object`);
  }
  const allowed = SECTION_KEYS[section];
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) {
      throw new Error(
        `${where}: unknown key '${section ? section + "." : ""}${k}'; allowed: ${allowed.join(", ")}`,
      );
    }
  }
  return obj as Record<string, unknown>;
}

function int(v: unknown, path: string, where: string, min: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
    throw new Error(`${where}: ${path} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function num(v: unknown, path: string, where: string, lo: number, hi: number, hiOpen = false): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < lo || (hiOpen ? v >= hi : v > hi)) {
    throw new Error(
      `${where}: ${path} must be a number in [${lo}, ${hi}${hiOpen ? ")" : "]"}, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

/**
 * A config with every default filled in and checked.
 *
 * @category Training
 */
export interface ResolvedTrainConfig {
  /** The config as given. */
  config: TrainConfig;
  /** Loop settings with every default filled in. */
  settings: TrainerSettings;
  /** Total optimiser steps of the run. */
  steps: number;
}

/**
 * Checks a config and fills in defaults. Errors name the field, what was found and what is allowed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveTrainConfig } from "./config.ts";
 * const { settings } = resolveTrainConfig({
 *   model: { preset: "gpt2-new", nLayers: 2, dModel: 64, nHeads: 4 },
 *   data: { corpus: "tinyshakespeare" },
 *   training: { steps: 100, batchSize: 8, blockSize: 64 },
 * });
 * assert.deepEqual([settings.schedule.kind, settings.gradClip], ["constant", 1]);
 * ```
 *
 * @category Training
 */
export function resolveTrainConfig(raw: unknown, where = "training config"): ResolvedTrainConfig {
  const top = checkKeys(raw, "", where);
  for (const s of ["model", "data", "training"]) {
    if (top[s] === undefined) throw new Error(`${where}: missing section '${s}'`);
  }
  const model = checkKeys(top.model, "model", where) as unknown as ModelSection;
  if (!presetNames().includes(model.preset)) {
    throw new Error(
      `${where}: model.preset is ${JSON.stringify(model.preset)}${
        didYouMean(String(model.preset), presetNames())
      }; ` +
        `use one of ${presetNames().join(", ")}`,
    );
  }
  if (model.init !== undefined && model.init !== "normal" && model.init !== "scaled") {
    throw new Error(`${where}: model.init must be "normal" or "scaled", got ${JSON.stringify(model.init)}`);
  }
  const data = checkKeys(top.data, "data", where) as unknown as DataSection;
  if (typeof data.corpus !== "string" || !data.corpus) {
    throw new Error(`${where}: data.corpus must be a path or a corpus name (tinyshakespeare, wikitext-2)`);
  }
  if (data.valFraction !== undefined) num(data.valFraction, "data.valFraction", where, 0, 1, true);
  const tr = checkKeys(top.training, "training", where);
  const steps = int(tr.steps, "training.steps", where, 1);
  const batchSize = int(tr.batchSize, "training.batchSize", where, 1);
  const blockSize = int(tr.blockSize, "training.blockSize", where, 1);
  const gradAccum = int(tr.gradAccum ?? 1, "training.gradAccum", where, 1);
  const gradClip = num(tr.gradClip ?? 1, "training.gradClip", where, 0, Infinity);
  const seed = int(tr.seed ?? 1337, "training.seed", where, 0);
  const opt = checkKeys(top.optimizer ?? {}, "optimizer", where);
  const weightDecay = num(opt.weightDecay ?? 0.1, "optimizer.weightDecay", where, 0, Infinity);
  // A string names a rule set (e.g. "phasegpt-names") applied with optimizer.weightDecay.
  const groups = typeof opt.groups === "string"
    ? PARAM_GROUP_RULE_SETS
      [checkChoice(opt.groups, Object.keys(PARAM_GROUP_RULE_SETS), "optimizer.groups rule set")](
        weightDecay,
      )
    : (opt.groups as ParamGroupRule[] | undefined) ?? DECAY_MATRICES_ONLY(weightDecay);
  if (!Array.isArray(groups) || groups.length === 0) {
    throw new Error(`${where}: optimizer.groups must be a non-empty list of rules`);
  }
  groups.forEach((g, i) => {
    num(g?.weightDecay, `optimizer.groups[${i}].weightDecay`, where, 0, Infinity);
    for (const k of ["match", "notMatch"] as const) {
      if (g[k] !== undefined) {
        try {
          new RegExp(g[k]!);
        } catch (e) {
          throw new Error(
            `${where}: optimizer.groups[${i}].${k} is not a valid regular expression (${
              (e as Error).message
            })`,
          );
        }
      }
    }
  });
  const schedule = validateSchedule(
    (top.schedule as LrSchedule | undefined) ?? { kind: "constant", lr: 3e-4 },
    `${where}: schedule`,
  );
  const ev = checkKeys(top.eval ?? {}, "eval", where);
  const perplexity = (ev.perplexity ?? "token_mean") as PerplexityDefinition;
  if (!PERPLEXITY_DEFINITIONS.includes(perplexity)) {
    throw new Error(
      `${where}: eval.perplexity is ${JSON.stringify(perplexity)}; use one of ${
        PERPLEXITY_DEFINITIONS.join(", ")
      }`,
    );
  }
  const log = checkKeys(top.log ?? {}, "log", where);
  const lossSection = checkKeys(top.loss ?? {}, "loss", where);
  const lossTerms = lossSection.terms ?? {};
  if (lossTerms === null || typeof lossTerms !== "object" || Array.isArray(lossTerms)) {
    throw new Error(
      `${where}: loss.terms must be an object of term name -> weight, e.g. { "coherence": 0.1 }`,
    );
  }
  for (const [k, w] of Object.entries(lossTerms)) num(w, `loss.terms.${k}`, where, -Infinity, Infinity);
  const ck = checkKeys(top.checkpoint ?? {}, "checkpoint", where);
  const settings: TrainerSettings = {
    batchSize,
    blockSize,
    gradAccum,
    gradClip,
    seed,
    optimizer: {
      beta1: num(opt.beta1 ?? 0.9, "optimizer.beta1", where, 0, 1, true),
      beta2: num(opt.beta2 ?? 0.95, "optimizer.beta2", where, 0, 1, true),
      eps: num(opt.eps ?? 1e-8, "optimizer.eps", where, Number.MIN_VALUE, 1),
      groups,
    },
    schedule,
    evalInterval: int(ev.interval ?? 0, "eval.interval", where, 0),
    evalBatches: int(ev.batches ?? 20, "eval.batches", where, 1),
    evalBatchSize: int(ev.batchSize ?? batchSize, "eval.batchSize", where, 1),
    perplexity,
    logInterval: int(log.interval ?? 10, "log.interval", where, 1),
    checkpointInterval: int(ck.interval ?? 0, "checkpoint.interval", where, 0),
    keepLast: int(ck.keepLast ?? 2, "checkpoint.keepLast", where, 0),
  };
  if (Object.keys(lossTerms).length) settings.lossTerms = { ...lossTerms as Record<string, number> };
  return { config: raw as TrainConfig, settings, steps };
}

/**
 * The decoder config a model section describes, for a tokenizer of `vocabSize` ids and training windows
 * of `blockSize`. Errors name the field and the fix (e.g. a width that the head count does not divide).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { modelConfigFor } from "./config.ts";
 * const c = modelConfigFor({ preset: "gpt2", nLayers: 4, dModel: 128, nHeads: 4 }, 65, 128);
 * assert.deepEqual([c.headDim, c.maxPositions, c.vocabSize], [32, 128, 65]);
 * ```
 *
 * @category Training
 */
export function modelConfigFor(section: ModelSection, vocabSize: number, blockSize: number): DecoderConfig {
  const { preset, init: _init, initStd: _std, ...overrides } = section;
  const dModel = overrides.dModel, nHeads = overrides.nHeads;
  if (
    dModel !== undefined && nHeads !== undefined && overrides.headDim === undefined && dModel % nHeads !== 0
  ) {
    throw new Error(
      `model.dModel ${dModel} is not divisible by model.nHeads ${nHeads}: choose a head count that divides the ` +
        `width (e.g. ${[1, 2, 4, 8, 16].filter((h) => dModel % h === 0).join(", ")}) or set model.headDim`,
    );
  }
  if (overrides.vocabSize !== undefined && overrides.vocabSize !== vocabSize) {
    throw new Error(
      `model.vocabSize ${overrides.vocabSize} differs from the tokenizer's ${vocabSize}: remove model.vocabSize ` +
        `(it is taken from the tokenizer)`,
    );
  }
  const config = modelPreset(preset, {
    ...overrides,
    vocabSize,
    maxPositions: overrides.maxPositions ?? blockSize,
  });
  if (blockSize > config.maxPositions) {
    throw new Error(
      `training.blockSize ${blockSize} exceeds model.maxPositions ${config.maxPositions}: raise maxPositions`,
    );
  }
  try {
    // Also checks the component kinds and their options (an unknown kind lists the registered ones).
    decoderParameterSpecs(config);
  } catch (e) {
    throw new Error(`model section: ${(e as Error).message}`);
  }
  return config;
}

/**
 * Options of {@linkcode loadTrainConfig}.
 *
 * @category Training
 */
export interface LoadTrainConfigOptions {
  /**
   * Imports a `.ts`/`.js` config module by file URL, e.g. `(url) => import(url)`. The library itself never
   * imports a module named at run time (which also keeps `deno publish` free of unanalyzable imports), so
   * module configs need this; `deno task train` passes it.
   */
  importModule?: (url: string) => Promise<{ default?: unknown }>;
}

/**
 * Reads a config file: `.json`, or a `.ts`/`.js` module whose default export is the config (with
 * `options.importModule`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadTrainConfig } from "./config.ts";
 * await assert.rejects(loadTrainConfig("missing.json"), /missing\.json/); // names the file
 * ```
 *
 * @category Training
 */
export async function loadTrainConfig(
  path: string,
  options: LoadTrainConfigOptions = {},
): Promise<ResolvedTrainConfig> {
  let raw: unknown;
  if (/\.(ts|js|mjs)$/.test(path)) {
    const url = new URL(path, `file://${Deno.cwd()}/`).href;
    if (!options.importModule) {
      throw new Error(
        `config module '${path}': pass { importModule: (url) => import(url) } to loadTrainConfig, or import ` +
          `it yourself and give its default export to resolveTrainConfig`,
      );
    }
    try {
      raw = (await options.importModule(url)).default;
    } catch (e) {
      throw new Error(`config module '${path}' could not be loaded: ${(e as Error).message}`);
    }
    if (raw === undefined) {
      throw new Error(`config module '${path}' has no default export: export the config object as default`);
    }
  } else {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new Error(`config file '${path}' does not exist: check the --config path`);
      }
      throw e;
    }
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new Error(`config file '${path}' is not valid JSON: ${(e as Error).message}`);
    }
  }
  return resolveTrainConfig(raw, `config '${path}'`);
}
