/**
 * The `kuramoto` sequence mixer (PhaseGPT's PhaseAttention, spec §2.1–§2.2): token features become angles
 * θ⁰ = π·tanh(W_phase·x + b), S explicit Euler steps of Kuramoto coupling between the same oscillator of
 * different tokens, then a linear readout of the final angles (or of their cos/sin). It replaces softmax
 * attention in the layers it is given.
 *
 * Two named presets: `faithful` (the original code: non-causal mean over all T, repulsive sign, divide by
 * T, raw-angle readout) and `corrected` (causal prefix mean, attractive sign, sin/cos readout).
 *
 * Generation: in a causal mode with the `"prefix"` divisor the per-sequence state is the running sums of
 * cos θ and sin θ of every Euler step (plus each column's own contributions, 2·S·H·N floats per token, from
 * which the sums are rebuilt after a rewind), so a decode step costs O(S·H·N) whatever the length. Every other mode recomputes the dynamics over all cached columns on each
 * step (O(T) per token); the non-causal faithful layer also leaves the outputs of earlier positions as they
 * were computed, so it is not equal to re-running the whole prefix. With the `"T"` divisor, padding columns
 * count in the divisor (the original divides by T also under a mask), so a left-padded ragged batch differs
 * from its rows run alone; the `"prefix"` divisor counts kept tokens only.
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Scalar, Tensor, Tensor1D, Tensor2D, Tensor3D, Tensor4D, Variable } from "../tensor_types.ts";
import { linear } from "../nn/mlp.ts";
import { checkChoice, checkOptionKeys } from "../options.ts";
import { Prng } from "../random/prng.ts";
import {
  type MixerContext,
  type MixerKind,
  type MixerState,
  type ParameterSpec,
  registerMixer,
  type SequenceMixer,
} from "../models/components.ts";
import { requireParameter } from "../models/standard_components.ts";
import type { DecoderConfig, MixerSpec } from "../models/types.ts";
import {
  addFrequencyJitter,
  addPhaseNoise,
  COHERENCE_MODES,
  type CoherenceMode,
  coherenceRegularizer,
  COUPLING_DIVISORS,
  COUPLING_SIGNS,
  type CouplingDivisor,
  couplingField,
  type CouplingSign,
  orderParameter,
  wrapPhase,
} from "./primitives.ts";

/**
 * Readout of the final phases: `"angle"` feeds the wrapped angles to the output Linear (the original,
 * discontinuous at ±π); `"sincos"` feeds cos θ and sin θ (twice the input width).
 *
 * @category PhaseGPT
 */
export type PhaseReadout = "angle" | "sincos";

/**
 * The mixer presets: `faithful` reproduces the original code, `corrected` is causal and textbook.
 *
 * @category PhaseGPT
 */
export type KuramotoPreset = "faithful" | "corrected";

/**
 * Options of the `kuramoto` mixer (the keys of its mixer spec besides `kind` and `layers`).
 *
 * @category PhaseGPT
 */
export interface KuramotoOptions {
  /** Defaults for the fields below (default `"faithful"`); fields given explicitly win. */
  preset?: KuramotoPreset;
  /** Oscillators N per head (default headDim, as the original's `d_model // n_heads`). */
  numOscillators?: number;
  /** Euler steps S (default 10). */
  steps?: number;
  /** Step size (default 0.1). */
  dt?: number;
  /** Initial per-head coupling K0 (default 1); K is learnable and unconstrained. */
  couplingInit?: number;
  /** Std of the learnable natural frequencies ω at init (default 0.1). */
  omegaStd?: number;
  /** Coupling sign (faithful: `"repulsive"`, corrected: `"attractive"`). */
  sign?: CouplingSign;
  /** Couple only to earlier tokens (faithful: false, corrected: true). */
  causal?: boolean;
  /** Divisor of the coupling sum (faithful: `"T"`, corrected: `"prefix"`). */
  divisor?: CouplingDivisor;
  /** Readout (faithful: `"angle"`, corrected: `"sincos"`). */
  readout?: PhaseReadout;
  /** σ of phase noise in training (default 0: the original never adds it); off in eval. */
  phaseNoise?: number;
  /** Where the noise goes: `"step"` after each Euler step (default), or `"init"` once on θ⁰. */
  noiseAt?: "step" | "init";
  /** Multiplicative jitter of ω, resampled each training forward (default 0). */
  freqJitter?: number;
  /**
   * The aux loss term `coherence` (the regulariser with λ = 1; its weight comes from the training config's
   * `loss.terms.coherence`): target and mode, or false to skip it. Default `{ target: 0.45, mode: "ceiling" }`.
   */
  coherence?: { target?: number; mode?: CoherenceMode } | false;
  /** Seed of the noise and jitter streams (default 0; each training forward draws a fresh stream). */
  noiseSeed?: number;
}

