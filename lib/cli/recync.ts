/**
 * `deno task recync`: run Recync experiments and report them.
 *
 * ```
 * deno task recync run --model SRC --prompts FILE --seeds N --T 100 --policy v4[,sham-random,...] \
 *   --out results.jsonl [--shard i/n] [--backend auto|webgpu|wasm|cpu] [--batch 8] [--base-seed 0]
 *   [--max-prompts K] [--label NAME] [--skip-unusable] [--window from-rewind|after-confirm|after-crisis]
 *   [--ddof 0|1] [--window-mode MODE] [--warmup full|partial] [--rewind-offset 3] [--seed-offset 10000]
 *   [--gate-delay 2]
 * deno task recync report results.jsonl [more.jsonl ...] [--out-dir recync_report] [--resamples 10000]
 *   [--seed 0] [--outcome crisisFraction|crisisCount|shortfall|meanCosim] [--effect dz|dav|pooled]
 *   [--ci percentile|bca] [--binomial wilson|clopper-pearson] [--traces 4] [--no-png]
 * ```
 *
 * `run` appends one JSON line per finished unit and skips units already in `--out`, so re-running the
 * same command resumes an interrupted run. `--shard i/n` runs the units with index mod n == i (for array
 * jobs); `report` merges any number of shard files, de-duplicating by unit id.
 *
 * @example
 * ```ts
 * import { recyncMain } from "./recync.ts";
 * await recyncMain(["--help"]);
 * ```
 *
 * @module
 */
import { parseFlags, UsageError } from "./command.ts";
import { didYouMean } from "../options.ts";
import { initBackend } from "../backend/backend.ts";
import {
  loadPromptSet,
  loadRecyncModel,
  parsePolicyList,
  parseShard,
  RECYNC_BINDING_CBF,
  RECYNC_POLICIES,
  type RecyncPolicyName,
  runRecyncExperiment,
} from "../recync/harness.ts";
import {
  RECYNC_OUTCOME_WINDOWS,
  RECYNC_OUTCOMES,
  type RecyncOutcomeName,
  type RecyncOutcomeWindow,
} from "../recync/metrics.ts";
import type { CosimMonitorOptions } from "../recync/monitor.ts";
import { readRecyncResults, writeRecyncReport } from "../recync/report.ts";
import { type NullProcess, simulateNull, traceMoments } from "../recync/null_process.ts";
import type { PairedEffectKind } from "../stats/paired.ts";
import type { ProportionInterval } from "../stats/binomial.ts";

const USAGE = `Recync experiments (response-level restart v4, token-level v3)

  deno task recync run --model SRC --prompts FILE --seeds N --T 100 --policy P[,P...] --out results.jsonl
                       [--shard i/n] [--backend auto|webgpu|wasm|cpu] [--batch 8] [--base-seed 0]
                       [--max-prompts K] [--label NAME] [--skip-unusable]
                       [--window ${RECYNC_OUTCOME_WINDOWS.join("|")}] [--ddof 0|1] [--window-mode MODE]
                       [--warmup full|partial] [--rewind-offset 3] [--seed-offset 10000] [--gate-delay 2]
                       [--judge SRC] [--cbf binding|default]
  deno task recync report results.jsonl [more.jsonl ...] [--out-dir recync_report] [--resamples 10000]
                       [--seed 0] [--outcome ${RECYNC_OUTCOMES.join("|")}] [--effect dz|dav|pooled]
                       [--ci percentile|bca] [--binomial wilson|clopper-pearson] [--traces 4] [--no-png]
  deno task recync null [--process iid|ar1|block] [--from results.jsonl] [--N 120] [--T 100]
                       [--mean 0.9] [--std 0.02] [--phi 0.5] [--block 10] [--seed 0]
                       [--window ${RECYNC_OUTCOME_WINDOWS.join("|")}] [--resamples 2000]

'null' runs the detector, the v4 rewind rule and the outcomes on synthetic cosim series where a restart
only redraws (no model): its d is the design's own. --from estimates mean, std and phi (and takes N, T
and the block source) from a results file's baseline traces; given flags override the estimates.

SRC is a Hugging Face model folder, hf:org/name (from the local HF cache) or a coherence-lab checkpoint
folder such as data/models/shakespeare-char. Re-running 'run' with the same --out resumes it.
P is one of ${RECYNC_POLICIES.join(", ")}; several policies (comma list) share each
unit's baseline row, e.g. --policy v4,sham-random,sham-matched,v4-same-seed measures the design's
selection artefact beside v4. The convention flags are recorded in every JSONL line.
--cbf sets the safety filter of the v3-cbf rows: binding (default; gamma 0.05, where the filter changes
decisions on the bundled model) or default (the placeholder constants, which never bind there);
--policy v3,v3-cbf is the paired filter-off/on run on shared baselines.
--judge SRC scores both arms' outcome-window text under a second model (mean NLL per judge token), shown
in the report's text-quality table beside repetition and distinct-2.
--skip-unusable leaves out prompts the tokenizer cannot encode or that do not fit the context with T.`;

