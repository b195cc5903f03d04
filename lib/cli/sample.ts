/**
 * `deno task sample --ckpt DIR [--prompt P] [--max-new-tokens N] [--temperature T] [--top-p P] [--seed S]`:
 * loads a trained model (a run folder, a checkpoint folder, or the bundled demo model) and prints a
 * sampled continuation of the prompt.
 *
 * @module
 */
import { parseFlags, runCommand } from "./command.ts";

import { type BackendName, initBackend } from "../backend/backend.ts";
import "../reflow/mod.ts"; // registers the reFlow kinds, so reFlow runs load
import { generateText } from "../generate/generate.ts";
import { loadTrainedModel } from "../train/run.ts";
import "../phasegpt/mod.ts"; // trained PhaseGPT runs use the kuramoto mixer

/**
 * The `--help` text of the sample command.
 *
 * @category Generation
 * @internal Used inside the library; not part of the stable API.
 */
export const SAMPLE_USAGE = `Usage: deno task sample --ckpt DIR [options]

Samples a continuation from a model trained with deno task train (a run folder, a checkpoint folder,
or the bundled demo model data/models/shakespeare-char).

Options:
  --ckpt DIR            run or checkpoint folder (required)
  --prompt TEXT         text to continue (default "\\n")
  --max-new-tokens N    tokens to generate (default 200)
  --temperature T       softmax temperature, 0 = greedy (default 0.8)
  --top-p P             nucleus threshold in (0, 1] (default 1: off)
  --top-k K             keep the K most likely tokens (default 0: off)
  --num-samples N       independent samples, seeds S, S+1, ... (default 1)
  --seed S              integer seed (default 0)
  --backend B           auto | webgpu | wasm | cpu (default auto)
  -h, --help            show this help
`;

/**
 * Parsed sample flags.
 *
 * @category Generation
 */
export interface SampleArgs {
  /** Run folder or checkpoint folder to load. */
  ckpt: string;
  /** Text to continue. */
  prompt: string;
  /** Tokens to generate per sample. */
  maxNewTokens: number;
  /** Softmax temperature; 0 is greedy. */
  temperature: number;
  /** Nucleus threshold in (0, 1]; 1 turns it off. */
  topP: number;
  /** Keep the k most likely tokens; 0 turns it off. */
  topK: number;
  /** Independent samples, seeded seed, seed + 1, ... */
  numSamples: number;
  /** Seed of the first sample. */
  seed: number;
  /** tfjs backend to run on. */
  backend: BackendName | "auto";
}

function number(
  flag: string,
  raw: string | undefined,
  fallback: number,
  check: (x: number) => boolean,
  allowed: string,
): number {
  if (raw === undefined) return fallback;
  const x = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(x) || !check(x)) {
    throw new Error(`${flag} must be ${allowed}, got '${raw}'`);
  }
  return x;
}

/**
 * Parses sample flags; returns null for `--help`. Throws a message saying what is allowed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSampleArgs } from "./sample.ts";
 * assert.equal(parseSampleArgs(["--ckpt", "runs/a", "--temperature", "0"])?.temperature, 0);
 * ```
 *
 * @category Generation
 */
