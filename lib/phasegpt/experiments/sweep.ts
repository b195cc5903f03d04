/**
 * The PhaseGPT sweep: trains every run of a plan (see plan.ts), appends one JSON line per finished run to
 * the results file, skips runs already there (rerun the same command to resume) and, with `--shard i/n`,
 * runs only the runs whose plan index is i mod n (the shared pieces of lib/io/shard.ts).
 *
 * Each run is trained by the library's {@linkcode Trainer} in chunks of `evalInterval` steps; between
 * chunks the validation split is scored under **all three** perplexity definitions at once (token-weighted
 * exp(mean CE), PhaseGPT's mean of per-batch exp, and exp of the per-batch mean), because the seed's Phase A
 * numbers use the second and Phase B's script the first. Phase B also scores the test split at the end.
 *
 * @module
 */
import { tf } from "../../deps.ts";
import type { Tensor } from "../../tensor_types.ts";
import { appendJsonl } from "../../io/atomic.ts";
import { acquireLock } from "../../io/lock.ts";
import { selectShard, type ShardSpec } from "../../io/shard.ts";
import { loadCorpus } from "../../data/corpus.ts";
import { sequentialBatches, type TokenArray } from "../../data/sampler.ts";
import { CharTokenizer } from "../../tokenizers/char.ts";
import { loadTokenizer } from "../../tokenizers/hf.ts";
import { encodeDocuments, Gpt2BpeTokenizer, splitDocuments } from "../../tokenizers/gpt2_bpe.ts";
import { countParameters } from "../../models/params.ts";
import { createDecoder } from "../../models/scratch.ts";
import type { CausalLM, DecoderConfig } from "../../models/types.ts";
import { modelConfigFor, resolveTrainConfig, type TrainConfig } from "../../train/config.ts";
import { crossEntropy, summariseEval } from "../../train/loss.ts";
import { type MetricsRecord, Trainer } from "../../train/trainer.ts";
import type { LrSchedule } from "../../train/schedule.ts";
import { budgetOf, readPhaseGptResults } from "./report.ts";
import { expandPlan, matchDMlp, type PhaseGptPlan, type PhaseGptRunSpec, type PlanScale } from "./plan.ts";

/**
 * The three distinct perplexity computations the sweep records (PhaseGPT's names are aliases:
 * `phasegpt_train` = `batch_mean_exp`, `phasegpt_evaluate` and `phasegpt_generalize` = `token_mean`).
 *
 * @category PhaseGPT
 */
export type PplDefinition = "token_mean" | "batch_mean_exp" | "batch_mean";

/**
 * Validation (or test) perplexity under every definition, plus the mean of each component metric.
 *
 * @category PhaseGPT
 */
export interface PerplexitySet {
  /** exp(Σ token CE / Σ tokens). */
  token_mean: number;
  /** Mean over batches of exp(batch-mean CE): PhaseGPT's `val_perplexity`. */
  batch_mean_exp: number;
  /** exp(mean over batches of batch-mean CE). */
  batch_mean: number;
}

/**
 * One evaluation point of a run.
 *
 * @category PhaseGPT
 */
export interface EvalPoint {
  /** Optimiser steps done. */
  step: number;
  /** Token-weighted mean CE (nats). */
  loss: number;
  /** Perplexity under each definition. */
  ppl: PerplexitySet;
  /** Component metrics averaged over the evaluation batches (e.g. `blocks.4.attn.R`). */
  metrics: Record<string, number>;
}

/**
 * One line of a PhaseGPT results file.
 *
 * @category PhaseGPT
 */
