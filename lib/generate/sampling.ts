/**
 * The library's one token sampler: greedy, temperature, top-k, top-p, repetition penalty and banned
 * tokens, run on the device over a batch of logits [B, V] with parameters per row.
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
 * import { tf } from "../deps.ts";
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
 * import { tf } from "../deps.ts";
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
  #params: SamplingParams[];
  #tensors: ParamTensors | null = null;
  #iota: tf.Tensor2D | null = null;

  /**
   * A sampler for `batchSize` rows over `vocabSize` logits.
   *
   * @param params one params object for every row, or one per row
   */
  constructor(batchSize: number, vocabSize: number, params: SamplingParams | SamplingParams[] = {}) {
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
 * import { tf } from "../deps.ts";
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
