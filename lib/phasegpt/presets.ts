/**
 * PhaseGPT's models as data: the original's GPT-2 (spec §1: 12×768, 12 heads, character vocabulary 65,
 * T = 512, exact-erf GELU, LayerNorm eps 1e-5, learned positions, tied head, dropout 0.1) with `kuramoto`
 * mixers at any block indices, the Phase A configurations of spec §5 as registered presets, and scaled
 * presets with the same ratios that train on a laptop CPU.
 *
 * The original initialises every Linear and Embedding N(0, 0.02²) with no residual scaling: train these
 * presets with `model.init: "normal"` (or {@linkcode createPhaseGPT}), not the default "scaled".
 *
 * @module
 */
import { gpt2SmallConfig } from "../models/scratch.ts";
import { createDecoder } from "../models/scratch.ts";
import type { Decoder } from "../models/decoder.ts";
import { registerPreset } from "../models/presets.ts";
import type { DecoderConfig, MixerSpec } from "../models/types.ts";
import { checkOptionKeys } from "../options.ts";
import { type KuramotoOptions, resolveKuramotoOptions } from "./mixer.ts";
import "./mixer.ts";

/**
 * Options of {@linkcode phaseGPTConfig}.
 *
 * @category PhaseGPT
 */
export interface PhaseGPTOptions {
  /** Block indices (0-based) whose attention is replaced by a `kuramoto` mixer (default none: baseline). */
  phaseLayers?: number[];
  /** The mixer's options (preset, numOscillators, couplingInit, …). */
  mixer?: KuramotoOptions;
  /** Any architecture field to override (vocabSize, dModel, nLayers, nHeads, maxPositions, …). */
  model?: Partial<DecoderConfig>;
}

/**
 * The original's GPT-2 with `kuramoto` mixers at `phaseLayers`. Indices out of range, N or steps ≤ 0 and
 * unknown mixer options are refused with one message naming what is allowed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { countParameters, phaseGPTConfig } from "../../mod.ts";
 * const winner = phaseGPTConfig({ phaseLayers: [7], mixer: { numOscillators: 32, couplingInit: 1 } });
 * assert.equal(countParameters(winner), 83728140); // 83,285,004 non-embedding + 577·768 embeddings
 * assert.throws(() => phaseGPTConfig({ phaseLayers: [12] }), /phase layer 12 is out of range: use 0..11/);
 * ```
 *
 * @category PhaseGPT
 */
export function phaseGPTConfig(options: PhaseGPTOptions = {}): DecoderConfig {
  checkOptionKeys(options, ["phaseLayers", "mixer", "model"], "phaseGPTConfig");
  const base = gpt2SmallConfig({
    vocabSize: 65,
    maxPositions: 512,
    mlp: "gelu", // PyTorch's default exact-erf GELU
    normEps: 1e-5,
    dropout: 0.1,
    ...options.model,
  });
  const layers = options.phaseLayers ?? [];
  if (!Array.isArray(layers)) throw new Error("phaseGPTConfig: phaseLayers must be a list of block indices");
  for (const l of layers) {
    if (!Number.isInteger(l) || l < 0 || l >= base.nLayers) {
      throw new Error(
        `phaseGPTConfig: phase layer ${l} is out of range: use 0..${
          base.nLayers - 1
        } (this model has ${base.nLayers} blocks)`,
      );
    }
  }
  if (layers.length === 0) return { ...base, mixers: [{ kind: "attention" }] };
  const spec: MixerSpec = {
    kind: "kuramoto",
    layers: [...new Set(layers)].sort((a, b) => a - b),
    ...options.mixer,
  };
  resolveKuramotoOptions(spec, base); // refuse bad options here, with the mixer's messages
  return { ...base, mixers: [{ kind: "attention" }, spec] };
}

/**
 * A PhaseGPT model initialised as the original: every matrix N(0, std²) (default 0.02) with no residual
 * scaling, biases 0, LayerNorm 1/0, ω ~ N(0, 0.1²), K = K0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPhaseGPT, initBackend, phaseGPTConfig } from "../../mod.ts";
 * await initBackend({ backend: "cpu" });
 * const m = createPhaseGPT(phaseGPTConfig({ phaseLayers: [1], model: { nLayers: 2, dModel: 32, nHeads: 2, maxPositions: 16 }, mixer: { numOscillators: 4 } }), 0);
 * assert.ok(m.parameters().has("blocks.1.attn.coupling"));
 * m.dispose();
 * ```
 *
 * @category PhaseGPT
 */
export function createPhaseGPT(config: DecoderConfig, seed: number, std = 0.02): Decoder {
  return createDecoder(config, { seed, init: "normal", std });
}

/**
 * One preset of the table: the registered name, phase layers, N and K0 (Phase A, spec §5).
 *
 * @category PhaseGPT
 */
