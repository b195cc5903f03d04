/**
 * The Recync experiment harness (spec §4.3, §5): paired baseline/intervention generations per unit
 * (model, prompt, seed), batched for throughput, one JSON line per finished unit, resumable, shardable.
 *
 * Design of the pair (why both arms live in one batch): each unit occupies two rows of the same
 * `generate()` batch, seeded identically. The baseline row runs with a monitor-only policy; the
 * intervention row carries the policy under test (v4 restart, v3 controller, or none). Sampling draws
 * each row's uniforms from its own PRNG stream, and the two rows hold the same prompt with the same
 * padding in the same batch, so they are computed identically: until the policy first acts the
 * intervention row reproduces the baseline token for token and cosim for cosim. The arms share
 * the prefix y_0 … y_{r−1} and every state up to h_r without a fork of the KV cache. The cost is the
 * prefix computed twice, in parallel rows of the same forwards (cheap on a GPU, where small batches leave
 * it idle; about double the arithmetic on a CPU), and a batch runs until its last restarted row has T
 * tokens again (T + (T − r) steps for a 1R restart). The harness checks the shared prefix and records
 * `prefixMatches` per unit instead of trusting it.
 *
 * Records do not depend on which other units share a batch except in the last bits of floats (matmul
 * rounding varies with the batch shape); tokens, events and restarts are the same, so a resumed or
 * sharded run reproduces an uninterrupted one.
 *
 * Files: results are appended with `appendJsonl` (lib/io/atomic.ts): a crash can only tear the last
 * line, which the next run drops and redoes. A unit's id is `model|promptId|seed|policy|T`, so a
 * re-run skips finished units; `--shard i/n` keeps the units with index mod n == i.
 *
 * @module
 */
import { checkOptionKeys } from "../options.ts";
import { tf } from "../deps.ts";
import {
  generate,
  type GenerationControl,
  type GenerationPolicy,
  type GenerationStep,
} from "../generate/generate.ts";
import type { SamplingParams } from "../generate/sampling.ts";
import { appendJsonl } from "../io/atomic.ts";
import { finishedIds, selectShard, type ShardSpec } from "../io/shard.ts";
import { openModel } from "../models/open.ts";
import { judgeRecyncUnit, type RecyncJudge, type RecyncJudgeScore } from "./judge.ts";
import { acquireLock } from "../io/lock.ts";
import type { CausalLM } from "../models/types.ts";
import type { TextTokenizer } from "../tokenizers/types.ts";
import "../train/run.ts"; // registers the trainer-run reader of openModel
import { type V3Config, V3Controller } from "./controller.ts";
import { OrderParameterProbe } from "./order_params.ts";
import {
  computeUnitMetrics,
  outcomeWindowStart,
  type RecyncArmTrace,
  type RecyncOutcomeWindow,
  type RecyncUnitMetrics,
  type UnitMetricsOptions,
} from "./metrics.ts";
import type { CosimMonitor, CosimMonitorOptions } from "./monitor.ts";
import type { CbfConfig } from "./cbf.ts";
import { RecyncRestartController, type RestartOptions } from "./restart.ts";
import { type ShamKind, ShamScheduler } from "./sham.ts";

/**
 * The intervention policies the harness knows: `v4` (1R restart at onset − 3, seed + 10000), `v4-2r`
 * (up to two restarts), `v4-same-seed` (the v4 rewind, redrawn by continuing the original seed's stream
 * instead of reseeding), `sham-random` and `sham-matched` (restarts not triggered by a crisis, see
 * sham.ts), `v3` (token-level controller), `v3-cbf` (the same controller with the CBF safety filter on,
 * by default in the binding configuration {@linkcode RECYNC_BINDING_CBF}, so `--policy v3,v3-cbf` is the
 * paired filter-on/off run) and `none` (monitor only).
 *
 * @category Recync
 */
export type RecyncPolicyName =
  | "v4"
  | "v4-2r"
  | "v4-same-seed"
  | "sham-random"
  | "sham-matched"
  | "v3"
  | "v3-cbf"
  | "none";

/**
 * All policy names, for argument checking.
 *
 * @category Recync
 */
export const RECYNC_POLICIES: readonly RecyncPolicyName[] = [
  "v4",
  "v4-2r",
  "v4-same-seed",
  "sham-random",
  "sham-matched",
  "v3",
  "v3-cbf",
  "none",
];

/**
 * A CBF configuration that binds on the bundled model (issue 13). With the placeholder constants' class-K
 * gain γ = 0.5 the filter changed no v3 decision there (λ ≈ 0.3 sits far below λ_max = 0.8, and the cooling
 * requests raise λ, z and λ_sem), so it could not be tested. γ = 0.05 lets a request raise λ by at most 5 %
 * of its distance to λ_max per step. Measured in notebook 12 (bundled model, CI scale): the default
 * configuration changed 0 of 4 filtered decisions, this one 4 of 4. Still a [TS] placeholder.
 *
 * @category Recync
 */
export const RECYNC_BINDING_CBF: CbfConfig = { gamma: 0.05 };

/**
 * Parses a comma list of policies (`v4,sham-random`), rejecting unknown and repeated names.
 *
 * @example
 * ```ts
 * import { parsePolicyList } from "./harness.ts";
 * console.log(parsePolicyList("v4, sham-random")); // ["v4", "sham-random"]
 * ```
 *
 * @category Recync
 */
