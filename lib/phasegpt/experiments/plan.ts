/**
 * PhaseGPT experiment plans: one JSON file names the configs (a registered model preset plus overrides),
 * the modes (patches merged into every non-attention mixer's options, e.g. faithful vs corrected), the data
 * variants (tokenizers), the seeds, and named scales (`ci`, `cpu`, `original`) that resize model, data and
 * budget. {@linkcode expandPlan} turns it into the ordered list of runs the sweep executes; every key is
 * checked, so a misspelt preset or option fails before anything trains, with a did-you-mean.
 *
 * Why scales live in the plan and not in separate files: the shipped CPU-sized plan and the original sizes
 * must be the same experiment, so one option (`--scale original`) switches between them.
 *
 * @module
 */
import { checkChoice, checkOptionKeys } from "../../options.ts";
import { presetNames } from "../../models/presets.ts";
import { DECODER_CONFIG_FIELDS, type DecoderConfig, type MixerSpec } from "../../models/types.ts";
import { countParameters } from "../../models/params.ts";
import { modelConfigFor, type ModelSection } from "../../train/config.ts";
import type { LrSchedule } from "../../train/schedule.ts";
import { ORDER_PARAMETER_DEFINITIONS, type OrderParameterDefinition } from "../primitives.ts";

/**
 * Which PhaseGPT phase a plan belongs to: A (Shakespeare hyper-parameter study) or B (WikiText-2
 * generalisation, preregistered).
 *
 * @category PhaseGPT
 */
export type PhaseName = "A" | "B";

/**
 * The R definitions a plan may declare: the axes of lib/phasegpt's `orderParameter`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { R_DEFINITIONS } from "./plan.ts";
 * assert.ok(R_DEFINITIONS.includes("heads-mean"));
 * ```
 *
 * @category PhaseGPT
 */
export const R_DEFINITIONS: readonly OrderParameterDefinition[] = ORDER_PARAMETER_DEFINITIONS;

/**
 * One R definition name.
 *
 * @category PhaseGPT
 */
export type RDefinition = OrderParameterDefinition;

/**
 * Tokenizers a data variant may name: `char` (sorted unique characters), `char256-nows` (Phase B as coded:
 * `codePoint mod 256` of every non-whitespace character), `gpt2` (GPT-2 byte-level BPE, offline, 50,257 ids,
 * EOT between documents; Phase B as preregistered), or a path / `hf:org/name` of a `tokenizer.json`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BUILTIN_TOKENIZERS } from "./plan.ts";
 * assert.deepEqual([...BUILTIN_TOKENIZERS], ["char", "char256-nows", "gpt2"]);
 * ```
 *
 * @category PhaseGPT
 */
export const BUILTIN_TOKENIZERS = ["char", "char256-nows", "gpt2"] as const;

/**
 * One model configuration of a plan.
 *
 * @category PhaseGPT
 */
export interface PlanConfig {
  /** Stable id used in run ids and tables, e.g. `l7-n32-k1`. */
  id: string;
  /** A registered model preset (see `presetNames()`). */
  preset: string;
  /** DecoderConfig overrides applied before the scale's. */
  overrides?: Partial<DecoderConfig>;
  /** `baseline` configs run once per seed (modes do not change them); `phase` configs once per mode. */
  role?: "baseline" | "phase";
  /** Parameter-matched baseline: choose `dMlp` so the parameter count equals this config's phase model. */
  matchParamsOf?: string;
  /**
   * The mode of the `matchParamsOf` model to match (default: the first mode the scale runs). Modes can differ
   * in size (the corrected sin/cos readout has twice the inputs of the faithful angle readout). At a scale
   * that does not run this mode, the config is left out.
   */
  matchMode?: string;
  /** Weights of auxiliary loss terms (e.g. `{ "coherence": 0.1 }` for B4's regulariser). */
  lossTerms?: Record<string, number>;
  /**
   * Block indices (of the preset's depth) whose attention becomes a phase mixer; remapped to the scale's
   * depth at the same relative position. Absent or empty: the preset's own mixers.
   */
  phaseLayers?: number[];
  /** The phase mixer's spec: `kind` (default "kuramoto") and its options (N, K0, noise, jitter, …). */
  mixer?: Record<string, unknown>;
  /** The seed's reported best val PPL, shown beside ours. */
  seedPpl?: number | null;
  /** Short label for charts. */
  label?: string;
}