export interface PhaseGptRunRecord extends PhaseGptRunSpec {
  /** Format marker. */
  schema: "coherence-lab/phasegpt-run@1";
  /** Parameters of the model trained (embeddings included). */
  params: number;
  /** Vocabulary size of the variant's tokenizer. */
  vocabSize: number;
  /** Layers, width, heads and mixers of the trained model. */
  architecture: Pick<DecoderConfig, "nLayers" | "dModel" | "nHeads" | "dMlp" | "mixers">;
  /** The schedule and optimiser the run trained with (the plan's, with the scale's steps filled in). */
  training: { schedule: LrSchedule; optimizer: Record<string, unknown>; gradClip: number };
  /** Optimiser steps, batch and block. */
  budget: { steps: number; batchSize: number; blockSize: number; tokens: number };
  /** Validation curve. */
  curve: EvalPoint[];
  /** Training metrics per log interval (loss and component metrics, e.g. R). */
  train: { step: number; loss: number; metrics: Record<string, number> }[];
  /** Best (lowest) validation perplexity per definition, with its step. */
  best: Record<PplDefinition, { ppl: number; step: number }>;
  /** Test-split perplexity after training (Phase B), else null. */
  test: { ppl: PerplexitySet; tokens: number } | null;
  /** Which text trained, validated and tested this run. */
  dataNote: string;
  /** The named future-token leak of this run's PPL, or null when the model is causal. */
  leak: string | null;
  /** Wall time of the run, seconds (data preparation excluded). */
  elapsedSec: number;
  /** Seconds per optimiser step. */
  secPerStep: number;
  /** tfjs backend. */
  backend: string;
}

/**
 * The tokens a plan variant trains, validates and tests on (prepared once per sweep).
 *
 * @category PhaseGPT
 */
export interface VariantData {
  /** Training tokens (the first part of the training split). */
  train: TokenArray;
  /** Validation tokens (its tail): best-checkpoint selection. */
  val: TokenArray;
  /** Test-split tokens (Phase B), else null. */
  test: TokenArray | null;
  /** Vocabulary size of the tokenizer. */
  vocabSize: number;
  /** Which text trains, validates and tests, in words. */
  note: string;
}

/**
 * Phase B as coded (spec §6.3): `codePoint mod 256` of every character that is not whitespace.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeChar256NoWhitespace } from "./sweep.ts";
 * assert.deepEqual([...encodeChar256NoWhitespace("a b\nĀ")], [97, 98, 0]); // Ā = 256 → 0
 * ```
 *
 * @category PhaseGPT
 */
export function encodeChar256NoWhitespace(text: string): Uint16Array {
  const out: number[] = [];
  for (const ch of text) if (!/\s/u.test(ch)) out.push(ch.codePointAt(0)! % 256);
  return Uint16Array.from(out);
}

async function encodeVariant(
  tokenizer: string,
  train: string,
  test: string | null,
): Promise<{ train: TokenArray; test: TokenArray | null; vocabSize: number; desc: string }> {
  if (tokenizer === "char256-nows") {
    return {
      train: encodeChar256NoWhitespace(train),
      test: test === null ? null : encodeChar256NoWhitespace(test),
      vocabSize: 256,
      desc: "char mod 256, whitespace dropped (as coded)",
    };
  }
  if (tokenizer === "char") {
    // Characters of the test split unseen in training map to one unknown id, so test scoring never fails.
    const tok = CharTokenizer.fromCorpus(train, test === null ? {} : { unkToken: "\uFFFD" });
    const enc = (s: string) => Uint16Array.from(tok.encode(s));
    return {
      train: enc(train),
      test: test === null ? null : enc(test),
      vocabSize: tok.vocabSize,
      desc: `char (${tok.vocabSize} ids)`,
    };
  }
  if (tokenizer === "gpt2") {
    // The preregistered GPT-2 vocabulary as is (50,257 ids, no padding rows), EOT after every article.
    const tok = new Gpt2BpeTokenizer(50257);
    const enc = (s: string) => encodeDocuments(splitDocuments(s), tok);
    return {
      train: enc(train),
      test: test === null ? null : enc(test),
      vocabSize: tok.vocabSize,
      desc: "GPT-2 byte-level BPE (50,257 ids, offline ranks, EOT between articles)",
    };
  }
  const tok = await loadTokenizer(tokenizer);
  const enc = (s: string) => Uint32Array.from(tok.encode(s));
  return {
    train: enc(train),
    test: test === null ? null : enc(test),
    vocabSize: tok.vocabSize,
    desc: `${tokenizer} (${tok.vocabSize} ids)`,
  };
}