/**
 * The mixer options with every default filled in.
 *
 * @category PhaseGPT
 */
export interface ResolvedKuramotoOptions {
  /** The preset the defaults came from. */
  preset: KuramotoPreset;
  /** Oscillators per head. */
  numOscillators: number;
  /** Euler steps. */
  steps: number;
  /** Step size. */
  dt: number;
  /** Initial coupling. */
  couplingInit: number;
  /** Init std of ω. */
  omegaStd: number;
  /** Coupling sign. */
  sign: CouplingSign;
  /** Causal coupling. */
  causal: boolean;
  /** Divisor. */
  divisor: CouplingDivisor;
  /** Readout. */
  readout: PhaseReadout;
  /** Phase-noise σ (training only). */
  phaseNoise: number;
  /** Where the noise is added. */
  noiseAt: "step" | "init";
  /** Frequency jitter (training only). */
  freqJitter: number;
  /** Regulariser term settings, or false. */
  coherence: { target: number; mode: CoherenceMode } | false;
  /** Noise seed. */
  noiseSeed: number;
}

/**
 * The two mixer presets' settings (what `preset` fills in).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KURAMOTO_PRESETS } from "../../mod.ts";
 * assert.deepEqual(KURAMOTO_PRESETS.corrected, { sign: "attractive", causal: true, divisor: "prefix", readout: "sincos" });
 * ```
 *
 * @category PhaseGPT
 */
export const KURAMOTO_PRESETS: Readonly<
  Record<
    KuramotoPreset,
    { sign: CouplingSign; causal: boolean; divisor: CouplingDivisor; readout: PhaseReadout }
  >
> = {
  faithful: { sign: "repulsive", causal: false, divisor: "T", readout: "angle" },
  corrected: { sign: "attractive", causal: true, divisor: "prefix", readout: "sincos" },
};

/**
 * The option keys of the `kuramoto` mixer.
 *
 * @category PhaseGPT
 */
export const KURAMOTO_OPTION_KEYS: readonly (keyof KuramotoOptions)[] = [
  "preset",
  "numOscillators",
  "steps",
  "dt",
  "couplingInit",
  "omegaStd",
  "sign",
  "causal",
  "divisor",
  "readout",
  "phaseNoise",
  "noiseAt",
  "freqJitter",
  "coherence",
  "noiseSeed",
];

const READOUTS: readonly PhaseReadout[] = ["angle", "sincos"];
const PRESET_NAMES: readonly KuramotoPreset[] = ["faithful", "corrected"];

/**
 * Checks a `kuramoto` mixer spec and fills in the defaults; each bad field gets one message naming what is
 * allowed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gpt2SmallConfig, resolveKuramotoOptions } from "../../mod.ts";
 * const c = gpt2SmallConfig({ nLayers: 2, dModel: 64, nHeads: 2 });
 * const o = resolveKuramotoOptions({ kind: "kuramoto", preset: "corrected", numOscillators: 8 }, c);
 * assert.equal(o.causal, true);
 * assert.equal(o.steps, 10);
 * assert.throws(() => resolveKuramotoOptions({ kind: "kuramoto", steps: 0 }, c), /steps must be a positive integer/);
 * ```
 *
 * @category PhaseGPT
 */
