/**
 * From-scratch decoders for the trainer: presets (GPT-2, "GPT-2-New"), a closed-form parameter count, and
 * seeded random initialisation from the project PRNG.
 *
 * @module
 */
import { checkOptionKeys } from "../options.ts";
import { ensureBackendSync } from "../backend/backend.ts";
import { tf } from "../deps.ts";
import type { Tensor } from "../tensor_types.ts";
import { fillNormal, Prng } from "../random/prng.ts";
import { Decoder } from "./decoder.ts";
import { decoderParameterSpecs } from "./params.ts";
import type { ParameterInit } from "./components.ts";
import type { DecoderConfig } from "./types.ts";

/**
 * GPT-2 (124M by default): learned positions, LayerNorm with bias, tanh GELU, biases everywhere, tied
 * head. Any field can be overridden; `headDim` and `dMlp` follow `dModel`/`nHeads` unless given.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { countParameters, gpt2SmallConfig } from "./scratch.ts";
 * assert.equal(countParameters(gpt2SmallConfig()), 124439808);
 * ```
 *
 * @category Models
 */
export function gpt2SmallConfig(overrides: Partial<DecoderConfig> = {}): DecoderConfig {
  const dModel = overrides.dModel ?? 768;
  const nHeads = overrides.nHeads ?? 12;
  return {
    family: "scratch",
    vocabSize: 50257,
    nLayers: 12,
    maxPositions: 1024,
    norm: "layernorm",
    normEps: 1e-5,
    positional: "learned",
    mlp: "gelu_new",
    parallelResidual: false,
    qkvBias: true,
    attnOutBias: true,
    mlpBias: true,
    normBias: true,
    tieEmbeddings: true,
    dropout: 0,
    ...overrides,
    dModel,
    nHeads,
    nKvHeads: overrides.nKvHeads ?? nHeads,
    headDim: overrides.headDim ?? dModel / nHeads,
    dMlp: overrides.dMlp ?? 4 * dModel,
  };
}

/**
 * SwiGLU hidden width of the reFlow / GPT-2-New block: `256 * ceil((8 d / 3) / 256)` (2816 for d = 1024,
 * 1536 for d = 512).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { swigluHidden } from "./scratch.ts";
 * assert.deepEqual([swigluHidden(1024), swigluHidden(512)], [2816, 1536]);
 * ```
 *
 * @category Models
 */
export function swigluHidden(dModel: number, multiple = 256): number {
  return multiple * Math.ceil((8 * dModel) / 3 / multiple);
}

/**
 * "GPT-2-New" (reFlow spec section 1.3/1.5): RMSNorm (eps 1e-5), RoPE (theta 10000, full head, rotate-half),
 * SwiGLU with `swigluHidden(d)`, no biases, tied head, vocabulary 50304. Defaults are the spec's 36-layer,
 * d = 1024, 16-head model (514,008,064 parameters); override fields for smaller ones.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { countParameters, gpt2NewConfig } from "./scratch.ts";
 * assert.equal(countParameters(gpt2NewConfig()), 514008064);
 * assert.equal(gpt2NewConfig({ dModel: 512, nHeads: 8, nLayers: 6 }).dMlp, 1536);
 * ```
 *
 * @category Models
 */
export function gpt2NewConfig(overrides: Partial<DecoderConfig> = {}): DecoderConfig {
  const dModel = overrides.dModel ?? 1024;
  const nHeads = overrides.nHeads ?? 16;
  return {
    family: "scratch",
    vocabSize: 50304,
    nLayers: 36,
    maxPositions: 1024,
    norm: "rmsnorm",
    normEps: 1e-5,
    positional: "rotary",
    ropeTheta: 10000,
    mlp: "swiglu",
    parallelResidual: false,
    qkvBias: false,
    attnOutBias: false,
    mlpBias: false,
    normBias: false,
    tieEmbeddings: true,
    dropout: 0,
    ...overrides,
    dModel,
    nHeads,
    nKvHeads: overrides.nKvHeads ?? nHeads,
    headDim: overrides.headDim ?? dModel / nHeads,
    dMlp: overrides.dMlp ?? swigluHidden(dModel),
  };
}

// The exact count is derived from the component declarations (params.ts); re-exported here for callers
// that import the presets and the count together.
export { countParameters } from "./params.ts";

/**
 * Options for {@linkcode createDecoder}.
 *
 * @category Models
 */
export interface CreateDecoderOptions {
  /** Seed of the initialisation (each parameter draws from its own PRNG stream). */
  seed: number;
  /**
   * "normal": every matrix ~ N(0, std^2); "scaled" (default, GPT-2 / nanoGPT): the residual output
   * projections (`attn.W_O`, `mlp.W_out`) use std / sqrt(2 nLayers). Norm weights 1, biases 0.
   */
  init?: "normal" | "scaled";
  /** Standard deviation of the matrices. Default 0.02. */
  std?: number;
  /**
   * Per-parameter override of the rule above: return `{ std }` for N(0, std^2), `{ fill }` for a constant,
   * or undefined to keep the initialiser the component declared.
   */
  initFor?: (name: string, shape: number[]) => ParameterInit | undefined;
}

/**
 * A randomly initialised decoder, reproducible from `seed`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { createDecoder, gpt2NewConfig } from "./scratch.ts";
 * await tf.ready();
 * const model = createDecoder(gpt2NewConfig({ nLayers: 2, dModel: 64, nHeads: 4, vocabSize: 256 }), { seed: 1337 });
 * assert.equal(model.numParameters, countParameters(model.config));
 * model.dispose();
 * ```
 *
 * @category Models
 */
export function createDecoder(config: DecoderConfig, options: CreateDecoderOptions): Decoder {
  checkOptionKeys(options, ["seed", "init", "std", "initFor"], "createDecoder");
  ensureBackendSync();
  if (!Number.isFinite(options.seed)) throw new Error("createDecoder: options.seed must be a number");
  const specs = decoderParameterSpecs(config);
  const std = options.std ?? 0.02;
  const scaledStd = (options.init ?? "scaled") === "scaled" ? std / Math.sqrt(2 * config.nLayers) : std;
  const tensors = new Map<string, Tensor>();
  let stream = 0;
  for (const [name, { shape, init: declared }] of specs) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    const init = options.initFor?.(name, shape) ?? declared;
    // Each parameter draws from its own stream, numbered in declaration order.
    const rng = () => new Prng(options.seed, stream);
    if (init === "ones") data.fill(1);
    else if (init === "zeros") data.fill(0);
    else if (init === "normal") fillNormal(data, 0, std, rng());
    else if (init === "residual") fillNormal(data, 0, scaledStd, rng());
    else if ("fill" in init) data.fill(init.fill);
    else fillNormal(data, 0, init.std, rng());
    stream++;
    tensors.set(name, tf.tensor(data, shape, "float32"));
  }
  return new Decoder(config, tensors);
}
