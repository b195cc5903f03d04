/**
 * The generation loop: a batched, KV-cached decode that streams one step object per forward pass, with
 * on-device sampling, cosim and probes packed into a single small readback per step, and per-row control
 * (change sampling, rewind with a new seed, stop) from callbacks.
 *
 * Step alignment (Recync spec §2): the forward of step t feeds y_{t-1} and yields h_t, whose logits
 * sample y_t; h_0 is the last prompt position of the prefill. cosim(t) = cos(h_t, h_{t-1}), NaN at t = 0.
 *
 * @example
 * ```ts
 * import { tf } from "../../mod.ts";
 * import { createDecoder, gpt2NewConfig } from "../models/scratch.ts";
 * import { generate } from "./generate.ts";
 * await tf.setBackend("cpu");
 * const model = createDecoder(gpt2NewConfig({ nLayers: 2, dModel: 32, nHeads: 4, vocabSize: 64, maxPositions: 64 }), {
 *   seed: 1,
 * });
 * const run = generate(model, [[1, 2, 3]], { maxNewTokens: 5, seed: 7, sampling: { topP: 0.9 } });
 * for await (const step of run) console.log(step.rows.map((r) => [r.token, r.cosim]));
 * console.log(run.trace.rows[0].tokens);
 * model.dispose();
 * ```
 *
 * @module
 */
import { tf } from "../deps.ts";
import { explainWasmHeapError, isWasmHeapError } from "../backend/wasm_heap.ts";
import type { Tensor, Tensor1D, Tensor2D } from "../tensor_types.ts";
import type { CausalLM, ForwardResult, Hooks, KVCacheLike } from "../models/types.ts";
import type { TextTokenizer } from "../tokenizers/types.ts";
import { Prng } from "../random/prng.ts";
import {
  SAMPLING_PARAM_KEYS,
  type SamplingParams,
  TokenSampler,
  validateSamplingParams,
} from "./sampling.ts";
import { checkOptionKeys } from "../options.ts";
import { type FinishReason, GenerationTrace } from "./trace.ts";

/**
 * What a probe's `compute` receives. Tensors are owned by the loop; the probe must not dispose them.
 *
 * @category Generation
 */
export interface ProbeContext {
  /** Forward step index (0 = the prefill). */
  step: number;
  /** True at step 0: captured activations then cover the whole (left-padded) prompt. */
  isPrefill: boolean;
  /** Activations captured in this step's forward (the names the probes listed in `capture`). */
  activations: Map<string, Tensor>;
  /** The chosen hidden source at the newest position, [B, d]. */
  hidden: Tensor2D;
  /** The previous step's hidden, [B, d]; null at step 0. */
  prevHidden: Tensor2D | null;
  /** Raw logits of the newest position, [B, V]. */
  logits: Tensor2D;
  /** Tokens chosen this step, [B] int32. */
  tokens: Tensor1D;
  /** Rows in the batch. */
  batchSize: number;
}

/**
 * A small device-side measurement appended to each step's packed readback. `compute` runs inside the
 * loop's `tf.tidy` and returns [B, width] (float32).
 *
 * @category Generation
 */
export interface GenerationProbe {
  /** Key of the values in step rows and the trace. */
  name: string;
  /** Number of values per row. */
  width: number;
  /** Hook names whose activations the forward must capture for this probe. */
  capture?: string[];
  /** Returns [B, width]. */
  compute(ctx: ProbeContext): Tensor;
}

/**
 * One row's result at one step.
 *
 * @category Generation
 */
export interface GenerationStepRow {
  /** Row index in the batch. */
  row: number;
  /** Generated index of the token (0-based, counted in the kept sequence). */
  t: number;
  /** Position id the token occupies (prompt length + t). */
  position: number;
  /** The token y_t. */
  token: number;
  /** log p(y_t) under the unmodified distribution (raw logits, temperature 1). */
  logprob: number;
  /** log q(y_t) under the distribution sampled from (after penalties, bans, temperature, top-k/p). */
  sampledLogprob: number;
  /** cos(h_t, h_{t-1}); NaN at t = 0. */
  cosim: number;
  /** Probe values by name (`width` numbers each). */
  probes: Record<string, number[]>;
  /** h_t, when `returnHidden` is set. */
  hidden?: Float32Array;
  /** True when this step re-produced index t after a rewind (cosim(t) is then the recorded value). */
  afterRewind: boolean;
  /** Whether the row has finished (after this step's callbacks). */
  finished: boolean;
  /** Why it finished. */
  finishReason?: FinishReason;
}

/**
 * One forward step: the rows that produced a token in it.
 *
 * @category Generation
 */
export interface GenerationStep {
  /** Forward step index (0 = sampled from the prefill). */
  step: number;
  /**
   * Rows that produced a token in this step (finished rows are absent, and so is a row sitting out the
   * step after a rewind when pipelining with callbacks).
   */
  rows: GenerationStepRow[];
}

/**
 * Per-row control handed to `onStep` and policies. Actions take effect from the next step on.
 *
 * @category Generation
 */
export interface GenerationControl {
  /** Rows in the batch. */
  readonly batchSize: number;
  /** Kept generated tokens of a row (a copy). */
  tokens(row: number): number[];
  /** Recorded cosims of a row (a copy). */
  cosims(row: number): number[];
  /** Whether a row has finished. */
  isFinished(row: number): boolean;
  /** Current sampling params of a row. */
  getSampling(row: number): SamplingParams;
  /** Replaces a row's sampling params from the next step on. */
  setSampling(row: number, params: SamplingParams): void;
  /**
   * Drops y_to, y_to+1, ... of a row and regenerates from index `to`, with a fresh PRNG stream from `seed`
   * when given. The row's cache is cropped and y_{to-1} (or the last prompt token) is fed again, so the
   * logits and hidden h_to are recomputed; cosim(to) keeps its recorded value.
   */
  rewind(row: number, to: number, seed?: number): void;
  /** Finishes a row now. */
  stop(row: number): void;
  /** The run's KV cache (for inspection; do not truncate it behind the loop's back). */
  readonly cache: KVCacheLike;
}

/**
 * A step callback: may inspect the step and act on rows through the control.
 *
 * @category Generation
 */
export type StepCallback = (step: GenerationStep, control: GenerationControl) => void | Promise<void>;

/**
 * A named step callback (e.g. a Recync restart policy).
 *
 * @category Generation
 */
export interface GenerationPolicy {
  /** For logs. */
  name?: string;
  /** Called after every step, in array order, after `onStep`. */
  onStep: StepCallback;
}

/**
 * Options of {@linkcode generate}.
 *
 * @category Generation
 */
