/**
 * Coherence Lab: watch and steer what happens inside transformer language models, from Deno scripts and
 * Jupyter notebooks. TensorFlow.js (webgpu, wasm or cpu) underneath, Observable Plot for charts.
 *
 * A short tour, one runnable example per area; every export carries its area as a `@category`.
 *
 * - **Backend**: pick and check the tfjs backend ({@linkcode initBackend}, {@linkcode doctor}).
 * - **Models** and **Hooks**: build a decoder from scratch or load a Hugging Face checkpoint
 *   ({@linkcode loadModel}); read or rewrite activations at named hook points ({@linkcode runWithCache}).
 * - **Generation** and **Tokenizers**: batched sampling with probes and policies ({@linkcode generate}).
 * - **Recync**: the cosine-similarity crisis monitor, order parameters and the controllers that act on them.
 * - **Training** and **Data**: corpora, token files, batches, AdamW, schedules and checkpoints.
 * - **Statistics**: paired effect sizes, bootstrap CIs, t and Wilcoxon tests for experiment results.
 * - **Plots** and **Notebook**: Observable Plot charts rendered to SVG/PNG, and Jupyter rich display.
 * - **IO** and **NN**: safetensors files and the tensor building blocks the models share.
 *
 * @example Backend: start tfjs on a named backend (omit it for webgpu, else wasm, else cpu)
 * ```ts
 * import assert from "node:assert/strict";
 * import { initBackend } from "./mod.ts";
 * const backend = await initBackend({ backend: "cpu" });
 * assert.equal(backend.name, "cpu");
 * ```
 *
 * @example Models and Hooks: a tiny GPT-2, its logits, and the attention pattern of block 0
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDecoder, gpt2SmallConfig, initBackend, runWithCache } from "./mod.ts";
 * import { tf } from "./lib/deps.ts"; // the TensorFlow.js instance the library runs on
 * await initBackend({ backend: "cpu" });
 * const model = createDecoder(gpt2SmallConfig({ nLayers: 1, dModel: 32, nHeads: 2, vocabSize: 50 }), { seed: 0 });
 * const ids = tf.tensor2d([[1, 2, 3]], [1, 3], "int32");
 * const { logits, cache } = runWithCache(model, ids, { names: ["blocks.0.attn.hook_pattern"] });
 * assert.deepEqual(logits.shape, [1, 3, 50]); // [batch, positions, vocab]
 * assert.deepEqual(cache.get("blocks.0.attn.hook_pattern").shape, [1, 2, 3, 3]); // [batch, heads, q, k]
 * tf.dispose([ids, logits]);
 * cache.dispose();
 * model.dispose();
 * ```
 *
 * @example Generation and Tokenizers: sample text from a (here untrained) model
 * ```ts
 * import assert from "node:assert/strict";
 * import { CharTokenizer, createDecoder, generateText, gpt2NewConfig, initBackend } from "./mod.ts";
 * await initBackend({ backend: "cpu" });
 * const tok = CharTokenizer.fromCorpus("abcdefgh ");
 * const config = gpt2NewConfig({ nLayers: 1, dModel: 16, nHeads: 2, vocabSize: tok.vocabSize, maxPositions: 32 });
 * const model = createDecoder(config, { seed: 0 });
 * const { text } = await generateText(model, tok, "abc", { maxNewTokens: 8, seed: 1 });
 * assert.ok(text.length <= 8 && [...text].every((c) => "abcdefgh ".includes(c)));
 * model.dispose();
 * ```
 *
 * @example Recync: a drop in cosine similarity after a stable stretch is a confirmed crisis
 * ```ts
 * import assert from "node:assert/strict";
 * import { detectCrises } from "./mod.ts";
 * const series = [...Array(20).fill(0.9).map((v, i) => v + (i % 2) * 0.01), 0.1, 0.1, 0.1];
 * assert.deepEqual(detectCrises(series).map((e) => e.onset), [21]);
 * ```
 *
 * @example Training and Data: the learning-rate schedule and a seeded batch of next-token pairs
 * ```ts
 * import assert from "node:assert/strict";
 * import { BatchSampler, learningRate } from "./mod.ts";
 * const schedule = { kind: "cosine", lr: 1e-3, minLr: 1e-4, warmupSteps: 10, decaySteps: 110 } as const;
 * assert.ok(Math.abs(learningRate(schedule, 5) - 5e-4) < 1e-12); // half-way through warm-up
 * const ids = Uint16Array.from({ length: 100 }, (_, i) => i);
 * const batch = new BatchSampler(ids, { batchSize: 2, blockSize: 4, seed: 1 }).next();
 * assert.equal(batch.y[0] - batch.x[0], 1); // targets are the inputs shifted by one
 * ```
 *
 * @example Statistics: Student's sleep data, paired t test (R gives t = -4.0621, p = 0.002833)
 * ```ts
 * import assert from "node:assert/strict";
 * import { pairedTTest } from "./mod.ts";
 * const r = pairedTTest([0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0], [
 *   1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4,
 * ]);
 * assert.deepEqual([r.t.toFixed(4), r.df, r.pValue.toFixed(6)], ["-4.0621", 9, "0.002833"]);
 * ```
 *
 * @example Plots and Notebook: a chart as SVG, and an HTML fragment as a Jupyter MIME bundle
 * ```ts
 * import assert from "node:assert/strict";
 * import { html, mimeBundleOf, plot, Plot, toSvgString } from "./mod.ts";
 * const svg = toSvgString(plot({ title: "Squares", marks: [Plot.lineY([1, 4, 9, 16])] }));
 * assert.ok(svg.startsWith("<svg") && svg.includes("Squares"));
 * assert.deepEqual(await mimeBundleOf(html`<b>${"x<y"}</b>`), { "text/html": "<b>x&lt;y</b>" });
 * ```
 *
 * @example IO and NN: a safetensors round trip, and RMS norm of a row
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeSafetensors, encodeSafetensors, initBackend, rmsNorm } from "./mod.ts";
 * import { tf } from "./lib/deps.ts";
 * const bytes = encodeSafetensors({ x: { dtype: "I32", shape: [2], data: [1, 2] } });
 * assert.deepEqual(decodeSafetensors(bytes).tensors.get("x")?.data, new Int32Array([1, 2]));
 * await initBackend({ backend: "cpu" });
 * const y = rmsNorm(tf.tensor2d([[3, 4]]), tf.ones([2]), 0); // x / sqrt(mean(x²)) = x / 3.536
 * assert.deepEqual(Array.from(await y.data(), (v) => +v.toFixed(3)), [0.849, 1.131]);
 * ```
 *
 * @module
 */
import { tf as tfjs } from "./lib/deps.ts";
/**
 * The TensorFlow.js instance the library runs on (the very module it uses internally), so scripts that
 * import the library by URL build their tensors with the same tfjs.
 */
export const tf: typeof tfjs = tfjs;
export * from "./lib/tensor_types.ts";
export * from "./lib/options.ts";
export * from "./lib/random/mod.ts";
export * from "./lib/backend/mod.ts";
export * from "./lib/io/mod.ts";
export * from "./lib/nn/mod.ts";
export * from "./lib/models/mod.ts";
export * from "./lib/tokenizers/mod.ts";
export * from "./lib/generate/mod.ts";
export * from "./lib/plot/mod.ts";
export * from "./lib/notebook/mod.ts";
export * from "./lib/examples/mod.ts";
export * from "./lib/data/mod.ts";
export * from "./lib/train/mod.ts";
export * from "./lib/stats/mod.ts";
export * from "./lib/recync/mod.ts";
export * from "./lib/phasegpt/mod.ts";