/**
 * A named scale: model overrides and the training budget.
 *
 * @category PhaseGPT
 */
export interface PlanScale {
  /** What this scale is for, one line. */
  description?: string;
  /** DecoderConfig overrides (nLayers, dModel, nHeads, dMlp, dropout); mixer layers are remapped to nLayers. */
  model?: Partial<DecoderConfig>;
  /** Optimiser steps per run (equal for every config: equal budgets). */
  steps: number;
  /** Sequences per step. */
  batchSize: number;
  /** Tokens per sequence. */
  blockSize: number;
  /** Evaluate every this many steps. */
  evalInterval: number;
  /** Validation batches per evaluation (of `batchSize`). */
  evalBatches: number;
  /** Test batches at the end (Phase B; 0: the whole test split). */
  testBatches?: number;
  /** Seeds override (fewer at CI scale). */
  seeds?: number[];
  /** Only these config ids (CI scale may run a subset). */
  configs?: string[];
  /** Only these modes. */
  modes?: string[];
  /** Only these data variants. */
  variants?: string[];
  /** Warm-up steps of the schedule at this scale. */
  warmupSteps?: number;
  /** Characters of the training corpus used (0 or absent: all); keeps CI data preparation fast. */
  maxChars?: number;
}

/**
 * A data variant: corpus, splits and tokenizer.
 *
 * @category PhaseGPT
 */
export interface PlanVariant {
  /** Id used in run ids, e.g. `char` or `bpe`. */
  id: string;
  /** `char`, `char256-nows`, a tokenizer.json path or folder, or `hf:org/name`. */
  tokenizer: string;
  /** What the variant reproduces, one line. */
  description?: string;
}

/**
 * The whole plan file.
 *
 * @category PhaseGPT
 */
export interface PhaseGptPlan {
  /** Format marker. */
  schema: "coherence-lab/phasegpt-plan@1";
  /** Plan name (in run ids). */
  name: string;
  /** A or B. */
  phase: PhaseName;
  /** One paragraph. */
  description?: string;
  /** Named corpus or path; `trainSplit` trains (its tail is validation), `testSplit` is scored at the end. */
  data: { corpus: string; trainSplit?: string; testSplit?: string; valFraction?: number; dataDir?: string };
  /** Data variants (default one: `char`). */
  variants?: PlanVariant[];
  /** Modes: name → patch for the phase mixers' options. */
  modes: Record<string, Record<string, unknown>>;
  /** Seeds of every run. */
  seeds: number[];
  /** Model configurations. */
  configs: PlanConfig[];
  /** Named scales. */
  scales: Record<string, PlanScale>;
  /** Scale used when none is asked for. */
  defaultScale: string;
  /** Optimiser (AdamW) settings shared by every run. */
  optimizer?: {
    weightDecay?: number;
    beta1?: number;
    beta2?: number;
    eps?: number;
    /** Decay rules or a rule-set name (`"phasegpt-names"`: the original's name-based grouping). */
    groups?: string | { match?: string; notMatch?: string; weightDecay: number }[];
  };
  /** Peak learning rate and schedule; `warmupSteps`/`decaySteps` are filled from the scale. */
  schedule?: LrSchedule;
  /** Gradient clip (default 1). */
  gradClip?: number;
  /** The R the criteria use: which metric the phase mixer logs, under which definition. */
  r?: { metric: string; definition: RDefinition; band?: [number, number] };
}

/**
 * One planned run.
 *
 * @category PhaseGPT
 */
export interface PhaseGptRunSpec {
  /** Position in the full plan (shards select on it). */
  index: number;
  /** `plan|variant|config|mode|seed|scale`. */
  id: string;
  /** Plan name. */
  plan: string;
  /** A or B. */
  phase: PhaseName;
  /** Scale name. */
  scale: string;
  /** Data variant id. */
  variant: string;
  /** Tokenizer of the variant. */
  tokenizer: string;
  /** Config id. */
  config: string;
  /** Mode (`-` for baselines, which no mode changes). */
  mode: string;
  /** Seed (model init, batches, dropout). */
  seed: number;
  /** The model section the trainer builds (preset + resolved overrides). */
  model: ModelSection;
  /** Aux loss term weights. */
  lossTerms: Record<string, number>;
  /** Parameters counted for a reference vocabulary (the real count is recorded after tokenizing). */
  matchParamsOf?: string;
  /** The mode of the matched phase model (see {@linkcode PlanConfig.matchMode}). */
  matchMode?: string;
}