export function resolveKuramotoOptions(spec: MixerSpec, config: DecoderConfig): ResolvedKuramotoOptions {
  const where = "kuramoto mixer";
  const { kind: _k, layers: _l, ...opts } = spec as MixerSpec & KuramotoOptions;
  checkOptionKeys(opts, KURAMOTO_OPTION_KEYS, where);
  const preset = checkChoice(opts.preset ?? "faithful", PRESET_NAMES, `${where} preset`);
  const base = KURAMOTO_PRESETS[preset];
  const posInt = (key: string, v: unknown): number => {
    if (!Number.isInteger(v) || (v as number) <= 0) {
      throw new Error(`${where}: ${key} must be a positive integer (1, 2, ...), got ${JSON.stringify(v)}`);
    }
    return v as number;
  };
  const num = (key: string, v: unknown, min: number, strict: boolean): number => {
    if (typeof v !== "number" || !Number.isFinite(v) || v < min || (strict && v === min)) {
      // JSON.stringify writes NaN and ±Infinity as null: say what the value was.
      const got = typeof v === "number" ? String(v) : JSON.stringify(v);
      const range = min === -Infinity ? "" : ` ${strict ? ">" : "≥"} ${min}`;
      throw new Error(`${where}: ${key} must be a finite number${range}, got ${got}`);
    }
    return v;
  };
  if (opts.causal !== undefined && typeof opts.causal !== "boolean") {
    throw new Error(`${where}: causal must be true or false, got ${JSON.stringify(opts.causal)}`);
  }
  let coherence: ResolvedKuramotoOptions["coherence"] = { target: 0.45, mode: "ceiling" };
  if (opts.coherence === false) coherence = false;
  else if (opts.coherence !== undefined) {
    checkOptionKeys(opts.coherence, ["target", "mode"], `${where} coherence`);
    coherence = {
      target: num("coherence.target", opts.coherence.target ?? 0.45, -Infinity, false),
      mode: checkChoice(opts.coherence.mode ?? "ceiling", COHERENCE_MODES, `${where} coherence mode`),
    };
  }
  return {
    preset,
    numOscillators: posInt("numOscillators", opts.numOscillators ?? config.headDim),
    steps: posInt("steps", opts.steps ?? 10),
    dt: num("dt", opts.dt ?? 0.1, 0, true),
    couplingInit: num("couplingInit", opts.couplingInit ?? 1, -Infinity, false),
    omegaStd: num("omegaStd", opts.omegaStd ?? 0.1, 0, false),
    sign: checkChoice(opts.sign ?? base.sign, COUPLING_SIGNS, `${where} sign`),
    causal: opts.causal ?? base.causal,
    divisor: checkChoice(opts.divisor ?? base.divisor, COUPLING_DIVISORS, `${where} divisor`),
    readout: checkChoice(opts.readout ?? base.readout, READOUTS, `${where} readout`),
    phaseNoise: num("phaseNoise", opts.phaseNoise ?? 0, 0, false),
    noiseAt: checkChoice(opts.noiseAt ?? "step", ["step", "init"] as const, `${where} noiseAt`),
    freqJitter: num("freqJitter", opts.freqJitter ?? 0, 0, false),
    coherence,
    noiseSeed: num("noiseSeed", opts.noiseSeed ?? 0, -Infinity, false),
  };
}

/**
 * Running sums of the prefix-sum state: Σ cos θ^s and Σ sin θ^s over the kept columns for each Euler step
 * s (`[S, B, H, 1, N]`) and the kept-column count (`[B or 1, 1, 1, 1]`).
 *
 * @category PhaseGPT
 */
export interface PrefixTotals {
  /** Σ cos θ^s, `[S, B, H, 1, N]`. */
  cos: Tensor;
  /** Σ sin θ^s, `[S, B, H, 1, N]`. */
  sin: Tensor;
  /** Kept columns, `[B or 1, 1, 1, 1]`. */
  count: Tensor;
}

