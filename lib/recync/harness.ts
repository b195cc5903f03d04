/**
 * The Recync experiment harness (spec §4.3, §5): paired baseline/intervention generations per unit
 * (model, prompt, seed), batched for throughput, one JSON line per finished unit, resumable, shardable.
 *
 * Design of the pair (why both arms live in one batch): each unit occupies two rows of the same
 * `generate()` batch, seeded identically. The baseline row runs with a monitor-only policy; the
 * intervention row carries the policy under test (v4 restart, v3 controller, or none). Sampling draws
 * each row's uniforms from its own PRNG stream and the device computes rows independently, so until
 * the policy first acts the intervention row reproduces the baseline token for token: the arms share
 * the prefix y_0 … y_{r−1} and every state up to h_r without a fork of the KV cache. The cost is the
 * prefix computed twice (the arms are generated in parallel, so wall time barely changes). The harness
 * checks the shared prefix and records `prefixMatches` per unit instead of trusting it.
 *
 * Files: results are appended with `appendJsonl` (lib/io/atomic.ts): a crash can only tear the last
 * line, which the next run drops and redoes. A unit's id is `model|promptId|seed|policy|T`, so a
 * re-run skips finished units; `--shard i/n` keeps the units with index mod n == i.
 *
 * @module
 */
import { appendJsonl, readJsonl } from "../io/atomic.ts";
import type { RecyncArmTrace, RecyncUnitMetrics } from "./metrics.ts";

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
