/**
 * `deno task phasegpt`: PhaseGPT sweeps, reports and the chance-level R analysis.
 *
 * ```
 * deno task phasegpt sweep --plan PLAN --out results.jsonl [--scale ci|cpu|original] [--shard i/n]
 *   [--max-runs K] [--backend auto|webgpu|wasm|cpu]
 * deno task phasegpt report results.jsonl [more.jsonl ...] [--out-dir DIR] [--r-metric R] [--band 0.35,0.55]
 * deno task phasegpt chance [--tokens 512] [--reps 4] [--seed 0] [--d-model 768]
 * ```
 *
 * `sweep` appends one JSON line per finished run and skips runs already in `--out`: rerun the same
 * command to resume. `--shard i/n` runs the runs with plan index mod n == i (one output file per shard);
 * `report` merges any number of files, de-duplicating by run id.
 *
 * @module
 */
import { parseFlags, runCommand } from "./command.ts";
import { type BackendName, initBackend } from "../backend/backend.ts";
import { writeJsonAtomic, writeTextAtomic } from "../io/atomic.ts";
import { parseShard, selectShard, type ShardSpec } from "../io/shard.ts";
import { checkChoice } from "../options.ts";
import "../phasegpt/mod.ts"; // registers the kuramoto mixer and the phasegpt-* presets
import { expandPlan, loadPlan } from "../phasegpt/experiments/plan.ts";
import { runPhaseGptSweep } from "../phasegpt/experiments/sweep.ts";
import {
  formatPhaseGptReport,
  readPhaseGptResults,
  summarizePhaseGpt,
} from "../phasegpt/experiments/report.ts";
import { chanceLevelR } from "../phasegpt/experiments/chance.ts";

/**
 * The `--help` text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PHASEGPT_USAGE } from "./phasegpt.ts";
 * assert.match(PHASEGPT_USAGE, /--shard i\/n/);
 * ```
 *
 * @category PhaseGPT
 * @internal Used inside the library; not part of the stable API.
 */
export const PHASEGPT_USAGE = `Usage:
  deno task phasegpt sweep --plan PLAN --out results.jsonl [--scale NAME] [--shard i/n] [--max-runs K]
                           [--backend auto|webgpu|wasm|cpu] [--dry-run]
  deno task phasegpt report results.jsonl [more.jsonl ...] [--out-dir DIR] [--r-metric R] [--band LO,HI]
  deno task phasegpt chance [--tokens 512] [--heads 12] [--oscillators 32] [--reps 4] [--seed 0] [--d-model 768]

sweep   trains every run of PLAN (data/configs/phasegpt/phase_a.json, phase_b.json) at a scale named in
        the plan (default its defaultScale; --scale original for the seed's sizes), appending one JSON line
        per finished run to --out. Rerun the same command to resume; --shard i/n (0-based) runs every n-th
        run, for array jobs (one --out per shard). --dry-run lists the runs and exits.
report  merges results files (de-duplicated by run id) and prints Markdown: Phase A best val PPL mean ± std
        per config under each PPL definition beside the seed's, Phase B test PPL, R and H1-H6 PASS/FAIL.
        --out-dir also writes report.md and summary.json.
chance  prints the chance-level R under each definition (analytic, simulated, untrained layer) as JSON.`;

/**
 * Parsed arguments.
 *
 * @category PhaseGPT
 * @internal Used inside the library; not part of the stable API.
 */
export type PhaseGptArgs =
  | {
    command: "sweep";
    plan: string;
    out: string;
    scale?: string;
    shard?: ShardSpec;
    maxRuns?: number;
    backend: BackendName | "auto";
    dryRun: boolean;
  }
  | { command: "report"; files: string[]; outDir?: string; rMetric: string; band: [number, number] }
  | {
    command: "chance";
    tokens: number;
    heads: number;
    oscillators: number;
    reps: number;
    seed: number;
    dModel: number;
  };

function intFlag(v: string | undefined, name: string, fallback: number, min = 0): number {
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v) || Number(v) < min) {
    throw new Error(`--${name} must be an integer >= ${min}, got '${v}'`);
  }
  return Number(v);
}

/**
 * Parses the command line; null for `--help`. Throws a message naming the allowed values.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePhaseGptArgs } from "./phasegpt.ts";
 * const a = parsePhaseGptArgs(["sweep", "--plan", "p.json", "--out", "r.jsonl", "--shard", "1/4"]);
 * assert.deepEqual(a?.command === "sweep" && a.shard, { index: 1, count: 4 });
 * assert.throws(() => parsePhaseGptArgs(["swep"]), /did you mean sweep/);
 * ```
 *
 * @category PhaseGPT
 * @internal Used inside the library; not part of the stable API.
 */
