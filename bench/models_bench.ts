/**
 * Inference benchmark of one tfjs backend: prefill and KV-cached greedy decode tokens/s of GPT-2-shaped
 * random decoders (built in memory with `createDecoder`, no download), through the library's `generate()`.
 *
 * Each size runs two short calibration generations at batch 1, then per batch (smallest first) a warm-up
 * at that batch and one measured `generate()` of N + 1 tokens per row from a P-token prompt:
 *
 * - prefill time = from the call until step 0 is yielded (the P-token forward that fills the cache,
 *   greedy choice of y_0, and the step's one readback); tokens/s = B * P / time.
 * - decode time = from step 0 until the last step (N one-token forwards with the cache, each with its
 *   greedy choice and its one packed readback); tokens/s = B * N / time.
 *
 * Cases estimated to take longer than `maxSeconds` are skipped with the reason in the row (the cpu backend
 * is ~20x slower than wasm). Usually started by `bench/run.ts`, one process per backend:
 *
 * ```sh
 * deno run -A bench/models_bench.ts --backend wasm --sizes 124m --batches 1,16 --json out.json
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../lib/deps.ts";
import { type BackendName, initBackend } from "../lib/backend/backend.ts";
import { countParameters, createDecoder, gpt2SmallConfig } from "../lib/models/scratch.ts";
import type { DecoderConfig } from "../lib/models/types.ts";
import { generate, type GenerateOptions } from "../lib/generate/generate.ts";
import { writeTextAtomic } from "../lib/io/atomic.ts";

export type { BackendName, DecoderConfig };
export type { RopeScaling } from "../lib/nn/rotary.ts";

/**
 * The GPT-2-shaped model sizes the benchmark knows (vocabulary 50257, 1024 positions, tied head).
 *
 * @example
 * ```ts
 * import { BENCH_MODEL_SIZES } from "./models_bench.ts";
 * console.log(Object.keys(BENCH_MODEL_SIZES)); // ["124m", "51m", "16m"]
 * ```
 */
export const BENCH_MODEL_SIZES: Record<string, { nLayers: number; dModel: number; nHeads: number }> = {
  /** GPT-2 small: 124,439,808 parameters. */
  "124m": { nLayers: 12, dModel: 768, nHeads: 12 },
  /** Half depth and two-thirds width (~51M, mostly the embedding). */
  "51m": { nLayers: 6, dModel: 512, nHeads: 8 },
  /** A quick shape for smoke runs and the slow cpu backend (~16M, mostly the embedding). */
  "16m": { nLayers: 4, dModel: 256, nHeads: 4 },
};

/**
 * The full decoder config of a named size; throws naming the known sizes otherwise.
 *
 * @example
 * ```ts
 * import { countParameters } from "../lib/models/scratch.ts";
 * import { benchModelConfig } from "./models_bench.ts";
 * console.log(countParameters(benchModelConfig("124m"))); // 124439808
 * ```
 */
export function benchModelConfig(size: string): DecoderConfig {
  const s = BENCH_MODEL_SIZES[size];
  if (!s) {
    throw new Error(`unknown model size '${size}': use one of ${Object.keys(BENCH_MODEL_SIZES).join(", ")}`);
  }
  return gpt2SmallConfig(s);
}

/** One measured (or skipped) workload. The PyTorch script prints rows of the same shape. */
export interface ModelBenchRow {
  /** "prefill" or "decode". */
  workload: "prefill" | "decode";
  /** Size name (a key of {@linkcode BENCH_MODEL_SIZES}). */
  size: string;
  /** Parameter count of the model. */
  params: number;
  /** Rows in the batch. */
  batch: number;
  /** Prompt length P. */
  prompt: number;
  /** Decoded tokens per row N (after the one sampled from the prefill). */
  newTokens: number;
  /** Engine label: "tfjs-wasm", "tfjs-webgpu (llvmpipe)", "torch-cpu", ... */
  engine: string;
  /** Tokens per second (prefill: B*P/s; decode: B*N/s); null when skipped. */
  tokensPerSec: number | null;
  /** Milliseconds per token (1000 / tokensPerSec). */
  msPerToken: number | null;
  /** Wall seconds of the measured phase. */
  seconds: number | null;
  /** Why the case was not measured. */
  skipped?: string;
}

