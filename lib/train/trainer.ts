/**
 * The training loop: micro-batches with gradient accumulation, global-norm clipping, AdamW on a schedule,
 * periodic evaluation, JSONL metrics, checkpoints, exact resume, and a clean stop on a non-finite loss or
 * a stop request (Ctrl-C).
 *
 * @module
 */
import { tf } from "../deps.ts";
import { explainWasmHeapError } from "../backend/wasm_heap.ts";
import { formatProgressDuration } from "../notebook/progress.ts";
import type { Tensor, Variable } from "../tensor_types.ts";
import { appendJsonl } from "../io/atomic.ts";
import type { CausalLM, DecoderConfig } from "../models/types.ts";
import {
  BatchSampler,
  type BatchSamplerState,
  sequentialBatches,
  type TokenArray,
  type TokenWindows,
} from "../data/sampler.ts";
import { AdamW, type ParamGroupRule } from "./adamw.ts";
import { clipByGlobalNorm } from "./clip.ts";
import { crossEntropy, type EvalSummary, type PerplexityDefinition, summariseEval } from "./loss.ts";
import { learningRate, type LrSchedule } from "./schedule.ts";
import { assignWeights, type CheckpointState, type LoadedCheckpoint, saveCheckpoint } from "./checkpoint.ts";

/**
 * Loop settings (the `training`, `optimizer`, `schedule`, `eval`, `log` and `checkpoint` parts of a config).
 *
 * @category Training
 */
export interface TrainerSettings {
  /** Rows per micro-batch. */
  batchSize: number;
  /** Context length of each training window. */
  blockSize: number;
  /** Micro-batches per optimiser step (loss divided by this count). */
  gradAccum: number;
  /** Clip the global gradient norm to this value; 0 turns clipping off. */
  gradClip: number;
  /** Seed of the batch order and the dropout masks. */
  seed: number;
  /** AdamW hyper-parameters and parameter-group rules. */
  optimizer: { beta1: number; beta2: number; eps: number; groups: ParamGroupRule[] };
  /** Learning rate by optimiser step. */
  schedule: LrSchedule;
  /** Evaluate every this many steps (0: only at the end of a run). */
  evalInterval: number;
  /** At most this many validation batches per evaluation (sequential, the same tokens every time). */
  evalBatches: number;
  /** Rows per validation batch. */
  evalBatchSize: number;
  /** How loss and perplexity are aggregated over validation batches. */
  perplexity: PerplexityDefinition;
  /** Print and log train metrics every this many steps. */
  logInterval: number;
  /** Save a checkpoint every this many steps (0: only at the end and on a stop request). */
  checkpointInterval: number;
  /** Checkpoint folders kept. */
  keepLast: number;
  /**
   * Weights of the components' auxiliary loss terms by name (`loss.terms` of the config): the trainer
   * minimises cross-entropy + Σ weight × term. Terms without a weight are logged but not added.
   */
  lossTerms?: Record<string, number>;
}

/**
 * One JSONL record. Train records carry loss/lr/gradNorm; eval records carry valLoss/valPerplexity.
 *
 * @category Training
 */
export interface MetricsRecord {
  /** Train records summarise the last log interval; eval records one validation pass. */
  kind: "train" | "eval";
  /** Optimiser steps completed when the record was made. */
  step: number;
  /** Seconds since this process started training. */
  elapsed: number;
  /** Mean training cross-entropy over the steps since the previous train record. */
  loss?: number;
  /** Mean training objective (cross-entropy + weighted aux terms), when some aux term has a weight. */
  objective?: number;
  /** Mean of each auxiliary loss term (train: over the window; eval: over the validation batches). */
  terms?: Record<string, number>;
  /** Mean of each component metric (e.g. `blocks.7.attn.R`), never part of the loss. */
  metrics?: Record<string, number>;
  /** Learning rate of the last step. */
  lr?: number;
  /** Global gradient norm of the last step, before clipping. */
  gradNorm?: number;
  /** Training tokens seen so far. */
  tokens?: number;
  /** Training throughput since the previous train record. */
  tokensPerSec?: number;
  /** Validation loss. */
  valLoss?: number;
  /** Validation perplexity. */
  valPerplexity?: number;
  /** Validation tokens scored. */
  valTokens?: number;
}