export function parsePhaseGptArgs(argv: string[]): PhaseGptArgs | null {
  const [command, ...rest] = argv;
  if (!command || command === "--help" || command === "-h" || command === "help") return null;
  const cmd = checkChoice(command, ["sweep", "report", "chance"] as const, "command");
  const opts = {
    sweep: {
      plan: { type: "string" },
      out: { type: "string" },
      scale: { type: "string" },
      shard: { type: "string" },
      "max-runs": { type: "string" },
      backend: { type: "string", default: "auto" },
      "dry-run": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    report: {
      "out-dir": { type: "string" },
      "r-metric": { type: "string", default: "R" },
      band: { type: "string", default: "0.35,0.55" },
      help: { type: "boolean", short: "h", default: false },
    },
    chance: {
      tokens: { type: "string" },
      heads: { type: "string" },
      oscillators: { type: "string" },
      reps: { type: "string" },
      seed: { type: "string" },
      "d-model": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  } as const;
  const parsed = parseFlags({ args: rest, options: opts[cmd], allowPositionals: cmd === "report" });
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.help) return null;
  if (cmd === "sweep") {
    if (!v.plan) throw new Error("sweep: --plan PLAN is required (e.g. data/configs/phasegpt/phase_a.json)");
    if (!v.out) throw new Error("sweep: --out FILE is required (results JSONL; rerun with it to resume)");
    const backend = checkChoice(v.backend, ["auto", "webgpu", "wasm", "cpu"] as const, "--backend");
    return {
      command: "sweep",
      plan: v.plan as string,
      out: v.out as string,
      ...(v.scale ? { scale: v.scale as string } : {}),
      ...(v.shard ? { shard: parseShard(v.shard as string) } : {}),
      ...(v["max-runs"] ? { maxRuns: intFlag(v["max-runs"] as string, "max-runs", 0, 1) } : {}),
      backend,
      dryRun: v["dry-run"] as boolean,
    };
  }
  if (cmd === "report") {
    if (parsed.positionals.length === 0) throw new Error("report: give at least one results file");
    const band = (v.band as string).split(",").map(Number);
    if (band.length !== 2 || band.some((x) => !Number.isFinite(x)) || band[0] > band[1]) {
      throw new Error(`--band must be LO,HI with LO <= HI, got '${v.band}'`);
    }
    return {
      command: "report",
      files: parsed.positionals,
      ...(v["out-dir"] ? { outDir: v["out-dir"] as string } : {}),
      rMetric: v["r-metric"] as string,
      band: band as [number, number],
    };
  }
  return {
    command: "chance",
    tokens: intFlag(v.tokens as string | undefined, "tokens", 512, 1),
    heads: intFlag(v.heads as string | undefined, "heads", 12, 1),
    oscillators: intFlag(v.oscillators as string | undefined, "oscillators", 32, 1),
    reps: intFlag(v.reps as string | undefined, "reps", 4, 1),
    seed: intFlag(v.seed as string | undefined, "seed", 0),
    dModel: intFlag(v["d-model"] as string | undefined, "d-model", 768),
  };
}

async function run(args: PhaseGptArgs): Promise<number> {
  if (args.command === "sweep") {
    const plan = await loadPlan(args.plan);
    if (args.dryRun) {
      for (const r of selectShard(expandPlan(plan, args.scale), args.shard)) console.log(r.id);
      return 0;
    }
    const backend = await initBackend({ backend: args.backend });
    console.log(`backend: ${backend.name}`);
    const s = await runPhaseGptSweep({
      plan,
      out: args.out,
      scale: args.scale,
      shard: args.shard,
      maxRuns: args.maxRuns,
      onRun: (r, done, planned) =>
        console.log(
          `[${done}/${planned}] ${r.id}: best val PPL ${
            r.best.token_mean.ppl.toFixed(3)
          } (token-weighted), ` +
            `${r.elapsedSec.toFixed(1)} s`,
        ),
    });
    console.log(
      `${s.ran} runs finished, ${s.skipped} already in ${args.out}, in ${s.elapsedSec.toFixed(1)} s`,
    );
    return 0;
  }
  if (args.command === "report") {
    const records = await readPhaseGptResults(args.files);
    const text = formatPhaseGptReport(records, { rMetric: args.rMetric, band: args.band });
    console.log(text);
    if (args.outDir) {
      await Deno.mkdir(args.outDir, { recursive: true });
      await writeTextAtomic(`${args.outDir}/report.md`, text + "\n");
      await writeJsonAtomic(
        `${args.outDir}/summary.json`,
        summarizePhaseGpt(records, { rMetric: args.rMetric, band: args.band }),
      );
    }
    return 0;
  }
  const r = chanceLevelR({
    shape: { heads: args.heads, tokens: args.tokens, oscillators: args.oscillators },
    reps: args.reps,
    seed: args.seed,
    dModel: args.dModel,
    keepValues: 0,
  });
  console.log(JSON.stringify(r, null, 2));
  return 0;
}

/**
 * Runs the phasegpt command with `argv`; resolves to the exit code (2 for a usage error).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { phasegptMain } from "./phasegpt.ts";
 * assert.equal(await phasegptMain(["--help"]), 0);
 * ```
 *
 * @category PhaseGPT
 */
export function phasegptMain(argv: string[]): Promise<number> {
  return runCommand(argv, { name: "phasegpt", usage: PHASEGPT_USAGE, parse: parsePhaseGptArgs, run });
}

if (import.meta.main) Deno.exit(await phasegptMain(Deno.args));