const PLAN_KEYS = [
  "schema",
  "name",
  "phase",
  "description",
  "data",
  "variants",
  "modes",
  "seeds",
  "configs",
  "scales",
  "defaultScale",
  "optimizer",
  "schedule",
  "gradClip",
  "r",
];
const CONFIG_KEYS = [
  "id",
  "preset",
  "overrides",
  "role",
  "matchParamsOf",
  "matchMode",
  "lossTerms",
  "phaseLayers",
  "mixer",
  "seedPpl",
  "label",
];
const SCALE_KEYS = [
  "description",
  "model",
  "steps",
  "batchSize",
  "blockSize",
  "evalInterval",
  "evalBatches",
  "testBatches",
  "seeds",
  "configs",
  "modes",
  "variants",
  "warmupSteps",
  "maxChars",
];
const DATA_KEYS = ["corpus", "trainSplit", "testSplit", "valFraction", "dataDir"];
const VARIANT_KEYS = ["id", "tokenizer", "description"];
const OPTIMIZER_KEYS = ["weightDecay", "beta1", "beta2", "eps", "groups"];
const R_KEYS = ["metric", "definition", "band"];
const MODEL_KEYS = Object.keys(DECODER_CONFIG_FIELDS).filter((k) => k !== "family" && k !== "vocabSize");

