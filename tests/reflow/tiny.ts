/**
 * Tiny reFlow-shaped models for the experiment tests and doc examples: a factorised embedding (R [V, S],
 * Φ [S, d], embedding kind `reflow`) over a 2-layer rotary decoder and a word tokenizer whose words include
 * every default probe word, so each experiment runs with its defaults.
 *
 * @module
 */
import "../../lib/reflow/mod.ts";
import { initBackend } from "../../lib/backend/backend.ts";
import { createDecoder } from "../../lib/models/scratch.ts";
import { gpt2NewConfig } from "../../lib/models/scratch.ts";
import type { Decoder } from "../../lib/models/decoder.ts";
import { WordTokenizer } from "../../lib/reflow/experiments/word_tokenizer.ts";
import { saveCheckpoint } from "../../lib/train/checkpoint.ts";
import { defaultProbeWords } from "../../lib/reflow/experiments/defaults.ts";

// The doc examples that use these models run on the CPU backend.
await initBackend({ backend: "cpu" });

/** A tiny factorised model and a word tokenizer covering the default probe words. */
export function tinyReflowModel(
  options: {
    seed?: number;
    layers?: number;
    signals?: number;
    dModel?: number;
    extraWords?: string[];
    topK?: number;
    sparsify?: "recipe" | "signals";
  } = {},
): { model: Decoder; tokenizer: WordTokenizer } {
  const words = [...new Set([...defaultProbeWords(), ...(options.extraWords ?? [])])];
  const tokenizer = new WordTokenizer(words);
  // Two pad rows past the tokenizer, as reFlow pads 50257 to 50304: the experiments must skip them.
  const config = gpt2NewConfig({
    nLayers: options.layers ?? 2,
    dModel: options.dModel ?? 16,
    nHeads: 2,
    vocabSize: tokenizer.vocabSize + 2,
    maxPositions: 64,
    embedding: {
      kind: "reflow",
      signals: options.signals ?? 8,
      ...(options.topK ? { topK: options.topK, sparsify: options.sparsify ?? "recipe" } : {}),
    },
  });
  return { model: createDecoder(config, { seed: options.seed ?? 1 }), tokenizer };
}

/** Saves a tiny model as a trainer checkpoint folder (weights, state, tokenizer.json) and returns it. */
export async function saveTinyModelFolder(
  model: Decoder,
  tokenizer: WordTokenizer,
  dir: string,
): Promise<string> {
  const bytes = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
  await saveCheckpoint(dir, {
    weights: new Map([...model.parameters()]),
    optimizer: new Map(),
    state: {
      format: "coherence-lab/checkpoint@1",
      step: 1,
      modelConfig: model.config,
      tokenizer: { type: "tokenizer.json", file: "tokenizer.json" },
    },
    extraFiles: new Map([
      ["tokenizer.json", bytes(tokenizer.toTokenizerJson())],
      ["tokenizer_config.json", bytes({ unk_token: "<unk>" })],
    ]),
  });
  return dir;
}