export function parsePolicyList(text: string): RecyncPolicyName[] {
  const list = text.split(",").map((x) => x.trim()).filter((x) => x);
  if (list.length === 0) throw new Error(`--policy: give at least one of ${RECYNC_POLICIES.join(", ")}`);
  for (const p of list) {
    if (!RECYNC_POLICIES.includes(p as RecyncPolicyName)) {
      throw new Error(`--policy '${p}' is unknown: use one of ${RECYNC_POLICIES.join(", ")}`);
    }
  }
  if (new Set(list).size !== list.length) throw new Error(`--policy '${text}' names a policy twice`);
  return list as RecyncPolicyName[];
}

/** The token-level policies (v3 controller rows). */
function isV3Policy(p: RecyncPolicyName | null | undefined): boolean {
  return p === "v3" || p === "v3-cbf";
}

/** Restarts a policy's row may make on its own crises (shams rewind on a schedule instead). */
function policyMaxRestarts(p: RecyncPolicyName): number {
  return p === "v4" || p === "v4-same-seed" ? 1 : p === "v4-2r" ? 2 : 0;
}

/**
 * The open conventions recorded in every results line.
 *
 * @category Recync
 */
export interface RecyncConventions {
  /** Std ddof of the monitor threshold. */
  ddof: 0 | 1;
  /** Monitor window mode. */
  windowMode: string;
  /** Monitor warm-up. */
  warmup: "full" | "partial";
  /** v4 rewind offset. */
  rewindOffset: number;
  /** v4 seed offset. */
  seedOffset: number;
  /** Outcome window of the metrics. */
  outcomeWindow: RecyncOutcomeWindow;
  /** v3 recovery-gate delay in steps (null: the controller's default). */
  gateDelay: number | null;
}

/**
 * One prompt of a prompt set.
 *
 * @category Recync
 */
export interface RecyncPrompt {
  /** Stable id (used in unit ids). */
  id: string;
  /** Raw prompt text. */
  text: string;
  /** Optional grouping label. */
  category?: string;
}

/**
 * One planned unit.
 *
 * @category Recync
 */
export interface RecyncUnitSpec {
  /** Position in the full plan (before sharding); shards select on it. */
  index: number;
  /** `model|promptId|seed|policy|T`. */
  id: string;
  /** Model source label (e.g. `hf:gpt2`). */
  model: string;
  /** Prompt id. */
  promptId: string;
  /** Prompt text. */
  prompt: string;
  /** Sampling seed of the baseline (and of the intervention until its first restart). */
  seed: number;
  /** Generated tokens per arm. */
  T: number;
  /** Policy of the intervention arm. */
  policy: RecyncPolicyName;
}

/**
 * One arm as stored: its trace plus the decoded text.
 *
 * @category Recync
 */
export interface RecyncArmRecord extends RecyncArmTrace {
  /** Decoded generated text. */
  text: string;
}

/**
 * A restart performed by a v4-family or sham policy.
 *
 * @category Recync
 */
export interface RecyncRestartRecord {
  /** 1 for the first restart, 2 for the second. */
  restart: number;
  /** `"crisis"`: triggered by the row's own crisis (v4 family); `"sham"`: scheduled (sham arms). */
  kind?: "crisis" | "sham";
  /** Onset of the crisis that triggered it (sham-matched: the baseline crisis it is matched to). */
  onset: number | null;
  /** Step at which that crisis was confirmed (sham-random: null). */
  confirmedAt: number | null;
  /** Rewind point r = onset − offset: tokens y_r … were dropped. */
  r: number;
  /** Seed of the regeneration (seed + k·seedOffset; v4-same-seed: the original seed, stream continued). */
  seed: number;
}

/**
 * A token-level intervention of the v3 controller (for notebook 12).
 *
 * @category Recync
 */
export interface RecyncInterventionRecord {
  /** Step from which the parameters applied. */
  step: number;
  /** Severity bucket of the triggering crisis, if any. */
  bucket?: string;
  /** Temperature applied. */
  temperature: number;
  /** Top-p applied. */
  topP: number;
  /** Free-form details from the controller (gate decisions, QP filter changes). */
  detail?: Record<string, unknown>;
}

/**
 * One line of a results file.
 *
 * @category Recync
 */
export interface RecyncUnitRecord extends RecyncUnitSpec {
  /** Record format marker. */
  schema: "coherence-lab/recync-unit@1";
  /** Prompt length in tokens. */
  promptTokens: number;
  /** Baseline arm (monitor only, original seed). */
  baseline: RecyncArmRecord;
  /** Intervention arm (policy applied). */
  intervention: RecyncArmRecord;
  /** Rewind point of the first baseline crisis (onset − 3), or null when the baseline had no crisis. */
  r: number | null;
  /** Whether the policy acted on this unit (a restart happened, or v3 changed sampling). */
  intervened: boolean;
  /** Restarts (v4). */
  restarts: RecyncRestartRecord[];
  /** Token-level interventions (v3). */
  interventions: RecyncInterventionRecord[];
  /** Whether the intervention arm reproduced the baseline before the policy first acted. */
  prefixMatches: boolean;
  /** Per-unit metrics (null when the baseline had no crisis). */
  metrics: RecyncUnitMetrics | null;
  /** Settings that shaped the unit (monitor, sampling, restart). */
  config: Record<string, unknown>;
  /**
   * The open conventions of spec recync.md this unit ran under (ddof, window mode, warm-up, rewind and
   * seed offsets, outcome window, v3 gate delay), flat so a sweep can group on them.
   */
  conventions?: RecyncConventions;
  /** `model|promptId|seed|T`: the units of a multi-policy run with this key share one baseline row. */
  pairId?: string;
  /** The policies that ran beside this one on the same baseline row. */
  pairedPolicies?: RecyncPolicyName[];
  /** NLL of both arms' outcome-window text under a judge model (`--judge`), when one was given. */
  judge?: RecyncJudgeScore | null;
  /** Wall time of the batch the unit ran in, divided by the units in it. */
  elapsedMs: number;
  /** The tfjs backend used. */
  backend: string;
}

