/**
 * The library's one token sampler: greedy, temperature, top-k, top-p, repetition penalty and banned
 * tokens, over a batch of logits [B, V] with parameters per row: on the device (tfjs kernels), or on the
 * host from one read of the logits (the default on wasm and cpu; see {@linkcode SamplerPath}), with the
 * same tokens.
 *
 * Randomness comes from the host: each row passes one uniform u in [0, 1) drawn from its own
 * {@linkcode Prng} stream, and the device picks the token by inverse CDF, so no tfjs random state is used
 * and a row's tokens do not depend on which other rows share its batch.
 *
 * Order of operations (Hugging Face `generate` semantics):
 * 1. repetition penalty over tokens already in the sequence: `l > 0 ? l / penalty : l * penalty`;
 * 2. banned tokens set to -Infinity;
 * 3. temperature 0 means greedy (argmax of the result of 1-2); otherwise divide by the temperature;
 * 4. top-k keeps tokens whose logit is >= the k-th largest (ties at the boundary are kept, as in HF);
 * 5. top-p keeps the smallest set of most likely tokens (after top-k, renormalised) whose cumulative
 *    probability reaches p; at least one token survives. Tokens tied with the last kept one are kept
 *    too, which makes the kept set independent of sort order;
 * 6. the token is the first vocabulary index whose cumulative kept probability exceeds u.
 *
 * Two log-probabilities come back per row: `logprob` under the model's unmodified distribution
 * (softmax of the raw logits, temperature 1, no penalty or filtering) and `sampledLogprob` under the
 * distribution actually sampled from (after steps 1-5; 0 for greedy rows, which are deterministic).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { TokenSampler } from "./sampling.ts";
 * await tf.setBackend("cpu");
 * const logits = tf.tensor2d([[2, 1, 0, -1], [0, 0, 3, 0]]);
 * const sampler = new TokenSampler(2, 4, [{ temperature: 0 }, { temperature: 0.7, topK: 2 }]);
 * const out = sampler.sample(logits, [0.5, 0.25]);
 * assert.equal(out.tokens.arraySync()[0], 0); // row 0 is greedy: the argmax
 * out.tokens.dispose(); out.logprobs.dispose(); out.sampledLogprobs.dispose();
 * sampler.dispose(); logits.dispose();
 * ```
 *
 * @module
 */
import { checkOptionKeys } from "../options.ts";
import { tf } from "../deps.ts";
import type { Tensor1D, Tensor2D } from "../tensor_types.ts";

/**
 * Sampling parameters of one row. Every field is optional; the defaults sample from the raw softmax.
 *
 * @category Generation
 */
export interface SamplingParams {
  /** Softmax temperature; 0 selects greedy decoding. Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (ties kept); 0 or undefined disables. */
  topK?: number;
  /** Nucleus sampling threshold in (0, 1]; 1 or undefined disables. */
  topP?: number;
  /** HF repetition penalty (> 0; 1 disables) over tokens already in the sequence, prompt included. */
  repetitionPenalty?: number;
  /** Token ids that may never be produced (e.g. EOS to force a minimum length). */
  bannedTokens?: number[];
}

/**
 * Per-row outputs of {@linkcode TokenSampler.sample}; the caller owns and must dispose the tensors.
 *
 * @category Generation
 */
export interface SampleOutput {
  /** Chosen token ids [B], int32. */
  tokens: Tensor1D;
  /** log p(token) under the unmodified distribution (raw logits, temperature 1) [B]. */
  logprobs: Tensor1D;
  /** log q(token) under the distribution sampled from (after penalty, bans, temperature, top-k/p) [B]. */
  sampledLogprobs: Tensor1D;
}

/**
 * The keys a {@linkcode SamplingParams} object may have; any other key is refused with a did-you-mean.
 *
 * @category Generation
 */
export const SAMPLING_PARAM_KEYS: readonly string[] = [
  "temperature",
  "topK",
  "topP",
  "repetitionPenalty",
  "bannedTokens",
];

/**
 * Throws a clear error unless `p` is a valid {@linkcode SamplingParams} for a vocabulary of size `vocabSize`.
 *
 * @category Generation
 * @internal Used inside the library; not part of the stable API.
 */