export interface GenerateOptions {
  /** Generated tokens to keep per row (after rewinds, a row continues until its kept length reaches it). */
  maxNewTokens: number;
  /** Base seed: row b draws from `new Prng(seed, b)` unless `seeds` is given. Default 0. */
  seed?: number;
  /** One seed per row (row b draws from `new Prng(seeds[b])`); with one prompt, one row per seed. */
  seeds?: number[];
  /** Rows to make from a single prompt (default: seeds.length, or 1). */
  numSequences?: number;
  /** Sampling params of every row (default: plain sampling at temperature 1). */
  sampling?: SamplingParams;
  /** Per-row overrides of `sampling` (undefined entries use `sampling`). */
  rowSampling?: (SamplingParams | undefined)[];
  /** Tokens that finish a row (kept in its output): one list for all rows, or one list per row. */
  stopTokens?: number[] | number[][];
  /** Teacher forcing: row b emits forceTokens[b][t] at index t while available (then samples). */
  forceTokens?: number[][];
  /** Include h_t in each step row and the trace (costs d floats per row per readback). */
  returnHidden?: boolean;
  /** "postNorm" (default): after the final norm; "preNorm": the residual stream before it. */
  hiddenSource?: "postNorm" | "preNorm";
  /** Hooks passed to every forward. */
  hooks?: Hooks;
  /** Device-side probes appended to each step's readback. */
  probes?: GenerationProbe[];
  /** Called after every step with the step and a control. */
  onStep?: StepCallback;
  /** More step callbacks, called in order after `onStep`. */
  policies?: GenerationPolicy[];
  /** Cap on forward steps (guards against endless rewinding). Default 4 * maxNewTokens + 16. */
  maxSteps?: number;
  /**
   * Queue each next forward before the current step's readback completes. Results are identical either
   * way. Default: on without callbacks on webgpu (and other device backends), off with `onStep`/`policies`
   * and on cpu and wasm: their kernels run on the calling thread, so nothing overlaps the readback and a
   * queued forward only delays each step's delivery (measured: the first token of a 124M model's 128-token
   * prompt 226 ms pipelined, 185 ms not, on wasm). With callbacks and pipelining on,
   * callbacks see `control.cache` one column ahead, and a row rewound by a callback sits out one step
   * (its queued forward fed the dropped token), so runs with rewinds take a few more steps.
   */
  pipeline?: boolean;
  /** Id written into left padding of ragged prompts (masked out; default 0). */
  padTokenId?: number;
  /**
   * Prompt positions per prefill forward. Default: the whole prompt at once, unless its attention scores
   * (B × heads × P² floats) would pass 256 MiB, when the prompt is fed through the cache in chunks that keep
   * them near 128 MiB (the wasm heap holds 4 GiB in all). Chunks give the same cache and logits up to float
   * rounding. Hooks and captures always see one whole-prompt forward.
   */
  prefillChunk?: number;
  /** Turns ids into text for the trace's display. */
  decode?: (ids: number[]) => string;
  /**
   * A device-resident decode loop for throughput: the device samples each token and feeds it to the next
   * forward, and the host reads each step's small packed result (token, log-probabilities, cosim) `lag`
   * steps behind (default {@linkcode RESIDENT_LAG}), so no readback blocks the device: one readback per
   * step, up to `lag + 1` in flight. Same tokens as the ordinary loop for the same seeds (the host draws
   * the same uniforms; the device sampler matches the host one). Rows that hit a stop token are known
   * `lag` steps late; the steps run past it are discarded. It takes no callbacks, probes, hooks or
   * teacher forcing (nothing that needs the host inside a step), and every row ends at the context of the
   * longest prompt. `true` = `{ lag: RESIDENT_LAG }`.
   */
  resident?: boolean | { lag?: number };
}

/**
 * Steps the host reads behind the device in the resident loop by default: on Deno every readback waits at
 * least 10 ms, so a few in flight keep a fast device busy.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RESIDENT_LAG } from "./generate.ts";
 * assert.equal(RESIDENT_LAG, 4);
 * ```
 *
 * @category Generation
 */
export const RESIDENT_LAG = 4;

/**
 * A running generation: an async iterator of steps with the live {@linkcode GenerationTrace}.
 *
 * @category Generation
 */
export interface GenerationRun extends AsyncIterableIterator<GenerationStep> {
  /** The record, filled in as steps are consumed. */
  readonly trace: GenerationTrace;
  /** Runs to the end (consuming the remaining steps) and returns the trace. */
  collect(): Promise<GenerationTrace>;
}

interface RowState {
  prompt: number[];
  rng: Prng;
  finished: boolean;
  /** Positions stored in this row's cache. */
  cached: number;
  /** Token to feed next instead of the newest one (set by a rewind). */
  refeed: number | null;
  /** cosim recorded for the index the next step re-produces after a rewind. */
  savedCosim: number | null;
  /**
   * The logits of the next step are stale for this row: it was rewound after that step's forward had
   * already been queued (pipelining), so it sits that step out and the refeed goes into the one after.
   */
  skipNext: boolean;
  stop: Set<number>;
  forced: number[];
}

/**
 * Token ids as {@linkcode generate} takes them: one prompt (a number array or a typed array such as
 * `Int32Array`), or one per row.
 *
 * @category Generation
 */
export type PromptIds = ArrayLike<number> | readonly ArrayLike<number>[];

/** The option keys of {@linkcode generate}; any other key is refused with a did-you-mean. */
const GENERATE_OPTION_KEYS = [
  "maxNewTokens",
  "seed",
  "seeds",
  "numSequences",
  "sampling",
  "rowSampling",
  "stopTokens",
  "forceTokens",
  "returnHidden",
  "hiddenSource",
  "hooks",
  "probes",
  "onStep",
  "policies",
  "maxSteps",
  "pipeline",
  "padTokenId",
  "prefillChunk",
  "decode",
  "resident",
] as const;

/** Scores of a whole-prompt forward past which the prefill is chunked (bytes), and a chunk's target. */
const PREFILL_SCORES_MAX = 2 ** 28;
const PREFILL_SCORES_CHUNK = 2 ** 27;

/**
 * Prompt positions per prefill forward for `batch` rows of `width` positions (see the `prefillChunk` option
 * of {@linkcode generate}): `explicit` when given; else the whole prompt when hooks are active or its
 * attention scores fit in 256 MiB; else a multiple of 64 (at least 64) whose scores stay near 128 MiB.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { prefillChunkSize } from "./generate.ts";
 * assert.equal(prefillChunkSize(1, 12, 1000), 1000); // 48 MB of scores: one forward
 * assert.equal(prefillChunkSize(16, 12, 968), 128); // 720 MB at once: chunks of 128 positions
 * assert.equal(prefillChunkSize(16, 12, 968, undefined, true), 968); // hooks see the whole prompt
 * ```
 *
 * @category Generation
 */
export function prefillChunkSize(
  batch: number,
  heads: number,
  width: number,
  explicit?: number,
  hooked = false,
): number {
  if (explicit !== undefined) {
    if (!Number.isInteger(explicit) || explicit < 1) {
      throw new Error(`generate: prefillChunk must be a positive integer, got ${explicit}`);
    }
    return Math.min(explicit, width);
  }
  if (hooked || batch * heads * width * width * 4 <= PREFILL_SCORES_MAX) return width;
  const rows = Math.floor(PREFILL_SCORES_CHUNK / (batch * heads * width * 4));
  return Math.min(width, Math.max(64, rows - (rows % 64)));
}

