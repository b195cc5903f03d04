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
import { tf } from "../deps.ts";
import { generate, type GenerationPolicy } from "../generate/generate.ts";
import type { SamplingParams } from "../generate/sampling.ts";
import { appendJsonl, readJsonl } from "../io/atomic.ts";
import { openModel } from "../models/open.ts";
import { acquireLock } from "../io/lock.ts";
import type { CausalLM } from "../models/types.ts";
import type { TextTokenizer } from "../tokenizers/types.ts";
import "../train/run.ts"; // registers the trainer-run reader of openModel
import { type V3Config, V3Controller } from "./controller.ts";
import { OrderParameterProbe } from "./order_params.ts";
import {
  computeUnitMetrics,
  type RecyncArmTrace,
  type RecyncUnitMetrics,
  type UnitMetricsOptions,
} from "./metrics.ts";
import type { CosimMonitor, CosimMonitorOptions } from "./monitor.ts";
import { RecyncRestartController, recyncRestartPolicy, type RestartOptions } from "./restart.ts";

/** The intervention policies the harness knows. */
export type RecyncPolicyName = "v4" | "v4-2r" | "v3" | "none";

/** All policy names, for argument checking. */
export const RECYNC_POLICIES: readonly RecyncPolicyName[] = ["v4", "v4-2r", "v3", "none"];

/** One prompt of a prompt set. */
export interface RecyncPrompt {
  /** Stable id (used in unit ids). */
  id: string;
  /** Raw prompt text. */
  text: string;
  /** Optional grouping label. */
  category?: string;
}

/** One planned unit. */
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

/** One arm as stored: its trace plus the decoded text. */
export interface RecyncArmRecord extends RecyncArmTrace {
  /** Decoded generated text. */
  text: string;
}

/** A restart performed by the v4 policy. */
export interface RecyncRestartRecord {
  /** 1 for the first restart, 2 for the second. */
  restart: number;
  /** Onset of the crisis that triggered it. */
  onset: number;
  /** Step at which that crisis was confirmed. */
  confirmedAt: number;
  /** Rewind point r = onset − offset: tokens y_r … were dropped. */
  r: number;
  /** Seed of the regeneration (seed + k·seedOffset). */
  seed: number;
}

/** A token-level intervention of the v3 controller (for notebook 12). */
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

/** One line of a results file. */
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

/** A shard selector `{index, count}` parsed from `i/n`. */
export interface RecyncShard {
  /** This shard, 0 ≤ index < count. */
  index: number;
  /** Number of shards. */
  count: number;
}

/**
 * Parses `--shard i/n` (0-based i).
 *
 * @example
 * ```ts
 * import { parseShard } from "./harness.ts";
 * console.log(parseShard("2/8")); // { index: 2, count: 8 }
 * ```
 */
export function parseShard(text: string): RecyncShard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) throw new Error(`--shard "${text}": expected i/n with integers, e.g. 0/4`);
  const index = Number(m[1]), count = Number(m[2]);
  if (count < 1 || index >= count) throw new Error(`--shard "${text}": need 0 <= i < n and n >= 1`);
  return { index, count };
}

/** What to plan: the cross product of prompts and seeds for one model, policy and T. */
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
 * The units of one shard: index mod count == shard index.
 *
 * @example
 * ```ts
 * import { selectShard } from "./harness.ts";
 * console.log(selectShard([{ index: 0 }, { index: 1 }, { index: 2 }], { index: 1, count: 2 })); // [{ index: 1 }]
 * ```
 */
export function selectShard<U extends { index: number }>(units: U[], shard?: RecyncShard): U[] {
  if (!shard) return units;
  return units.filter((u) => u.index % shard.count === shard.index);
}

/**
 * Reads the ids of the units already finished in a results file (missing file: none). A torn last line
 * (crash during an append) is ignored: that unit is redone.
 *
 * @example
 * ```ts
 * import { finishedUnitIds } from "./harness.ts";
 * console.log((await finishedUnitIds("/nonexistent/results.jsonl")).size); // 0
 * ```
 */
export async function finishedUnitIds(path: string): Promise<Set<string>> {
  const { records } = await readJsonl<{ id?: unknown }>(path, { allowMissing: true });
  const ids = new Set<string>();
  for (const r of records) if (typeof r.id === "string") ids.add(r.id);
  return ids;
}

/**
 * Appends one finished unit to a results file (atomic per line; see lib/io/atomic.ts).
 *
 * @example
 * ```ts
 * import { appendRecyncUnit } from "./harness.ts";
 * const path = await Deno.makeTempFile({ suffix: ".jsonl" });
 * await appendRecyncUnit(path, { id: "x" });
 * ```
 */