export function validateSamplingParams(
  p: SamplingParams,
  vocabSize: number,
  where = "sampling params",
): void {
  checkOptionKeys(p, SAMPLING_PARAM_KEYS, where);
  const t = p.temperature ?? 1;
  if (!(Number.isFinite(t) && t >= 0)) throw new RangeError(`${where}: temperature must be >= 0, got ${t}`);
  const k = p.topK ?? 0;
  if (!(Number.isInteger(k) && k >= 0)) {
    throw new RangeError(`${where}: topK must be an integer >= 0, got ${k}`);
  }
  const topP = p.topP ?? 1;
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`${where}: topP must be in (0, 1], got ${topP}`);
  const r = p.repetitionPenalty ?? 1;
  if (!(Number.isFinite(r) && r > 0)) {
    throw new RangeError(`${where}: repetitionPenalty must be a finite number > 0, got ${r}`);
  }
  for (const id of p.bannedTokens ?? []) {
    if (!(Number.isInteger(id) && id >= 0 && id < vocabSize)) {
      throw new RangeError(`${where}: banned token ${id} is outside the vocabulary [0, ${vocabSize})`);
    }
  }
  if ((p.bannedTokens?.length ?? 0) > 0 && new Set(p.bannedTokens).size >= vocabSize) {
    throw new RangeError(`${where}: every token of the vocabulary is banned`);
  }
}

/** The cached device-side form of the per-row parameters. */
interface ParamTensors {
  invTemp: tf.Tensor2D; // [B,1]: 1/T, or 1 for greedy rows
  greedy: tf.Tensor1D; // [B] bool
  allGreedy: boolean;
  sortWidth: number; // how many sorted logits the filters need (0 = no sort)
  kIndex: tf.Tensor2D; // [B,1] int32: k-1 clipped to the sort width
  hasK: tf.Tensor2D; // [B,1] bool
  pEff: tf.Tensor2D; // [B,1]: p, or 2 (never reached) when top-p is off
  filtered: tf.Tensor2D; // [B,1] bool: the row uses top-k or top-p
  penalty: tf.Tensor2D | null; // [B,1], null when no row penalises
  banned: tf.Tensor2D | null; // [B,V] bool, null when no row bans
}

/**
 * A batch sampler with per-row {@linkcode SamplingParams}. Parameter tensors are uploaded once and
 * rebuilt only when a row's parameters change, so a decode step uploads nothing but the uniforms.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { TokenSampler } from "./sampling.ts";
 * await tf.setBackend("cpu");
 * const sampler = new TokenSampler(1, 3, { topP: 0.9 });
 * const logits = tf.tensor2d([[0, 1, 2]]);
 * const { tokens, logprobs, sampledLogprobs } = sampler.sample(logits, [0.1]);
 * assert.deepEqual(tokens.arraySync(), [1]); // the uniform 0.1 picks token 1
 * // Its log-probability under the full distribution: 1 − ln(1 + e + e²) ≈ -1.4076.
 * assert.ok(Math.abs(logprobs.arraySync()[0] - (1 - Math.log(1 + Math.E + Math.E ** 2))) < 1e-5);
 * tf.dispose([tokens, logprobs, sampledLogprobs, logits]);
 * sampler.dispose();
 * ```
 *
 * @category Generation
 */
export class TokenSampler {
  /** Rows. */
  readonly batchSize: number;
  /** Vocabulary size V (the logits' last dimension). */
  readonly vocabSize: number;
  /** Where non-greedy rows are sampled; see {@linkcode SamplerPath}. */
  path: SamplerPath;
  #params: SamplingParams[];
  #tensors: ParamTensors | null = null;
  #iota: tf.Tensor2D | null = null;