/** checkChoice, with the place first: `plan 'p.json': config x: unknown model preset "gpt-2" (did you mean gpt2?); …`. */
function choice<T extends string>(value: unknown, allowed: readonly T[], where: string, what: string): T {
  try {
    return checkChoice(value, allowed, what);
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
}

function posInt(v: unknown, where: string, min = 1): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
    throw new Error(`${where} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function idOk(id: unknown, where: string): string {
  if (typeof id !== "string" || !/^[A-Za-z0-9._-]+$/.test(id)) {
    throw new Error(
      `${where} must be a non-empty id of letters, digits, '.', '_' or '-', got ${JSON.stringify(id)}`,
    );
  }
  return id;
}

/**
 * Checks a parsed plan object: every key at every level, preset names against the registry, config and
 * scale references, seeds. Throws one message naming the place, the bad value and the allowed values.
 *
 * @example
 * ```ts
 * import type { PhaseGptPlan } from "./plan.ts";
 * import assert from "node:assert/strict";
 * import { validatePlan } from "./plan.ts";
 * const plan: PhaseGptPlan = {
 *   schema: "coherence-lab/phasegpt-plan@1", name: "demo", phase: "A", data: { corpus: "tinyshakespeare" },
 *   modes: { faithful: {} }, seeds: [0], defaultScale: "ci",
 *   configs: [{ id: "base", preset: "gpt2", role: "baseline" }],
 *   scales: { ci: { steps: 2, batchSize: 2, blockSize: 16, evalInterval: 1, evalBatches: 1 } },
 * };
 * assert.equal(validatePlan(plan).name, "demo");
 * assert.throws(() => validatePlan({ ...plan, configs: [{ id: "b", preset: "gpt2-neww" }] }), /did you mean gpt2-new/);
 * ```
 *
 * @category PhaseGPT
 */
export function validatePlan(raw: unknown, where = "plan"): PhaseGptPlan {
  checkOptionKeys(raw, PLAN_KEYS, where);
  if (raw === undefined) throw new Error(`${where}: expected a plan object`);
  const p = raw as PhaseGptPlan;
  if (p.schema !== "coherence-lab/phasegpt-plan@1") {
    throw new Error(
      `${where}: schema must be "coherence-lab/phasegpt-plan@1", got ${JSON.stringify(p.schema)}`,
    );
  }
  idOk(p.name, `${where}: name`);
  choice(p.phase, ["A", "B"] as const, where, "phase");
  checkOptionKeys(p.data, DATA_KEYS, `${where}: data`);
  if (!p.data || typeof p.data.corpus !== "string" || !p.data.corpus) {
    throw new Error(`${where}: data.corpus must name a corpus (tinyshakespeare, wikitext-2) or a path`);
  }
  for (const v of p.variants ?? []) {
    checkOptionKeys(v, VARIANT_KEYS, `${where}: variant`);
    idOk(v.id, `${where}: variant id`);
    if (typeof v.tokenizer !== "string" || !v.tokenizer) {
      throw new Error(
        `${where}: variant ${v.id}: tokenizer must be ${BUILTIN_TOKENIZERS.join(", ")} or a path`,
      );
    }
  }
  if (!p.modes || typeof p.modes !== "object" || Object.keys(p.modes).length === 0) {
    throw new Error(`${where}: modes must name at least one mode, e.g. { "faithful": {}, "corrected": {} }`);
  }
  for (const m of Object.keys(p.modes)) idOk(m, `${where}: mode name`);
  if (!Array.isArray(p.seeds) || p.seeds.length === 0) {
    throw new Error(`${where}: seeds must be a non-empty list`);
  }
  p.seeds.forEach((s, i) => posInt(s, `${where}: seeds[${i}]`, 0));
  if (!Array.isArray(p.configs) || p.configs.length === 0) {
    throw new Error(`${where}: configs must be a non-empty list`);
  }
  const ids = p.configs.map((c) => c?.id);
  const presets = presetNames();
  for (const c of p.configs) {
    checkOptionKeys(c, CONFIG_KEYS, `${where}: config ${JSON.stringify(c?.id ?? "?")}`);
    const cw = `${where}: config ${idOk(c.id, `${where}: config id`)}`;
    choice(c.preset, presets, cw, "model preset");
    checkOptionKeys(c.overrides, MODEL_KEYS, `${cw}: overrides`);
    if (c.role !== undefined) choice(c.role, ["baseline", "phase"] as const, cw, "role");
    if (c.matchParamsOf !== undefined) {
      choice(c.matchParamsOf, ids.filter((x) => x !== c.id), cw, "matchParamsOf config");
    }
    if (c.matchMode !== undefined) {
      if (c.matchParamsOf === undefined) throw new Error(`${cw}: matchMode needs matchParamsOf`);
      choice(c.matchMode, Object.keys(p.modes), cw, "matchMode");
    }
    for (const [k, w] of Object.entries(c.lossTerms ?? {})) {
      if (typeof w !== "number" || !Number.isFinite(w)) {
        throw new Error(`${cw}: lossTerms.${k} must be a number`);
      }
    }
  }
  if (new Set(ids).size !== ids.length) throw new Error(`${where}: two configs share an id`);
  if (!p.scales || typeof p.scales !== "object" || Object.keys(p.scales).length === 0) {
    throw new Error(`${where}: scales must name at least one scale`);
  }
  for (const [name, s] of Object.entries(p.scales)) {
    const sw = `${where}: scale ${name}`;
    checkOptionKeys(s, SCALE_KEYS, sw);
    checkOptionKeys(s.model, MODEL_KEYS, `${sw}: model`);
    for (const k of ["steps", "batchSize", "blockSize", "evalInterval", "evalBatches"] as const) {
      posInt(s[k], `${sw}: ${k}`);
    }
    if (s.testBatches !== undefined) posInt(s.testBatches, `${sw}: testBatches`, 0);
    if (s.warmupSteps !== undefined) posInt(s.warmupSteps, `${sw}: warmupSteps`, 0);
    if (s.maxChars !== undefined) posInt(s.maxChars, `${sw}: maxChars`, 0);
    for (const c of s.configs ?? []) choice(c, ids, sw, "config");
    for (const m of s.modes ?? []) choice(m, Object.keys(p.modes), sw, "mode");
    const variantIds = (p.variants ?? [{ id: "char" }]).map((v) => v.id);
    for (const v of s.variants ?? []) choice(v, variantIds, sw, "variant");
    (s.seeds ?? []).forEach((x, i) => posInt(x, `${sw}: seeds[${i}]`, 0));
  }
  choice(p.defaultScale, Object.keys(p.scales), where, "defaultScale");
  checkOptionKeys(p.optimizer, OPTIMIZER_KEYS, `${where}: optimizer`);
  if (p.r !== undefined) {
    checkOptionKeys(p.r, R_KEYS, `${where}: r`);
    choice(p.r.definition, R_DEFINITIONS, where, "r.definition");
    if (p.r.definition !== "layer") {
      // The criteria read R from the training log, and the mixer logs only its own (layer) R.
      throw new Error(
        `${where}: r.definition "${p.r.definition}" is not logged during training: the kuramoto mixer logs R ` +
          `under the "layer" definition (metric "R"); compute the others with orderParameter on the ` +
          `blocks.{L}.attn.hook_phases activations`,
      );
    }
    if (typeof p.r.metric !== "string" || !p.r.metric) {
      throw new Error(`${where}: r.metric must name a metric`);
    }
  }
  return p;
}

/**
 * Reads and validates a plan file (JSON).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadPlan } from "./plan.ts";
 * await assert.rejects(loadPlan("no/such/plan.json"), /no\/such\/plan\.json/);
 * ```
 *
 * @category PhaseGPT
 */
export async function loadPlan(path: string): Promise<PhaseGptPlan> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`plan '${path}' cannot be read (${(e as Error).message}); pass --plan with a plan file`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`plan '${path}' is not valid JSON: ${(e as Error).message}`);
  }
  return validatePlan(raw, `plan '${path}'`);
}

