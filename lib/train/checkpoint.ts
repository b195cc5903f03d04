/**
 * Training checkpoints: one folder per save with `model.safetensors` (weights), `optimizer.safetensors`
 * (AdamW moments) and `state.json` (configs, step, schedule, sampler position, RNG states, metrics), plus
 * a `latest` pointer file beside them.
 *
 * Saving is atomic at two levels: the folder is filled under a temporary name and renamed into place,
 * and only then is `latest` rewritten (itself atomically). A crash or a full disk at any moment leaves
 * the previous checkpoint and the pointer to it intact.
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Tensor, Variable } from "../tensor_types.ts";
import { writeJsonAtomic, writeTextAtomic } from "../io/atomic.ts";
import { type LoadedTensor, readSafetensors, writeSafetensors } from "../io/safetensors.ts";
import type { CausalLM } from "../models/types.ts";
import { cleanStaleTempDirs, writeDirAtomic } from "../io/atomic_dir.ts";

/**
 * File names inside a checkpoint folder.
 *
 * @category Training
 */
export const CHECKPOINT_FILES = {
  model: "model.safetensors",
  optimizer: "optimizer.safetensors",
  state: "state.json",
} as const;

/**
 * The pointer file naming the newest complete checkpoint folder.
 *
 * @category Training
 */
export const LATEST_POINTER = "latest";

/**
 * What `state.json` holds. Extra fields written by callers are kept as they are.
 *
 * @category Training
 */
export interface CheckpointState {
  /** Format tag, checked on load. */
  format: "coherence-lab/checkpoint@1";
  /** Optimiser steps completed. */
  step: number;
  /** Further fields: configs, sampler position, RNG states, metrics. */
  [key: string]: unknown;
}

/**
 * The tensors and state to save.
 *
 * @category Training
 */
export interface CheckpointContents {
  /** Model parameters by canonical name. */
  weights: Map<string, Tensor>;
  /** Optimiser tensors (`m.<name>`, `v.<name>`). */
  optimizer: Map<string, Tensor>;
  /** The JSON state (`state.json`). */
  state: CheckpointState;
  /** Extra files copied into the folder (name -> bytes), e.g. `tokenizer.json`. */
  extraFiles?: Map<string, Uint8Array>;
}

/**
 * Options of {@linkcode saveCheckpoint}.
 *
 * @category Training
 */
export interface SaveCheckpointOptions {
  /** Keep this many newest checkpoint folders and delete older ones (default 2; 0 keeps all). */
  keepLast?: number;
  /** Fault injection for tests: called with the temporary folder right before it is committed. */
  beforeCommit?(tempDir: string): void | Promise<void>;
  /** Fault injection for tests: called before each tensor file is written, with its path. */
  beforeTensorFile?(path: string): void | Promise<void>;
}

/**
 * Options of {@linkcode loadCheckpoint}.
 *
 * @category Training
 */
export interface LoadCheckpointOptions {
  /** Read `optimizer.safetensors` too (default true). False for inference-only folders such as the demo model. */
  optimizer?: boolean;
  /**
   * When the checkpoint `latest` names is unusable (corrupt, non-finite weights, invalid state), load the
   * newest good older one instead of failing (the CLI's `--resume-good`); `onFallback` hears about it.
   */
  fallbackToGood?: boolean;
  /** Require both AdamW moments of every weight, as an exact training resume does (default false). */
  requireMoments?: boolean;
  /** Told which checkpoint was skipped and why when `fallbackToGood` takes an older one. */
  onFallback?: (skipped: string, reason: string, used: string) => void;
}

/**
 * A loaded checkpoint.
 *
 * @category Training
 */
export interface LoadedCheckpoint {
  /** The checkpoint folder. */
  dir: string;
  /** The JSON state (`state.json`). */
  state: CheckpointState;
  /** Model weights by parameter name. */
  weights: Map<string, LoadedTensor>;
  /** Optimiser moments by `m.<name>` / `v.<name>` (empty when not loaded). */
  optimizer: Map<string, LoadedTensor>;
}