  /**
   * A sampler for `batchSize` rows over `vocabSize` logits.
   *
   * @param params one params object for every row, or one per row
   * @param options `path`: where sampling runs (default `"auto"`)
   */
  constructor(
    batchSize: number,
    vocabSize: number,
    params: SamplingParams | SamplingParams[] = {},
    options: { path?: SamplerPath } = {},
  ) {
    this.path = options.path ?? "auto";
    if (!(Number.isInteger(batchSize) && batchSize >= 1)) {
      throw new RangeError(`TokenSampler: batchSize must be a positive integer, got ${batchSize}`);
    }
    if (!(Number.isInteger(vocabSize) && vocabSize >= 1)) {
      throw new RangeError(`TokenSampler: vocabSize must be a positive integer, got ${vocabSize}`);
    }
    this.batchSize = batchSize;
    this.vocabSize = vocabSize;
    const list = Array.isArray(params) ? params : Array.from({ length: batchSize }, () => params);
    if (list.length !== batchSize) {
      throw new RangeError(`TokenSampler: got ${list.length} params objects for ${batchSize} rows`);
    }
    list.forEach((p, i) => validateSamplingParams(p, vocabSize, `sampling params of row ${i}`));
    this.#params = list.map((p) => ({ ...p }));
  }

  /** The current parameters of `row` (a copy). */
  getParams(row: number): SamplingParams {
    return { ...this.#params[this.#checkRow(row)] };
  }

  /** Replaces the parameters of `row`; they apply from the next `sample` call. */
  setParams(row: number, params: SamplingParams): void {
    this.#checkRow(row);
    validateSamplingParams(params, this.vocabSize, `sampling params of row ${row}`);
    this.#params[row] = { ...params };
    this.#invalidate();
  }

  /** Whether any row uses a repetition penalty (then `sample` needs the token history). */
  get usesRepetitionPenalty(): boolean {
    return this.#params.some((p) => (p.repetitionPenalty ?? 1) !== 1);
  }

  /**
   * Picks one token per row.
   *
   * @param logits [B, V] float32 logits of the next position
   * @param uniforms B numbers in [0, 1) (each row's own PRNG draw; ignored by greedy rows), or a [B] tensor
   * @param history [B, V] counts (or 0/1 presence) of tokens already in each sequence; needed only when a
   *   row uses a repetition penalty
   * @param forced per-row token ids to emit instead of sampling (teacher forcing), -1 where the row samples;
   *   their log-probabilities are reported like sampled ones (`sampledLogprob` may be -Infinity when the
   *   filters exclude the forced token)
   */
  sample(
    logits: Tensor2D,
    uniforms: ArrayLike<number> | Tensor1D,
    history?: Tensor2D,
    forced?: ArrayLike<number>,
  ): SampleOutput {
    const [B, V] = logits.shape;
    if (B !== this.batchSize || V !== this.vocabSize) {
      throw new RangeError(
        `TokenSampler.sample: logits are [${B}, ${V}] but the sampler was built for [${this.batchSize}, ${this.vocabSize}]`,
      );
    }
    if (!(uniforms instanceof tf.Tensor) && uniforms.length !== B) {
      throw new RangeError(`TokenSampler.sample: got ${uniforms.length} uniforms for ${B} rows`);
    }
    if (forced) {
      if (forced.length !== B) {
        throw new RangeError(`TokenSampler.sample: got ${forced.length} forced ids for ${B} rows`);
      }
      for (let i = 0; i < B; i++) {
        const f = forced[i];
        if (!(Number.isInteger(f) && f >= -1 && f < V)) {
          throw new RangeError(`TokenSampler.sample: forced id ${f} of row ${i} is outside [-1, ${V})`);
        }
      }
    }
    const p = this.#ensureTensors();
    if (p.penalty && !history) {
      throw new Error("TokenSampler.sample: a row uses repetitionPenalty, so pass the token history [B, V]");
    }
    if ((!p.allGreedy || forced) && this.#onHost()) {
      return this.#sampleOnHost(logits, uniforms, p.penalty ? history : undefined, forced, p.sortWidth);
    }
    // Cached tensors are kept: sample() may be called inside a caller's tf.tidy.
    const iota = this.#iota ??= tf.keep(
      tf.tidy(() => tf.range(0, V, 1, "int32").reshape([1, V]) as tf.Tensor2D),
    );
    return tf.tidy(() => {
      const x = logits.dtype === "float32" ? logits : logits.toFloat();
      const raw = tf.logSoftmax(x);
      let l: tf.Tensor = x;
      if (p.penalty && history) {
        const penalised = select(l.greater(0), l.div(p.penalty), l.mul(p.penalty));
        l = select(history.greater(0), penalised, l);
      }
      if (p.banned) l = select(p.banned, tf.scalar(-Infinity), l);
      const force = (chosen: tf.Tensor1D): tf.Tensor1D => {
        if (!forced) return chosen;
        const f = tf.tensor1d(Int32Array.from(forced), "int32");
        return select(f.greaterEqual(0), f, chosen) as tf.Tensor1D;
      };
      const greedyTokens = l.argMax(1).toInt() as tf.Tensor1D;
      if (p.allGreedy && !forced) {
        const lp = gatherRows(raw, greedyTokens);
        return { tokens: greedyTokens, logprobs: lp, sampledLogprobs: tf.zerosLike(lp) };
      }
      const lt = l.mul(p.invTemp);
      let threshold: tf.Tensor2D | null = null;
      if (p.sortWidth > 0) {
        const sorted = tf.topk(lt, p.sortWidth, true).values as tf.Tensor2D;
        const kth = gatherRows(sorted, p.kIndex).reshape([B, 1]); // [B,1]
        const thrK = select(p.hasK, kth, tf.scalar(-Infinity)) as tf.Tensor2D;
        const keptK = sorted.greaterEqual(thrK).logicalAnd(sorted.greater(-Infinity));
        const probs = tf.softmax(select(keptK, sorted, tf.scalar(-Infinity)));
        const before = tf.cumsum(probs, 1, true); // probability mass strictly before each sorted slot
        const keptP = before.less(p.pEff).logicalAnd(keptK);
        // Index of the last kept slot; >= 0 because the top token is always kept.
        const last = keptP.toInt().sum(1, true).sub(tf.scalar(1, "int32")).maximum(tf.scalar(0, "int32"));
        const thr = gatherRows(sorted, last).reshape([B, 1]);
        // Rows without filters keep everything even when other rows made the sort narrower than V.
        threshold = select(p.filtered, thr, tf.scalar(-Infinity)) as tf.Tensor2D;
      }
      let keep = lt.greater(-Infinity);
      if (threshold) keep = keep.logicalAnd(lt.greaterEqual(threshold));
      const logq = tf.logSoftmax(select(keep, lt, tf.scalar(-Infinity)));
      const cum = tf.cumsum(tf.exp(logq), 1);
      const total = cum.slice([0, V - 1], [B, 1]);
      const u = uniforms instanceof tf.Tensor
        ? uniforms.reshape([B, 1])
        : tf.tensor2d(Float32Array.from(uniforms), [B, 1]);
      const target = u.mul(total);
      // First index whose cumulative mass exceeds the target; rounding can push u*total up to total, so
      // clamp to the last kept index.
      const index = cum.lessEqual(target).toInt().sum(1);
      const lastKept = select(keep, iota, tf.scalar(-1, "int32")).max(1);
      const sampled = tf.minimum(index, lastKept) as tf.Tensor1D;
      const tokens = force(select(p.greedy, greedyTokens, sampled) as tf.Tensor1D);
      const logprobs = gatherRows(raw, tokens);
      // Greedy rows report log q = 0 (deterministic), or log q of the forced token under the greedy-ranked
      // distribution: 0 if it is the argmax, -Infinity otherwise.
      const greedyLogq = select(tokens.equal(greedyTokens), tf.scalar(0), tf.scalar(-Infinity));
      const sampledLogprobs = select(p.greedy, greedyLogq, gatherRows(logq, tokens)) as tf.Tensor1D;
      return { tokens, logprobs, sampledLogprobs };
    });
  }

