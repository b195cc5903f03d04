/**
 * Named model presets: a registry of functions from overrides to a {@linkcode DecoderConfig}. The library
 * registers `gpt2` and `gpt2-new`; research folders (reFlow, PhaseGPT) register theirs on import, and the
 * trainer's `model.preset` and {@linkcode modelPreset} read the same registry.
 *
 * @module
 */
import { checkChoice } from "../options.ts";
import { gpt2NewConfig, gpt2SmallConfig } from "./scratch.ts";
import type { DecoderConfig } from "./types.ts";

/**
 * One registered preset.
 *
 * @category Models
 */
export interface ModelPreset {
  /** One line for listings and `--help`. */
  description: string;
  /** The config, with `overrides` applied (derived widths follow the overridden ones). */
  make(overrides: Partial<DecoderConfig>): DecoderConfig;
}

const PRESETS = new Map<string, ModelPreset>();

/**
 * Registers a preset under `name` (a later registration of the same name throws, so two folders cannot
 * silently shadow each other).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { modelPreset, registerPreset } from "./presets.ts";
 * import { gpt2NewConfig } from "./scratch.ts";
 * registerPreset("doc-tiny", { description: "a tiny GPT-2-New", make: (o) => gpt2NewConfig({ nLayers: 2, dModel: 64, nHeads: 4, ...o }) });
 * assert.equal(modelPreset("doc-tiny").nLayers, 2);
 * ```
 *
 * @category Models
 */
export function registerPreset(name: string, preset: ModelPreset): void {
  if (PRESETS.has(name)) throw new Error(`model preset '${name}' is already registered`);
  PRESETS.set(name, preset);
}

/**
 * The names of every registered preset, in registration order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { presetNames } from "./presets.ts";
 * assert.ok(presetNames().includes("gpt2-new"));
 * ```
 *
 * @category Models
 */
export function presetNames(): string[] {
  return [...PRESETS.keys()];
}

/**
 * The registered preset `name` (its description and factory); throws with the known names otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getPreset } from "./presets.ts";
 * assert.match(getPreset("gpt2").description, /GPT-2/);
 * ```
 *
 * @category Models
 */
export function getPreset(name: string): ModelPreset {
  return PRESETS.get(checkChoice(name, presetNames(), "model preset"))!;
}

/**
 * The config of preset `name` with `overrides` applied. An unknown name throws, with a did-you-mean and
 * the registered names.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { countParameters, modelPreset } from "../../mod.ts";
 * assert.equal(countParameters(modelPreset("gpt2")), 124439808);
 * assert.equal(modelPreset("gpt2-new", { nLayers: 4 }).nLayers, 4);
 * assert.throws(() => modelPreset("gpt2-neww"), /did you mean gpt2-new/);
 * ```
 *
 * @category Models
 */
export function modelPreset(name: string, overrides: Partial<DecoderConfig> = {}): DecoderConfig {
  return getPreset(name).make(overrides);
}

registerPreset("gpt2", {
  description: "GPT-2 (124M): LayerNorm with bias, learned positions, GELU-tanh, biases, tied head",
  make: gpt2SmallConfig,
});
registerPreset("gpt2-new", {
  description: "GPT-2-New (514M at d 1024, 36 layers): RMSNorm, RoPE, SwiGLU, no biases, tied head",
  make: gpt2NewConfig,
});