/**
 * Maps mixer layer indices of an `L`-layer preset to a `L2`-layer model at the same relative depth
 * (round(l·L2/L)), then pushes collisions apart so distinct layers stay distinct ([6, 7] of 12 → [3, 4] of 6).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { remapLayers } from "./plan.ts";
 * assert.deepEqual(remapLayers([7], 12, 6), [4]);
 * assert.deepEqual(remapLayers([6, 7], 12, 2), [0, 1]);
 * ```
 *
 * @category PhaseGPT
 */
export function remapLayers(layers: number[], from: number, to: number): number[] {
  if (from === to) return [...layers];
  const out = [...layers].sort((a, b) => a - b).map((l) => Math.min(to - 1, Math.round((l * to) / from)));
  for (let i = 1; i < out.length; i++) if (out[i] <= out[i - 1]) out[i] = out[i - 1] + 1;
  // Overflow past the top: shift down from the end, keeping the order.
  for (let i = out.length - 1; i >= 0; i--) {
    const cap = to - (out.length - i);
    if (out[i] > cap) out[i] = cap;
  }
  if (out[0] < 0) throw new Error(`cannot place ${layers.length} distinct mixer layers in ${to} layers`);
  return out;
}

/**
 * The model section of one run: the preset, the config's overrides, the scale's overrides, the mode's
 * patch on every non-attention mixer, and phase-mixer layers remapped to the scaled depth.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { modelSectionFor } from "./plan.ts";
 * const m = modelSectionFor({ id: "b", preset: "gpt2" }, { steps: 1, batchSize: 1, blockSize: 8, evalInterval: 1, evalBatches: 1, model: { nLayers: 2 } }, {});
 * assert.equal(m.nLayers, 2);
 * ```
 *
 * @category PhaseGPT
 */
export function modelSectionFor(
  config: PlanConfig,
  scale: PlanScale,
  modePatch: Record<string, unknown>,
): ModelSection {
  const base = modelConfigFor({ preset: config.preset, ...(config.overrides ?? {}) }, 65, 8);
  const merged: Partial<DecoderConfig> = { ...(config.overrides ?? {}), ...(scale.model ?? {}) };
  const nLayers = merged.nLayers ?? base.nLayers;
  const section: ModelSection = { preset: config.preset, ...merged };
  delete (section as Partial<DecoderConfig>).maxPositions; // the trainer sets it to the block size
  if (config.phaseLayers?.length) {
    for (const l of config.phaseLayers) {
      if (!Number.isInteger(l) || l < 0 || l >= base.nLayers) {
        throw new Error(
          `config ${config.id}: phase layer ${l} is out of range for preset ${config.preset}: use 0..${
            base.nLayers - 1
          }`,
        );
      }
    }
    const phase: MixerSpec = {
      kind: "kuramoto",
      ...modePatch,
      ...(config.mixer ?? {}),
      layers: remapLayers(config.phaseLayers, base.nLayers, nLayers),
    };
    section.mixers = [{ kind: "attention" }, phase];
  } else if (base.mixers?.some((m) => m.kind !== "attention")) {
    // A preset with its own phase mixers: patch their options, remap their layers.
    section.mixers = base.mixers.map((m): MixerSpec =>
      m.kind === "attention" ? m : {
        ...m,
        ...modePatch,
        ...(config.mixer ?? {}),
        layers: Array.isArray(m.layers) ? remapLayers(m.layers, base.nLayers, nLayers) : m.layers,
      }
    );
  }
  return section;
}