  /**
   * Whether {@linkcode TokenSampler.sample} would sample this batch on the host (then a caller that reads
   * the logits anyway can call {@linkcode TokenSampler.sampleHost} on them instead).
   */
  samplesOnHost(withForced = false): boolean {
    const allGreedy = this.#params.every((p) => (p.temperature ?? 1) === 0);
    return (!allGreedy || withForced) && this.#onHost();
  }

  /**
   * The host path on logits already read back: `logits` and `history` row-major [B, V]; same results as
   * {@linkcode TokenSampler.sample} on the host.
   */
  sampleHost(
    logits: Float32Array,
    uniforms: ArrayLike<number>,
    history?: Float32Array,
    forced?: ArrayLike<number>,
  ): { tokens: Int32Array; logprobs: Float32Array; sampledLogprobs: Float32Array } {
    const B = this.batchSize, V = this.vocabSize;
    if (logits.length !== B * V) throw new RangeError(`TokenSampler.sampleHost: expected ${B * V} logits`);
    if (this.usesRepetitionPenalty && !history) {
      throw new Error("TokenSampler.sampleHost: a row uses repetitionPenalty, so pass the token history");
    }
    return sampleOnHost(
      logits,
      B,
      V,
      this.#params,
      uniforms,
      history,
      forced,
      this.#ensureTensors().sortWidth,
    );
  }