/** What a fast-state forward hands to {@linkcode PrefixSumState.commit}. */
interface PrefixUpdate {
  /** New columns' cos θ^s and sin θ^s, `[S, B, H, t, N]` (unmasked). */
  cos: Tensor;
  sin: Tensor;
  /** Inclusive totals after the new columns. */
  totals: PrefixTotals;
}

/**
 * The causal prefix-mean mixer's per-sequence state: the running sums of cos θ^s and sin θ^s over the
 * kept columns for each Euler step s (so decoding is O(1) in the length), and each column's own
 * contributions (a list of chunks, appended in O(1)) from which the sums are rebuilt after a rewind.
 *
 * @category PhaseGPT
 */
export class PrefixSumState implements MixerState {
  #chunks: { cos: Tensor; sin: Tensor }[] = [];
  #totals: PrefixTotals | null = null;
  /** Sums are stale after a rewind or row selection (rebuilt from the chunks at the next forward). */
  #stale = false;

  /** Columns stored. */
  get columns(): number {
    return this.#chunks.reduce((a, c) => a + (c.cos.shape[3] ?? 0), 0);
  }

  /**
   * The running sums over the cached columns, rebuilding them when stale from the chunks and the cached
   * part of `valid` (`[B|1, L + t]`, absent = all valid). Null before the first forward. Call in a tidy.
   */
  offsets(valid: Tensor2D | undefined): PrefixTotals | null {
    const cols = this.columns;
    if (cols === 0) return null;
    if (this.#totals && !this.#stale) return this.#totals;
    const cos = this.#chunks.length === 1
      ? this.#chunks[0].cos
      : tf.concat(this.#chunks.map((c) => c.cos), 3);
    const sin = this.#chunks.length === 1
      ? this.#chunks[0].sin
      : tf.concat(this.#chunks.map((c) => c.sin), 3);
    if (!valid) {
      return { cos: tf.sum(cos, 3, true), sin: tf.sum(sin, 3, true), count: tf.fill([1, 1, 1, 1], cols) };
    }
    const v = tf.slice(valid, [0, 0], [-1, cols]);
    const m = tf.reshape(v, [1, v.shape[0], 1, cols, 1]);
    return {
      cos: tf.sum(tf.mul(cos, m), 3, true),
      sin: tf.sum(tf.mul(sin, m), 3, true),
      count: tf.reshape(tf.sum(v, 1), [v.shape[0], 1, 1, 1]),
    };
  }

  /** Appends the new columns and takes the new totals. */
  commit(update: unknown): void {
    const u = update as PrefixUpdate;
    this.#chunks.push({ cos: tf.keep(u.cos), sin: tf.keep(u.sin) });
    this.#setTotals({
      cos: tf.keep(u.totals.cos),
      sin: tf.keep(u.totals.sin),
      count: tf.keep(u.totals.count),
    });
    this.#stale = false;
  }

  /** Keeps these columns (one gather over the concatenated chunks); the sums are rebuilt later. */
  keepColumns(columns: number[]): void {
    if (this.columns === 0) return;
    if (columns.length === 0) return this.dispose();
    const prefix = columns.every((c, i) => c === i);
    if (prefix && columns.length === this.columns) return;
    const merged = tf.tidy(() => {
      const idx = tf.tensor1d(columns, "int32");
      const cat = (k: "cos" | "sin") => tf.gather(tf.concat(this.#chunks.map((c) => c[k]), 3), idx, 3);
      return { cos: cat("cos"), sin: cat("sin") };
    });
    this.#disposeChunks();
    this.#chunks = [merged];
    this.#stale = true;
  }

  /** Keeps these rows, in this order; the sums are rebuilt at the next forward. */
  selectRows(rows: number[]): void {
    if (this.columns === 0) return;
    const picked = tf.tidy(() => {
      const idx = tf.tensor1d(rows, "int32");
      return this.#chunks.map((c) => ({ cos: tf.gather(c.cos, idx, 1), sin: tf.gather(c.sin, idx, 1) }));
    });
    this.#disposeChunks();
    this.#chunks = picked;
    this.#stale = true;
  }

  /** A truncated row invalidates columns; the sums are rebuilt from the validity at the next forward. */
  truncateRow(_row: number, _length: number): void {
    this.#stale = true;
  }

  /** Frees every tensor. */
  dispose(): void {
    this.#disposeChunks();
    this.#chunks = [];
    this.#setTotals(null);
    this.#stale = false;
  }

  #disposeChunks(): void {
    for (const c of this.#chunks) tf.dispose([c.cos, c.sin]);
  }

  #setTotals(t: PrefixTotals | null): void {
    const old = this.#totals;
    this.#totals = t;
    if (old) tf.dispose([old.cos, old.sin, old.count]);
  }
}

/**
 * The recomputing mixers' per-sequence state: the layer inputs of every column `[B, L, d]` (the
 * dynamics are re-run over all of them on each step).
 *
 * @category PhaseGPT
 */
export class PhaseInputState implements MixerState {
  #x: Tensor3D | null = null;

  /** The stored inputs, or null. */
  get inputs(): Tensor3D | null {
    return this.#x;
  }

  /** Takes the full `[B, L + t, d]` inputs. */
  commit(update: unknown): void {
    const next = tf.keep(update as Tensor3D);
    if (this.#x !== next) this.#x?.dispose();
    this.#x = next;
  }

  /** Keeps these columns. */
  keepColumns(columns: number[]): void {
    if (!this.#x) return;
    const old = this.#x;
    if (columns.length === old.shape[1] && columns.every((c, i) => c === i)) return;
    this.#x = columns.length ? tf.tidy(() => tf.gather(old, tf.tensor1d(columns, "int32"), 1)) : null;
    old.dispose();
  }

  /** Keeps these rows. */
  selectRows(rows: number[]): void {
    if (!this.#x) return;
    const old = this.#x;
    this.#x = tf.tidy(() => tf.gather(old, tf.tensor1d(rows, "int32"), 0));
    old.dispose();
  }

  /** Frees the inputs. */
  dispose(): void {
    this.#x?.dispose();
    this.#x = null;
  }
}

/** Whether these options allow the O(1) prefix-sum generation state. */
function fastState(o: ResolvedKuramotoOptions): boolean {
  return o.causal && o.divisor === "prefix";
}

/**
 * The `kuramoto` mixer kind: parameters `blocks.{L}.attn.{W_phase, b_phase, omega, coupling, W_out, b_out}`,
 * hook points `hook_phases_init` (θ⁰) and `hook_phases` (θ^S, both `[B, H, T, N]`), metrics `R` (the layer's
 * R over tokens and oscillators, mean over batch and heads) and `R_h{h}` per head, and the aux loss term
 * `coherence`. Register-on-import: importing `lib/phasegpt/mod.ts` (or `mod.ts`) makes it available.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { countParameters, gpt2SmallConfig, kuramotoMixer } from "../../mod.ts";
 * const c = gpt2SmallConfig({ nLayers: 12, dModel: 768, nHeads: 12, mixers: [{ kind: "attention" }, { kind: "kuramoto", layers: [7], numOscillators: 32 }] });
 * const p = kuramotoMixer.parameters({ kind: "kuramoto", numOscillators: 32 }, c, 7);
 * assert.equal([...p.values()].reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0), 591372); // spec §2.1
 * assert.deepEqual(kuramotoMixer.hookPoints({ kind: "kuramoto" }, c, 7), ["hook_phases_init", "hook_phases"]);
 * assert.ok(countParameters(c) < countParameters(gpt2SmallConfig()));
 * ```
 *
 * @category PhaseGPT
 */
export const kuramotoMixer: MixerKind = {
  kind: "kuramoto",
  options: KURAMOTO_OPTION_KEYS,
  validate(spec, config) {
    resolveKuramotoOptions(spec, config);
  },
  parameters(spec, c, layer) {
    const o = resolveKuramotoOptions(spec, c);
    const p = `blocks.${layer}.attn`, hn = c.nHeads * o.numOscillators;
    const s = new Map<string, ParameterSpec>();
    s.set(`${p}.W_phase`, { shape: [c.dModel, hn], init: "normal" });
    s.set(`${p}.b_phase`, { shape: [hn], init: "zeros" });
    s.set(`${p}.omega`, { shape: [c.nHeads, o.numOscillators], init: { std: o.omegaStd } });
    s.set(`${p}.coupling`, { shape: [c.nHeads], init: { fill: o.couplingInit } });
    // The original re-initialises from_phase to N(0, 0.02²) with no residual scaling: "normal".
    s.set(`${p}.W_out`, { shape: [o.readout === "sincos" ? 2 * hn : hn, c.dModel], init: "normal" });
    s.set(`${p}.b_out`, { shape: [c.dModel], init: "zeros" });
    return s;
  },
  hookPoints() {
    return ["hook_phases_init", "hook_phases"];
  },
  create(spec, config, params, layer) {
    return createKuramotoMixer(resolveKuramotoOptions(spec, config), config, params, layer);
  },
};

function createKuramotoMixer(
  o: ResolvedKuramotoOptions,
  config: DecoderConfig,
  params: Map<string, Variable>,
  layer: number,
): SequenceMixer {
  const p = `blocks.${layer}.attn`;
  const w = {
    wPhase: requireParameter(params, `${p}.W_phase`),
    bPhase: requireParameter(params, `${p}.b_phase`),
    omega: requireParameter(params, `${p}.omega`) as Tensor2D,
    coupling: requireParameter(params, `${p}.coupling`) as Tensor1D,
    wOut: requireParameter(params, `${p}.W_out`),
    bOut: requireParameter(params, `${p}.b_out`),
  };
  const H = config.nHeads, N = o.numOscillators;
  const hookInit = `${p}.hook_phases_init`, hookFinal = `${p}.hook_phases`;
  let calls = 0; // training forwards so far: each draws its own noise stream

  /** θ⁰ = π·tanh(W x + b) as `[B, H, T, N]` (feature index h·N + n, as the original). */
  const initialPhases = (x: Tensor3D): Tensor4D => {
    const [b, t] = x.shape;
    const proj = tf.reshape(linear(x, w.wPhase, w.bPhase), [b, t, H, N]);
    return tf.mul(tf.tanh(tf.transpose(proj, [0, 2, 1, 3])), Math.PI) as Tensor4D;
  };

  const readout = (theta: Tensor4D): Tensor3D => {
    const [b, , t] = theta.shape;
    const bthn = tf.transpose(theta, [0, 2, 1, 3]);
    const feats = o.readout === "sincos" ? tf.concat([tf.cos(bthn), tf.sin(bthn)], 3) : bthn;
    return linear(tf.reshape(feats, [b, t, -1]) as Tensor3D, w.wOut, w.bOut);
  };

  /**
   * S Euler steps. `mask` is the padding mask over the columns of `theta`; `offsets(s)` gives the sums of
   * earlier columns for step s (fast state). Returns θ^S and, for the fast state, what to commit.
   */
  const integrate = (
    theta0: Tensor4D,
    omega: Tensor2D,
    training: boolean,
    mask: Tensor2D | undefined,
    offsets: PrefixTotals | null,
    collect: boolean,
    rng: Prng | null,
  ): { theta: Tensor4D; update?: PrefixUpdate } => {
    const dtOmega = tf.mul(tf.reshape(omega, [1, H, 1, N]), o.dt);
    const noisy = training && rng !== null && o.phaseNoise > 0;
    let theta = noisy && o.noiseAt === "init" ? addPhaseNoise(theta0, o.phaseNoise, rng) : theta0;
    const cosList: Tensor[] = [], sinList: Tensor[] = [];
    const tot: { cos: Tensor[]; sin: Tensor[] } = { cos: [], sin: [] };
    let count: Tensor | null = null;
    for (let s = 0; s < o.steps; s++) {
      if (collect) {
        cosList.push(tf.cos(theta));
        sinList.push(tf.sin(theta));
      }
      const offset = offsets
        ? {
          cos: tf.squeeze(tf.slice(offsets.cos, [s, 0, 0, 0, 0], [1, -1, -1, -1, -1]), [0]),
          sin: tf.squeeze(tf.slice(offsets.sin, [s, 0, 0, 0, 0], [1, -1, -1, -1, -1]), [0]),
          count: offsets.count,
        }
        : undefined;
      const { field, totals } = couplingField(theta, w.coupling, {
        sign: o.sign,
        causal: o.causal,
        divisor: o.divisor,
        mask,
        offset,
        scale: o.dt,
        totals: collect,
      });
      if (collect && totals) {
        tot.cos.push(totals.cos);
        tot.sin.push(totals.sin);
        count = totals.count;
      }
      theta = wrapPhase(tf.add(tf.add(theta, dtOmega), field) as Tensor4D); // field already carries dt
      if (noisy && o.noiseAt === "step") theta = addPhaseNoise(theta, o.phaseNoise, rng);
    }
    if (!collect) return { theta };
    return {
      theta,
      update: {
        cos: tf.stack(cosList),
        sin: tf.stack(sinList),
        totals: { cos: tf.stack(tot.cos), sin: tf.stack(tot.sin), count: count! },
      },
    };
  };

  return {
    forward(x: Tensor3D, ctx: MixerContext): { out: Tensor3D; update?: unknown } {
      const state = ctx.state as PrefixSumState | PhaseInputState | null;
      const fire = ctx.fire;
      const training = ctx.training;
      const rng = training && (o.phaseNoise > 0 || o.freqJitter > 0)
        ? new Prng(o.noiseSeed + (ctx.dropout?.seed ?? 0), calls++ * 4096 + layer)
        : null;
      const omega = rng && o.freqJitter > 0 ? addFrequencyJitter(w.omega, o.freqJitter, rng) : w.omega;
      const t = x.shape[1];

      if (state instanceof PrefixSumState) {
        const cached = state.columns;
        const offsets = state.offsets(ctx.valid);
        const mask = ctx.valid ? tf.slice(ctx.valid, [0, cached], [-1, t]) as Tensor2D : undefined;
        let theta0 = initialPhases(x);
        if (fire) theta0 = fire(hookInit, layer, theta0) as Tensor4D;
        let { theta, update } = integrate(theta0, omega, training, mask, offsets, true, rng);
        if (fire) theta = fire(hookFinal, layer, theta) as Tensor4D;
        return { out: readout(theta), update };
      }

      // Recompute path (and the plain forward): every column's dynamics over the full sequence.
      const all = state instanceof PhaseInputState && state.inputs
        ? tf.concat([state.inputs, x], 1) as Tensor3D
        : x;
      const cols = all.shape[1];
      let theta0 = initialPhases(all);
      if (fire) theta0 = fire(hookInit, layer, theta0) as Tensor4D;
      let { theta } = integrate(theta0, omega, training, ctx.valid, null, false, rng);
      if (fire) theta = fire(hookFinal, layer, theta) as Tensor4D;
      const mine = cols === t ? theta : tf.slice(theta, [0, 0, cols - t, 0], [-1, -1, t, -1]) as Tensor4D;
      if (!state) {
        // The layer's R (spec §2.4) per head, logged; the regulariser as an aux term. Not while generating.
        const r = tf.mean(orderParameter(theta, "layer"), 0) as Tensor1D; // [H]
        ctx.metric("R", tf.mean(r) as Scalar);
        for (let h = 0; h < H; h++) ctx.metric(`R_h${h}`, tf.reshape(tf.slice(r, [h], [1]), []) as Scalar);
        if (o.coherence) {
          ctx.loss("coherence", coherenceRegularizer(theta, { ...o.coherence, lambda: 1 }));
        }
      }
      const out = readout(mine);
      return state ? { out, update: all } : { out };
    },
    createState(): MixerState {
      return fastState(o) ? new PrefixSumState() : new PhaseInputState();
    },
  };
}

registerMixer(kuramotoMixer);