function checkGenerateOptions(options: unknown, allowed: readonly string[], where: string): void {
  if (options && typeof options === "object") {
    for (const k of Object.keys(options)) {
      // A sampling parameter at the top level is the likeliest slip: say where it goes.
      if (!allowed.includes(k) && SAMPLING_PARAM_KEYS.includes(k)) {
        throw new Error(`${where}: '${k}' is a sampling parameter: pass it as sampling: { ${k}: ... }`);
      }
    }
  }
  checkOptionKeys(options, allowed, where);
}

function normalizePrompts(prompts: PromptIds, options: GenerateOptions): number[][] {
  if (typeof prompts === "string") {
    throw new TypeError(
      "generate: the prompt is a string, but generate() takes token ids; encode it first " +
        "(tokenizer.encode(text)) or call generateText(model, tokenizer, text, options)",
    );
  }
  if (prompts === null || typeof prompts !== "object" || typeof prompts.length !== "number") {
    throw new TypeError(`generate: prompts must be token ids (an array of numbers, or one per row)`);
  }
  const single = prompts.length > 0 && typeof (prompts as ArrayLike<unknown>)[0] === "number" ||
    ArrayBuffer.isView(prompts);
  const list: number[][] = single
    ? [Array.from(prompts as ArrayLike<number>)]
    : Array.from(prompts as readonly ArrayLike<number>[], (p) => {
      if (typeof p === "string") {
        throw new TypeError("generate: a prompt is a string; encode it first or use generateText");
      }
      return Array.from(p);
    });
  if (list.length === 0) throw new RangeError("generate: no prompts given");
  const n = options.numSequences ?? options.seeds?.length ?? list.length;
  if (list.length === 1 && n > 1) return Array.from({ length: n }, () => [...list[0]]);
  if (options.numSequences !== undefined && options.numSequences !== list.length) {
    throw new RangeError(
      `generate: numSequences ${options.numSequences} needs a single prompt (got ${list.length})`,
    );
  }
  return list;
}

function perRowStops(stop: GenerateOptions["stopTokens"], rows: number): Set<number>[] {
  if (!stop) return Array.from({ length: rows }, () => new Set());
  if (stop.length > 0 && Array.isArray(stop[0])) {
    if (stop.length !== rows) {
      throw new RangeError(`generate: stopTokens has ${stop.length} lists for ${rows} rows`);
    }
    return (stop as number[][]).map((s) => new Set(s));
  }
  return Array.from({ length: rows }, () => new Set(stop as number[]));
}

/**
 * Generates from `prompts` (token ids: one prompt, or one per row; ragged prompts are left-padded and
 * masked) and streams one {@linkcode GenerationStep} per forward. Every step reads the device back
 * exactly once, in one packed float32 tensor [B, 4 + probe widths (+ d with returnHidden)].
 *
 * @example
 * ```ts
 * import { tf } from "../../mod.ts";
 * import { createDecoder, gpt2NewConfig } from "../models/scratch.ts";
 * import { generate } from "./generate.ts";
 * await tf.setBackend("cpu");
 * const model = createDecoder(gpt2NewConfig({ nLayers: 1, dModel: 32, nHeads: 2, vocabSize: 50, maxPositions: 64 }), {
 *   seed: 3,
 * });
 * // Two sequences from one prompt; rewind row 1 to index 2 with a new seed once it reaches 4 tokens.
 * let done = false;
 * const trace = await generate(model, [4, 5, 6], {
 *   maxNewTokens: 6,
 *   seeds: [10, 11],
 *   onStep: (_step, control) => {
 *     if (!done && control.tokens(1).length === 4) {
 *       control.rewind(1, 2, 99);
 *       done = true;
 *     }
 *   },
 * }).collect();
 * console.log(trace.rows.map((r) => r.tokens), trace.rows[1].rewinds);
 * model.dispose();
 * ```
 *
 * @category Generation
 */
export function generate(
  model: CausalLM,
  prompts: PromptIds,
  options: GenerateOptions,
): GenerationRun {
  checkGenerateOptions(options, GENERATE_OPTION_KEYS, "generate");
  if (options === undefined) throw new TypeError("generate: options are required ({ maxNewTokens, ... })");
  checkOptionKeys(options.sampling, SAMPLING_PARAM_KEYS, "generate: sampling");
  options.rowSampling?.forEach((p, b) =>
    checkOptionKeys(p, SAMPLING_PARAM_KEYS, `generate: rowSampling[${b}]`)
  );
  const V = model.config.vocabSize;
  const rowsPrompts = normalizePrompts(prompts, options);
  const B = rowsPrompts.length;
  const maxNew = options.maxNewTokens;
  if (!(Number.isInteger(maxNew) && maxNew >= 1)) {
    throw new RangeError(`generate: maxNewTokens must be a positive integer, got ${maxNew}`);
  }
  rowsPrompts.forEach((p, b) => {
    if (p.length === 0) {
      throw new RangeError(`generate: prompt of row ${b} is empty (it needs at least one token)`);
    }
    p.forEach((id, i) => {
      if (!(Number.isInteger(id) && id >= 0 && id < V)) {
        throw new RangeError(
          `generate: prompt of row ${b} has id ${id} at ${i}, outside the vocabulary [0, ${V})`,
        );
      }
    });
    if (p.length >= model.config.maxPositions) {
      throw new RangeError(
        `generate: prompt of row ${b} has ${p.length} tokens; the model holds ${model.config.maxPositions} positions`,
      );
    }
  });
  if (options.seeds && options.seeds.length !== B) {
    throw new RangeError(`generate: ${options.seeds.length} seeds for ${B} rows`);
  }
  const seeds = options.seeds ?? rowsPrompts.map(() => options.seed ?? 0);
  const rowParams: SamplingParams[] = rowsPrompts.map((_, b) => ({
    ...(options.rowSampling?.[b] ?? options.sampling ?? {}),
  }));
  rowParams.forEach((p, b) => validateSamplingParams(p, V, `sampling params of row ${b}`));
  if (options.forceTokens && options.forceTokens.length !== B) {
    throw new RangeError(`generate: forceTokens has ${options.forceTokens.length} lists for ${B} rows`);
  }
  options.forceTokens?.forEach((list, b) =>
    list.forEach((id, t) => {
      if (!(Number.isInteger(id) && id >= 0 && id < V)) {
        throw new RangeError(`generate: forceTokens[${b}][${t}] = ${id} is outside the vocabulary [0, ${V})`);
      }
    })
  );
  const probes = options.probes ?? [];
  const probeNames = new Set<string>();
  for (const p of probes) {
    if (!p.name || probeNames.has(p.name)) {
      throw new Error(`generate: probe names must be unique and non-empty`);
    }
    if (!(Number.isInteger(p.width) && p.width >= 1)) throw new RangeError(`generate: probe ${p.name} width`);
    probeNames.add(p.name);
  }
  const capture = [...new Set(probes.flatMap((p) => p.capture ?? []))];
  const trace = new GenerationTrace(rowsPrompts, {
    returnHidden: !!options.returnHidden,
    decode: options.decode,
  }, seeds);
  const lag = residentLag(options);
  const iterator = (lag === null ? runLoop : residentLoop(lag))(model, rowsPrompts, options, {
    B,
    V,
    seeds,
    rowParams,
    probes,
    capture,
    trace,
  });
  const run: GenerationRun = {
    trace,
    next: () => iterator.next(),
    return: (value?: unknown) => iterator.return(value as undefined),
    throw: (e?: unknown) => iterator.throw(e),
    [Symbol.asyncIterator]() {
      return this;
    },
    async collect() {
      for await (const _ of run) { /* drain */ }
      return trace;
    },
  };
  return run;
}