  #onHost(): boolean {
    if (this.path === "host") return true;
    if (this.path === "device") return false;
    const b = tf.getBackend();
    return b === "wasm" || b === "cpu";
  }

  #sampleOnHost(
    logits: Tensor2D,
    uniforms: ArrayLike<number> | Tensor1D,
    history: Tensor2D | undefined,
    forced: ArrayLike<number> | undefined,
    sortWidth: number,
  ): SampleOutput {
    const B = this.batchSize;
    const u = uniforms instanceof tf.Tensor ? uniforms.dataSync() : uniforms;
    const out = sampleOnHost(
      logits.dataSync() as Float32Array,
      B,
      this.vocabSize,
      this.#params,
      u,
      history?.dataSync() as Float32Array | undefined,
      forced,
      sortWidth,
    );
    return {
      tokens: tf.tensor1d(out.tokens, "int32"),
      logprobs: tf.tensor1d(out.logprobs),
      sampledLogprobs: tf.tensor1d(out.sampledLogprobs),
    };
  }

  /** Frees the cached parameter tensors. The sampler can still be used (they are rebuilt). */
  dispose(): void {
    this.#invalidate();
    this.#iota?.dispose();
    this.#iota = null;
  }

  #checkRow(row: number): number {
    if (!(Number.isInteger(row) && row >= 0 && row < this.batchSize)) {
      throw new RangeError(`TokenSampler: row ${row} is outside [0, ${this.batchSize})`);
    }
    return row;
  }

  #invalidate(): void {
    if (!this.#tensors) return;
    const t = this.#tensors;
    tf.dispose([t.invTemp, t.greedy, t.kIndex, t.hasK, t.pEff, t.filtered]);
    t.penalty?.dispose();
    t.banned?.dispose();
    this.#tensors = null;
  }

  #ensureTensors(): ParamTensors {
    if (this.#tensors) return this.#tensors;
    const B = this.batchSize, V = this.vocabSize, ps = this.#params;
    const greedy = ps.map((p) => (p.temperature ?? 1) === 0);
    const k = ps.map((p) => Math.min(p.topK ?? 0, V));
    const topP = ps.map((p) => p.topP ?? 1);
    // Rows using top-p without top-k need the whole vocabulary sorted; top-k rows need their k.
    let sortWidth = 0;
    ps.forEach((_, i) => {
      if (greedy[i]) return;
      if (k[i] > 0) sortWidth = Math.max(sortWidth, k[i]);
      else if (topP[i] < 1) sortWidth = V;
    });
    const penalties = ps.map((p) => p.repetitionPenalty ?? 1);
    let banned: tf.Tensor2D | null = null;
    if (ps.some((p) => (p.bannedTokens?.length ?? 0) > 0)) {
      const mask = new Uint8Array(B * V);
      ps.forEach((p, i) => (p.bannedTokens ?? []).forEach((id) => (mask[i * V + id] = 1)));
      banned = tf.tensor2d(mask, [B, V], "bool");
    }
    const keep = <T extends tf.Tensor>(t: T): T => tf.keep(t);
    this.#tensors = {
      invTemp: keep(tf.tensor2d(ps.map((p, i) => (greedy[i] ? 1 : 1 / (p.temperature ?? 1))), [B, 1])),
      greedy: keep(tf.tensor1d(greedy.map(Number), "bool")),
      allGreedy: greedy.every(Boolean),
      sortWidth,
      kIndex: keep(tf.tensor2d(k.map((ki) => Math.max(0, Math.min(ki, sortWidth) - 1)), [B, 1], "int32")),
      hasK: keep(tf.tensor2d(k.map((ki) => Number(ki > 0)), [B, 1], "bool")),
      pEff: keep(tf.tensor2d(topP.map((v) => (v >= 1 ? 2 : v)), [B, 1])),
      filtered: keep(tf.tensor2d(k.map((ki, i) => Number(ki > 0 || topP[i] < 1)), [B, 1], "bool")),
      penalty: penalties.some((r) => r !== 1) ? keep(tf.tensor2d(penalties, [B, 1])) : null,
      banned: banned ? keep(banned) : null,
    };
    return this.#tensors;
  }
}

