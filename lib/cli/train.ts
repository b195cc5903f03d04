/**
 * `deno task train --config CONFIG --out DIR [--steps N] [--resume] [--backend B]`: trains a model as a
 * config describes, writing tokens, checkpoints and a JSONL log under DIR. Ctrl-C saves a checkpoint
 * before exiting; `--resume` continues from it.
 *
 * @module
 */
import { parseFlags, runCommand } from "./command.ts";

import { type BackendName, initBackend } from "../backend/backend.ts";
import "../reflow/mod.ts"; // registers the reFlow presets (model.preset: "reflow-...")
import { loadTrainConfig } from "../train/config.ts";
import { trainFromConfig } from "../train/run.ts";
import "../phasegpt/mod.ts"; // registers the kuramoto mixer and the phasegpt-* presets

/**
 * The `--help` text of the train command.
 *
 * @category Training
 * @internal Used inside the library; not part of the stable API.
 */
export const TRAIN_USAGE = `Usage: deno task train --config CONFIG --out DIR [options]

Trains a language model from scratch as CONFIG describes (a .json file, or a .ts module whose default
export is the config) and writes DIR/tokens, DIR/checkpoints/step-N, DIR/log.jsonl and DIR/config.json.
Ctrl-C saves a checkpoint after the current step and exits.

Options:
  --config PATH    training config (required)
  --out DIR        run folder (required)
  --steps N        total optimiser steps (default: training.steps of the config)
  --resume         continue from the newest checkpoint in DIR
  --resume-good    like --resume, but if the newest checkpoint is unusable take the newest good older one
  --backend B      auto | webgpu | wasm | cpu (default auto)
  -h, --help       show this help
`;

const BACKENDS = ["auto", "webgpu", "wasm", "cpu"];

/**
 * Parsed train flags.
 *
 * @category Training
 */
export interface TrainArgs {
  /** Path of the training config (.json or .ts). */
  config: string;
  /** Run folder. */
  out: string;
  /** Total optimiser steps, overriding the config. */
  steps?: number;
  /** Continue from the newest checkpoint in the run folder. */
  resume: boolean;
  /** `--resume-good`: resume from the newest good checkpoint when the newest is unusable. */
  resumeGood?: boolean;
  /** tfjs backend to train on. */
  backend: BackendName | "auto";
}

/**
 * Parses train flags; returns null for `--help`. Throws a message saying what is allowed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTrainArgs } from "./train.ts";
 * assert.equal(parseTrainArgs(["--config", "c.json", "--out", "runs/a", "--steps", "10"])?.steps, 10);
 * ```
 *
 * @category Training
 * @internal Used inside the library; not part of the stable API.
 */
export function parseTrainArgs(argv: string[]): TrainArgs | null {
  let values;
  try {
    ({ values } = parseFlags({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: "string" },
        out: { type: "string" },
        steps: { type: "string" },
        resume: { type: "boolean", default: false },
        "resume-good": { type: "boolean", default: false },
        backend: { type: "string", default: "auto" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (e) {
    throw new Error(
      `${
        (e as Error).message.split("\n")[0]
      }; allowed flags: --config, --out, --steps, --resume, --resume-good, --backend, --help`,
    );
  }
  if (values.help) return null;
  if (!values.config) throw new Error("--config PATH is required (a .json config or a .ts module)");
  if (!values.out) throw new Error("--out DIR is required (the run folder)");
  let steps: number | undefined;
  if (values.steps !== undefined) {
    steps = Number(values.steps);
    if (!/^\d+$/.test(values.steps) || steps < 1) {
      throw new Error(`--steps must be a positive integer, got '${values.steps}'`);
    }
  }
  if (!BACKENDS.includes(values.backend!)) {
    throw new Error(`--backend must be one of ${BACKENDS.join(", ")}, got '${values.backend}'`);
  }
  return {
    config: values.config,
    out: values.out,
    steps,
    resume: values.resume! || values["resume-good"]!,
    ...(values["resume-good"] ? { resumeGood: true } : {}),
    backend: values.backend as BackendName | "auto",
  };
}

/**
 * Runs the train command with `argv`; returns the exit code.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { trainMain } from "./train.ts";
 * const code = await trainMain(["--help"]); // prints the usage
 * assert.equal(code, 0);
 * ```
 *
 * @category Training
 */
export function trainMain(argv: string[]): Promise<number> {
  return runCommand(argv, {
    name: "train",
    usage: TRAIN_USAGE,
    parse: parseTrainArgs,
    run: async (args) => {
      const config = await loadTrainConfig(args.config, { importModule: (url) => import(url) });
      const backend = await initBackend({ backend: args.backend, verbose: true });
      console.log(`backend: ${backend.name}${backend.adapter ? ` (${backend.adapter})` : ""}`);
      const result = await trainFromConfig({
        config,
        outDir: args.out,
        steps: args.steps,
        resume: args.resume,
        resumeGood: args.resumeGood,
      });
      console.log(
        `${
          result.reason === "stopped" ? "stopped" : "done"
        } at step ${result.step}; checkpoint ${result.checkpoint}` +
          (result.lastEval ? `; val loss ${result.lastEval.loss.toFixed(4)}` : ""),
      );
      result.model.dispose();
      return result.reason === "stopped" ? 130 : 0;
    },
  });
}

if (import.meta.main) Deno.exit(await trainMain(Deno.args));