/** Options of {@linkcode runModelsBench}. */
export interface ModelsBenchOptions {
  /** The tfjs backend to initialise (this process keeps it). */
  backend: BackendName;
  /** Size names. */
  sizes: string[];
  /** Batch sizes. */
  batches: number[];
  /** Prompt length P. */
  prompt: number;
  /** Decoded tokens N. */
  newTokens: number;
  /** Skip cases whose estimated time exceeds this many seconds. */
  maxSeconds: number;
  /** Measured runs per case; each phase reports the median. Default 1. */
  repeats?: number;
  /** Seed of the weights and the prompts. */
  seed?: number;
  /** "greedy" (default) or "top-p" (nucleus 0.9 at temperature 1, seeded). */
  sampling?: "greedy" | "top-p";
  /** Threads of the wasm backend's native CBLAS (default 1). */
  blasThreads?: number;
  /** Decode with the resident loop at this lag (`generate`'s `resident` option); default: the ordinary loop. */
  resident?: number;
  /** Progress lines go here (default: stderr). */
  log?: (line: string) => void;
}

/**
 * Deterministic prompt ids in [0, V) from a small LCG (the workload does not depend on their values);
 * bench/torch_models.py draws the same ids.
 *
 * @example
 * ```ts
 * import { benchPrompts } from "./models_bench.ts";
 * console.log(benchPrompts(2, 4, 50257, 3)); // two rows of four ids
 * ```
 */
export function benchPrompts(batch: number, length: number, vocab: number, seed = 0): number[][] {
  let x = (seed * 2654435761 + 12345) >>> 0;
  return Array.from({ length: batch }, () =>
    Array.from({ length }, () => {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      return x % vocab;
    }));
}

interface Timing {
  prefillS: number;
  decodeS: number;
  decodeSteps: number;
}

/** How each generate() of the bench samples and loops. */
interface Decoding {
  sampling?: "greedy" | "top-p";
  resident?: number;
}