function intArg(value: string | undefined, name: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    throw new UsageError(`--${name} must be an integer >= ${min}, got '${value}'`);
  }
  return n;
}

async function runCommand(args: string[]): Promise<void> {
  const { values } = parseFlags({
    args,
    options: {
      model: { type: "string" },
      prompts: { type: "string" },
      seeds: { type: "string" },
      T: { type: "string" },
      policy: { type: "string" },
      out: { type: "string" },
      shard: { type: "string" },
      backend: { type: "string" },
      batch: { type: "string" },
      "base-seed": { type: "string" },
      "max-prompts": { type: "string" },
      label: { type: "string" },
      "skip-unusable": { type: "boolean" },
      window: { type: "string" },
      ddof: { type: "string" },
      "window-mode": { type: "string" },
      warmup: { type: "string" },
      "rewind-offset": { type: "string" },
      "seed-offset": { type: "string" },
      "gate-delay": { type: "string" },
      judge: { type: "string" },
      cbf: { type: "string" },
    },
    allowPositionals: false,
  });
  for (const k of ["model", "prompts", "out"] as const) {
    if (!values[k]) throw new UsageError(`--${k} is required`);
  }
  let policies: RecyncPolicyName[];
  try {
    policies = parsePolicyList(values.policy ?? "v4");
  } catch (e) {
    throw new UsageError(`--policy: ${(e as Error).message}`);
  }
  const window = (values.window ?? "from-rewind") as RecyncOutcomeWindow;
  if (!RECYNC_OUTCOME_WINDOWS.includes(window)) {
    throw new UsageError(`--window '${window}' is unknown: use one of ${RECYNC_OUTCOME_WINDOWS.join(", ")}`);
  }
  const monitor: CosimMonitorOptions = {};
  if (values.ddof !== undefined) {
    if (values.ddof !== "0" && values.ddof !== "1") throw new UsageError(`--ddof must be 0 or 1`);
    monitor.stdDdof = Number(values.ddof) as 0 | 1;
  }
  if (values["window-mode"] !== undefined) {
    monitor.windowMode = values["window-mode"] as CosimMonitorOptions["windowMode"];
  }
  if (values.warmup !== undefined) {
    if (values.warmup !== "full" && values.warmup !== "partial") {
      throw new UsageError(`--warmup must be full or partial`);
    }
    monitor.warmup = values.warmup;
  }
  const restart = {
    ...(values["rewind-offset"] !== undefined
      ? { rewindOffset: intArg(values["rewind-offset"], "rewind-offset", 3) }
      : {}),
    ...(values["seed-offset"] !== undefined
      ? { seedOffset: intArg(values["seed-offset"], "seed-offset", 10000, 1) }
      : {}),
  };
  const v3 = values["gate-delay"] !== undefined
    ? { gateDelay: intArg(values["gate-delay"], "gate-delay", 2, 1) }
    : undefined;
  if (values.cbf !== undefined && values.cbf !== "binding" && values.cbf !== "default") {
    throw new Error(`--cbf must be binding or default, got '${values.cbf}'`);
  }
  const v3Cbf = values.cbf === "default" ? {} : RECYNC_BINDING_CBF;
  const backend = (values.backend ?? "auto") as "auto" | "webgpu" | "wasm" | "cpu";
  if (!["auto", "webgpu", "wasm", "cpu"].includes(backend)) {
    throw new UsageError(`--backend must be one of auto, webgpu, wasm, cpu, got '${backend}'`);
  }
  // Every flag is checked before the backend starts or the model loads.
  const seeds = intArg(values.seeds, "seeds", 1, 1);
  const baseSeed = intArg(values["base-seed"], "base-seed", 0);
  const T = intArg(values.T, "T", 100, 2);
  const batchUnits = intArg(values.batch, "batch", 8, 1);
  const maxPromptsFlag = values["max-prompts"] === undefined
    ? undefined
    : intArg(values["max-prompts"], "max-prompts", 1, 1);
  let shard;
  try {
    shard = values.shard ? parseShard(values.shard) : undefined;
  } catch (e) {
    throw new UsageError(`--shard: ${(e as Error).message}`);
  }
  const info = await initBackend({ backend, verbose: true });
  let prompts = await loadPromptSet(values.prompts!);
  prompts = prompts.slice(0, maxPromptsFlag ?? prompts.length);
  const { model, tokenizer, label } = await loadRecyncModel(values.model!);
  const judge = values.judge ? await loadRecyncModel(values.judge) : undefined;
  const started = performance.now();
  const summary = await runRecyncExperiment({
    model,
    tokenizer,
    modelLabel: values.label ?? label,
    prompts,
    seeds,
    baseSeed,
    T,
    policy: policies[0],
    policies,
    monitor,
    restart,
    ...(v3 ? { v3 } : {}),
    v3Cbf,
    metrics: { window },
    ...(judge ? { judge: { model: judge.model, tokenizer: judge.tokenizer, label: judge.label } } : {}),
    out: values.out!,
    shard,
    batchUnits,
    unusablePrompts: values["skip-unusable"] ? "skip" : "error",
    onNote: (note) => console.error(`note: ${note}`),
    onUnit: (r, done, total) => {
      const tag = r.intervened ? `r=${r.r} restarts=${r.restarts.length}` : "no crisis";
      console.error(`[${done}/${total}] ${r.id} ${tag}`);
    },
  });
  const minutes = (performance.now() - started) / 60000;
  console.log(
    `backend ${info.name}: ${summary.ran} units run, ${summary.skipped} already done, ${summary.planned} in this shard; ` +
      `${(summary.ran / Math.max(minutes, 1e-9)).toFixed(1)} units/min -> ${values.out}`,
  );
  model.dispose();
  judge?.model.dispose();
}