interface LoopSetup {
  B: number;
  V: number;
  seeds: number[];
  rowParams: SamplingParams[];
  probes: GenerationProbe[];
  capture: string[];
  trace: GenerationTrace;
}

/** The newest position's logits and hidden of a forward, as [B, V] and [B, d]. */
interface Current {
  logits: tf.Tensor2D;
  hidden: tf.Tensor2D;
  activations: Map<string, tf.Tensor>;
}

function takeLast(res: ForwardResult, source: "postNorm" | "preNorm"): Current {
  const last = (x: tf.Tensor3D): tf.Tensor2D => {
    const [b, t, d] = x.shape;
    return (t === 1 ? x.reshape([b, d]) : x.slice([0, t - 1, 0], [b, 1, d]).reshape([b, d])) as tf.Tensor2D;
  };
  const out = tf.tidy(() => ({
    logits: last(res.logits),
    hidden: last(source === "preNorm" ? res.residual : res.hidden),
  }));
  tf.dispose([
    res.logits,
    res.hidden,
    res.residual,
    ...Object.values(res.aux ?? {}),
    ...Object.values(res.metrics ?? {}),
  ]);
  return { ...out, activations: res.activations ?? new Map() };
}

function disposeCurrent(c: Current | null): void {
  if (!c) return;
  c.logits.dispose();
  c.hidden.dispose();
  for (const a of c.activations.values()) a.dispose();
}

/** The resident loop's lag, null for the ordinary loop; throws on options it cannot honour. */
function residentLag(options: GenerateOptions): number | null {
  const r = options.resident;
  if (r === undefined || r === false) return null;
  if (r !== true && (typeof r !== "object" || r === null)) {
    throw new TypeError(`generate: resident must be true, false or { lag }, got ${JSON.stringify(r)}`);
  }
  if (r !== true) checkOptionKeys(r, ["lag"], "generate: resident");
  const lag = r === true ? RESIDENT_LAG : r.lag ?? RESIDENT_LAG;
  if (!(Number.isInteger(lag) && lag >= 0 && lag <= 64)) {
    throw new RangeError(`generate: resident.lag must be an integer in [0, 64], got ${lag}`);
  }
  const host = [
    ["onStep", options.onStep],
    ["policies", options.policies?.length ? options.policies : undefined],
    ["probes", options.probes?.length ? options.probes : undefined],
    ["hooks", Object.keys(options.hooks ?? {}).length ? options.hooks : undefined],
    ["forceTokens", options.forceTokens],
  ].filter(([, v]) => v !== undefined).map(([k]) => k);
  if (host.length) {
    throw new Error(
      `generate: resident decoding takes no ${host.join(", ")} (they need the host inside every step); ` +
        "drop them or drop resident",
    );
  }
  return lag;
}

/**
 * The resident loop (see {@linkcode GenerateOptions.resident}): sampling, feeding and the packed step
 * result stay on the device; the host only draws uniforms ahead and reads results `lag` steps behind.
 */
function residentLoop(lag: number) {
  return async function* (
    model: CausalLM,
    prompts: number[][],
    options: GenerateOptions,
    s: LoopSetup,
  ): AsyncGenerator<GenerationStep, void, undefined> {
    const { B, V, trace } = s;
    const maxNew = options.maxNewTokens;
    const maxPositions = model.config.maxPositions;
    const source = options.hiddenSource ?? "postNorm";
    const returnHidden = !!options.returnHidden;
    const stops = perRowStops(options.stopTokens, B);
    const width = widthOf(prompts);
    // Token t of a row comes from the forward after t fed columns: the cache must hold width + t - 1.
    const steps = Math.min(maxNew, maxPositions - width + 1);
    const rngs = prompts.map((_, b) => options.seeds ? new Prng(s.seeds[b]) : new Prng(options.seed ?? 0, b));
    const finished = new Array<boolean>(B).fill(false);
    const sampler = new TokenSampler(B, V, s.rowParams, { path: "device" });
    let cache: KVCacheLike | null = null;
    let cur: Current | null = null;
    let prev: tf.Tensor2D | null = null;
    let tokens: tf.Tensor1D | null = null;
    let history: tf.Tensor2D | null = null;
    const pending: { step: number; packed: tf.Tensor2D; data: Promise<Float32Array> }[] = [];
    let heapFailed = false;
    try {
      const tPrefill = performance.now();
      cache = model.createCache(B, { capacity: Math.min(width + maxNew, maxPositions) });
      cur = prefill(model, prompts, cache, { lastOnly: true }, options, false, source);
      if (sampler.usesRepetitionPenalty) history = tokenHistory(prompts, V);
      trace.stats.prefillMs = performance.now() - tPrefill;
      const tDecode = performance.now();
      let launched = 0;
      while (true) {
        // Launch until `lag` steps are ahead of the one the host reads next.
        while (launched < steps && pending.length <= lag && !finished.every((f) => f)) {
          const uniforms = new Float32Array(B);
          finished.forEach((f, b) => {
            if (!f) uniforms[b] = rngs[b].nextFloat();
          });
          const c = cur!;
          const packed = tf.tidy(() => {
            const { tokens: chosen, cols } = sampleStep(sampler, c, prev, uniforms, history ?? undefined);
            if (returnHidden) cols.push(c.hidden);
            tokens?.dispose();
            tokens = tf.keep(chosen);
            if (history) history = countTokens(history, chosen, V);
            return tf.concat(cols, 1) as tf.Tensor2D;
          });
          pending.push({ step: launched, packed, data: packed.data() as Promise<Float32Array> });
          launched++;
          if (launched < steps) {
            const ids = tokens!.reshape([B, 1]) as tf.Tensor2D;
            let res: ForwardResult;
            try {
              res = model.forward(ids, { cache: cache!, lastOnly: true });
            } finally {
              ids.dispose();
            }
            prev?.dispose();
            prev = c.hidden;
            c.logits.dispose();
            cur = takeLast(res, source);
          }
        }
        const p = pending.shift();
        if (!p) break;
        let data: Float32Array;
        try {
          data = await p.data;
        } finally {
          p.packed.dispose();
        }
        trace.stats.readbacks++;
        const k = data.length / B;
        const stepRows: GenerationStepRow[] = [];
        for (let b = 0; b < B; b++) {
          if (finished[b]) continue;
          const t = trace.rows[b], o = b * k, token = data[o], index = t.tokens.length;
          const cosim = index === 0 ? NaN : data[o + 3];
          const hidden = returnHidden ? data.slice(o + 4, o + k) : undefined;
          t.tokens.push(token);
          t.logprobs.push(data[o + 1]);
          t.sampledLogprobs.push(data[o + 2]);
          t.cosims.push(cosim);
          if (hidden) t.hiddens!.push(hidden);
          trace.stats.tokensProduced++;
          const reason: FinishReason | null = stops[b].has(token)
            ? "stop"
            : t.tokens.length >= maxNew
            ? "length"
            : t.tokens.length >= steps
            ? "context"
            : null;
          if (reason) {
            finished[b] = true;
            t.finishReason = reason;
          }
          stepRows.push({
            row: b,
            t: index,
            position: prompts[b].length + index,
            token,
            logprob: data[o + 1],
            sampledLogprob: data[o + 2],
            cosim,
            probes: {},
            ...(hidden ? { hidden } : {}),
            afterRewind: false,
            finished: finished[b],
            ...(reason ? { finishReason: reason } : {}),
          });
        }
        trace.stats.steps = p.step + 1;
        trace.stats.decodeMs = performance.now() - tDecode;
        yield { step: p.step, rows: stepRows };
        if (finished.every((f) => f)) break;
      }
    } catch (e) {
      heapFailed = isWasmHeapError(e);
      throw explainWasmHeapError(e, "generate");
    } finally {
      const release = async () => {
        // Readbacks still in flight finish before their tensors go.
        for (const p of pending) {
          await p.data.catch(() => {});
          p.packed.dispose();
        }
        disposeCurrent(cur);
        prev?.dispose();
        (tokens as tf.Tensor | null)?.dispose();
        (history as tf.Tensor | null)?.dispose();
        cache?.dispose();
      };
      await releaseAll(heapFailed, release);
      sampler.dispose();
    }
  };
}