export function parseSampleArgs(argv: string[]): SampleArgs | null {
  let values;
  try {
    ({ values } = parseFlags({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        ckpt: { type: "string" },
        prompt: { type: "string" },
        "max-new-tokens": { type: "string" },
        temperature: { type: "string" },
        "top-p": { type: "string" },
        "top-k": { type: "string" },
        "num-samples": { type: "string" },
        seed: { type: "string" },
        backend: { type: "string", default: "auto" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (e) {
    throw new Error(
      `${
        (e as Error).message.split("\n")[0]
      }; allowed flags: --ckpt, --prompt, --max-new-tokens, --temperature, ` +
        `--top-p, --top-k, --num-samples, --seed, --backend, --help`,
    );
  }
  if (values.help) return null;
  if (!values.ckpt) throw new Error("--ckpt DIR is required (a run folder or a checkpoint folder)");
  if (!["auto", "webgpu", "wasm", "cpu"].includes(values.backend!)) {
    throw new Error(`--backend must be one of auto, webgpu, wasm, cpu, got '${values.backend}'`);
  }
  const int = (x: number) => Number.isInteger(x);
  return {
    ckpt: values.ckpt,
    prompt: values.prompt ?? "\n",
    maxNewTokens: number(
      "--max-new-tokens",
      values["max-new-tokens"],
      200,
      (x) => int(x) && x >= 1,
      "a positive integer",
    ),
    temperature: number("--temperature", values.temperature, 0.8, (x) => x >= 0, "a number >= 0"),
    topP: number("--top-p", values["top-p"], 1, (x) => x > 0 && x <= 1, "a number in (0, 1]"),
    topK: number("--top-k", values["top-k"], 0, (x) => int(x) && x >= 0, "an integer >= 0"),
    numSamples: number(
      "--num-samples",
      values["num-samples"],
      1,
      (x) => int(x) && x >= 1,
      "a positive integer",
    ),
    seed: number("--seed", values.seed, 0, (x) => Number.isSafeInteger(x), "an integer"),
    backend: values.backend as BackendName | "auto",
  };
}

/**
 * Options of {@linkcode sampleFromCheckpoint}.
 *
 * @category Generation
 */
export type SampleFromCheckpointOptions = Omit<SampleArgs, "ckpt" | "backend">;

/**
 * Loads a trained model and samples `numSamples` continuations of `prompt`; returns the texts (prompt
 * not included). The model is freed afterwards.
 *
 * @example
 * ```ts
 * import { sampleFromCheckpoint } from "./sample.ts";
 * import { initBackend } from "../backend/backend.ts";
 * await initBackend({ backend: "cpu" });
 * const [text] = await sampleFromCheckpoint("data/models/shakespeare-char", {
 *   prompt: "ROMEO:", maxNewTokens: 40, temperature: 0.8, topP: 1, topK: 0, numSamples: 1, seed: 1,
 * });
 * console.log(text);
 * ```
 *
 * @category Generation
 * @internal Used inside the library; not part of the stable API.
 */
export async function sampleFromCheckpoint(ckpt: string, o: SampleFromCheckpointOptions): Promise<string[]> {
  const { model, tokenizer } = await loadTrainedModel(ckpt);
  try {
    const promptIds = tokenizer.encode(o.prompt, { addSpecialTokens: true });
    const context = model.config.maxPositions;
    if (promptIds.length + o.maxNewTokens > context) {
      throw new Error(
        `the prompt (${promptIds.length} tokens) plus --max-new-tokens ${o.maxNewTokens} exceeds the model's context of ` +
          `${context} positions: ask for at most ${Math.max(0, context - promptIds.length)} new tokens`,
      );
    }
    const { texts, note } = await generateText(model, tokenizer, o.prompt, {
      maxNewTokens: o.maxNewTokens,
      seeds: Array.from({ length: o.numSamples }, (_, i) => o.seed + i),
      sampling: { temperature: o.temperature, topP: o.topP, topK: o.topK },
    });
    if (note) console.error(`sample: note: ${note}`);
    return texts;
  } finally {
    model.dispose();
  }
}

/**
 * Runs the sample command with `argv`; returns the exit code.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sampleMain } from "./sample.ts";
 * assert.equal(await sampleMain(["--help"]), 0);
 * ```
 *
 * @category Generation
 */
export function sampleMain(argv: string[]): Promise<number> {
  return runCommand(argv, {
    name: "sample",
    usage: SAMPLE_USAGE,
    parse: parseSampleArgs,
    run: async (args) => {
      await initBackend({ backend: args.backend, verbose: true });
      const texts = await sampleFromCheckpoint(args.ckpt, args);
      texts.forEach((t, i) => {
        if (texts.length > 1) console.log(`--- sample ${i + 1} (seed ${args.seed + i}) ---`);
        console.log(args.prompt + t);
      });
      return 0;
    },
  });
}

if (import.meta.main) Deno.exit(await sampleMain(Deno.args));