async function prepareVariant(plan: PhaseGptPlan, tokenizer: string, scale: PlanScale): Promise<VariantData> {
  const d = plan.data;
  const opts = { dataDir: d.dataDir, download: false };
  const trainCorpus = await loadCorpus(d.corpus, { ...opts, split: d.trainSplit });
  let text = trainCorpus.text;
  if (scale.maxChars) text = text.slice(0, scale.maxChars);
  const testText = d.testSplit ? (await loadCorpus(d.corpus, { ...opts, split: d.testSplit })).text : null;
  const enc = await encodeVariant(tokenizer, text, testText);
  // Contiguous split: the last valFraction of the training text validates (best-checkpoint selection).
  const nVal = Math.floor(enc.train.length * (d.valFraction ?? 0.1));
  const train = enc.train.subarray(0, enc.train.length - nVal);
  const val = enc.train.subarray(enc.train.length - nVal);
  const split = d.trainSplit ? `${d.corpus}/${d.trainSplit}` : d.corpus;
  const note = `train: first ${100 - 100 * (d.valFraction ?? 0.1)}% of ${split}` +
    (scale.maxChars ? ` (first ${scale.maxChars} chars)` : "") +
    `; val: its last ${100 * (d.valFraction ?? 0.1)}%` +
    (d.testSplit ? `; test: ${d.corpus}/${d.testSplit}` : "") + `; tokenizer ${enc.desc}`;
  return { train, val, test: enc.test, vocabSize: enc.vocabSize, note };
}

/**
 * Scores `tokens` in consecutive windows (dropout off) and returns the perplexity under every definition,
 * the token-weighted loss and the mean of each component metric the model reports.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { evaluatePerplexities } from "./sweep.ts";
 * import { createDecoder, gpt2SmallConfig } from "../../models/scratch.ts";
 * import { initBackend } from "../../backend/backend.ts";
 * await initBackend({ backend: "cpu" });
 * const model = createDecoder(gpt2SmallConfig({ nLayers: 1, dModel: 16, nHeads: 2, vocabSize: 8, maxPositions: 8 }), { seed: 0 });
 * const ev = await evaluatePerplexities(model, Uint16Array.from({ length: 65 }, (_, i) => i % 8), 2, 8, 4);
 * assert.ok(ev.ppl.batch_mean_exp >= ev.ppl.batch_mean - 1e-9); // Jensen
 * model.dispose();
 * ```
 *
 * @category PhaseGPT
 */
export async function evaluatePerplexities(
  model: CausalLM,
  tokens: TokenArray,
  batchSize: number,
  blockSize: number,
  maxBatches = Infinity,
): Promise<{ loss: number; ppl: PerplexitySet; tokens: number; metrics: Record<string, number> }> {
  const batches = sequentialBatches(tokens, batchSize, blockSize, maxBatches);
  const rows: Tensor[] = [];
  let names: string[] | undefined;
  for (const b of batches) {
    rows.push(tf.tidy(() => {
      const x = tf.tensor2d(b.x, [b.batchSize, b.blockSize], "int32");
      const y = tf.tensor2d(b.y, [b.batchSize, b.blockSize], "int32");
      const out = model.forward(x);
      names ??= Object.keys(out.metrics ?? {});
      const metrics = names.map((k) => tf.cast(tf.mean(out.metrics![k]), "float32"));
      return tf.stack([crossEntropy(out.logits, y), ...metrics]);
    }));
  }
  // One readback for the whole evaluation: [batches, 1 + metrics] (as Trainer.evaluate does).
  let flat: ArrayLike<number> = [];
  if (rows.length) {
    const packed = tf.stack(rows);
    flat = await packed.data();
    tf.dispose([packed, ...rows]);
  }
  const width = 1 + (names?.length ?? 0);
  const losses = batches.map((_, i) => flat[i * width]);
  const counts = batches.map((b) => b.batchSize * b.blockSize);
  const sums: Record<string, number> = {};
  batches.forEach((_, i) => names!.forEach((k, j) => sums[k] = (sums[k] ?? 0) + flat[i * width + 1 + j]));
  const tm = summariseEval(losses, counts, "token_mean");
  const metrics = Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / batches.length]));
  return {
    loss: tm.loss,
    tokens: tm.tokens,
    ppl: {
      token_mean: tm.perplexity,
      batch_mean_exp: summariseEval(losses, counts, "batch_mean_exp").perplexity,
      batch_mean: summariseEval(losses, counts, "batch_mean").perplexity,
    },
    metrics,
  };
}

function scheduleFor(plan: PhaseGptPlan, scale: PlanScale): LrSchedule {
  const s = { ...(plan.schedule ?? { kind: "cosine", lr: 3e-4, minLr: 3e-5 }) } as Record<string, unknown>;
  if (s.kind !== "constant") {
    s.warmupSteps ??= scale.warmupSteps ??
      Math.max(0, Math.min(scale.steps - 1, Math.round(scale.steps * 0.05)));
    // PhaseGPT's LambdaLR counts the whole run; the library's cosine decays over decaySteps.
    if (s.kind === "lambda-cosine-floor") s.totalSteps ??= scale.steps;
    else s.decaySteps ??= scale.steps;
  }
  return s as unknown as LrSchedule;
}