/** Token counts per row, [B, V]: the repetition penalty's history of `lists[b]` (prompt, then tokens). */
function tokenHistory(lists: number[][], V: number): tf.Tensor2D {
  return tf.tidy(() => {
    const idx = lists.flatMap((ids, b) => ids.flatMap((id) => [b, id]));
    return tf.scatterND(tf.tensor2d(idx, [idx.length / 2, 2], "int32"), tf.ones([idx.length / 2]), [
      lists.length,
      V,
    ]) as tf.Tensor2D;
  });
}

/** `history` plus one count per row for `tokens` [B]; disposes `history` and returns the kept new one. */
function countTokens(history: tf.Tensor2D, tokens: tf.Tensor1D, V: number): tf.Tensor2D {
  const next = tf.keep(tf.tidy(() => history.add(tf.oneHot(tokens, V).toFloat()) as tf.Tensor2D));
  history.dispose();
  return next;
}

/**
 * One device-sampled step of `c` (in a tidy): the chosen tokens and the readback's first columns, [token,
 * logprob, sampledLogprob, cosim] per row, that both loops pack.
 */
function sampleStep(
  sampler: TokenSampler,
  c: Current,
  prev: tf.Tensor2D | null,
  uniforms: Float32Array,
  history?: tf.Tensor2D,
  forced?: Int32Array,
): { tokens: tf.Tensor1D; cols: tf.Tensor[] } {
  const B = uniforms.length;
  const out = sampler.sample(c.logits, uniforms, history, forced);
  const cos = prev ? cosineRows(c.hidden, prev) : tf.fill([B], NaN);
  return {
    tokens: out.tokens,
    cols: [
      out.tokens.toFloat().reshape([B, 1]),
      out.logprobs.reshape([B, 1]),
      out.sampledLogprobs.reshape([B, 1]),
      cos.reshape([B, 1]),
    ],
  };
}

/** Runs a loop's `release`; after a full wasm heap even disposals can fail, and the explained error must win. */
async function releaseAll(heapFailed: boolean, release: () => void | Promise<void>): Promise<void> {
  if (!heapFailed) return await release();
  try {
    await release();
  } catch { /* the backend is unusable; the error above says so */ }
}

function widthOf(prompts: number[][]): number {
  return Math.max(...prompts.map((p) => p.length));
}

/**
 * The prefill both loops share: left-pads ragged prompts (the mask is passed only when needed: it costs
 * the model a readback), feeds them through `cache` in chunks where the scores would be large, and returns
 * the last position's logits and hidden.
 */
function prefill(
  model: CausalLM,
  prompts: number[][],
  cache: KVCacheLike,
  forwardOptions: { hooks?: Hooks; capture?: string[]; lastOnly: boolean },
  options: GenerateOptions,
  capturing: boolean,
  source: "postNorm" | "preNorm",
): Current {
  const B = prompts.length;
  const width = widthOf(prompts);
  let cur: Current | null = null;
  const ragged = prompts.some((p) => p.length !== width);
  const pad = options.padTokenId ?? 0;
  const ids = new Int32Array(B * width).fill(pad);
  const mask = new Float32Array(B * width);
  prompts.forEach((p, b) => {
    ids.set(p, b * width + width - p.length);
    mask.fill(1, b * width + width - p.length, (b + 1) * width);
  });
  const hooked = Object.keys(options.hooks ?? {}).length > 0 || capturing;
  const chunk = prefillChunkSize(B, model.config.nHeads, width, options.prefillChunk, hooked);
  for (let start = 0; start < width; start += chunk) {
    const end = Math.min(width, start + chunk), n = end - start;
    const part = (a: Int32Array | Float32Array) => {
      const out = new (a.constructor as Int32ArrayConstructor | Float32ArrayConstructor)(B * n);
      for (let b = 0; b < B; b++) out.set(a.subarray(b * width + start, b * width + end), b * n);
      return out;
    };
    const idsT = tf.tensor2d(chunk === width ? ids : part(ids), [B, n], "int32");
    const maskT = ragged ? tf.tensor2d(chunk === width ? mask : part(mask), [B, n]) : undefined;
    try {
      const res = model.forward(idsT, { ...forwardOptions, cache, attentionMask: maskT });
      if (end < width) {
        tf.dispose([res.logits, res.hidden, res.residual, ...Object.values(res.aux ?? {})]);
        tf.dispose(Object.values(res.metrics ?? {}));
      } else cur = takeLast(res, source);
    } finally {
      idsT.dispose();
      maskT?.dispose();
    }
  }
  return cur!;
}