async function reportCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseFlags({
    args,
    options: {
      "out-dir": { type: "string" },
      resamples: { type: "string" },
      seed: { type: "string" },
      outcome: { type: "string" },
      effect: { type: "string" },
      ci: { type: "string" },
      binomial: { type: "string" },
      traces: { type: "string" },
      "no-png": { type: "boolean" },
    },
    allowPositionals: true,
  });
  if (positionals.length === 0) {
    throw new UsageError(`give at least one results .jsonl file`);
  }
  const outcome = (values.outcome ?? "crisisFraction") as RecyncOutcomeName;
  if (!RECYNC_OUTCOMES.includes(outcome)) {
    throw new UsageError(`--outcome '${outcome}' is unknown: use one of ${RECYNC_OUTCOMES.join(", ")}`);
  }
  const effect = (values.effect ?? "dz") as PairedEffectKind;
  if (!["dz", "dav", "pooled"].includes(effect)) throw new UsageError(`--effect must be dz, dav or pooled`);
  const ci = values.ci ?? "percentile";
  if (ci !== "percentile" && ci !== "bca") throw new UsageError(`--ci must be percentile or bca`);
  const binomial = values.binomial ?? "wilson";
  if (binomial !== "wilson" && binomial !== "clopper-pearson") {
    throw new UsageError(`--binomial must be wilson or clopper-pearson`);
  }
  const outDir = values["out-dir"] ?? "recync_report";
  const { table, files } = await writeRecyncReport(positionals, outDir, {
    outcome,
    effect,
    ciMethod: ci,
    proportionCi: binomial,
    resamples: intArg(values.resamples, "resamples", 10_000, 1),
    seed: intArg(values.seed, "seed", 0),
    traces: intArg(values.traces, "traces", 4),
    png: !values["no-png"],
  });
  console.log(table);
  console.log(`\nwrote ${files.join(", ")}`);
}