/**
 * The training config one run resolves to (what the trainer checks: preset, mixers, schedule, loss terms).
 *
 * @example
 * ```ts
 * import type { PhaseGptPlan } from "./plan.ts";
 * import assert from "node:assert/strict";
 * import { trainConfigFor } from "./sweep.ts";
 * import { expandPlan } from "./plan.ts";
 * const plan: PhaseGptPlan = {
 *   schema: "coherence-lab/phasegpt-plan@1", name: "demo", phase: "A", data: { corpus: "tinyshakespeare" },
 *   modes: { faithful: {} }, seeds: [3], defaultScale: "ci", configs: [{ id: "base", preset: "gpt2", role: "baseline" }],
 *   scales: { ci: { steps: 4, batchSize: 2, blockSize: 16, evalInterval: 2, evalBatches: 1 } },
 * };
 * const run = expandPlan(plan)[0];
 * assert.equal(trainConfigFor(plan, run).training.seed, 3);
 * ```
 *
 * @category PhaseGPT
 */
export function trainConfigFor(plan: PhaseGptPlan, run: PhaseGptRunSpec): TrainConfig {
  const scale = plan.scales[run.scale];
  return {
    model: run.model,
    data: { corpus: plan.data.corpus },
    training: {
      steps: scale.steps,
      batchSize: scale.batchSize,
      blockSize: scale.blockSize,
      gradClip: plan.gradClip ?? 1,
      seed: run.seed,
    },
    optimizer: { ...plan.optimizer },
    schedule: scheduleFor(plan, scale),
    eval: { interval: 0, batches: 1, batchSize: 1 },
    log: { interval: Math.max(1, Math.min(scale.evalInterval, 10)) },
    ...(Object.keys(run.lossTerms).length ? { loss: { terms: run.lossTerms } } : {}),
  };
}

/** The model config of a run, with a parameter-matched dMlp when the run asks for one. */
function modelFor(
  plan: PhaseGptPlan,
  run: PhaseGptRunSpec,
  runs: PhaseGptRunSpec[],
  vocab: number,
): DecoderConfig {
  const block = plan.scales[run.scale].blockSize;
  const config = modelConfigFor(run.model, vocab, block);
  if (!run.matchParamsOf) return config;
  // The named mode's phase model (the same seed's, else any seed's: the count does not depend on the seed).
  const of = (r: PhaseGptRunSpec) =>
    r.config === run.matchParamsOf && r.variant === run.variant &&
    (!run.matchMode || r.mode === run.matchMode);
  const target = runs.find((r) => of(r) && r.seed === run.seed) ?? runs.find(of);
  if (!target) {
    throw new Error(
      `run ${run.id}: matchParamsOf '${run.matchParamsOf}' (mode ${
        run.matchMode ?? "any"
      }) has no run at this scale`,
    );
  }
  const goal = countParameters(modelConfigFor(target.model, vocab, block));
  const dMlp = matchDMlp((o) => modelConfigFor({ ...run.model, ...o }, vocab, block), goal);
  return modelConfigFor({ ...run.model, dMlp }, vocab, block);
}

/**
 * Trains and evaluates one run; returns its record (nothing is written).
 *
 * @example
 * ```ts
 * import type { PhaseGptPlan } from "./plan.ts";
 * import assert from "node:assert/strict";
 * import { runPhaseGptRun } from "./sweep.ts";
 * import { expandPlan } from "./plan.ts";
 * import { initBackend } from "../../backend/backend.ts";
 * await initBackend({ backend: "cpu" });
 * const corpus = await Deno.makeTempFile({ suffix: ".txt" });
 * await Deno.writeTextFile(corpus, "to be or not to be that is the question ".repeat(30));
 * const plan: PhaseGptPlan = {
 *   schema: "coherence-lab/phasegpt-plan@1", name: "demo", phase: "A", data: { corpus },
 *   modes: { faithful: {} }, seeds: [0], defaultScale: "ci", configs: [{ id: "base", preset: "gpt2", role: "baseline" }],
 *   scales: { ci: { steps: 2, batchSize: 2, blockSize: 16, evalInterval: 1, evalBatches: 1, model: { nLayers: 1, dModel: 16, nHeads: 2 } } },
 * };
 * const rec = await runPhaseGptRun(plan, expandPlan(plan)[0]);
 * assert.equal(rec.curve.length, 2);
 * ```
 *
 * @category PhaseGPT
 */