/** One generate() of `newTokens + 1` tokens per row (greedy unless told), timed by phase. */
async function timedGenerate(
  model: ReturnType<typeof createDecoder>,
  prompts: number[][],
  newTokens: number,
  how: Decoding = {},
): Promise<Timing> {
  const t0 = performance.now();
  let tFirst = NaN, tLast = NaN, steps = 0;
  const opts: GenerateOptions = {
    maxNewTokens: newTokens + 1,
    sampling: how.sampling === "top-p" ? { temperature: 1, topP: 0.9 } : { temperature: 0 },
    seed: 1,
    ...(how.resident !== undefined ? { resident: { lag: how.resident } } : {}),
  };
  for await (const _step of generate(model, prompts, opts)) {
    const now = performance.now();
    if (steps === 0) tFirst = now;
    tLast = now;
    steps++;
  }
  return { prefillS: (tFirst - t0) / 1000, decodeS: (tLast - tFirst) / 1000, decodeSteps: steps - 1 };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function rate(tokens: number, seconds: number): { tokensPerSec: number; msPerToken: number } {
  const tps = tokens / seconds;
  return { tokensPerSec: tps, msPerToken: 1000 / tps };
}

/**
 * Runs every (size, batch) case on one backend and returns prefill and decode rows.
 *
 * @example
 * ```ts
 * import { runModelsBench } from "./models_bench.ts";
 * const rows = await runModelsBench({
 *   backend: "cpu", sizes: ["16m"], batches: [1], prompt: 4, newTokens: 2, maxSeconds: 60, log: () => {},
 * });
 * console.log(rows.map((r) => [r.workload, r.tokensPerSec]));
 * ```
 */
export async function runModelsBench(options: ModelsBenchOptions): Promise<ModelBenchRow[]> {
  const log = options.log ?? ((s: string) => console.error(s));
  const info = await initBackend({ backend: options.backend, blasThreads: options.blasThreads });
  // A software adapter is labelled so its figures are never mistaken for a GPU's.
  const how: Decoding = { sampling: options.sampling, resident: options.resident };
  const engine = `tfjs-${info.name}` +
    (info.isFallbackAdapter ? ` (${info.adapter?.split(" (")[0]}, software)` : "") +
    (info.blas && (options.blasThreads ?? 1) > 1 ? `, BLAS ${options.blasThreads} threads` : "") +
    (how.sampling === "top-p" ? ", top-p 0.9" : "") +
    (how.resident !== undefined ? `, resident lag ${how.resident}` : "");
  const { prompt: P, newTokens: N } = options;
  const rows: ModelBenchRow[] = [];
  for (const size of options.sizes) {
    const config = benchModelConfig(size);
    const params = countParameters(config);
    const base = { size, params, prompt: P, newTokens: N, engine };
    const before = tf.memory().numTensors;
    const t0 = performance.now();
    const model = createDecoder(config, { seed: options.seed ?? 0 });
    log(
      `[${engine}] ${size}: built ${params} parameters in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    try {
      // Calibration at batch 1: the first run on a fresh model pays one-time costs (kernel setup, memory
      // growth) and is thrown away; the second gives the cost model from which each case's time is
      // estimated before it runs. Every measured case then refines it (batches run smallest first).
      const calP = Math.min(P, 8), calN = 2;
      await timedGenerate(model, benchPrompts(1, calP, config.vocabSize, 1), calN, how);
      const cal = await timedGenerate(model, benchPrompts(1, calP, config.vocabSize, 1), calN, how);
      let perPrefillToken = cal.prefillS / calP; // from a short prompt: an over-estimate for long ones
      let perDecodeStep = cal.decodeS / calN;
      log(
        `[${engine}] ${size}: calibration ${(perPrefillToken * 1000).toFixed(1)} ms/prefill token, ` +
          `${(perDecodeStep * 1000).toFixed(1)} ms/decode step at batch 1`,
      );
      for (const B of [...options.batches].sort((a, b) => a - b)) {
        // A decode step at batch B pushes B rows through the same matmuls as a B-token prefill.
        const prefillEst = perPrefillToken * B * P;
        const decodeEst = N * Math.max(perDecodeStep, perPrefillToken * B);
        const warmP = info.name === "webgpu" ? P : Math.min(P, 16);
        const warmEst = perPrefillToken * B * warmP + 2 * Math.max(perDecodeStep, perPrefillToken * B);
        const repeats = options.repeats ?? 1;
        const est = (prefillEst + decodeEst) * repeats + (B === 1 ? 0 : warmEst);
        if (est > options.maxSeconds) {
          const why = `estimated ${est.toFixed(0)} s > --max-seconds ${options.maxSeconds}`;
          log(`[${engine}] ${size} batch ${B}: skipped (${why})`);
          for (const workload of ["prefill", "decode"] as const) {
            rows.push({
              workload,
              ...base,
              batch: B,
              tokensPerSec: null,
              msPerToken: null,
              seconds: null,
              skipped: why,
            });
          }
          continue;
        }
        // Warm-up at this batch (webgpu compiles its shaders for the full prompt shape here).
        if (B !== 1 || info.name === "webgpu") {
          await timedGenerate(model, benchPrompts(B, warmP, config.vocabSize, 2), 2, how);
        }
        const runs: Timing[] = [];
        for (let r = 0; r < repeats; r++) {
          runs.push(await timedGenerate(model, benchPrompts(B, P, config.vocabSize, 3 + r), N, how));
          if (runs[r].decodeSteps !== N) {
            throw new Error(`expected ${N} decode steps, got ${runs[r].decodeSteps}`);
          }
        }
        const t = {
          prefillS: median(runs.map((x) => x.prefillS)),
          decodeS: median(runs.map((x) => x.decodeS)),
        };
        const pre = rate(B * P, t.prefillS), dec = rate(B * N, t.decodeS);
        perPrefillToken = t.prefillS / (B * P);
        perDecodeStep = Math.min(perDecodeStep, t.decodeS / N);
        rows.push({ workload: "prefill", ...base, batch: B, ...pre, seconds: t.prefillS });
        rows.push({ workload: "decode", ...base, batch: B, ...dec, seconds: t.decodeS });
        log(
          `[${engine}] ${size} batch ${B}: prefill ${pre.tokensPerSec.toFixed(1)} tok/s (${
            t.prefillS.toFixed(2)
          } s), ` +
            `decode ${dec.tokensPerSec.toFixed(1)} tok/s (${t.decodeS.toFixed(2)} s; estimate was ${
              est.toFixed(0)
            } s)`,
        );
      }
    } finally {
      model.dispose();
    }
    const leaked = tf.memory().numTensors - before;
    if (leaked > 0) log(`[${engine}] ${size}: warning: ${leaked} tensors left after the runs`);
  }
  return rows;
}

const HELP = `deno run -A bench/models_bench.ts [options]
  --backend cpu|wasm|webgpu   tfjs backend (default wasm)
  --sizes 124m,51m,16m        GPT-2-shaped sizes (default 124m)
  --batches 1,16              batch sizes (default 1,16)
  --prompt 128                prompt length P
  --new 32                    decoded tokens N
  --max-seconds 60            skip cases estimated to take longer
  --repeats 1                 measured runs per case (the median is reported)
  --sampling greedy|top-p     greedy (default) or top-p 0.9 at temperature 1
  --blas-threads 1            threads of the wasm backend's native CBLAS
  --resident LAG              decode with generate's resident loop at this lag (default: the ordinary loop)
  --json FILE                 write the rows as JSON (atomically); otherwise print them to stdout`;

/**
 * Parses a comma list of positive integers, naming the flag on bad input.
 *
 * @example
 * ```ts
 * import { parsePositiveList } from "./models_bench.ts";
 * console.log(parsePositiveList("batches", "1,16")); // [1, 16]
 * ```
 */
export function parsePositiveList(flag: string, text: string): number[] {
  const out = text.split(",").filter((s) => s.trim() !== "").map((s) => Number(s.trim()));
  if (out.length === 0 || out.some((n) => !(Number.isInteger(n) && n > 0))) {
    throw new Error(`--${flag} must be a comma list of positive integers, got '${text}'`);
  }
  return out;
}

function parseSampling(text: string): "greedy" | "top-p" {
  if (text !== "greedy" && text !== "top-p") {
    throw new Error(`--sampling must be greedy or top-p, got '${text}'`);
  }
  return text;
}

function parseLag(text: string): number {
  const n = Number(text);
  if (!(Number.isInteger(n) && n >= 0 && n <= 64)) {
    throw new Error(`--resident must be a lag in [0, 64], got '${text}'`);
  }
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      backend: { type: "string", default: "wasm" },
      sizes: { type: "string", default: "124m" },
      batches: { type: "string", default: "1,16" },
      prompt: { type: "string", default: "128" },
      new: { type: "string", default: "32" },
      "max-seconds": { type: "string", default: "60" },
      repeats: { type: "string", default: "1" },
      sampling: { type: "string", default: "greedy" },
      resident: { type: "string" },
      "blas-threads": { type: "string", default: "1" },
      json: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const backend = values.backend as BackendName;
  if (!["cpu", "wasm", "webgpu"].includes(backend)) {
    throw new Error(`--backend must be cpu, wasm or webgpu, got '${values.backend}'`);
  }
  const sizes = values.sizes.split(",").map((s) => s.trim()).filter(Boolean);
  sizes.forEach(benchModelConfig); // validates the names before any work
  const [prompt] = parsePositiveList("prompt", values.prompt);
  const [newTokens] = parsePositiveList("new", values.new);
  const maxSeconds = Number(values["max-seconds"]);
  if (!(maxSeconds > 0)) {
    throw new Error(`--max-seconds must be a positive number, got '${values["max-seconds"]}'`);
  }
  if (prompt + newTokens + 1 > 1024) throw new Error(`--prompt + --new must stay under the 1024 positions`);
  const rows = await runModelsBench({
    backend,
    sizes,
    batches: parsePositiveList("batches", values.batches),
    prompt,
    newTokens,
    maxSeconds,
    repeats: parsePositiveList("repeats", values.repeats)[0],
    sampling: parseSampling(values.sampling),
    resident: values.resident === undefined ? undefined : parseLag(values.resident),
    blasThreads: parsePositiveList("blas-threads", values["blas-threads"])[0],
  });
  const text = JSON.stringify(rows, null, 1);
  if (values.json) await writeTextAtomic(values.json, text);
  else console.log(text);
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`models_bench: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