function numArg(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got '${value}'`);
  return n;
}

async function nullCommand(args: string[]): Promise<void> {
  const { values } = parseFlags({
    args,
    options: {
      process: { type: "string" },
      from: { type: "string" },
      N: { type: "string" },
      T: { type: "string" },
      mean: { type: "string" },
      std: { type: "string" },
      phi: { type: "string" },
      block: { type: "string" },
      seed: { type: "string" },
      window: { type: "string" },
      resamples: { type: "string" },
    },
    allowPositionals: false,
  });
  const kind = values.process ?? "iid";
  if (kind !== "iid" && kind !== "ar1" && kind !== "block") {
    throw new UsageError(`--process must be iid, ar1 or block, got '${kind}'`);
  }
  const window = (values.window ?? "from-rewind") as RecyncOutcomeWindow;
  if (!RECYNC_OUTCOME_WINDOWS.includes(window)) {
    throw new UsageError(`--window '${window}' is unknown: use one of ${RECYNC_OUTCOME_WINDOWS.join(", ")}`);
  }
  let traces: (number | null)[][] = [];
  let N = 120, T = 100;
  if (values.from) {
    const { records } = await readRecyncResults([values.from]);
    if (records.length === 0) throw new UsageError(`--from ${values.from}: no units`);
    // One baseline per (prompt, seed): multi-policy runs repeat it per policy.
    const seen = new Map<string, (number | null)[]>();
    for (const r of records) {
      seen.set(r.pairId ?? `${r.model}|${r.promptId}|${r.seed}|${r.T}`, r.baseline.cosim);
    }
    traces = [...seen.values()];
    N = traces.length;
    T = records[0].T;
  } else if (kind === "block") throw new UsageError("--process block needs --from results.jsonl");
  N = intArg(values.N, "N", N, 1);
  T = intArg(values.T, "T", T, 2);
  const est = traces.length ? traceMoments(traces) : { mean: 0.9, std: 0.02, phi: 0.5, n: 0 };
  const mean = numArg(values.mean, "mean") ?? est.mean;
  const std = numArg(values.std, "std") ?? est.std;
  const phi = numArg(values.phi, "phi") ?? est.phi;
  const process: NullProcess = kind === "iid"
    ? { kind, mean, std }
    : kind === "ar1"
    ? { kind, mean, std, phi }
    : {
      kind,
      block: intArg(values.block, "block", 10, 1),
      traces: traces.map((t) => t.filter((x): x is number => x !== null && Number.isFinite(x))),
    };
  const res = simulateNull({
    process,
    N,
    T,
    seed: intArg(values.seed, "seed", 0),
    window,
    resamples: intArg(values.resamples, "resamples", 2000, 1),
  });
  const f = (x: number) => Number.isFinite(x) ? x.toFixed(3) : "n/a";
  const p = (x: ProportionInterval) =>
    `${x.successes}/${x.n} (${(100 * x.estimate).toFixed(1)}% [${(100 * x.lower).toFixed(1)}, ${
      (100 * x.upper).toFixed(1)
    }])`;
  const desc = kind === "block"
    ? `block-shuffled real traces (block ${(process as { block: number }).block}, ${traces.length} traces)`
    : `${kind} mean ${f(mean)} std ${f(std)}${kind === "ar1" ? ` phi ${f(phi)}` : ""}`;
  console.log(
    [
      `null process: ${desc}; N=${N}, T=${T}, window ${window}; restart = redraw after r = onset - 3`,
      `units with a baseline crisis: ${res.nCrisis}/${N}`,
      `null d_z: ${f(res.dz)}${res.dzCi ? ` [${f(res.dzCi.lower)}, ${f(res.dzCi.upper)}]` : ""}`,
      `crisis-free: ${p(res.crisisFree)}`,
      `strictly worse: ${p(res.strictWorse)}`,
    ].join("\n"),
  );
}

/**
 * Entry point: `run`, `report` or `--help`. Throws on bad arguments (the script wrapper prints them).
 *
 * @example
 * ```ts
 * import { recyncMain } from "./recync.ts";
 * await recyncMain(["report", "results.jsonl", "--out-dir", "report"]).catch((e) => console.error(e.message));
 * ```
 */
export async function recyncMain(args: string[]): Promise<void> {
  const [command, ...rest] = args;
  if (command === "--help" || command === "-h" || command === "help") {
    console.log(USAGE);
    return;
  }
  if (!command) throw new UsageError("give a command: run, report or null");
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(USAGE);
    return;
  }
  if (command === "run") return await runCommand(rest);
  if (command === "report") return await reportCommand(rest);
  if (command === "null") return await nullCommand(rest);
  throw new UsageError(
    `unknown command '${command}'${didYouMean(command, ["run", "report", "null"])}: use run, report or null`,
  );
}

/**
 * The `deno task recync` entry point with the convention of the other commands: a usage error prints
 * `recync <command>: message` and the usage and exits 2 (so does a bare `recync`), `--help` exits 0, a
 * failure while running exits 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { recyncCli } from "./recync.ts";
 * assert.equal(await recyncCli(["run", "--T", "-1"]), 2); // before any backend starts
 * ```
 */
export async function recyncCli(args: string[]): Promise<number> {
  const name = ["run", "report", "null"].includes(args[0]) ? `recync ${args[0]}` : "recync";
  try {
    await recyncMain(args);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`${name}: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    console.error(`${name}: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await recyncCli(Deno.args));