/**
 * The folder name of the checkpoint at `step` (zero-padded so names sort by step).
 *
 * @category Training
 * @internal Used inside the library; not part of the stable API.
 */
export function checkpointName(step: number): string {
  return `step-${String(step).padStart(8, "0")}`;
}

async function tensorsToInputs(tensors: Map<string, Tensor>) {
  const out = new Map<string, { dtype: "F32" | "I32"; shape: number[]; data: Float32Array | Int32Array }>();
  for (const [name, t] of tensors) {
    const data = await t.data();
    out.set(name, {
      dtype: t.dtype === "int32" ? "I32" : "F32",
      shape: t.shape,
      data: data as Float32Array | Int32Array,
    });
  }
  return out;
}

/**
 * Saves a checkpoint as `<checkpointsDir>/step-XXXXXXXX/` and points `<checkpointsDir>/latest` at it.
 * Returns the folder written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
 * import { initBackend } from "../backend/backend.ts";
 * await initBackend({ backend: "cpu" });
 * const dir = await Deno.makeTempDir();
 * await saveCheckpoint(dir, {
 *   weights: new Map([["w", tf.tensor1d([1, 2])]]),
 *   optimizer: new Map(),
 *   state: { format: "coherence-lab/checkpoint@1", step: 5 },
 * });
 * assert.equal((await loadCheckpoint(dir)).state.step, 5);
 * ```
 *
 * @category Training
 */
export async function saveCheckpoint(
  checkpointsDir: string,
  contents: CheckpointContents,
  options: SaveCheckpointOptions = {},
): Promise<string> {
  // Read everything back before touching the disk, so a device error cannot leave a half-written folder.
  const weights = await tensorsToInputs(contents.weights);
  const optimizer = await tensorsToInputs(contents.optimizer);
  const name = checkpointName(contents.state.step);
  const target = `${checkpointsDir}/${name}`;
  await cleanStaleTempDirs(checkpointsDir);
  await writeDirAtomic(target, async (tmp) => {
    await options.beforeTensorFile?.(`${tmp}/${CHECKPOINT_FILES.model}`);
    await writeSafetensors(`${tmp}/${CHECKPOINT_FILES.model}`, weights, { format: "coherence-lab" });
    await options.beforeTensorFile?.(`${tmp}/${CHECKPOINT_FILES.optimizer}`);
    await writeSafetensors(`${tmp}/${CHECKPOINT_FILES.optimizer}`, optimizer, { format: "coherence-lab" });
    for (const [file, bytes] of contents.extraFiles ?? []) await Deno.writeFile(`${tmp}/${file}`, bytes);
    await writeJsonAtomic(`${tmp}/${CHECKPOINT_FILES.state}`, contents.state);
  }, { beforeCommit: (tmp) => options.beforeCommit?.(tmp) });
  await writeTextAtomic(`${checkpointsDir}/${LATEST_POINTER}`, `${name}\n`);
  const keep = options.keepLast ?? 2;
  // A checkpoint with NaN/Inf weights is not "good": while it is the newest, delete nothing, so the
  // newest good checkpoint always survives.
  const good = [...weights.values()].every((t) => t.data.every(Number.isFinite));
  if (keep > 0 && good) {
    const names = (await listCheckpoints(checkpointsDir)).filter((n) => n !== name);
    for (const old of names.slice(0, Math.max(0, names.length - (keep - 1)))) {
      await Deno.remove(`${checkpointsDir}/${old}`, { recursive: true });
    }
  }
  return target;
}

/**
 * Complete checkpoint folder names in `checkpointsDir`, oldest first.
 *
 * @category Training
 */