export async function appendRecyncUnit(path: string, record: { id: string }): Promise<void> {
  await appendJsonl(path, record);
}

/** A model with its tokenizer and a label for results files. */
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

/** Options of {@link runRecyncExperiment}. */
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
  /** Policy of the intervention arm. */
  policy: RecyncPolicyName;
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

/** What {@link runRecyncExperiment} did. */
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
 */
export async function runRecyncExperiment(
  options: RecyncExperimentOptions,
): Promise<RecyncExperimentSummary> {
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
  const units = selectShard(
    planRecyncUnits({
      model: options.modelLabel,
      prompts: usable,
      seeds: options.seeds,
      baseSeed: options.baseSeed,
      T: options.T,
      policy: options.policy,
    }),
    options.shard,
  );
  // One writer per results file (released on return or throw); shards with other --out files are unaffected.
  await using _lock = await acquireLock(`${options.out}.lock`, { what: `recync output "${options.out}"` });
  const done = await finishedUnitIds(options.out);
  let todo = units.filter((u) => !done.has(u.id));
  const skipped = units.length - todo.length;
  if (options.maxUnits !== undefined) todo = todo.slice(0, options.maxUnits);
  const batchUnits = options.batchUnits ?? 8;
  if (!Number.isInteger(batchUnits) || batchUnits < 1) {
    throw new Error(`batchUnits must be >= 1, got ${batchUnits}`);
  }
  let ran = 0;
  for (let i = 0; i < todo.length; i += batchUnits) {
    const batch = todo.slice(i, i + batchUnits);
    const records = await runRecyncBatch(batch, options);
    for (const r of records) {
      await appendRecyncUnit(options.out, r);
      ran++;
      options.onUnit?.(r, skipped + ran, units.length);
    }
  }
  return { planned: units.length, skipped, ran, elapsedMs: performance.now() - started };
}

/**
 * Generates one batch of units (rows 2u: baseline, 2u+1: intervention) and returns their records.
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
 */