async function* runLoop(
  model: CausalLM,
  prompts: number[][],
  options: GenerateOptions,
  s: LoopSetup,
): AsyncGenerator<GenerationStep, void, undefined> {
  const { B, V, trace, probes, capture } = s;
  const maxNew = options.maxNewTokens;
  const maxSteps = options.maxSteps ?? 4 * maxNew + 16;
  const maxPositions = model.config.maxPositions;
  const source = options.hiddenSource ?? "postNorm";
  const returnHidden = !!options.returnHidden;
  const stops = perRowStops(options.stopTokens, B);
  const rows: RowState[] = prompts.map((prompt, b) => ({
    prompt,
    rng: options.seeds ? new Prng(s.seeds[b]) : new Prng(options.seed ?? 0, b),
    finished: false,
    cached: prompt.length,
    refeed: null,
    savedCosim: null,
    skipNext: false,
    stop: stops[b],
    forced: options.forceTokens?.[b] ?? [],
  }));
  // With probes the chosen tokens must exist on the device before the step's one readback: device path.
  const sampler = new TokenSampler(B, V, s.rowParams, { path: probes.length ? "device" : "auto" });
  const callbacks: StepCallback[] = [
    ...(options.onStep ? [options.onStep] : []),
    ...(options.policies ?? []).map((p) => p.onStep),
  ];
  const probeWidth = probes.reduce((a, p) => a + p.width, 0);
  const forwardOptions = {
    hooks: options.hooks,
    capture: capture.length ? capture : undefined,
    lastOnly: true,
  };

  let cache: KVCacheLike | null = null;
  let heapFailed = false;
  let cur: Current | null = null;
  let prev: tf.Tensor2D | null = null;
  let tokensDevice: tf.Tensor1D | null = null;
  let history: tf.Tensor2D | null = null;
  let historyDirty = true;
  /** The next step's forward, queued while the current step's readback is in flight. */
  let ahead: ForwardResult | null = null;
  // cpu and wasm compute on this thread as ops are called: queueing gains nothing there (see `pipeline`).
  const speculate = options.pipeline ??
    (callbacks.length === 0 && tf.getBackend() !== "cpu" && tf.getBackend() !== "wasm");

  const rebuildHistory = () => {
    history?.dispose();
    history = tokenHistory(trace.rows.map((r) => [...r.prompt, ...r.tokens]), V);
    historyDirty = false;
  };

  const control: GenerationControl = {
    batchSize: B,
    get cache(): KVCacheLike {
      return cache!;
    },
    tokens: (row) => [...trace.rows[checkRow(row)].tokens],
    cosims: (row) => [...trace.rows[checkRow(row)].cosims],
    isFinished: (row) => rows[checkRow(row)].finished,
    getSampling: (row) => sampler.getParams(checkRow(row)),
    setSampling: (row, params) => {
      sampler.setParams(checkRow(row), params);
      historyDirty = true;
    },
    stop: (row) => {
      const r = rows[checkRow(row)];
      if (!r.finished) {
        r.finished = true;
        trace.rows[row].finishReason = "stopped";
      }
    },
    rewind: (row, to, seed) => {
      const t = trace.rows[checkRow(row)], r = rows[row];
      const len = t.tokens.length;
      if (!(Number.isInteger(to) && to >= 0 && to <= len)) {
        throw new RangeError(
          `GenerationControl.rewind: row ${row} has ${len} kept tokens; 'to' must be in [0, ${len}]`,
        );
      }
      if (seed !== undefined) {
        if (!Number.isSafeInteger(seed)) {
          throw new RangeError(`GenerationControl.rewind: seed must be an integer`);
        }
        r.rng = new Prng(seed);
        t.seed = seed;
      }
      t.rewinds.push({ step: trace.stats.steps, from: len, to, ...(seed !== undefined ? { seed } : {}) });
      if (to === len) return; // nothing dropped: only the stream changes
      r.finished = false;
      t.finishReason = undefined;
      r.savedCosim = t.cosims[to];
      t.tokens.length = to;
      t.logprobs.length = to;
      t.sampledLogprobs.length = to;
      t.cosims.length = to;
      for (const k of Object.keys(t.probes)) t.probes[k].length = to;
      if (t.hiddens) t.hiddens.length = to;
      // The cache must hold the prompt and y_0..y_{to-2}; feeding y_{to-1} (or the last prompt token)
      // recomputes h_to and the logits of y_to.
      const keep = r.prompt.length + to - 1;
      cache!.truncateRow(row, keep);
      r.cached = keep;
      r.refeed = to === 0 ? r.prompt[r.prompt.length - 1] : t.tokens[to - 1];
      // With the next forward already queued, the truncation above also dropped the column it fed; its
      // logits are stale for this row, which then waits one step and refeeds in the forward after.
      r.skipNext = ahead !== null;
      historyDirty = true;
    },
  };
  function checkRow(row: number): number {
    if (!(Number.isInteger(row) && row >= 0 && row < B)) {
      throw new RangeError(`GenerationControl: row ${row} is outside [0, ${B})`);
    }
    return row;
  }

  try {
    const tPrefill = performance.now();
    // Prompt + new tokens, capped at the context: the cache reserves it once (rewinds only reuse columns).
    cache = model.createCache(B, { capacity: Math.min(widthOf(prompts) + maxNew, maxPositions) });
    cur = prefill(model, prompts, cache, forwardOptions, options, capture.length > 0, source);
    trace.stats.prefillMs = performance.now() - tPrefill;
    const tDecode = performance.now();

    for (let step = 0;; step++) {
      const active = rows.map((r) => !r.finished && !r.skipNext);
      for (const r of rows) r.skipNext = false;
      const uniforms = new Float32Array(B);
      const forced = new Int32Array(B).fill(-1);
      let anyForced = false;
      rows.forEach((r, b) => {
        if (!active[b]) return;
        uniforms[b] = r.rng.nextFloat();
        const t = trace.rows[b].tokens.length;
        if (t < r.forced.length) {
          forced[b] = r.forced[t];
          anyForced = true;
        }
      });
      if (sampler.usesRepetitionPenalty && (historyDirty || !history)) rebuildHistory();
      // A row sitting out this step samples from stale logits: rebuild its history from the host next step.
      if (rows.some((r, b) => !active[b] && !r.finished)) historyDirty = true;
      const c = cur!;
      // Host sampling (wasm, cpu): the step's one readback carries the logits (and token history), the
      // token is sampled in JavaScript, and the readback layout below is assembled on the host. Probes
      // need the chosen tokens on the device before their readback, so they keep the device sampler.
      const onHost = probes.length === 0 && sampler.samplesOnHost(anyForced);
      const packed = onHost ? hostStepInputs(c) : tf.tidy(() => {
        const { tokens: chosen, cols } = sampleStep(
          sampler,
          c,
          prev,
          uniforms,
          sampler.usesRepetitionPenalty ? history! : undefined,
          anyForced ? forced : undefined,
        );
        for (const p of probes) {
          const v = p.compute({
            step,
            isPrefill: step === 0,
            activations: c.activations,
            hidden: c.hidden,
            prevHidden: prev,
            logits: c.logits,
            tokens: chosen,
            batchSize: B,
          });
          if (v.rank !== 2 || v.shape[0] !== B || v.shape[1] !== p.width) {
            throw new Error(
              `generate: probe ${p.name} returned shape [${v.shape}], expected [${B}, ${p.width}]`,
            );
          }
          cols.push(v.toFloat());
        }
        if (returnHidden) cols.push(c.hidden);
        tokensDevice?.dispose();
        tokensDevice = tf.keep(chosen);
        if (history && sampler.usesRepetitionPenalty) history = countTokens(history, chosen, V);
        return tf.concat(cols, 1);
      });
      // Start the readback first, then queue the next forward on the device tokens while it is in
      // flight: on webgpu the encoding of step t + 1 overlaps the GPU work and the copy of step t. A row
      // rewound by this step's callbacks sits the next step out (see RowState.skipNext).
      const readback = onHost
        ? (packed.data() as Promise<Float32Array>).then((d) =>
          hostSample(d, uniforms, anyForced ? forced : undefined)
        )
        : packed.data() as Promise<Float32Array>;
      // (Finished rows are cropped before feeding, so only running rows can block it.)
      // Without callbacks (nothing can rewind), skip it when this step surely ends the run.
      const lastStep = step + 1 >= maxSteps ||
        (callbacks.length === 0 &&
          trace.rows.every((t, b) => !active[b] || t.tokens.length + 1 >= maxNew));
      if (speculate && !onHost && !lastStep && rows.every((r) => r.finished || r.cached < maxPositions)) {
        try {
          ahead = launchForward();
        } catch (e) {
          readback.catch(() => {});
          throw e;
        }
      }
      let data: Float32Array;
      try {
        data = await readback;
      } finally {
        packed.dispose();
      }
      trace.stats.readbacks++;
      const k = onHost ? data.length / B : packed.shape[1] as number;

      const stepRows: GenerationStepRow[] = [];
      rows.forEach((r, b) => {
        if (!active[b]) return;
        const t = trace.rows[b];
        const o = b * k;
        const token = data[o];
        const index = t.tokens.length;
        const afterRewind = r.savedCosim !== null;
        const cosim = afterRewind ? r.savedCosim! : (index === 0 ? NaN : data[o + 3]);
        r.savedCosim = null;
        const probeValues: Record<string, number[]> = {};
        let off = o + 4;
        for (const p of probes) {
          probeValues[p.name] = Array.from(data.subarray(off, off + p.width));
          off += p.width;
          (t.probes[p.name] ??= []).push(probeValues[p.name]);
        }
        const hidden = returnHidden ? data.slice(off, off + k - 4 - probeWidth) : undefined;
        t.tokens.push(token);
        t.logprobs.push(data[o + 1]);
        t.sampledLogprobs.push(data[o + 2]);
        t.cosims.push(cosim);
        if (hidden) t.hiddens!.push(hidden);
        trace.stats.tokensProduced++;
        if (r.stop.has(token)) finish(b, "stop");
        else if (t.tokens.length >= maxNew) finish(b, "length");
        stepRows.push({
          row: b,
          t: index,
          position: r.prompt.length + index,
          token,
          logprob: data[o + 1],
          sampledLogprob: data[o + 2],
          cosim,
          probes: probeValues,
          ...(hidden ? { hidden } : {}),
          afterRewind,
          finished: r.finished,
        });
      });
      trace.stats.steps = step + 1;
      const stepObj: GenerationStep = { step, rows: stepRows };
      for (const cb of callbacks) await cb(stepObj, control);
      if (step + 1 >= maxSteps) rows.forEach((r, b) => !r.finished && finish(b, "maxSteps"));
      // Rows whose next token would not fit the model's positions end here (a row whose next forward is
      // already queued has its next logits and is checked at the next step).
      rows.forEach((r, b) => {
        const queued = ahead !== null && !r.skipNext;
        if (!r.finished && !queued && r.cached >= maxPositions) finish(b, "context");
      });
      for (const sr of stepRows) {
        sr.finished = rows[sr.row].finished;
        if (sr.finished) sr.finishReason = trace.rows[sr.row].finishReason;
      }
      trace.stats.decodeMs = performance.now() - tDecode;
      yield stepObj;
      if (rows.every((r) => r.finished)) break;

      // Next forward: every row feeds one token (finished rows too; their output is ignored).
      let res: ForwardResult;
      if (ahead) {
        res = ahead;
        ahead = null;
      } else {
        res = launchForward();
      }
      prev?.dispose();
      prev = cur!.hidden;
      cur!.logits.dispose();
      for (const a of cur!.activations.values()) a.dispose();
      cur = takeLast(res, source);
      trace.stats.decodeMs = performance.now() - tDecode;
    }
  } catch (e) {
    heapFailed = isWasmHeapError(e);
    throw explainWasmHeapError(e, "generate");
  } finally {
    const release = () => {
      disposeCurrent(cur);
      if (ahead) disposeCurrent(takeLast(ahead, source));
      prev?.dispose();
      (tokensDevice as tf.Tensor | null)?.dispose();
      (history as tf.Tensor | null)?.dispose();
      cache?.dispose();
    };
    await releaseAll(heapFailed, release);
    sampler.dispose();
  }

  /** The length a finished row is cropped back to: its kept prefix (prompt + fed tokens), capped. */
  function cropTarget(r: RowState, b: number): number {
    return Math.min(r.prompt.length + Math.max(trace.rows[b].tokens.length - 1, 0), maxPositions - 1);
  }

  /**
   * Crops finished rows back to their kept prefix once they near the model's last position, so feeding
   * them never overflows and a later rewind still finds the prefix.
   */
  function cropFinished(): void {
    rows.forEach((r, b) => {
      if (r.finished && r.cached >= maxPositions - 1) {
        const kept = cropTarget(r, b);
        if (kept < r.cached) {
          cache!.truncateRow(b, kept);
          r.cached = kept;
        }
      }
    });
  }

  /**
   * Queues the next forward: every row feeds its newest device-side token, except rows with a pending
   * refeed after a rewind (a small upload, only then).
   */
  /** [B, V (+ V history) + 1 (+ d hidden)]: what the host sampler needs, packed for the one readback. */
  function hostStepInputs(c: Current): tf.Tensor2D {
    return tf.tidy(() => {
      const cos = prev ? cosineRows(c.hidden, prev) : tf.fill([B], NaN);
      const cols: tf.Tensor[] = [c.logits.toFloat()];
      if (sampler.usesRepetitionPenalty) cols.push(history!.toFloat());
      cols.push(cos.reshape([B, 1]));
      if (returnHidden) cols.push(c.hidden);
      return tf.concat(cols, 1) as tf.Tensor2D;
    });
  }

  /**
   * Samples on the host from a {@linkcode hostStepInputs} readback and returns the device path's readback
   * layout ([token, logprob, sampledLogprob, cosim, hidden...] per row); updates the device tokens and
   * the token history.
   */
  function hostSample(d: Float32Array, uniforms: Float32Array, forced?: Int32Array): Float32Array {
    const withHist = sampler.usesRepetitionPenalty;
    const inW = d.length / B, hiddenW = inW - V * (withHist ? 2 : 1) - 1;
    const logits = new Float32Array(B * V);
    const hist = withHist ? new Float32Array(B * V) : undefined;
    for (let b = 0; b < B; b++) {
      logits.set(d.subarray(b * inW, b * inW + V), b * V);
      hist?.set(d.subarray(b * inW + V, b * inW + 2 * V), b * V);
    }
    const out = sampler.sampleHost(logits, uniforms, hist, forced);
    const w = 4 + hiddenW;
    const res = new Float32Array(B * w);
    for (let b = 0; b < B; b++) {
      const o = b * w, tail = b * inW + V * (withHist ? 2 : 1);
      res[o] = out.tokens[b];
      res[o + 1] = out.logprobs[b];
      res[o + 2] = out.sampledLogprobs[b];
      res[o + 3] = d[tail];
      res.set(d.subarray(tail + 1, tail + 1 + hiddenW), o + 4);
    }
    tokensDevice?.dispose();
    tokensDevice = tf.keep(tf.tensor1d(out.tokens, "int32"));
    if (history && withHist) history = countTokens(history, tokensDevice!, V);
    return res;
  }

  function launchForward(): ForwardResult {
    cropFinished();
    const refeeds = rows.some((r) => r.refeed !== null);
    let idsNext: tf.Tensor2D;
    if (refeeds) {
      const host = new Int32Array(B), use = new Uint8Array(B);
      rows.forEach((r, b) => {
        if (r.refeed === null) return;
        host[b] = r.refeed;
        use[b] = 1;
        r.refeed = null;
      });
      idsNext = tf.tidy(() =>
        tf.where(
          tf.tensor2d(use, [B, 1], "bool"),
          tf.tensor2d(host, [B, 1], "int32"),
          tokensDevice!.reshape([B, 1]),
        ) as tf.Tensor2D
      );
    } else {
      idsNext = tokensDevice!.reshape([B, 1]) as tf.Tensor2D;
    }
    try {
      const res = model.forward(idsNext, { ...forwardOptions, cache: cache! });
      for (const r of rows) r.cached++;
      return res;
    } finally {
      idsNext.dispose();
    }
  }

  function finish(b: number, reason: FinishReason): void {
    rows[b].finished = true;
    trace.rows[b].finishReason = reason;
  }
}