export async function listCheckpoints(checkpointsDir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(checkpointsDir)) {
      if (e.isDirectory && /^step-\d+$/.test(e.name)) names.push(e.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return names.sort();
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Finds the checkpoint folder meant by `path`: a checkpoint folder itself (holds `state.json`), a folder
 * of checkpoints (holds `latest`), or a training run folder (holds `checkpoints/latest`). Throws naming
 * what is missing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveCheckpointDir } from "./checkpoint.ts";
 * await assert.rejects(resolveCheckpointDir("/nonexistent"), /checkpoint folder '\/nonexistent' does not exist/);
 * ```
 *
 * @category Training
 */
export async function resolveCheckpointDir(path: string): Promise<string> {
  const p = path.replace(/\/+$/, "");
  if (!(await exists(p))) {
    // A bare Hub id (gpt2, org/name) is the likeliest slip: say how such a model is opened.
    const hub = /^[\w-]+(\/[\w.-]+)?$/.test(p) && !p.startsWith(".")
      ? ` (a Hub model? use hf:${p} where a model source is taken, e.g. deno task demo --model hf:${p})`
      : "";
    throw new Error(
      `checkpoint folder '${p}' does not exist: give a training output folder or a checkpoint folder${hub}`,
    );
  }
  if (await exists(`${p}/${CHECKPOINT_FILES.state}`)) return p;
  for (const dir of [p, `${p}/checkpoints`]) {
    const pointer = `${dir}/${LATEST_POINTER}`;
    if (await exists(pointer)) {
      const name = (await Deno.readTextFile(pointer)).trim();
      if (!/^step-\d+$/.test(name)) {
        throw new Error(
          `checkpoint pointer '${pointer}' is corrupt ('${name}'): point it at a step-XXXXXXXX folder`,
        );
      }
      const target = `${dir}/${name}`;
      if (!(await exists(target))) {
        throw new Error(`checkpoint pointer '${pointer}' names '${name}', which is missing`);
      }
      return target;
    }
  }
  for (const dir of [p, `${p}/checkpoints`]) {
    const steps = await listCheckpoints(dir);
    if (steps.length > 0) {
      throw new MissingLatestError(
        `'${dir}' has checkpoint folders (${steps.join(", ")}) but no '${LATEST_POINTER}' file naming the ` +
          `newest complete one (it was deleted, or a save was interrupted before writing it). Resume from the ` +
          `newest good one with --resume-good, or write a folder name (e.g. ${steps.at(-1)}) into ` +
          `${dir}/${LATEST_POINTER}`,
        dir,
      );
    }
  }
  throw new Error(
    `'${p}' holds no checkpoint: expected ${CHECKPOINT_FILES.state}, ${LATEST_POINTER} or checkpoints/${LATEST_POINTER} ` +
      `(train first with deno task train --out ${p})`,
  );
}

/** `latest` is missing while step folders exist (the message names them). */
class MissingLatestError extends Error {
  constructor(message: string, readonly checkpointsDir: string) {
    super(message);
  }
}

/**
 * A checkpoint that reads but must not be used; the message is in the user's terms.
 *
 * @category Training
 */
export class BadCheckpointError extends Error {
  /** The checkpoint folder. */
  readonly dir: string;
  /** An error with `message` about the checkpoint folder `dir`. */
  constructor(message: string, dir: string) {
    super(message);
    this.name = "BadCheckpointError";
    this.dir = dir;
  }
}

/**
 * Checks a loaded checkpoint as a whole before any of it is used: state.json's fields have the right
 * types and ranges (and `step` matches the folder name), every weight is finite, and every weight has
 * both AdamW moments (`m.<name>`, `v.<name>`) with its shape with `requireMoments`. Throws a
 * {@linkcode BadCheckpointError} naming the file and field.
 *
 * @category Training
 */
export function validateCheckpoint(
  ckpt: LoadedCheckpoint,
  options: { optimizer?: boolean; requireMoments?: boolean } = {},
): void {
  const fail = (file: string, what: string) => {
    throw new BadCheckpointError(`checkpoint file '${ckpt.dir}/${file}' ${what}`, ckpt.dir);
  };
  const st = ckpt.state as Record<string, unknown>;
  const whole = (key: string, v: unknown) => {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      fail(CHECKPOINT_FILES.state, `has "${key}": ${JSON.stringify(v)}; it must be a whole number >= 0`);
    }
  };
  whole("step", st.step);
  const folderStep = ckpt.dir.match(/step-(\d+)$/);
  if (folderStep && Number(folderStep[1]) !== st.step) {
    fail(
      CHECKPOINT_FILES.state,
      `says "step": ${st.step} but the folder is ${folderStep[0]}; the state does not belong to this folder`,
    );
  }
  if (st.optimizerStep !== undefined) {
    whole("optimizerStep", st.optimizerStep);
    if ((st.optimizerStep as number) > (st.step as number)) {
      fail(CHECKPOINT_FILES.state, `has "optimizerStep": ${st.optimizerStep}, more than "step": ${st.step}`);
    }
  }
  for (const key of ["sampler", "settings", "modelConfig"]) {
    const v = st[key];
    if (v !== undefined && (v === null || typeof v !== "object" || Array.isArray(v))) {
      fail(CHECKPOINT_FILES.state, `has "${key}": ${JSON.stringify(v)}; it must be an object`);
    }
  }
  if (ckpt.weights.size === 0) fail(CHECKPOINT_FILES.model, "holds no weights");
  for (const [name, t] of ckpt.weights) {
    if (!(t.data instanceof Float32Array || t.data instanceof Float64Array)) continue;
    const bad = t.data.findIndex((x: number) => !Number.isFinite(x));
    if (bad >= 0) {
      fail(
        CHECKPOINT_FILES.model,
        `has a non-finite value (${t.data[bad]}) in weight "${name}" at index ${bad}: training diverged ` +
          `before this save, so it is not a good checkpoint`,
      );
    }
  }
  if (options.optimizer !== false && options.requireMoments) {
    const missing: string[] = [];
    for (const [name, t] of ckpt.weights) {
      for (const k of [`m.${name}`, `v.${name}`]) {
        const mo = ckpt.optimizer.get(k);
        if (!mo) missing.push(`${k} (missing)`);
        else if (mo.shape.join(",") !== t.shape.join(",")) {
          missing.push(`${k} (shape [${mo.shape}], weight is [${t.shape}])`);
        }
      }
    }
    if (missing.length) {
      fail(
        CHECKPOINT_FILES.optimizer,
        `lacks AdamW moments needed for an exact resume: ${missing.slice(0, 6).join(", ")}` +
          (missing.length > 6 ? ` and ${missing.length - 6} more` : ""),
      );
    }
  }
}

/**
 * Loads a checkpoint, validating it with {@linkcode validateCheckpoint}. With `fallbackToGood`, an
 * unusable newest checkpoint is skipped for the newest good older one.
 *
 * @category Training
 */
export async function loadCheckpoint(
  path: string,
  options: LoadCheckpointOptions = {},
): Promise<LoadedCheckpoint> {
  let first: LoadedCheckpoint | undefined;
  let problem: Error;
  let checkpointsDir: string | undefined;
  let skipped = "";
  try {
    first = await loadCheckpointUnchecked(path, options);
    validateCheckpoint(first, options);
    return first;
  } catch (e) {
    problem = e as Error;
    if (e instanceof MissingLatestError) {
      checkpointsDir = e.checkpointsDir;
      skipped = `${checkpointsDir}/${LATEST_POINTER}`;
    } else {
      const dir = first?.dir ?? (e instanceof BadCheckpointError ? e.dir : undefined) ??
        await resolveCheckpointDir(path).catch(() => undefined);
      if (dir && /\/step-\d+$/.test(dir)) {
        checkpointsDir = dir.slice(0, dir.lastIndexOf("/"));
        skipped = dir;
      }
    }
  }
  if (!checkpointsDir) throw problem;
  const skippedName = skipped.slice(skipped.lastIndexOf("/") + 1);
  const names = (await listCheckpoints(checkpointsDir)).filter((n) =>
    skippedName === LATEST_POINTER || n < skippedName
  ).reverse();
  for (const name of names) {
    try {
      const c = await loadCheckpointUnchecked(`${checkpointsDir}/${name}`, options);
      validateCheckpoint(c, options);
      if (!options.fallbackToGood) {
        throw new Error(
          `${problem.message}.\nThe newest good older checkpoint is ${checkpointsDir}/${name} (step ` +
            `${c.state.step}); pass --resume-good to resume from it (steps after it are redone).`,
        );
      }
      options.onFallback?.(skipped, problem.message, c.dir);
      return c;
    } catch (e) {
      if (!options.fallbackToGood) {
        if ((e as Error).message.startsWith(problem.message)) throw e;
      }
      // not good either: try the next older one
    }
  }
  throw new Error(`${problem.message}.\nNo older good checkpoint exists in ${checkpointsDir}.`);
}

/** Reads a checkpoint without {@linkcode validateCheckpoint}. */
async function loadCheckpointUnchecked(
  path: string,
  options: LoadCheckpointOptions = {},
): Promise<LoadedCheckpoint> {
  const dir = await resolveCheckpointDir(path);
  const statePath = `${dir}/${CHECKPOINT_FILES.state}`;
  let state: CheckpointState;
  try {
    state = JSON.parse(await Deno.readTextFile(statePath));
  } catch (e) {
    const what = e instanceof Deno.errors.NotFound ? "is missing" : `is corrupt (${(e as Error).message})`;
    throw new Error(`checkpoint file '${statePath}' ${what}: use an earlier checkpoint or retrain`);
  }
  if (state?.format !== "coherence-lab/checkpoint@1" || typeof state.step !== "number") {
    throw new Error(
      `checkpoint file '${statePath}' is not a coherence-lab checkpoint state (format/step missing)`,
    );
  }
  const read = async (file: string) => {
    const p = `${dir}/${file}`;
    if (!(await exists(p))) {
      throw new Error(`checkpoint file '${p}' is missing: use an earlier checkpoint or retrain`);
    }
    try {
      return await readSafetensors(p);
    } catch (e) {
      const what = e instanceof Deno.errors.NotFound ? "is missing" : `is corrupt (${(e as Error).message})`;
      throw new Error(`checkpoint file '${p}' ${what}: use an earlier checkpoint or retrain`);
    }
  };
  const weights = await read(CHECKPOINT_FILES.model);
  const optimizer = options.optimizer === false
    ? new Map<string, LoadedTensor>()
    : await read(CHECKPOINT_FILES.optimizer);
  return { dir, state, weights, optimizer };
}

/**
 * Copies loaded weights into a model's parameters. Every parameter must be present with the same shape,
 * and the checkpoint must hold nothing else; otherwise the error lists the differences (a checkpoint from
 * another config).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { assignWeights } from "./checkpoint.ts";
 * import { initBackend } from "../backend/backend.ts";
 * await initBackend({ backend: "cpu" });
 * const w = tf.variable(tf.zeros([2]));
 * assignWeights(new Map([["w", w]]), new Map([["w", { name: "w", dtype: "F32", shape: [2], data: new Float32Array([1, 2]) }]]));
 * assert.deepEqual(Array.from(w.dataSync()), [1, 2]);
 * ```
 *
 * @category Training
 */
export function assignWeights(
  params: Map<string, Variable> | CausalLM,
  weights: Map<string, LoadedTensor>,
  where = "checkpoint",
): void {
  const vars = params instanceof Map ? params : params.parameters();
  const problems: string[] = [];
  for (const [name, v] of vars) {
    const w = weights.get(name);
    if (!w) problems.push(`missing '${name}'`);
    else if (w.shape.join(",") !== v.shape.join(",")) {
      problems.push(`'${name}' is [${w.shape}], model wants [${v.shape}]`);
    }
  }
  for (const name of weights.keys()) if (!vars.has(name)) problems.push(`unexpected '${name}'`);
  if (problems.length) {
    const shown = problems.slice(0, 6).join("; ") +
      (problems.length > 6 ? `; … ${problems.length - 6} more` : "");
    throw new Error(
      `${where} does not fit this model (${shown}): it comes from another config; load it with its own config`,
    );
  }
  for (const [name, v] of vars) {
    const w = weights.get(name)!;
    tf.tidy(() => v.assign(tf.tensor(w.data as Float32Array, w.shape, v.dtype)));
  }
}