/**
 * Loads a prompt set: `.jsonl` (objects with `text` and optional `id`, `category`), `.json` (an array of
 * strings or such objects) or plain text (one prompt per non-empty line; `\n` escapes allowed).
 *
 * @example
 * ```ts
 * import { loadPromptSet } from "./harness.ts";
 * const prompts = await loadPromptSet("data/prompts/recync_prompts.jsonl");
 * console.log(prompts.length >= 60); // true
 * ```
 *
 * @category Recync
 */
export async function loadPromptSet(path: string): Promise<RecyncPrompt[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(
      `prompt set ${path}: cannot read (${(e as Error).message}); pass --prompts with a file path`,
    );
  }
  let raw: unknown[];
  if (path.endsWith(".jsonl")) {
    raw = text.split("\n").map((l, i) => [l.trim(), i] as const).filter(([l]) => l).map(([l, i]) => {
      try {
        return JSON.parse(l);
      } catch {
        throw new Error(`prompt set ${path}: line ${i + 1} is not valid JSON`);
      }
    });
  } else if (path.endsWith(".json")) {
    const v = JSON.parse(text);
    if (!Array.isArray(v)) throw new Error(`prompt set ${path}: expected a JSON array of prompts`);
    raw = v;
  } else {
    raw = text.split("\n").filter((l) => l.trim()).map((l) => l.replace(/\\n/g, "\n"));
  }
  const out: RecyncPrompt[] = raw.map((p, i) => {
    if (typeof p === "string") return { id: `line-${i + 1}`, text: p };
    const o = p as Partial<RecyncPrompt>;
    if (typeof o !== "object" || o === null || typeof o.text !== "string" || o.text.length === 0) {
      throw new Error(`prompt set ${path}: entry ${i + 1} needs a non-empty string field "text"`);
    }
    return { id: typeof o.id === "string" ? o.id : `line-${i + 1}`, text: o.text, category: o.category };
  });
  const seen = new Set<string>();
  for (const p of out) {
    if (seen.has(p.id)) throw new Error(`prompt set ${path}: duplicate prompt id "${p.id}"`);
    if (p.id.includes("|")) throw new Error(`prompt set ${path}: prompt id "${p.id}" must not contain "|"`);
    seen.add(p.id);
  }
  if (out.length === 0) throw new Error(`prompt set ${path}: no prompts found`);
  return out;
}

/**
 * A shard selector `{index, count}` parsed from `i/n` (the generic one of lib/io/shard.ts).
 *
 * @category Recync
 */
export type RecyncShard = ShardSpec;

// The shard parser and selector are the generic ones (re-exported so existing imports keep working).
export { parseShard, selectShard } from "../io/shard.ts";

/**
 * What to plan: the cross product of prompts and seeds for one model, policy and T.
 *
 * @category Recync
 */
export interface RecyncPlanOptions {
  /** Model label stored in every unit. */
  model: string;
  /** Prompts. */
  prompts: RecyncPrompt[];
  /** Seeds: a count N (seeds baseSeed … baseSeed+N−1) or an explicit list. */
  seeds: number | number[];
  /** First seed when `seeds` is a count (default 0). */
  baseSeed?: number;
  /** Generated tokens per arm. */
  T: number;
  /** Intervention policy. */
  policy: RecyncPolicyName;
}

/**
 * The unit id: `model|promptId|seed|policy|T`.
 *
 * @example
 * ```ts
 * import { recyncUnitId } from "./harness.ts";
 * console.log(recyncUnitId("hf:gpt2", "narrative-01", 3, "v4", 100)); // hf:gpt2|narrative-01|3|v4|100
 * ```
 *
 * @category Recync
 */
export function recyncUnitId(
  model: string,
  promptId: string,
  seed: number,
  policy: string,
  T: number,
): string {
  return `${model}|${promptId}|${seed}|${policy}|${T}`;
}

/**
 * Plans every unit, seed-major (all prompts for seed 0, then seed 1, …), so a shard or an interrupted
 * run covers prompts evenly.
 *
 * @example
 * ```ts
 * import { planRecyncUnits } from "./harness.ts";
 * const units = planRecyncUnits({ model: "demo", prompts: [{ id: "a", text: "Hi" }], seeds: 2, T: 50, policy: "v4" });
 * console.log(units.map((u) => u.id)); // ["demo|a|0|v4|50", "demo|a|1|v4|50"]
 * ```
 *
 * @category Recync
 */
export function planRecyncUnits(options: RecyncPlanOptions): RecyncUnitSpec[] {
  const seeds = typeof options.seeds === "number"
    ? Array.from({ length: options.seeds }, (_, i) => (options.baseSeed ?? 0) + i)
    : options.seeds;
  if (!Number.isInteger(options.T) || options.T < 2) {
    throw new Error(`T must be an integer >= 2, got ${options.T}`);
  }
  if (!RECYNC_POLICIES.includes(options.policy)) {
    throw new Error(`unknown policy "${options.policy}": use one of ${RECYNC_POLICIES.join(", ")}`);
  }
  for (const s of seeds) {
    if (!Number.isInteger(s) || s < 0) throw new Error(`seeds must be integers >= 0, got ${s}`);
  }
  if (options.model.includes("|")) {
    throw new Error(`model label "${options.model}" must not contain "|" (unit ids are joined with it)`);
  }
  const units: RecyncUnitSpec[] = [];
  for (const seed of seeds) {
    for (const p of options.prompts) {
      units.push({
        index: units.length,
        id: recyncUnitId(options.model, p.id, seed, options.policy, options.T),
        model: options.model,
        promptId: p.id,
        prompt: p.text,
        seed,
        T: options.T,
        policy: options.policy,
      });
    }
  }
  return units;
}