/** `tf.where` with broadcasting between operands of different ranks (its typings demand one rank). */
function select(cond: tf.Tensor, a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.where(cond, a, b);
}

/**
 * x[b, ids[b]] for each row b of x [B, W] (ids [B] or [B, 1], int32). A flat gather: tfjs-wasm 4.22
 * returns garbage for `gather` with batchDims = 1.
 */
function gatherRows(x: tf.Tensor, ids: tf.Tensor): tf.Tensor1D {
  const [b, w] = x.shape;
  const offsets = tf.range(0, b * w, w, "int32");
  return tf.gather(x.reshape([b * w]), ids.reshape([b]).add(offsets)) as tf.Tensor1D;
}

/**
 * One-shot convenience: samples a token per row of `logits` with per-row params (uploads the parameters
 * each call; use a {@linkcode TokenSampler} in loops).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { sampleLogits } from "./sampling.ts";
 * await tf.setBackend("cpu");
 * const logits = tf.tensor2d([[0, 5, 1]]);
 * const out = sampleLogits(logits, { temperature: 0 }, [0]);
 * assert.deepEqual(out.tokens.arraySync(), [1]);
 * tf.dispose([logits, out.tokens, out.logprobs, out.sampledLogprobs]);
 * ```
 *
 * @category Generation
 */
export function sampleLogits(
  logits: Tensor2D,
  params: SamplingParams | SamplingParams[],
  uniforms: ArrayLike<number>,
  history?: Tensor2D,
  forced?: ArrayLike<number>,
): SampleOutput {
  const sampler = new TokenSampler(logits.shape[0], logits.shape[1], params);
  try {
    return sampler.sample(logits, uniforms, history, forced);
  } finally {
    sampler.dispose();
  }
}

/**
 * Where {@linkcode TokenSampler} samples rows that are not all greedy: `"device"` runs the tfjs kernels
 * (broadcast compares and `where` over [B, V]: 7-25 ms per step at V = 50k on wasm), `"host"` reads the
 * logits back once and samples in JavaScript (well under 2 ms per row), `"auto"` (default) is host on the
 * wasm and cpu backends (whose reads are synchronous copies) and device elsewhere (webgpu keeps its
 * readbacks asynchronous). All-greedy steps without forced tokens stay on the device (one argmax).
 *
 * @category Generation
 */
export type SamplerPath = "auto" | "host" | "device";

/**
 * The sampler of {@linkcode TokenSampler} on host arrays: `logits` and `history` are row-major [B, V].
 * Same order of operations and float32 rounding of the filtered logits as the device path (penalty,
 * banning, temperature and the top-k/top-p comparisons are bit-identical); softmax sums run in float64,
 * so a token can differ only when u or p falls within float32 rounding of a boundary.
 * `sortWidth` is the device path's sort width (the largest k of the batch, or V when a row uses top-p
 * alone), which bounds the slots the top-p mass is taken over exactly as there.
 *
 * @example
 * ```ts
 * import { sampleOnHost } from "./sampling.ts";
 * const out = sampleOnHost(Float32Array.of(2, 1, 0, -1), 1, 4, [{ topK: 2 }], [0.9], undefined, undefined, 2);
 * console.log(out.tokens); // Int32Array [1]
 * ```
 *
 * @category Generation
 */