export async function runPhaseGptRun(
  plan: PhaseGptPlan,
  run: PhaseGptRunSpec,
  context: { data?: VariantDataCache; runs?: PhaseGptRunSpec[] } = {},
): Promise<PhaseGptRunRecord> {
  const scale = plan.scales[run.scale];
  const cache = context.data ?? new Map();
  let data = cache.get(run.variant);
  if (!data) {
    data = await prepareVariant(plan, run.tokenizer, scale);
    cache.set(run.variant, data);
  }
  const modelConfig = modelFor(plan, run, context.runs ?? [run], data.vocabSize);
  const resolved = resolveTrainConfig(trainConfigFor(plan, run), `run ${run.id}`);
  const model = createDecoder(modelConfig, { seed: run.seed, init: "normal", std: 0.02 });
  const train: PhaseGptRunRecord["train"] = [];
  const onMetrics = (r: MetricsRecord) => {
    if (r.kind === "train") train.push({ step: r.step, loss: r.loss!, metrics: r.metrics ?? {} });
  };
  const trainer = new Trainer({
    model,
    settings: resolved.settings,
    train: data.train,
    val: data.val,
    print: false,
    onMetrics,
  });
  const curve: EvalPoint[] = [];
  const t0 = performance.now();
  let evalSec = 0;
  try {
    for (let step = scale.evalInterval;; step += scale.evalInterval) {
      const target = Math.min(step, scale.steps);
      await trainer.run(target);
      const e0 = performance.now();
      const ev = await evaluatePerplexities(
        model,
        data.val,
        scale.batchSize,
        scale.blockSize,
        scale.evalBatches,
      );
      evalSec += (performance.now() - e0) / 1000;
      curve.push({ step: target, loss: ev.loss, ppl: ev.ppl, metrics: ev.metrics });
      if (target >= scale.steps) break;
    }
    const test = data.test
      ? await evaluatePerplexities(
        model,
        data.test,
        scale.batchSize,
        scale.blockSize,
        scale.testBatches ? scale.testBatches : Infinity,
      )
      : null;
    const elapsedSec = (performance.now() - t0) / 1000;
    const best = Object.fromEntries(
      (["token_mean", "batch_mean_exp", "batch_mean"] as const).map((d) => {
        const b = curve.reduce((a, c) => (c.ppl[d] < a.ppl[d] ? c : a));
        return [d, { ppl: b.ppl[d], step: b.step }];
      }),
    ) as PhaseGptRunRecord["best"];
    const hasPhase = (modelConfig.mixers ?? []).some((m) => m.kind !== "attention");
    return {
      schema: "coherence-lab/phasegpt-run@1",
      ...run,
      params: countParameters(modelConfig),
      vocabSize: data.vocabSize,
      architecture: {
        nLayers: modelConfig.nLayers,
        dModel: modelConfig.dModel,
        nHeads: modelConfig.nHeads,
        dMlp: modelConfig.dMlp,
        ...(modelConfig.mixers ? { mixers: modelConfig.mixers } : {}),
      },
      training: {
        schedule: resolved.settings.schedule,
        optimizer: { ...(plan.optimizer ?? {}) },
        gradClip: resolved.settings.gradClip,
      },
      budget: {
        steps: scale.steps,
        batchSize: scale.batchSize,
        blockSize: scale.blockSize,
        tokens: scale.steps * scale.batchSize * scale.blockSize,
      },
      curve,
      train,
      best,
      test: test ? { ppl: test.ppl, tokens: test.tokens } : null,
      dataNote: data.note,
      leak: hasPhase && run.mode === "faithful"
        ? "non-causal phase layer (faithful mode): each position's phases are coupled to every later token, " +
          "so teacher-forced PPL sees the future"
        : null,
      elapsedSec,
      secPerStep: (elapsedSec - evalSec) / scale.steps,
      backend: tf.getBackend(),
    };
  } finally {
    trainer.dispose();
    model.dispose();
  }
}