/**
 * Reads the ids of the units already finished in a results file (missing file: none). A torn last line
 * (crash during an append) is ignored: that unit is redone (lib/io/shard.ts).
 *
 * @example
 * ```ts
 * import { finishedUnitIds } from "./harness.ts";
 * console.log((await finishedUnitIds("/nonexistent/results.jsonl")).size); // 0
 * ```
 *
 * @category Recync
 */
export const finishedUnitIds: (path: string) => Promise<Set<string>> = finishedIds;

/**
 * Appends one finished unit to a results file (atomic per line; see lib/io/atomic.ts).
 *
 * @example
 * ```ts
 * import { appendRecyncUnit } from "./harness.ts";
 * const path = await Deno.makeTempFile({ suffix: ".jsonl" });
 * await appendRecyncUnit(path, { id: "x" });
 * ```
 *
 * @category Recync
 */
export async function appendRecyncUnit(path: string, record: { id: string }): Promise<void> {
  await appendJsonl(path, record);
}

/**
 * A model with its tokenizer and a label for results files.
 *
 * @category Recync
 */
export interface RecyncModelHandle {
  /** The model. */
  model: CausalLM;
  /** Its tokenizer. */
  tokenizer: TextTokenizer;
  /** The source string, used as the model label. */
  label: string;
}

/**
 * Loads a model and tokenizer from `hf:org/name` (local Hugging Face cache), a Hugging Face folder
 * (config.json + safetensors + tokenizer.json) or a coherence-lab training run/checkpoint folder (such as
 * the bundled `data/models/shakespeare-char`).
 *
 * @example
 * ```ts
 * import { loadRecyncModel } from "./harness.ts";
 * await loadRecyncModel("/nonexistent").catch((e) => console.log(e.message)); // names the folder
 * ```
 *
 * @category Recync
 */
export async function loadRecyncModel(source: string): Promise<RecyncModelHandle> {
  const opened = await openModel(source);
  if (!opened.tokenizer) {
    opened.model.dispose();
    throw new Error(
      `model ${source}: no usable tokenizer.json in ${opened.source} (Recync needs text prompts)`,
    );
  }
  return { model: opened.model, tokenizer: opened.tokenizer, label: source.replace(/\/+$/, "") };
}

/**
 * Options of {@link runRecyncExperiment}.
 *
 * @category Recync
 */
export interface RecyncExperimentOptions {
  /** The model (weights on the current backend). */
  model: CausalLM;
  /** Its tokenizer. */
  tokenizer: TextTokenizer;
  /** Label stored with every unit (e.g. `hf:gpt2`). */
  modelLabel: string;
  /** Prompts. */
  prompts: RecyncPrompt[];
  /** Seed count N (seeds baseSeed … baseSeed+N−1) or explicit seeds. */
  seeds: number | number[];
  /** First seed when `seeds` is a count (default 0). */
  baseSeed?: number;
  /** Generated tokens per arm. */
  T: number;
  /** Policy of the intervention arm (ignored when `policies` is given). */
  policy: RecyncPolicyName;
  /**
   * Several policies at once: each (prompt, seed) runs one baseline row and one row per policy in the
   * same batch, and writes one record per policy, all paired with that same baseline.
   */
  policies?: RecyncPolicyName[];
  /** Results file (JSONL); finished units in it are skipped. */
  out: string;
  /** Run only this shard. */
  shard?: RecyncShard;
  /** Units per generate() batch (2 rows each). Default 8. */
  batchUnits?: number;
  /** Stop after this many newly run units (for tests and time-boxed runs). */
  maxUnits?: number;
  /** Crisis monitor options (spec §2 defaults). */
  monitor?: CosimMonitorOptions;
  /** v4 restart options (maxRestarts is set by the policy: 1 for v4, 2 for v4-2r). */
  restart?: Omit<RestartOptions, "monitor" | "maxRestarts">;
  /**
   * CBF configuration of the `v3-cbf` rows (default {@linkcode RECYNC_BINDING_CBF}); `v3` rows use
   * `v3.cbf` (default off).
   */
  v3Cbf?: CbfConfig;
  /** v3 controller options. With `cbf` set, Z(t) is probed on the device and fed to the safety filter. */
  v3?: Omit<V3Config, "monitor">;
  /** Sampling of both arms before any intervention. Default temperature 1.0, top-p 0.9, top-k off. */
  sampling?: SamplingParams;
  /** "force" (default, spec §4.2 [TS]): ban EOS so both arms reach T; "allow": EOS is an ordinary token. */
  eos?: "force" | "allow";
  /** Metric options (segment, primary outcome, worseBy δ). */
  metrics?: UnitMetricsOptions;
  /**
   * Queue each next forward while the step's readback is in flight (`generate()`'s `pipeline`; default
   * true). Results are identical either way; a rewound row sits out one step.
   */
  pipeline?: boolean;
  /**
   * A second model whose NLL of each arm's outcome-window text is stored in `judge` (issue 13: an
   * intervention that improves cosim while making the text worse becomes visible).
   */
  judge?: RecyncJudge;
  /** Called after each unit is written. */
  onUnit?: (record: RecyncUnitRecord, done: number, total: number) => void;
  /**
   * Prompts the tokenizer cannot encode (e.g. characters outside a character-level vocabulary) or that
   * leave no room for T tokens in the model's context: `"error"` (default) stops before generating and
   * lists them; `"skip"` leaves them out of the plan (unit indices then count the kept prompts only).
   */
  unusablePrompts?: "error" | "skip";
  /** Receives notes (e.g. which prompts were skipped). */
  onNote?: (note: string) => void;
}