export function sampleOnHost(
  logits: Float32Array,
  B: number,
  V: number,
  params: SamplingParams[],
  uniforms: ArrayLike<number>,
  history?: Float32Array,
  forced?: ArrayLike<number>,
  sortWidth = V,
): { tokens: Int32Array; logprobs: Float32Array; sampledLogprobs: Float32Array } {
  const tokens = new Int32Array(B), logprobs = new Float32Array(B), sampledLogprobs = new Float32Array(B);
  const f = Math.fround;
  const l = new Float32Array(V), e = new Float64Array(V);
  for (let b = 0; b < B; b++) {
    const ps = params[b];
    const x = logits.subarray(b * V, (b + 1) * V);
    const fb = forced ? forced[b] : -1;
    // Penalty, banning and temperature, in float32 as on the device.
    l.set(x);
    let modified = false;
    const pen = f(ps.repetitionPenalty ?? 1);
    if (pen !== 1 && history) {
      const h = history.subarray(b * V, (b + 1) * V);
      for (let i = 0; i < V; i++) if (h[i] > 0) l[i] = l[i] > 0 ? f(l[i] / pen) : f(l[i] * pen);
      modified = true;
    }
    for (const id of ps.bannedTokens ?? []) {
      l[id] = -Infinity;
      modified = true;
    }
    const greedy = (ps.temperature ?? 1) === 0;
    const invT = greedy ? 1 : f(1 / (ps.temperature ?? 1));
    if (invT !== 1) {
      for (let i = 0; i < V; i++) l[i] = f(l[i] * invT);
      modified = true;
    }
    // One exp pass over the filtered logits: e = exp(l - max l).
    let lm = -Infinity, g = 0;
    for (let i = 0; i < V; i++) {
      if (l[i] > lm) {
        lm = l[i];
        g = i;
      }
    }
    let zl = 0;
    for (let i = 0; i < V; i++) zl += e[i] = Math.exp(l[i] - lm);
    // Raw log-softmax normaliser (reuses e when the logits were not modified).
    let lse: number;
    if (!modified) lse = lm + Math.log(zl);
    else {
      let mx = -Infinity, z = 0;
      for (let i = 0; i < V; i++) if (x[i] > mx) mx = x[i];
      for (let i = 0; i < V; i++) z += Math.exp(x[i] - mx);
      lse = mx + Math.log(z);
    }
    if (greedy) {
      const t = fb >= 0 ? fb : g; // g: the first maximum, as argMax
      tokens[b] = t;
      logprobs[b] = x[t] - lse;
      sampledLogprobs[b] = t === g ? 0 : -Infinity;
      continue;
    }
    const k = Math.min(ps.topK ?? 0, V), topP = f(ps.topP ?? 1);
    const threshold = k > 0 || topP < 1
      ? filterThreshold(l, e, lm, zl, Math.min(k, sortWidth), topP, sortWidth)
      : -Infinity;
    // Kept-set normaliser and the inverse CDF in vocabulary order.
    let zq = zl, lastKept = -1;
    if (threshold > -Infinity) {
      zq = 0;
      for (let i = 0; i < V; i++) {
        if (l[i] >= threshold) {
          zq += e[i];
          lastKept = i;
        } else e[i] = 0;
      }
    } else for (let i = V - 1; i >= 0 && lastKept < 0; i--) if (l[i] > -Infinity) lastKept = i;
    const target = f(uniforms[b]) * zq;
    let cum = 0, index = V;
    for (let i = 0; i < V; i++) {
      cum += e[i];
      if (cum > target) {
        index = i;
        break;
      }
    }
    const t = fb >= 0 ? fb : Math.min(index, lastKept);
    tokens[b] = t;
    logprobs[b] = x[t] - lse;
    const v = l[t];
    sampledLogprobs[b] = v > -Infinity && v >= threshold ? v - lm - Math.log(zq) : -Infinity;
  }
  return { tokens, logprobs, sampledLogprobs };
}