/**
 * What the trainer needs beyond the settings.
 *
 * @category Training
 */
export interface TrainerInit {
  /** The model to train (its `parameters()` are updated in place). */
  model: CausalLM;
  /** Loop settings. */
  settings: TrainerSettings;
  /** Training token ids (in memory, or read by window from a large file). */
  train: TokenArray | TokenWindows;
  /** Validation token ids. */
  val: TokenArray;
  /** Run folder: `log.jsonl` and `checkpoints/` go here. Without it nothing is written. */
  outDir?: string;
  /** Extra fields stored in every checkpoint's state.json (the config, tokenizer, model config). */
  stateExtras?: Record<string, unknown>;
  /** Extra files stored in every checkpoint (e.g. `tokenizer.json`). */
  extraFiles?: Map<string, Uint8Array>;
  /** Called for every metrics record (progress bars, live plots, tests). */
  onMetrics?: (record: MetricsRecord) => void;
  /** Print a line per log interval and evaluation to the terminal (default true). */
  print?: boolean;
}

/**
 * How a run ended.
 *
 * @category Training
 */
export interface RunResult {
  /** Optimiser steps completed in total. */
  step: number;
  /** "completed" when the step target was reached, "stopped" after a stop request. */
  reason: "completed" | "stopped";
  /** The last evaluation, if any ran. */
  lastEval?: EvalSummary;
  /** The checkpoint written at the end, if an output folder was given. */
  checkpoint?: string;
}

/**
 * What one optimiser step measured (all means over its micro-batches).
 *
 * @category Training
 */
export interface StepResult {
  /** Cross-entropy. */
  loss: number;
  /** The minimised objective: cross-entropy + Σ weight × aux term. */
  objective: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** The learning rate used. */
  lr: number;
  /** Each aux loss term the components reported. */
  terms: Record<string, number>;
  /** Each component metric. */
  metrics: Record<string, number>;
}

/** The named scalars in the order of `names`; a name missing in a later forward is an error. */
function pick(values: Record<string, Tensor> | undefined, names: string[], what: string): Tensor[] {
  return names.map((n) => {
    const v = values?.[n];
    if (!v) throw new Error(`trainer: ${what} '${n}' was reported by one forward but not by the next`);
    return v;
  });
}

/** ", objective 2.1, coherence 0.3, blocks.1.attn.R 0.88" for the terminal line. */
function formatExtras(r: MetricsRecord): string {
  const parts: string[] = [];
  if (r.objective !== undefined) parts.push(`objective ${r.objective.toFixed(4)}`);
  for (const [k, v] of Object.entries(r.terms ?? {})) parts.push(`${k} ${v.toPrecision(4)}`);
  for (const [k, v] of Object.entries(r.metrics ?? {})) parts.push(`${k} ${v.toPrecision(4)}`);
  return parts.length ? ", " + parts.join(", ") : "";
}

/**
 * Thrown when the loss or the gradient norm stops being finite; the weights are left before the bad step.
 *
 * @category Training
 */
export class TrainingDivergedError extends Error {
  /** The step whose loss was not finite. */
  readonly step: number;
  /** An error for `step` with a message naming the fix. */
  constructor(step: number, message: string) {
    super(message);
    this.name = "TrainingDivergedError";
    this.step = step;
  }
}

/**
 * Dropout seed of one micro-batch: a pure function of the run seed and the position in the run.
 *
 * @category Training
 */
export function dropoutSeedFor(seed: number, step: number, micro: number, gradAccum: number): number {
  return ((seed >>> 0) * 1_000_003 + step * gradAccum + micro) % 2147483647;
}