/**
 * Expands a plan at one scale into its runs, in a fixed order (variant, seed, config, mode: seed-major, so
 * a shard or an interrupted sweep covers every config evenly). Baselines run once per seed (mode `-`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { expandPlan } from "./plan.ts";
 * const runs = expandPlan({
 *   schema: "coherence-lab/phasegpt-plan@1", name: "demo", phase: "A", data: { corpus: "tinyshakespeare" },
 *   modes: { faithful: {}, corrected: {} }, seeds: [0, 1], defaultScale: "ci",
 *   configs: [{ id: "base", preset: "gpt2", role: "baseline" }, { id: "wide", preset: "gpt2", role: "phase" }],
 *   scales: { ci: { steps: 2, batchSize: 2, blockSize: 16, evalInterval: 1, evalBatches: 1, model: { nLayers: 1, dModel: 16, nHeads: 2 } } },
 * });
 * assert.equal(runs.length, 6); // per seed: base, wide×faithful, wide×corrected
 * assert.equal(runs[1].id, "demo|char|wide|faithful|0|ci");
 * ```
 *
 * @category PhaseGPT
 */
export function expandPlan(plan: PhaseGptPlan, scaleName?: string): PhaseGptRunSpec[] {
  const name = checkChoice(scaleName ?? plan.defaultScale, Object.keys(plan.scales), "scale");
  const scale = plan.scales[name];
  const variants = (plan.variants ?? [{ id: "char", tokenizer: "char" }])
    .filter((v) => !scale.variants || scale.variants.includes(v.id));
  const seeds = scale.seeds ?? plan.seeds;
  const configs = plan.configs.filter((c) => !scale.configs || scale.configs.includes(c.id));
  const modes = Object.keys(plan.modes).filter((m) => !scale.modes || scale.modes.includes(m));
  const runs: PhaseGptRunSpec[] = [];
  for (const v of variants) {
    for (const seed of seeds) {
      for (const c of configs) {
        // A baseline matched to a mode this scale does not run has nothing to match: left out here.
        if (c.matchMode !== undefined && !modes.includes(c.matchMode)) continue;
        const isBaseline = (c.role ?? "phase") === "baseline";
        for (const mode of isBaseline ? ["-"] : modes) {
          const model = modelSectionFor(c, scale, isBaseline ? {} : plan.modes[mode]);
          runs.push({
            index: runs.length,
            id: [plan.name, v.id, c.id, mode, seed, name].join("|"),
            plan: plan.name,
            phase: plan.phase,
            scale: name,
            variant: v.id,
            tokenizer: v.tokenizer,
            config: c.id,
            mode,
            seed,
            model,
            lossTerms: { ...(c.lossTerms ?? {}) },
            ...(c.matchParamsOf
              ? { matchParamsOf: c.matchParamsOf, matchMode: c.matchMode ?? modes[0] }
              : {}),
          });
        }
      }
    }
  }
  return runs;
}

/**
 * The `dMlp` that brings a baseline's parameter count closest to `target` (parameters are linear in
 * `dMlp`, so two counts fix the line); the parameter-matched baseline of Phase A.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { matchDMlp } from "./plan.ts";
 * import { countParameters, modelPreset } from "../../../mod.ts";
 * const small = modelPreset("gpt2", { nLayers: 2, dModel: 32, nHeads: 2, dMlp: 100, vocabSize: 65 });
 * const d = matchDMlp((o) => modelPreset("gpt2", { nLayers: 2, dModel: 32, nHeads: 2, vocabSize: 65, ...o }), countParameters(small));
 * assert.equal(d, 100);
 * ```
 *
 * @category PhaseGPT
 */
export function matchDMlp(make: (o: Partial<DecoderConfig>) => DecoderConfig, target: number): number {
  const a = countParameters(make({ dMlp: 64 })), b = countParameters(make({ dMlp: 128 }));
  const perUnit = (b - a) / 64;
  if (perUnit <= 0) throw new Error("matchDMlp: the parameter count does not grow with dMlp");
  return Math.max(1, Math.round(64 + (target - a) / perUnit));
}