/**
 * The smallest kept value under top-k (`k` > 0, ties at the k-th value kept) and top-p (`p` < 1) over
 * the `width` largest values of `l`, as the device path computes it, without sorting the vocabulary:
 * top-k alone is a k-th-largest selection; top-p finds the slot where the descending cumulative mass
 * crosses p with a histogram of log-probabilities and sorts only the values of the crossing bin.
 * `e[i] = exp(l[i] - lm)` with `lm = max l` and `z = sum e`.
 */
function filterThreshold(
  l: Float32Array,
  e: Float64Array,
  lm: number,
  z: number,
  k: number,
  p: number,
  width: number,
): number {
  const V = l.length;
  if (lm === -Infinity) return -Infinity;
  if (k > 0) {
    const thrK = kthLargest(l, k);
    if (p >= 1) return thrK;
    // Top-k then top-p: the kept top-k values (at most `width` of them, as the device's sort), sorted.
    let n = 0;
    for (let i = 0; i < V; i++) if (l[i] >= thrK && l[i] > -Infinity) n++;
    const cand = new Float32Array(n);
    n = 0;
    for (let i = 0; i < V; i++) if (l[i] >= thrK && l[i] > -Infinity) cand[n++] = l[i];
    cand.sort().reverse();
    const m = Math.min(n, width);
    let zk = 0;
    for (let i = 0; i < m; i++) zk += Math.exp(cand[i] - lm);
    let before = 0, last = 0;
    for (let i = 0; i < m && before < p * zk; i++) {
      last = i;
      before += Math.exp(cand[i] - lm);
    }
    return cand[last];
  }
  // Top-p alone (the device sorts all V slots then).
  const bins = 4096, span = 64; // bins of lm - l over [0, span) nats; the last bin takes the rest
  const scale = bins / span;
  const mass = new Float64Array(bins), count = new Int32Array(bins);
  for (let i = 0; i < V; i++) {
    if (!(l[i] > -Infinity)) continue;
    const b = Math.min(bins - 1, Math.floor((lm - l[i]) * scale));
    mass[b] += e[i];
    count[b]++;
  }
  const target = p * z;
  // The crossing bin: the first whose end reaches the target (else the last non-empty one).
  let acc = 0, bin = -1, lastBin = 0;
  for (let b = 0; b < bins; b++) {
    if (count[b] === 0) continue;
    lastBin = b;
    if (acc + mass[b] >= target) {
      bin = b;
      break;
    }
    acc += mass[b];
  }
  if (bin < 0) {
    bin = lastBin;
    acc -= mass[bin];
  }
  const vals = new Float32Array(count[bin]);
  let n = 0;
  for (let i = 0; i < V; i++) {
    if (l[i] > -Infinity && Math.min(bins - 1, Math.floor((lm - l[i]) * scale)) === bin) vals[n++] = l[i];
  }
  vals.sort().reverse();
  let before = acc, last = vals[0];
  for (let i = 0; i < n && before < target; i++) {
    last = vals[i];
    before += Math.exp(vals[i] - lm);
  }
  return last;
}

/** The k-th largest value of `l` (k >= 1), -Infinity when fewer than k values exist. */
function kthLargest(l: Float32Array, k: number): number {
  if (k >= l.length) {
    let mn = Infinity;
    for (let i = 0; i < l.length; i++) if (l[i] < mn) mn = l[i];
    return mn;
  }
  // A min-heap of the k largest seen so far.
  const heap = new Float64Array(k);
  let size = 0;
  for (let i = 0; i < l.length; i++) {
    const v = l[i];
    if (size < k) {
      let j = size++;
      heap[j] = v;
      while (j > 0) {
        const parent = (j - 1) >> 1;
        if (heap[parent] <= heap[j]) break;
        const t = heap[parent];
        heap[parent] = heap[j];
        heap[j] = t;
        j = parent;
      }
    } else if (v > heap[0]) {
      heap[0] = v;
      let j = 0;
      for (;;) {
        const a = 2 * j + 1, c = a + 1;
        let m = j;
        if (a < k && heap[a] < heap[m]) m = a;
        if (c < k && heap[c] < heap[m]) m = c;
        if (m === j) break;
        const t = heap[m];
        heap[m] = heap[j];
        heap[j] = t;
        j = m;
      }
    }
  }
  return heap[0];
}