/**
 * Trains a {@linkcode CausalLM} on token arrays.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Trainer } from "./trainer.ts";
 * import { createDecoder, gpt2NewConfig } from "../models/scratch.ts";
 * import { initBackend } from "../backend/backend.ts";
 * await initBackend({ backend: "cpu" });
 * const model = createDecoder(gpt2NewConfig({ vocabSize: 16, dModel: 16, nLayers: 1, nHeads: 2, maxPositions: 8 }), { seed: 1 });
 * const ids = Uint16Array.from({ length: 400 }, (_, i) => (i * 5) % 16);
 * const trainer = new Trainer({
 *   model, train: ids, val: ids, print: false,
 *   settings: {
 *     batchSize: 4, blockSize: 8, gradAccum: 1, gradClip: 1, seed: 1,
 *     optimizer: { beta1: 0.9, beta2: 0.95, eps: 1e-8, groups: [{ weightDecay: 0 }] },
 *     schedule: { kind: "constant", lr: 1e-2 }, evalInterval: 0, evalBatches: 2, evalBatchSize: 4,
 *     perplexity: "token_mean", logInterval: 10, checkpointInterval: 0, keepLast: 1,
 *   },
 * });
 * const result = await trainer.run(5);
 * assert.equal(result.step, 5);
 * trainer.dispose();
 * model.dispose();
 * ```
 *
 * @category Training
 */
export class Trainer {
  /** The model being trained. */
  readonly model: CausalLM;
  /** Loop settings. */
  readonly settings: TrainerSettings;
  /** The optimiser (its moments are checkpointed). */
  readonly optimizer: AdamW;
  /** The training batch sampler (its position is checkpointed). */
  readonly sampler: BatchSampler;
  /** Run folder, when writing logs and checkpoints. */
  readonly outDir?: string;
  #val: TokenArray;
  #step = 0;
  #stopRequested = false;
  #lastCheckpoint?: string;
  #lastEval?: EvalSummary;
  #init: TrainerInit;
  #vars: Variable[];
  #names: string[];

  /** Checks the settings against the model and data and prepares the optimiser and sampler. */
  constructor(init: TrainerInit) {
    const s = init.settings;
    this.#init = init;
    this.model = init.model;
    this.settings = s;
    this.outDir = init.outDir;
    const max = init.model.config.maxPositions;
    if (s.blockSize > max) {
      throw new Error(
        `blockSize ${s.blockSize} exceeds the model's maxPositions ${max}: lower blockSize or raise maxPositions`,
      );
    }
    const params = init.model.parameters();
    this.#names = [...params.keys()];
    this.#vars = [...params.values()];
    this.optimizer = new AdamW(params, s.optimizer);
    this.sampler = new BatchSampler(init.train, {
      batchSize: s.batchSize,
      blockSize: s.blockSize,
      seed: s.seed,
    });
    // Fail before training when the val split cannot hold one evaluation window.
    sequentialBatches(init.val, s.evalBatchSize, s.blockSize, 1);
    this.#val = init.val;
  }

  /** Optimiser steps completed. */
  get step(): number {
    return this.#step;
  }

  /** The newest checkpoint folder written or restored. */
  get lastCheckpoint(): string | undefined {
    return this.#lastCheckpoint;
  }

  /** Asks the loop to stop after the current step; it saves a checkpoint first (when it has an outDir). */
  requestStop(): void {
    this.#stopRequested = true;
  }

  /**
   * One optimiser step: `gradAccum` micro-batches, clipping, AdamW. Returns the mean micro-batch loss
   * and the gradient norm (before clipping). Throws {@linkcode TrainingDivergedError}, without updating
   * the weights, when either is not finite.
   */
  async trainStep(): Promise<StepResult> {
    try {
      return await this.#trainStep();
    } catch (e) {
      throw explainWasmHeapError(e, `training step ${this.#step}`);
    }
  }