/**
 * Splits prompts into those the model can run with T new tokens and the rest, with the reason for each.
 *
 * @example
 * ```ts
 * import { CharTokenizer } from "../tokenizers/char.ts";
 * import { checkRecyncPrompts } from "./harness.ts";
 * const tok = CharTokenizer.fromCorpus("abc ");
 * const r = checkRecyncPrompts([{ id: "ok", text: "abc" }, { id: "bad", text: "xyz" }], tok, 100, 50);
 * console.log(r.usable.map((p) => p.id), r.unusable.map((u) => u.id)); // ["ok"] ["bad"]
 * ```
 *
 * @category Recync
 */
export function checkRecyncPrompts(
  prompts: RecyncPrompt[],
  tokenizer: TextTokenizer,
  maxPositions: number,
  T: number,
): { usable: RecyncPrompt[]; unusable: { id: string; reason: string }[] } {
  const usable: RecyncPrompt[] = [], unusable: { id: string; reason: string }[] = [];
  for (const p of prompts) {
    let n: number;
    try {
      n = tokenizer.encode(p.text).length;
    } catch (e) {
      // The first clause names the problem; the tokenizer's advice follows in the full message.
      unusable.push({ id: p.id, reason: (e as Error).message.split(";")[0] });
      continue;
    }
    if (n === 0) unusable.push({ id: p.id, reason: "encodes to no tokens" });
    else if (n + T > maxPositions) {
      unusable.push({
        id: p.id,
        reason: `${n} prompt tokens + T=${T} exceed the model's ${maxPositions} positions`,
      });
    } else usable.push(p);
  }
  return { usable, unusable };
}

/**
 * What {@link runRecyncExperiment} did.
 *
 * @category Recync
 */
export interface RecyncExperimentSummary {
  /** Units in this shard's plan. */
  planned: number;
  /** Units skipped because the results file already had them. */
  skipped: number;
  /** Units run now. */
  ran: number;
  /** Wall time of this call, milliseconds. */
  elapsedMs: number;
}

