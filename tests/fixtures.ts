/**
 * Shared test fixtures: the backend set-up and the tiny models that tests build (so each file does not
 * rebuild them by hand).
 *
 * @module
 */
import { initBackend } from "../lib/backend/backend.ts";
import { createDecoder, gpt2NewConfig, gpt2SmallConfig } from "../lib/models/scratch.ts";
import type { Decoder } from "../lib/models/decoder.ts";
import type { DecoderConfig } from "../lib/models/types.ts";

/** The backends every test can rely on (webgpu needs an adapter, so it is opt-in). */
export const CPU_BACKENDS = ["cpu", "wasm"] as const;

/** Selects a backend for the tests that follow (cpu by default). */
export async function useBackend(name: "cpu" | "wasm" | "webgpu" = "cpu"): Promise<void> {
  // Every webgpu test runs our own kernels, matmuls included (off by default on llvmpipe, for speed).
  await initBackend(name === "webgpu" ? { backend: name, webgpuKernels: true } : { backend: name });
}

/** A tiny rotary (GPT-2-New) config: 2 layers, d 16, 2 heads, V 30, 32 positions. */
export function tinyRotaryConfig(overrides: Partial<DecoderConfig> = {}): DecoderConfig {
  return gpt2NewConfig({ nLayers: 2, dModel: 16, nHeads: 2, vocabSize: 30, maxPositions: 32, ...overrides });
}

/** A tiny learned-position (GPT-2) config of the same size. */
export function tinyLearnedConfig(overrides: Partial<DecoderConfig> = {}): DecoderConfig {
  return gpt2SmallConfig({
    nLayers: 2,
    dModel: 16,
    nHeads: 2,
    vocabSize: 30,
    maxPositions: 32,
    ...overrides,
  });
}

/** A seeded tiny decoder from a config (default: {@linkcode tinyRotaryConfig}); `std` scales the init. */
export function tinyModel(config: DecoderConfig = tinyRotaryConfig(), seed = 7, std?: number): Decoder {
  return createDecoder(config, std === undefined ? { seed } : { seed, std });
}

/** The tiny char-level Recync test model: 2 layers, d 32, 2 heads (rotary), for a tokenizer of `vocabSize`. */
export function tinyRecyncModel(vocabSize: number, maxPositions: number, seed: number): Decoder {
  return tinyModel(tinyRotaryConfig({ dModel: 32, vocabSize, maxPositions }), seed);
}