  async #trainStep(): Promise<StepResult> {
    const s = this.settings;
    const weights = s.lossTerms ?? {};
    const step = this.#step;
    let acc: Tensor[] | undefined;
    let lossSum: Tensor = tf.scalar(0);
    // Cross-entropy, then every aux term and metric (names fixed by the first micro-batch), summed on the
    // device so the step still reads back once.
    let names: { terms: string[]; metrics: string[] } | undefined;
    let extraSum: Tensor | undefined;
    for (let micro = 0; micro < s.gradAccum; micro++) {
      const { x, y } = this.sampler.nextTensors();
      const dropoutSeed = dropoutSeedFor(s.seed, step, micro, s.gradAccum);
      let extras: Tensor | undefined;
      const { value, grads } = tf.variableGrads(() => {
        const out = this.model.forward(x, { training: true, dropoutSeed, targets: y });
        // A component that scores the targets itself (reFlow's chunked head) spares the [B, T, V] logits.
        const ce = out.loss ?? crossEntropy(out.logits, y);
        names ??= {
          terms: Object.keys(out.aux ?? {}).sort(),
          metrics: Object.keys(out.metrics ?? {}).sort(),
        };
        const parts = [
          ce,
          ...pick(out.aux, names.terms, "aux loss term"),
          ...pick(out.metrics, names.metrics, "metric"),
        ];
        extras = tf.keep(tf.stack(parts.map((p) => tf.cast(p, "float32"))));
        let total: Tensor = ce;
        for (const name of names.terms) {
          const w = weights[name];
          if (w) total = tf.add(total, tf.mul(out.aux![name], w));
        }
        return tf.div(total, s.gradAccum) as tf.Scalar;
      }, this.#vars);
      tf.dispose([x, y]);
      const g = this.#vars.map((v) => grads[v.name]);
      if (!acc) acc = g;
      else {
        const prev = acc;
        acc = tf.tidy(() => prev.map((a, i) => a.add(g[i])));
        tf.dispose(prev);
        tf.dispose(g);
      }
      const prevLoss = lossSum;
      lossSum = tf.tidy(() => prevLoss.add(value));
      tf.dispose([prevLoss, value]);
      const prevExtra = extraSum;
      extraSum = prevExtra ? tf.tidy(() => prevExtra.add(extras!)) : extras;
      if (prevExtra) tf.dispose([prevExtra, extras!]);
    }
    const gradMap = new Map(this.#names.map((n, i) => [n, acc![i]]));
    let applied = gradMap;
    let norm: Tensor;
    if (s.gradClip > 0) {
      const clipped = clipByGlobalNorm(gradMap, s.gradClip);
      applied = clipped.grads;
      norm = clipped.norm;
      tf.dispose(acc!);
    } else {
      norm = tf.tidy(() => tf.sqrt(tf.addN(acc!.map((a) => a.square().sum()))) as Tensor);
    }
    // One small packed readback per step: [objective, gradNorm, cross-entropy, terms..., metrics...].
    const packed = tf.tidy(() => tf.concat([tf.stack([lossSum, norm]), tf.div(extraSum!, s.gradAccum)]));
    const values = await packed.data();
    tf.dispose([packed, lossSum, norm, extraSum!]);
    const [objective, gradNorm] = values;
    // Without weighted terms the objective is the cross-entropy, summed exactly as before terms existed.
    const loss = Object.values(weights).some((w) => w) ? values[2] : objective;
    const terms: Record<string, number> = {}, metrics: Record<string, number> = {};
    names!.terms.forEach((n, i) => terms[n] = values[3 + i]);
    names!.metrics.forEach((n, i) => metrics[n] = values[3 + names!.terms.length + i]);
    if (!Number.isFinite(objective) || !Number.isFinite(gradNorm)) {
      tf.dispose([...applied.values()]);
      const kept = this.#lastCheckpoint
        ? `the last good checkpoint is kept at ${this.#lastCheckpoint}`
        : "no checkpoint had been saved yet";
      throw new TrainingDivergedError(
        step,
        `training diverged at step ${step}: loss ${objective}, gradient norm ${gradNorm} (weights left as before ` +
          `this step; ${kept}). Lower the learning rate, lengthen the warm-up, or turn on gradient clipping, then resume.`,
      );
    }
    const lr = learningRate(s.schedule, step);
    this.optimizer.step(applied, lr);
    tf.dispose([...applied.values()]);
    this.#step++;
    return { loss, objective, gradNorm, lr, terms, metrics };
  }

  /** Scores the validation split (dropout off) under the configured perplexity definition. */
  async evaluate(): Promise<EvalSummary> {
    try {
      return await this.#evaluate();
    } catch (e) {
      throw explainWasmHeapError(e, `evaluation at step ${this.#step}`);
    }
  }

  async #evaluate(): Promise<EvalSummary> {
    const s = this.settings;
    const batches = sequentialBatches(this.#val, s.evalBatchSize, s.blockSize, s.evalBatches);
    const rows: Tensor[] = [];
    let names: { terms: string[]; metrics: string[] } | undefined;
    for (const b of batches) {
      rows.push(tf.tidy(() => {
        const x = tf.tensor2d(b.x, [b.batchSize, b.blockSize], "int32");
        const y = tf.tensor2d(b.y, [b.batchSize, b.blockSize], "int32");
        const out = this.model.forward(x, { targets: y });
        names ??= {
          terms: Object.keys(out.aux ?? {}).sort(),
          metrics: Object.keys(out.metrics ?? {}).sort(),
        };
        const parts = [
          out.loss ?? crossEntropy(out.logits, y),
          ...pick(out.aux, names.terms, "aux loss term"),
          ...pick(out.metrics, names.metrics, "metric"),
        ];
        return tf.stack(parts.map((p) => tf.cast(p, "float32")));
      }));
    }
    // One readback for the whole evaluation: [batches, 1 + terms + metrics].
    const packed = tf.stack(rows);
    const flat = await packed.data();
    tf.dispose([packed, ...rows]);
    const width = 1 + (names?.terms.length ?? 0) + (names?.metrics.length ?? 0);
    const n = batches.length;
    const values = Array.from({ length: n }, (_, i) => flat[i * width]);
    const summary: EvalSummary = summariseEval(
      values,
      batches.map((b) => b.batchSize * b.blockSize),
      s.perplexity,
    );
    const mean = (j: number) => {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += flat[i * width + j];
      return sum / n;
    };
    if (names?.terms.length) summary.terms = Object.fromEntries(names.terms.map((k, i) => [k, mean(1 + i)]));
    if (names?.metrics.length) {
      summary.metrics = Object.fromEntries(
        names.metrics.map((k, i) => [k, mean(1 + names!.terms.length + i)]),
      );
    }
    this.#lastEval = summary;
    return summary;
  }

  /** The JSON state stored in a checkpoint. */
  checkpointState(): CheckpointState {
    return {
      ...this.#init.stateExtras,
      format: "coherence-lab/checkpoint@1",
      step: this.#step,
      settings: this.settings,
      modelConfig: this.model.config,
      schedule: { ...this.settings.schedule, nextLr: learningRate(this.settings.schedule, this.#step) },
      sampler: this.sampler.getState(),
      rng: {
        sampler: this.sampler.getState().prng,
        dropout: { seed: this.settings.seed, derivation: "dropoutSeedFor" },
      },
      optimizerStep: this.optimizer.stepCount,
      lastEval: this.#lastEval ?? null,
      savedAt: new Date().toISOString(),
    };
  }

  /** Saves a checkpoint under `<outDir>/checkpoints`; returns its folder. */
  async save(): Promise<string> {
    if (!this.outDir) throw new Error("Trainer.save: this trainer has no outDir");
    const dir = await saveCheckpoint(`${this.outDir}/checkpoints`, {
      weights: this.model.parameters(),
      optimizer: this.optimizer.state().moments,
      state: this.checkpointState(),
      extraFiles: this.#init.extraFiles,
    }, { keepLast: this.settings.keepLast });
    this.#lastCheckpoint = dir;
    return dir;
  }

  /**
   * Restores weights, optimiser moments, step and sampler position from a checkpoint made with the same
   * model config; throws naming the difference otherwise.
   */
  restore(ckpt: LoadedCheckpoint): void {
    const saved = ckpt.state.modelConfig as DecoderConfig | undefined;
    if (saved) {
      const diffs = Object.keys({ ...saved, ...this.model.config }).filter((k) =>
        JSON.stringify((saved as unknown as Record<string, unknown>)[k]) !==
          JSON.stringify((this.model.config as unknown as Record<string, unknown>)[k])
      );
      if (diffs.length) {
        throw new Error(
          `checkpoint ${ckpt.dir} was made with another model config (differs in ${diffs.join(", ")}): ` +
            `resume with the config it was trained with, or start a new --out folder`,
        );
      }
    }
    assignWeights(this.model, ckpt.weights, `checkpoint ${ckpt.dir}`);
    const moments = new Map<string, Tensor>();
    for (const [k, t] of ckpt.optimizer) {
      moments.set(k, tf.tensor(t.data as Float32Array, t.shape, "float32"));
    }
    try {
      this.optimizer.loadState({ step: (ckpt.state.optimizerStep as number) ?? ckpt.state.step, moments });
    } finally {
      tf.dispose([...moments.values()]);
    }
    this.sampler.setState(ckpt.state.sampler as BatchSamplerState);
    this.#step = ckpt.state.step;
    this.#lastEval = (ckpt.state.lastEval as EvalSummary | null) ?? undefined;
    this.#lastCheckpoint = ckpt.dir;
  }

  /** Where this run() started and where it ends, for the progress line's step k / total and ETA. */
  #runProgress?: { total: number; fromStep: number; t0: number };

  #progressText(step: number): string {
    const p = this.#runProgress;
    if (!p) return `step ${step}`;
    const done = step - p.fromStep;
    const secs = (performance.now() - p.t0) / 1000;
    const eta = done > 0 && step < p.total
      ? `, ETA ${formatProgressDuration((secs / done) * (p.total - step))}`
      : "";
    return `step ${step}/${p.total} (${((100 * step) / p.total).toFixed(0)}%)${eta}`;
  }

  async #emit(record: MetricsRecord, toLog = true): Promise<void> {
    if (toLog) {
      if (this.outDir) await appendJsonl(`${this.outDir}/log.jsonl`, record);
      this.#init.onMetrics?.(record);
    }
    if (this.#init.print ?? true) {
      const extra = formatExtras(record);
      if (record.kind === "train") {
        console.log(
          `${this.#progressText(record.step)}: loss ${record.loss!.toFixed(4)}, lr ${
            record.lr!.toExponential(2)
          }, grad norm ${record.gradNorm!.toFixed(3)}, ${Math.round(record.tokensPerSec!)} tok/s${extra}`,
        );
      } else {
        console.log(
          `step ${record.step}: val loss ${record.valLoss!.toFixed(4)}, val perplexity ${
            record.valPerplexity!.toFixed(3)
          }${extra}`,
        );
      }
    }
  }

  /**
   * Runs until `totalSteps` optimiser steps are done in total (counting steps restored from a checkpoint)
   * or a stop is requested. Evaluates and checkpoints on the configured intervals and at the end.
   */
  async run(totalSteps: number): Promise<RunResult> {
    const s = this.settings;
    const t0 = performance.now();
    let windowStart = performance.now();
    let windowLoss = 0, windowObjective = 0, windowSteps = 0, windowTokens = 0;
    let windowExtra: Record<string, number> = {};
    const tokensPerStep = s.batchSize * s.blockSize * s.gradAccum;
    const elapsed = () => (performance.now() - t0) / 1000;
    let reason: RunResult["reason"] = "completed";
    this.#runProgress = { total: totalSteps, fromStep: this.#step, t0 };
    while (this.#step < totalSteps) {
      if (this.#stopRequested) {
        reason = "stopped";
        break;
      }
      const { loss, objective, gradNorm, lr, terms, metrics } = await this.trainStep();
      windowLoss += loss;
      windowObjective += objective;
      for (const [k, v] of Object.entries(terms)) windowExtra["t:" + k] = (windowExtra["t:" + k] ?? 0) + v;
      for (const [k, v] of Object.entries(metrics)) windowExtra["m:" + k] = (windowExtra["m:" + k] ?? 0) + v;
      windowSteps++;
      windowTokens += tokensPerStep;
      const step = this.#step;
      // The first step of a run is printed (not logged) whatever the interval, so tokens/s and the ETA show
      // up at once rather than after logInterval steps.
      const firstOfRun = step === this.#runProgress.fromStep + 1;
      if (firstOfRun && !(step % s.logInterval === 0 || step === totalSteps) && (this.#init.print ?? true)) {
        const secs = (performance.now() - windowStart) / 1000;
        await this.#emit({
          kind: "train",
          step,
          elapsed: elapsed(),
          loss,
          lr,
          gradNorm,
          tokens: step * tokensPerStep,
          tokensPerSec: windowTokens / Math.max(secs, 1e-9),
        }, false);
      }
      if (step % s.logInterval === 0 || step === totalSteps) {
        const secs = (performance.now() - windowStart) / 1000;
        const record: MetricsRecord = {
          kind: "train",
          step,
          elapsed: elapsed(),
          loss: windowLoss / windowSteps,
          lr,
          gradNorm,
          tokens: step * tokensPerStep,
          tokensPerSec: windowTokens / Math.max(secs, 1e-9),
        };
        if (Object.values(s.lossTerms ?? {}).some((w) => w)) record.objective = windowObjective / windowSteps;
        const extra = Object.entries(windowExtra);
        const termsMean = extra.filter(([k]) => k.startsWith("t:")).map((
          [k, v],
        ) => [k.slice(2), v / windowSteps]);
        const metricsMean = extra.filter(([k]) => k.startsWith("m:")).map((
          [k, v],
        ) => [k.slice(2), v / windowSteps]);
        if (termsMean.length) record.terms = Object.fromEntries(termsMean);
        if (metricsMean.length) record.metrics = Object.fromEntries(metricsMean);
        await this.#emit(record);
        windowStart = performance.now();
        windowLoss =
          windowObjective =
          windowSteps =
          windowTokens =
            0;
        windowExtra = {};
      }
      if ((s.evalInterval > 0 && step % s.evalInterval === 0) || step === totalSteps) {
        const ev = await this.evaluate();
        const record: MetricsRecord = {
          kind: "eval",
          step,
          elapsed: elapsed(),
          valLoss: ev.loss,
          valPerplexity: ev.perplexity,
          valTokens: ev.tokens,
        };
        if (ev.terms) record.terms = ev.terms;
        if (ev.metrics) record.metrics = ev.metrics;
        await this.#emit(record);
      }
      if (
        this.outDir && s.checkpointInterval > 0 && step % s.checkpointInterval === 0 && step !== totalSteps
      ) {
        await this.save();
      }
    }
    let checkpoint: string | undefined;
    if (
      this.outDir &&
      (this.#lastCheckpoint === undefined ||
        !this.#lastCheckpoint.endsWith(String(this.#step).padStart(8, "0")))
    ) {
      checkpoint = await this.save();
    } else checkpoint = this.#lastCheckpoint;
    return { step: this.#step, reason, lastEval: this.#lastEval, checkpoint };
  }

  /** Frees the optimiser moments (the model stays with its owner). */
  dispose(): void {
    this.optimizer.dispose();
  }
}