export async function runRecyncBatch(
  units: RecyncUnitSpec[],
  options: Omit<RecyncExperimentOptions, "prompts" | "seeds" | "out" | "modelLabel">,
): Promise<RecyncUnitRecord[]> {
  if (units.length === 0) return [];
  const { model, tokenizer } = options;
  const T = units[0].T;
  if (units.some((u) => u.T !== T || u.policy !== units[0].policy)) {
    throw new Error("runRecyncBatch: every unit of a batch needs the same T and policy");
  }
  const policy = units[0].policy;
  const started = performance.now();
  const prompts: number[][] = [];
  const seeds: number[] = [];
  for (const u of units) {
    const ids = tokenizer.encode(u.prompt);
    if (ids.length === 0) throw new Error(`prompt ${u.promptId}: encodes to no tokens`);
    if (ids.length + T > model.config.maxPositions) {
      throw new Error(
        `prompt ${u.promptId}: ${ids.length} prompt tokens + T=${T} exceed the model's ${model.config.maxPositions} positions`,
      );
    }
    prompts.push(ids, ids);
    seeds.push(u.seed, u.seed);
  }
  const eos = tokenizer.special.eos;
  const sampling: SamplingParams = {
    temperature: 1.0,
    topP: 0.9,
    topK: 0,
    ...options.sampling,
    ...((options.eos ?? "force") === "force" && eos !== undefined ? { bannedTokens: [eos] } : {}),
  };
  const maxRestarts = policy === "v4" ? 1 : policy === "v4-2r" ? 2 : 0;
  // One controller for every row: baseline rows (even) only monitor; intervention rows may restart.
  const controller = new RecyncRestartController(
    seeds,
    { ...options.restart, maxRestarts, monitor: options.monitor },
    seeds.map((_, row) => (row % 2 === 1 ? maxRestarts : 0)),
  );
  const policies: GenerationPolicy[] = [recyncRestartPolicy(controller)];
  const v3 = policy === "v3"
    ? units.map((_, u) => new V3Controller({ ...options.v3, monitor: options.monitor }, 2 * u + 1))
    : [];
  // With a CBF filter the v3 controller needs Z(t): probe it on the device in the same readback.
  const probe = policy === "v3" && options.v3?.cbf
    ? new OrderParameterProbe({ nLayers: model.config.nLayers })
    : null;
  if (probe) policies.unshift(probe.cachePolicy as GenerationPolicy);
  if (policy === "v3") {
    // Not V3GenerationPolicy (controller.ts): that one controls every row, and only the intervention
    // rows (odd) may be steered here; the per-row controllers are the same V3Controller.
    policies.push({
      name: "recync-v3",
      onStep(step, control) {
        for (const row of step.rows) {
          if (row.row % 2 === 0 || row.t < 1) continue;
          const Z = probe ? row.probes[probe.name] : null;
          const next = v3[(row.row - 1) / 2].observe(row.cosim, Z, row.t);
          const cur = control.getSampling(row.row);
          if (cur.temperature !== next.temperature || cur.topP !== next.topP) {
            control.setSampling(row.row, { ...cur, temperature: next.temperature, topP: next.topP });
          }
        }
      },
    });
  }
  let trace;
  try {
    trace = await generate(model, prompts, {
      maxNewTokens: T,
      seeds,
      sampling,
      policies,
      ...(probe ? { probes: [probe] } : {}),
      maxSteps: (maxRestarts + 1) * T + 16 + 2 * maxRestarts,
      // The probe reads the KV cache through its policy, which pipelining would show one column ahead.
      pipeline: probe ? false : options.pipeline ?? true,
    }).collect();
  } finally {
    probe?.dispose();
  }
  const elapsedMs = (performance.now() - started) / units.length;
  const backend = tf.getBackend();
  return units.map((u, k) => {
    const bRow = trace.rows[2 * k], iRow = trace.rows[2 * k + 1];
    for (const row of [bRow, iRow]) {
      if (row.tokens.length !== T) {
        throw new Error(
          `unit ${u.id}: row ${row.row} stopped at ${row.tokens.length} of ${T} tokens (${row.finishReason})`,
        );
      }
    }
    const baseline = armRecord(bRow.tokens, bRow.cosims, controller.monitors[2 * k], tokenizer);
    const intervention = armRecord(iRow.tokens, iRow.cosims, controller.monitors[2 * k + 1], tokenizer);
    const first = baseline.events[0];
    const r = first ? Math.max(0, first.onset - controller.options.rewindOffset) : null;
    const restarts: RecyncRestartRecord[] = controller.logs[2 * k + 1].restarts.map((d) => ({
      restart: d.restart,
      onset: d.event.onset,
      confirmedAt: d.event.confirmedAt,
      r: d.r,
      seed: d.seed,
    }));
    const v3log = policy === "v3" ? v3[k].log : [];
    const interventions: RecyncInterventionRecord[] = v3log.map((e) => ({
      step: e.step,
      bucket: e.bucket ?? undefined,
      temperature: e.temperature,
      topP: e.topP,
      detail: { action: e.action, severity: e.severity, qpChanged: e.qpChanged, qpRelaxed: e.qpRelaxed },
    }));
    const firstApply = v3log.find((e) => e.action === "apply");
    const intervened = r !== null && (policy === "v3" ? firstApply !== undefined : restarts.length > 0);
    // Where the arms may first differ: the first rewind point (v4) or the first token after the first
    // v3 intervention; before it both rows must agree token for token and cosim for cosim.
    // A second restart (2R) may rewind below the first one (its crisis can start before r₁ + 3), so
    // the arms share exactly the prefix before the smallest rewind point.
    const split = restarts.length > 0
      ? Math.min(...restarts.map((x) => x.r))
      : firstApply
      ? firstApply.step + 1
      : T;
    let prefixMatches = restarts.length === 0 || restarts[0].r === r;
    for (let t = 0; t < split && prefixMatches; t++) {
      if (baseline.tokens[t] !== intervention.tokens[t]) prefixMatches = false;
      const a = baseline.cosim[t], b = intervention.cosim[t];
      if ((a === null) !== (b === null) || (a !== null && b !== null && Math.abs(a - b) > 1e-5)) {
        prefixMatches = false;
      }
    }
    // Outcomes cover [r, T), or from the earlier point where a 2R second restart rewound to.
    const metrics = r !== null && intervened
      ? computeUnitMetrics(baseline, intervention, Math.min(r, split), options.metrics)
      : null;
    return {
      schema: "coherence-lab/recync-unit@1",
      ...u,
      promptTokens: prompts[2 * k].length,
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
        monitor: controller.monitors[0].options,
        restart: controller.options,
        maxRestarts,
        ...(policy === "v3" ? { v3: v3[k].config } : {}),
        eos: options.eos ?? "force",
      },
      elapsedMs,
      backend,
    } satisfies RecyncUnitRecord;
  });
}