/** Row-wise cosine similarity of [B, d] tensors in float32: a.b / max(|a| |b|, 1e-8). */
function cosineRows(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const dot = a.mul(b).sum(1);
    const norms = a.square().sum(1).sqrt().mul(b.square().sum(1).sqrt());
    return dot.div(norms.maximum(1e-8)) as tf.Tensor1D;
  });
}

/**
 * Options of {@linkcode generateText}: {@linkcode GenerateOptions} with `maxNewTokens` optional.
 *
 * @category Generation
 */
export interface GenerateTextOptions extends Omit<GenerateOptions, "maxNewTokens" | "decode"> {
  /** Default 64. */
  maxNewTokens?: number;
  /** Add the tokenizer's special tokens (e.g. BOS) to the prompt. Default true. */
  addSpecialTokens?: boolean;
  /** Keep special tokens in the decoded text. Default false. */
  keepSpecialTokens?: boolean;
}

/**
 * The result of {@linkcode generateText}.
 *
 * @category Generation
 */
export interface GenerateTextResult {
  /** Generated text of row 0 (the prompt not included). */
  text: string;
  /** Generated text of every row. */
  texts: string[];
  /** Generated token ids of row 0. */
  tokens: number[];
  /** The full record (all rows, cosims, probes, rewinds, timing). */
  trace: GenerationTrace;
  /** Why row 0 stopped: "stop" (EOS or a stop token), "length" (maxNewTokens), "context" (the model's
   * context was full), ... */
  finishReason?: FinishReason;
  /** A sentence when a row stopped short of `maxNewTokens` because the context filled up; else absent. */
  note?: string;
}