function toNullable(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

/** Builds the stored arm from the generated tokens, the trace cosims and the row's final monitor. */
function armRecord(
  tokens: number[],
  cosims: number[],
  monitor: CosimMonitor,
  tokenizer: TextTokenizer,
): RecyncArmRecord {
  const T = tokens.length;
  const thr: (number | null)[] = Array(T).fill(null);
  const low: boolean[] = Array(T).fill(false);
  const inCrisis: boolean[] = Array(T).fill(false);
  for (const rec of monitor.trace) {
    if (rec.step >= T) continue;
    thr[rec.step] = rec.thr;
    low[rec.step] = rec.low;
    inCrisis[rec.step] = rec.inCrisis;
  }
  return {
    tokens,
    text: tokenizer.decode(tokens, { skipSpecialTokens: true }),
    cosim: cosims.slice(0, T).map(toNullable),
    thr,
    low,
    inCrisis,
    events: monitor.events.map((e) => ({ onset: e.onset, confirmedAt: e.confirmedAt })),
  };
}

/**
 * The keys of {@linkcode RecyncExperimentOptions}; others are refused with a did-you-mean. A record, so
 * the compiler keeps it complete when an option is added.
 */
const RECYNC_EXPERIMENT_KEY_SET: Record<keyof RecyncExperimentOptions, true> = {
  model: true,
  tokenizer: true,
  modelLabel: true,
  prompts: true,
  seeds: true,
  baseSeed: true,
  T: true,
  policy: true,
  policies: true,
  out: true,
  shard: true,
  batchUnits: true,
  maxUnits: true,
  monitor: true,
  restart: true,
  v3Cbf: true,
  v3: true,
  sampling: true,
  eos: true,
  metrics: true,
  pipeline: true,
  judge: true,
  onUnit: true,
  unusablePrompts: true,
  onNote: true,
};
const RECYNC_EXPERIMENT_KEYS = Object.keys(RECYNC_EXPERIMENT_KEY_SET);

/**
 * Runs (or resumes) an experiment: plans units, keeps the shard's, skips finished ones, generates the
 * rest in batches (baseline and intervention rows side by side, see the module notes) and appends one
 * JSON line per unit as soon as its batch ends. Interrupting it loses at most the batch in flight.
 *
 * @example
 * ```ts
 * import { initBackend } from "../backend/backend.ts";
 * import { createDecoder, gpt2NewConfig } from "../models/scratch.ts";
 * import { CharTokenizer } from "../tokenizers/char.ts";
 * import { runRecyncExperiment } from "./harness.ts";
 * await initBackend({ backend: "cpu" });
 * const tokenizer = CharTokenizer.fromCorpus("abcdefghijklmnopqrstuvwxyz ");
 * const model = createDecoder(gpt2NewConfig({ nLayers: 1, dModel: 32, nHeads: 2, vocabSize: tokenizer.vocabSize, maxPositions: 128 }), { seed: 1 });
 * const out = await Deno.makeTempFile({ suffix: ".jsonl" });
 * const s = await runRecyncExperiment({
 *   model, tokenizer, modelLabel: "tiny", prompts: [{ id: "a", text: "the cat" }], seeds: 2, T: 60, policy: "v4", out,
 * });
 * console.log(s.ran); // 2
 * model.dispose();
 * ```
 *
 * @category Recync
 */
export async function runRecyncExperiment(
  options: RecyncExperimentOptions,
): Promise<RecyncExperimentSummary> {
  checkOptionKeys(options, RECYNC_EXPERIMENT_KEYS, "runRecyncExperiment");
  const started = performance.now();
  const { usable, unusable } = checkRecyncPrompts(
    options.prompts,
    options.tokenizer,
    options.model.config.maxPositions,
    options.T,
  );
  if (unusable.length > 0) {
    const list = unusable.slice(0, 5).map((u) => `${u.id} (${u.reason})`).join("; ");
    const more = unusable.length > 5 ? ` and ${unusable.length - 5} more` : "";
    if ((options.unusablePrompts ?? "error") === "error") {
      throw new Error(
        `${unusable.length} prompts cannot run on this model: ${list}${more}. ` +
          'Drop them from the prompt file, or skip them (unusablePrompts: "skip", CLI --skip-unusable).',
      );
    }
    options.onNote?.(`skipped ${unusable.length} of ${options.prompts.length} prompts: ${list}${more}`);
  }
  const policies = options.policies ?? [options.policy];
  if (policies.length === 0 || new Set(policies).size !== policies.length) {
    throw new Error(`policies must be a non-empty list without repeats, got [${policies.join(", ")}]`);
  }
  // Plan with the first policy; the other policies' units share index, prompt and seed.
  const units = selectShard(
    planRecyncUnits({
      model: options.modelLabel,
      prompts: usable,
      seeds: options.seeds,
      baseSeed: options.baseSeed,
      T: options.T,
      policy: policies[0],
    }),
    options.shard,
  );
  // A fresh clone has no results/ folder: create the output's parent rather than fail on the lock file.
  const slash = options.out.lastIndexOf("/");
  if (slash > 0) await Deno.mkdir(options.out.slice(0, slash), { recursive: true });
  // One writer per results file (released on return or throw); shards with other --out files are unaffected.
  await using _lock = await acquireLock(`${options.out}.lock`, { what: `recync output "${options.out}"` });
  const done = await finishedUnitIds(options.out);
  const idOf = (u: RecyncUnitSpec, p: RecyncPolicyName) => recyncUnitId(u.model, u.promptId, u.seed, p, u.T);
  let todo = units.filter((u) => policies.some((p) => !done.has(idOf(u, p))));
  const planned = units.length * policies.length;
  const skipped = units.reduce((n, u) => n + policies.filter((p) => done.has(idOf(u, p))).length, 0);
  if (options.maxUnits !== undefined) todo = todo.slice(0, options.maxUnits);
  const batchUnits = options.batchUnits ?? 8;
  if (!Number.isInteger(batchUnits) || batchUnits < 1) {
    throw new Error(`batchUnits must be >= 1, got ${batchUnits}`);
  }
  let ran = 0;
  for (let i = 0; i < todo.length; i += batchUnits) {
    const batch = todo.slice(i, i + batchUnits);
    const records = await runRecyncBatch(batch, { ...options, policies });
    for (const r of records) {
      if (done.has(r.id)) continue; // a resumed unit whose other policies were missing
      await appendRecyncUnit(options.out, r);
      ran++;
      options.onUnit?.(r, skipped + ran, planned);
    }
  }
  return { planned, skipped, ran, elapsedMs: performance.now() - started };
}

/** How each row of a batch behaves. */
interface RowRole {
  /** Unit index in the batch. */
  unit: number;
  /** Row of the unit's baseline. */
  baselineRow: number;
  /** Policy of the row (null: the baseline). */
  policy: RecyncPolicyName | null;
}

/**
 * Generates one batch of units and returns their records. Each unit gets one baseline row followed by
 * one row per policy (`options.policies`, default the units' own policy): with one policy, rows 2u
 * (baseline) and 2u+1 (intervention). Records come unit by unit, in policy order.
 *
 * @example
 * ```ts
 * import { planRecyncUnits, runRecyncBatch } from "./harness.ts";
 * import { initBackend } from "../backend/backend.ts";
 * import { createDecoder, gpt2NewConfig } from "../models/scratch.ts";
 * import { CharTokenizer } from "../tokenizers/char.ts";
 * await initBackend({ backend: "cpu" });
 * const tokenizer = CharTokenizer.fromCorpus("abcdefghij ");
 * const config = gpt2NewConfig({ nLayers: 1, dModel: 16, nHeads: 2, vocabSize: tokenizer.vocabSize, maxPositions: 96 });
 * const model = createDecoder(config, { seed: 1 });
 * const units = planRecyncUnits({ model: "tiny", prompts: [{ id: "a", text: "abc" }], seeds: 2, T: 60, policy: "v4" });
 * const records = await runRecyncBatch(units, { model, tokenizer, T: 60, policy: "v4" });
 * console.log(records.map((r) => [r.r, r.restarts.length, r.prefixMatches]));
 * model.dispose();
 * ```
 *
 * @category Recync
 */
export async function runRecyncBatch(
  units: RecyncUnitSpec[],
  options: Omit<RecyncExperimentOptions, "prompts" | "seeds" | "out" | "modelLabel">,
): Promise<RecyncUnitRecord[]> {
  if (units.length === 0) return [];
  const { model, tokenizer } = options;
  const T = units[0].T;
  const policyList = options.policies ?? [units[0].policy];
  if (units.some((u) => u.T !== T || (!options.policies && u.policy !== units[0].policy))) {
    throw new Error("runRecyncBatch: every unit of a batch needs the same T and policy");
  }
  const P = policyList.length;
  const started = performance.now();
  const prompts: number[][] = [];
  const seeds: number[] = [];
  const roles: RowRole[] = [];
  for (const [k, u] of units.entries()) {
    const ids = tokenizer.encode(u.prompt);
    if (ids.length === 0) throw new Error(`prompt ${u.promptId}: encodes to no tokens`);
    if (ids.length + T > model.config.maxPositions) {
      throw new Error(
        `prompt ${u.promptId}: ${ids.length} prompt tokens + T=${T} exceed the model's ${model.config.maxPositions} positions`,
      );
    }
    const base = prompts.length;
    for (let j = 0; j <= P; j++) {
      prompts.push(ids);
      seeds.push(u.seed);
      roles.push({ unit: k, baselineRow: base, policy: j === 0 ? null : policyList[j - 1] });
    }
  }
  const eos = tokenizer.special.eos;
  const sampling: SamplingParams = {
    temperature: 1.0,
    topP: 0.9,
    topK: 0,
    ...options.sampling,
    ...((options.eos ?? "force") === "force" && eos !== undefined ? { bannedTokens: [eos] } : {}),
  };
  const rowMax = roles.map((ro) => (ro.policy ? policyMaxRestarts(ro.policy) : 0));
  const maxRestarts = Math.max(0, ...rowMax);
  // One controller for every row: baseline and sham rows only monitor; v4-family rows may restart.
  const controller = new RecyncRestartController(
    seeds,
    { ...options.restart, maxRestarts: Math.max(1, maxRestarts), monitor: options.monitor },
    rowMax,
  );
  const mon = controller.monitors[0].options;
  const shams: (ShamScheduler | null)[] = roles.map((ro) =>
    ro.policy === "sham-random" || ro.policy === "sham-matched"
      ? new ShamScheduler(ro.policy as ShamKind, seeds[ro.baselineRow], units[ro.unit].promptId, {
        T,
        window: mon.window,
        k: mon.k,
        warmup: mon.warmup,
        rewindOffset: controller.options.rewindOffset,
      })
      : null
  );
  const shamRestarts: (RecyncRestartRecord | null)[] = roles.map(() => null);
  const o = controller.options;
  const restartSampling = (control: GenerationControl, row: number) =>
    control.setSampling(row, {
      ...control.getSampling(row),
      temperature: o.temperature,
      topP: o.topP,
      topK: o.topK,
    });
  const policies: GenerationPolicy[] = [{
    name: "recync-arms",
    onStep(step: GenerationStep, control: GenerationControl): void {
      for (const row of step.rows) {
        if (row.afterRewind || row.t < 1) continue;
        const d = controller.observe(row.row, row.t, row.cosim);
        if (!d) continue;
        // v4-same-seed: no new seed, so the row's stream of the original seed continues (fresh uniforms).
        control.rewind(row.row, d.r, roles[row.row].policy === "v4-same-seed" ? undefined : d.seed);
        restartSampling(control, row.row);
      }
      for (const row of step.rows) {
        const sched = shams[row.row];
        if (!sched || row.afterRewind || row.t < 1 || sched.decision) continue;
        const bm = controller.monitors[roles[row.row].baselineRow];
        const ev = bm.events[0] ?? null;
        const flags: boolean[] = [];
        if (ev) { for (const rec of bm.trace) flags[rec.step] = rec.inCrisis; }
        const d = sched.observe(row.t, ev, flags);
        if (!d) continue;
        const seed = seeds[row.row] + o.seedOffset;
        control.rewind(row.row, d.r, seed);
        restartSampling(control, row.row);
        const m = controller.monitors[row.row];
        m.restoreAfterStep(Math.min(d.r, m.lastStep));
        shamRestarts[row.row] = {
          restart: 1,
          kind: "sham",
          onset: d.onset,
          confirmedAt: ev && d.onset !== null ? ev.confirmedAt : null,
          r: d.r,
          seed,
        };
      }
    },
  }];
  const hasV3 = policyList.some(isV3Policy);
  const v3: (V3Controller | null)[] = roles.map((ro, row) =>
    isV3Policy(ro.policy)
      ? new V3Controller({
        ...options.v3,
        ...(ro.policy === "v3-cbf" ? { cbf: options.v3Cbf ?? RECYNC_BINDING_CBF } : {}),
        monitor: options.monitor,
      }, row)
      : null
  );
  // With a CBF filter the v3 controller needs Z(t): probe it on the device in the same readback.
  const probe = v3.some((c) => c && c.config.cbf !== false)
    ? new OrderParameterProbe({ nLayers: model.config.nLayers })
    : null;
  if (probe) policies.unshift(probe.cachePolicy as GenerationPolicy);
  if (hasV3) {
    // Not V3GenerationPolicy (controller.ts): that one controls every row, and only the v3 rows may be
    // steered here; the per-row controllers are the same V3Controller.
    policies.push({
      name: "recync-v3",
      onStep(step, control) {
        for (const row of step.rows) {
          const ctl = v3[row.row];
          if (!ctl || row.t < 1) continue;
          const Z = probe ? row.probes[probe.name] : null;
          const next = ctl.observe(row.cosim, Z, row.t);
          const cur = control.getSampling(row.row);
          if (cur.temperature !== next.temperature || cur.topP !== next.topP) {
            control.setSampling(row.row, { ...cur, temperature: next.temperature, topP: next.topP });
          }
        }
      },
    });
  }
  const restartBudget = Math.max(maxRestarts, shams.some((x) => x) ? 1 : 0);
  let trace;
  try {
    trace = await generate(model, prompts, {
      maxNewTokens: T,
      seeds,
      sampling,
      policies,
      ...(probe ? { probes: [probe] } : {}),
      maxSteps: (restartBudget + 1) * T + 16 + 2 * restartBudget,
      // The probe reads the KV cache through its policy, which pipelining would show one column ahead.
      pipeline: probe ? false : options.pipeline ?? true,
    }).collect();
  } finally {
    probe?.dispose();
  }
  const elapsedMs = (performance.now() - started) / (units.length * P);
  const backend = tf.getBackend();
  const outcomeWindow = options.metrics?.window ?? "from-rewind";
  const conventions: RecyncConventions = {
    ddof: mon.stdDdof,
    windowMode: String(mon.windowMode),
    warmup: mon.warmup,
    rewindOffset: o.rewindOffset,
    seedOffset: o.seedOffset,
    outcomeWindow,
    gateDelay: options.v3?.gateDelay ?? null,
  };
  const records: RecyncUnitRecord[] = [];
  for (const [k, u] of units.entries()) {
    const bIndex = k * (P + 1);
    const bRow = trace.rows[bIndex];
    if (bRow.tokens.length !== T) {
      throw new Error(`unit ${u.id}: row ${bIndex} stopped at ${bRow.tokens.length} of ${T} tokens`);
    }
    const baseline = armRecord(bRow.tokens, bRow.cosims, controller.monitors[bIndex], tokenizer);
    const first = baseline.events[0];
    const r = first ? Math.max(0, first.onset - o.rewindOffset) : null;
    for (const [j, policy] of policyList.entries()) {
      const row = bIndex + 1 + j;
      const iRow = trace.rows[row];
      if (iRow.tokens.length !== T) {
        throw new Error(
          `unit ${u.id}: row ${row} stopped at ${iRow.tokens.length} of ${T} tokens (${iRow.finishReason})`,
        );
      }
      const intervention = armRecord(iRow.tokens, iRow.cosims, controller.monitors[row], tokenizer);
      const sham = shamRestarts[row];
      const restarts: RecyncRestartRecord[] = sham ? [sham] : controller.logs[row].restarts.map((d) => ({
        restart: d.restart,
        kind: "crisis" as const,
        onset: d.event.onset,
        confirmedAt: d.event.confirmedAt,
        r: d.r,
        seed: policy === "v4-same-seed" ? seeds[row] : d.seed,
      }));
      const v3log = v3[row]?.log ?? [];
      const interventions: RecyncInterventionRecord[] = v3log.map((e) => ({
        step: e.step,
        bucket: e.bucket ?? undefined,
        temperature: e.temperature,
        topP: e.topP,
        detail: { action: e.action, severity: e.severity, qpChanged: e.qpChanged, qpRelaxed: e.qpRelaxed },
      }));
      const firstApply = v3log.find((e) => e.action === "apply");
      // sham-random needs no baseline crisis: it is a control of the restart itself, over all units.
      const intervened = policy === "sham-random"
        ? restarts.length > 0
        : r !== null && (isV3Policy(policy) ? firstApply !== undefined : restarts.length > 0);
      // Where the arms may first differ: the first rewind point (v4 family, shams) or the first token
      // after the first v3 intervention; before it both rows must agree token for token and cosim for
      // cosim. A second restart (2R) may rewind below the first one (its crisis can start before
      // r₁ + 3), so the arms share exactly the prefix before the smallest rewind point.
      const split = restarts.length > 0
        ? Math.min(...restarts.map((x) => x.r))
        : firstApply
        ? firstApply.step + 1
        : T;
      let prefixMatches = sham !== null || restarts.length === 0 || restarts[0].r === r;
      for (let t = 0; t < split && prefixMatches; t++) {
        if (baseline.tokens[t] !== intervention.tokens[t]) prefixMatches = false;
        const a = baseline.cosim[t], b = intervention.cosim[t];
        if ((a === null) !== (b === null) || (a !== null && b !== null && Math.abs(a - b) > 1e-5)) {
          prefixMatches = false;
        }
      }
      // Outcomes start at the arm's rewind point (v4: r, or the earlier point a 2R second restart rewound
      // to; shams: their own point; v3: r), moved later by the outcome window mode.
      const from = sham ? sham.r : r !== null ? Math.min(r, split) : null;
      const metrics = from !== null && intervened &&
          (options.metrics?.segment === "whole" || outcomeWindowStart(outcomeWindow, from, baseline) < T)
        ? computeUnitMetrics(baseline, intervention, from, options.metrics)
        : null;
      const id = recyncUnitId(u.model, u.promptId, u.seed, policy, T);
      records.push(
        {
          schema: "coherence-lab/recync-unit@1",
          ...u,
          id,
          policy,
          promptTokens: prompts[bIndex].length,
          baseline,
          intervention,
          r,
          intervened,
          restarts,
          interventions,
          prefixMatches,
          metrics,
          config: {
            sampling,
            monitor: mon,
            restart: { ...o, maxRestarts: policyMaxRestarts(policy) },
            maxRestarts: policyMaxRestarts(policy),
            ...(v3[row] ? { v3: v3[row]!.config } : {}),
            ...(sham ? { sham: { kind: policy, range: shams[row]!.range } } : {}),
            eos: options.eos ?? "force",
          },
          conventions,
          pairId: `${u.model}|${u.promptId}|${u.seed}|${T}`,
          pairedPolicies: policyList,
          ...(options.judge
            ? {
              judge: judgeRecyncUnit(
                options.judge,
                { prompt: u.prompt, baseline, intervention, metrics },
                tokenizer,
              ),
            }
            : {}),
          elapsedMs,
          backend,
        } satisfies RecyncUnitRecord,
      );
    }
  }
  return records;
}
