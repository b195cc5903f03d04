/**
 * Multi-seed comparison of reFlow against GPT-2-New at matched size (issue 8, item 8): trains each config
 * once per seed (only `training.seed` changes), then reports the final validation loss of every run and a
 * paired t test of reFlow − GPT-2-New over the seeds, plus the sparsity (active signals per recipe row,
 * usage Gini) and basis geometry (effective rank, condition number) of each reFlow model.
 *
 * Resumable: every finished run is one line of `DIR/runs.jsonl`; rerunning the same command skips the
 * finished runs and resumes an interrupted one from its last checkpoint.
 *
 * ```sh
 * COHERENCE_DATA_DIR=../shared/data deno run -A tools/reflow_seeds.ts --out out/reflow-seeds
 *   # default: data/configs/reflow_mini_wikitext2.json vs gpt2_new_mini_wikitext2.json, seeds 1,2,3
 * deno run -A tools/reflow_seeds.ts --out out/s --configs data/configs/reflow_tiny_shakespeare.json,data/configs/gpt2_new_tiny_shakespeare.json --steps 200
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { initBackend } from "../lib/backend/backend.ts";
import type { BackendName } from "../lib/backend/backend.ts";
import { loadTrainConfig, resolveTrainConfig } from "../lib/train/config.ts";
import { trainFromConfig } from "../lib/train/run.ts";
import { pairedTTest } from "../lib/stats/paired.ts";
import { meanOf as mean } from "../lib/stats/descriptive.ts";
import { appendJsonl, readJsonl, writeTextAtomic } from "../lib/io/atomic.ts";
import {
  basisGeometry,
  realVocabSize,
  reflowParts,
  semanticAlgebra,
  semanticGalaxy,
  sparsityProfile,
} from "../lib/reflow/mod.ts";

/** One finished run. */
export interface SeedRun {
  /** Config file. */
  config: string;
  /** Preset trained. */
  preset: string;
  seed: number;
  steps: number;
  /** Final validation loss. */
  valLoss: number;
  /** Run folder. */
  outDir: string;
  /** reFlow runs: sparsity and basis geometry of the trained model (definitions as in the experiments). */
  reflow?: {
    activeSignalsMean: number;
    usageGini: number;
    effectiveRank: number;
    conditionNumber: number | null;
    /** Semantic galaxy (#4): silhouette of the default probe categories (null: too few probe words are tokens). */
    silhouette: number | null;
    galaxyWords: number;
    /** Semantic algebra (#5): hits (target within the top 5) over the triples scored, and each target's rank. */
    algebraHits: number;
    algebraTriples: number;
    algebraRanks: number[];
    /** Real vocabulary rows ranked by the algebra (a random ranking puts the target at about half of it). */
    algebraVocab: number;
    definitions: Record<string, string>;
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    strict: true,
    options: {
      configs: {
        type: "string",
        default: "data/configs/reflow_mini_wikitext2.json,data/configs/gpt2_new_mini_wikitext2.json",
      },
      seeds: { type: "string", default: "1,2,3" },
      steps: { type: "string" },
      out: { type: "string" },
      backend: { type: "string", default: "auto" },
      json: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help || !values.out) {
    console.log(
      "Usage: deno run -A tools/reflow_seeds.ts --out DIR [--configs REFLOW.json,BASELINE.json] [--seeds 1,2,3] " +
        "[--steps N] [--backend auto|webgpu|wasm|cpu] [--json FILE]",
    );
    Deno.exit(values.help ? 0 : 2);
  }
  const configs = values.configs!.split(",");
  if (configs.length !== 2) {
    throw new Error("--configs: give exactly two files (reFlow first, the baseline second)");
  }
  const seeds = values.seeds!.split(",").map(Number);
  if (seeds.some((s) => !Number.isInteger(s))) throw new Error(`--seeds: integers, got ${values.seeds}`);
  const backend = await initBackend({ backend: values.backend as BackendName | "auto" });
  console.error(`backend ${backend.name}`);
  await Deno.mkdir(values.out, { recursive: true });
  const log = `${values.out}/runs.jsonl`;
  const steps = values.steps ? Number(values.steps) : undefined;
  const done = (await readJsonl<SeedRun>(log, { allowMissing: true })).records;
  // Each config file is read once; the seed loop only changes training.seed.
  const bases = await Promise.all(configs.map(async (path) => (await loadTrainConfig(path)).config));
  const runs: SeedRun[] = [];
  for (const seed of seeds) {
    for (const [c, path] of configs.entries()) {
      const base = bases[c];
      const config = resolveTrainConfig({ ...base, training: { ...base.training, seed } }, path);
      const wantSteps = steps ?? config.steps;
      const finished = done.find((r) => r.config === path && r.seed === seed && r.steps === wantSteps);
      if (finished) {
        console.error(`${path} seed ${seed}: finished earlier (${log})`);
        runs.push(finished);
        continue;
      }
      const name = path.slice(path.lastIndexOf("/") + 1).replace(/\.json$/, "");
      const outDir = `${values.out}/${name}-seed${seed}`;
      const resume = await Deno.stat(`${outDir}/checkpoints/latest`).then(() => true, () => false);
      const r = await trainFromConfig({ config, outDir, steps, resume, print: false, handleSigint: false });
      const run: SeedRun = {
        config: path,
        preset: base.model.preset,
        seed,
        steps: r.step,
        valLoss: r.lastEval?.loss ?? NaN,
        outDir,
      };
      if (r.modelConfig.embedding?.kind === "reflow") {
        const sp = (await sparsityProfile(r.model, r.tokenizer)).result;
        const geo = (await basisGeometry(r.model, r.tokenizer)).result;
        // The word probes need a word-level or BPE tokenizer: probe words that are not single tokens are
        // skipped (and listed); with none left (a character tokenizer) the scores are null.
        const probe = async <T>(f: () => Promise<T>): Promise<T | null> => {
          try {
            return await f();
          } catch (e) {
            console.error(`  word probes not scored: ${(e as Error).message.split("\n")[0]}`);
            return null;
          }
        };
        const gal = await probe(async () =>
          (await semanticGalaxy(r.model, r.tokenizer, { skipMissing: true })).result
        );
        const alg = await probe(async () =>
          (await semanticAlgebra(r.model, r.tokenizer, { skipMissing: true })).result
        );
        run.reflow = {
          activeSignalsMean: sp.activeCounts.mean,
          usageGini: sp.gini,
          effectiveRank: geo.effectiveRank,
          conditionNumber: geo.conditionNumber,
          silhouette: gal && gal.points.length >= 2 && Number.isFinite(gal.silhouette)
            ? gal.silhouette
            : null,
          galaxyWords: gal?.points.length ?? 0,
          algebraHits: alg?.hits ?? 0,
          algebraTriples: alg?.triples.length ?? 0,
          algebraRanks: alg?.triples.map((t) => t.rank) ?? [],
          algebraVocab: realVocabSize(reflowParts(r.model), r.tokenizer),
          definitions: {
            ...sp.definitions,
            ...geo.definitions,
            ...(gal?.definitions ?? {}),
            ...(alg?.definitions ?? {}),
          },
        };
      }
      await appendJsonl(log, run);
      runs.push(run);
      console.error(`${name} seed ${seed}: val loss ${r.lastEval?.loss.toFixed(4)} after ${r.step} steps`);
      r.model.dispose();
    }
  }
  const a = runs.filter((r) => r.config === configs[0]).map((r) => r.valLoss);
  const b = runs.filter((r) => r.config === configs[1]).map((r) => r.valLoss);
  console.log("| seed | " + configs.map((c) => c.slice(c.lastIndexOf("/") + 1)).join(" | ") + " |");
  console.log("|---|---|---|");
  seeds.forEach((s, i) => console.log(`| ${s} | ${a[i].toFixed(4)} | ${b[i].toFixed(4)} |`));
  if (seeds.length >= 2) {
    const t = pairedTTest(a, b);
    console.log(
      `\nreFlow − baseline: mean ${t.meanDifference.toFixed(4)} nats, 95% CI [${t.ciLower.toFixed(4)}, ${
        t.ciUpper.toFixed(4)
      }], t = ${t.t.toFixed(3)}, df ${t.df}, p = ${t.pValue.toFixed(4)}`,
    );
  }
  const rf = runs.filter((r) => r.reflow).map((r) => r.reflow!);
  if (rf.length) {
    console.log(
      `\nreFlow models (${rf.length}): active signals per recipe row ${
        mean(rf.map((x) => x.activeSignalsMean)).toFixed(1)
      }, ` +
        `usage Gini ${mean(rf.map((x) => x.usageGini)).toFixed(3)}, basis effective rank ${
          mean(rf.map((x) => x.effectiveRank)).toFixed(1)
        }, ` +
        `galaxy silhouette ${
          rf.map((x) => x.silhouette === null ? "n/a" : x.silhouette.toFixed(4)).join(", ")
        }, algebra hits ${rf.map((x) => `${x.algebraHits}/${x.algebraTriples}`).join(", ")} (target ranks ${
          rf.map((x) => x.algebraRanks.join("/")).join(", ")
        } of ${rf[0].algebraVocab}) ` +
        `(definitions in ${log})`,
    );
  }
  if (values.json) await writeTextAtomic(values.json, JSON.stringify({ runs }, null, 2) + "\n");
}