/**
 * Encodes `prompt`, generates, and decodes. Stops at the tokenizer's EOS unless `stopTokens` is given;
 * ids the tokenizer cannot decode (a model vocabulary padded past the tokenizer's) are banned.
 *
 * @example
 * ```ts
 * import { tf } from "../../mod.ts";
 * import { createDecoder, gpt2NewConfig } from "../models/scratch.ts";
 * import { CharTokenizer } from "../tokenizers/char.ts";
 * import { generateText } from "./generate.ts";
 * await tf.setBackend("cpu");
 * const tok = CharTokenizer.fromCorpus("abcdefgh ");
 * const model = createDecoder(gpt2NewConfig({ nLayers: 1, dModel: 16, nHeads: 2, vocabSize: tok.vocabSize, maxPositions: 32 }), {
 *   seed: 0,
 * });
 * const { text, trace } = await generateText(model, tok, "abc", { maxNewTokens: 8, seed: 1 });
 * console.log(text, trace.toString());
 * model.dispose();
 * ```
 *
 * @category Generation
 */
export async function generateText(
  model: CausalLM,
  tokenizer: TextTokenizer,
  prompt: string,
  options: GenerateTextOptions = {},
): Promise<GenerateTextResult> {
  checkGenerateOptions(
    options,
    [...GENERATE_OPTION_KEYS.filter((k) => k !== "decode"), "addSpecialTokens", "keepSpecialTokens"],
    "generateText",
  );
  if (typeof prompt !== "string") {
    throw new TypeError(
      `generateText: the prompt must be a string (got ${typeof prompt}); for ids use generate()`,
    );
  }
  const { addSpecialTokens, keepSpecialTokens, ...generateOptions } = options;
  const ids = tokenizer.encode(prompt, { addSpecialTokens: addSpecialTokens ?? true });
  if (ids.length === 0) throw new RangeError("generateText: the prompt encodes to no tokens");
  const eos = tokenizer.special.eos;
  const skip = !(keepSpecialTokens ?? false);
  const decode = (t: number[]) => tokenizer.decode(t, { skipSpecialTokens: skip });
  // Models often pad their vocabulary past the tokenizer's (e.g. 50304 vs 50257): never emit those ids.
  const extra: number[] = [];
  for (let id = tokenizer.vocabSize; id < model.config.vocabSize; id++) extra.push(id);
  const ban = (p: SamplingParams | undefined): SamplingParams | undefined =>
    extra.length === 0 ? p : { ...p, bannedTokens: [...(p?.bannedTokens ?? []), ...extra] };
  const maxNew = options.maxNewTokens ?? 64;
  const trace = await generate(model, ids, {
    ...generateOptions,
    sampling: ban(options.sampling ?? {}),
    rowSampling: options.rowSampling?.map((p) => (p ? ban(p) : undefined)),
    maxNewTokens: maxNew,
    stopTokens: options.stopTokens ?? (eos !== undefined ? [eos] : undefined),
    decode,
  }).collect();
  const texts = trace.texts();
  const short = trace.rows.filter((r) => r.finishReason === "context");
  const note = short.length
    ? `stopped at the model's context limit (${model.config.maxPositions} positions): ` +
      short.map((r) => `row ${r.row} after ${r.tokens.length} of ${maxNew} new tokens`).join(", ") +
      `; use a shorter prompt or fewer tokens`
    : undefined;
  const result: GenerateTextResult = {
    text: texts[0],
    texts,
    tokens: [...trace.rows[0].tokens],
    trace,
    finishReason: trace.rows[0].finishReason,
  };
  if (note) result.note = note;
  return result;
}