/**
 * Prepared variant data shared between the runs of one sweep (keyed by variant id).
 *
 * @category PhaseGPT
 */
export type VariantDataCache = Map<string, VariantData>;

/**
 * Options of {@linkcode runPhaseGptSweep}.
 *
 * @category PhaseGPT
 */
export interface PhaseGptSweepOptions {
  /** The validated plan. */
  plan: PhaseGptPlan;
  /** Results file (JSONL); runs already in it are skipped. */
  out: string;
  /** Scale name (default: the plan's `defaultScale`). */
  scale?: string;
  /** Only this shard. */
  shard?: ShardSpec;
  /** Stop after this many newly finished runs (tests, time-boxed sessions). */
  maxRuns?: number;
  /** Called after each run is written. */
  onRun?: (record: PhaseGptRunRecord, done: number, planned: number) => void;
}

/**
 * What {@linkcode runPhaseGptSweep} did.
 *
 * @category PhaseGPT
 */
export interface PhaseGptSweepSummary {
  /** Runs in this shard. */
  planned: number;
  /** Runs skipped because the results file had them. */
  skipped: number;
  /** Runs finished now. */
  ran: number;
  /** Wall time, seconds. */
  elapsedSec: number;
}

/**
 * Runs (or resumes) a plan's sweep: one JSON line per finished run, appended as soon as it finishes, so an
 * interrupted sweep loses at most the run in flight.
 *
 * @example
 * ```ts
 * import type { PhaseGptPlan } from "./plan.ts";
 * import assert from "node:assert/strict";
 * import { runPhaseGptSweep } from "./sweep.ts";
 * import { initBackend } from "../../backend/backend.ts";
 * await initBackend({ backend: "cpu" });
 * const corpus = await Deno.makeTempFile({ suffix: ".txt" });
 * await Deno.writeTextFile(corpus, "to be or not to be that is the question ".repeat(30));
 * const plan: PhaseGptPlan = {
 *   schema: "coherence-lab/phasegpt-plan@1", name: "demo", phase: "A", data: { corpus },
 *   modes: { faithful: {} }, seeds: [0, 1], defaultScale: "ci", configs: [{ id: "base", preset: "gpt2", role: "baseline" }],
 *   scales: { ci: { steps: 1, batchSize: 2, blockSize: 16, evalInterval: 1, evalBatches: 1, model: { nLayers: 1, dModel: 16, nHeads: 2 } } },
 * };
 * const out = (await Deno.makeTempDir()) + "/r.jsonl";
 * assert.equal((await runPhaseGptSweep({ plan, out })).ran, 2);
 * assert.equal((await runPhaseGptSweep({ plan, out })).skipped, 2); // rerun: nothing left to do
 * ```
 *
 * @category PhaseGPT
 */
export async function runPhaseGptSweep(options: PhaseGptSweepOptions): Promise<PhaseGptSweepSummary> {
  const t0 = performance.now();
  const all = expandPlan(options.plan, options.scale);
  const runs = selectShard(all, options.shard);
  await using _lock = await acquireLock(`${options.out}.lock`, { what: `PhaseGPT results "${options.out}"` });
  // One read of the results file: a finished run is skipped only if it was trained under this plan's budget.
  const done = new Map(
    (await readPhaseGptResults([options.out], { allowMissing: true })).map((r) => [r.id, r]),
  );
  for (const r of runs) {
    const f = done.get(r.id), want = budgetOf(options.plan.scales[r.scale]);
    if (f && budgetOf(f.budget) !== want) {
      throw new Error(
        `${options.out}: run ${r.id} is recorded with ${
          budgetOf(f.budget)
        }, but the plan now gives ${want}: ` +
          `write to another --out (or remove those lines) instead of mixing budgets`,
      );
    }
  }
  let todo = runs.filter((r) => !done.has(r.id));
  const skipped = runs.length - todo.length;
  if (options.maxRuns !== undefined) todo = todo.slice(0, options.maxRuns);
  const data: VariantDataCache = new Map();
  let ran = 0;
  for (const run of todo) {
    const record = await runPhaseGptRun(options.plan, run, { data, runs: all });
    await appendJsonl(options.out, record);
    ran++;
    options.onRun?.(record, skipped + ran, runs.length);
  }
  return { planned: runs.length, skipped, ran, elapsedSec: (performance.now() - t0) / 1000 };
}