export interface PhaseGPTPresetSpec {
  /** Registered preset name. */
  name: string;
  /** Phase layer indices (empty for the baseline). */
  phaseLayers: number[];
  /** Oscillators per head. */
  numOscillators?: number;
  /** Initial coupling. */
  couplingInit?: number;
  /** Reported best validation perplexity of the original (teacher-forced, with the leak). */
  reportedPpl?: number;
}

/**
 * The Phase A configurations of spec §5 at the original size (registered as presets with the faithful
 * mixer). Append `-corrected` to any phase preset for the causal, attractive, sin/cos mixer.
 *
 * @category PhaseGPT
 */
export const PHASE_A_PRESETS: readonly PhaseGPTPresetSpec[] = [
  { name: "phasegpt-baseline", phaseLayers: [], reportedPpl: 4.97 },
  { name: "phasegpt-l7-n32-k1", phaseLayers: [7], numOscillators: 32, couplingInit: 1, reportedPpl: 4.85 },
  { name: "phasegpt-l6-n32-k1", phaseLayers: [6], numOscillators: 32, couplingInit: 1, reportedPpl: 4.86 },
  { name: "phasegpt-l6-n16-k1", phaseLayers: [6], numOscillators: 16, couplingInit: 1, reportedPpl: 4.86 },
  { name: "phasegpt-l6-n32-k2", phaseLayers: [6], numOscillators: 32, couplingInit: 2, reportedPpl: 4.94 },
  { name: "phasegpt-l6-n64-k1", phaseLayers: [6], numOscillators: 64, couplingInit: 1, reportedPpl: 11.93 },
  {
    name: "phasegpt-l6-l7-n32-k1",
    phaseLayers: [6, 7],
    numOscillators: 32,
    couplingInit: 1,
    reportedPpl: 4.89,
  },
  {
    name: "phasegpt-l4-l7-n32-k1",
    phaseLayers: [4, 7],
    numOscillators: 32,
    couplingInit: 1,
    reportedPpl: 4.92,
  },
];

/**
 * Scaled sizes that keep the original's ratios (head width 64, N = 32 per head = half the head width,
 * d_ff = 4d, the phase layer at ~60 % depth, character vocabulary): `mini` (4 blocks, d 128, 2 heads,
 * T 128, phase layer 2) and `small` (6 blocks, d 256, 4 heads, T 256, phase layer 3).
 *
 * @category PhaseGPT
 */
export const PHASEGPT_SCALES: Readonly<
  Record<"mini" | "small", { model: Partial<DecoderConfig>; phaseLayer: number }>
> = {
  mini: { model: { nLayers: 4, dModel: 128, nHeads: 2, maxPositions: 128 }, phaseLayer: 2 },
  small: { model: { nLayers: 6, dModel: 256, nHeads: 4, maxPositions: 256 }, phaseLayer: 3 },
};

function register(name: string, description: string, options: PhaseGPTOptions): void {
  registerPreset(name, {
    description,
    make: (overrides) => {
      const { mixers, ...rest } = overrides;
      const c = phaseGPTConfig({ ...options, model: { ...options.model, ...rest } });
      return mixers ? { ...c, mixers } : c;
    },
  });
}

for (const p of PHASE_A_PRESETS) {
  const mixer = { numOscillators: p.numOscillators, couplingInit: p.couplingInit };
  if (p.phaseLayers.length === 0) {
    register(p.name, "PhaseGPT baseline: the original's 12×768 char-level GPT-2 (85.5M), no phase layer", {});
    continue;
  }
  const what = `layer(s) ${p.phaseLayers.join("+")}, N ${p.numOscillators}, K0 ${p.couplingInit}`;
  register(p.name, `PhaseGPT Phase A (${what}), faithful Kuramoto mixer`, {
    phaseLayers: p.phaseLayers,
    mixer: { preset: "faithful", ...mixer },
  });
  register(`${p.name}-corrected`, `PhaseGPT (${what}), corrected mixer (causal, attractive, sin/cos)`, {
    phaseLayers: p.phaseLayers,
    mixer: { preset: "corrected", ...mixer },
  });
}

for (const [scale, s] of Object.entries(PHASEGPT_SCALES)) {
  const l = s.phaseLayer;
  register(`phasegpt-${scale}-baseline`, `PhaseGPT baseline scaled to ${scale} (CPU-trainable)`, {
    model: s.model,
  });
  for (const preset of ["faithful", "corrected"] as const) {
    const suffix = preset === "corrected" ? "-corrected" : "";
    register(
      `phasegpt-${scale}-l${l}-n32-k1${suffix}`,
      `PhaseGPT ${scale}, phase layer ${l}, N 32, K0 1, ${preset}`,
      {
        model: s.model,
        phaseLayers: [l],
        mixer: { preset, numOscillators: 32, couplingInit: 1 },
      },
    );
  }
}
