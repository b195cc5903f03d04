/**
 * `deno task reflow check --model SRC` and `deno task reflow experiment --model SRC --exp all|1,5,9
 * --out DIR`: the checkpoint parameter inspector (the seed's `check.py`) and the twelve interpretability
 * experiments (the seed's `experiment_en.py`, non-interactive). SRC is anything `openModel` accepts.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { runCommand } from "./command.ts";
import { type BackendName, initBackend } from "../backend/backend.ts";
import { openModel } from "../models/open.ts";
import "../train/run.ts"; // registers the trainer's model-folder reader with openModel
import { closest } from "../options.ts";
import {
  parseExperimentIds,
  REFLOW_EXPERIMENTS,
  runReflowExperiments,
} from "../reflow/experiments/experiments.ts";
import { formatParameterTable, writeExperimentOutputs } from "../reflow/experiments/report.ts";
import { parameterTable } from "../reflow/inspect.ts";
import { inspectReflowCheckpoint } from "../reflow/load.ts";
import { reflowVariantOf } from "../reflow/variants.ts";
import { GPT2_EOT, Gpt2BpeTokenizer } from "../tokenizers/gpt2_bpe.ts";
import "../reflow/mod.ts"; // registers the reflow embedding kind
import { reflowParts } from "../reflow/experiments/access.ts";

/**
 * The `--help` text of the reflow command.
 *
 * @category reFlow
 * @internal Used inside the library; not part of the stable API.
 */
export const REFLOW_USAGE = `Usage: deno task reflow <check|experiment> --model SRC [options]

  check        print every tensor's name, shape and element count, the group subtotals and the total
  experiment   run reFlow interpretability experiments; write results.json, report.md and figures/

SRC: a Hugging Face folder or hf:org/name, or a run/checkpoint folder written by deno task train.

Options:
  --model SRC           model source (required)
  --exp LIST            experiment ids: all, or e.g. 1,5,9 (default all)
                        ${REFLOW_EXPERIMENTS.map((e) => `${e.id} ${e.key}`).join(", ")}
  --out DIR             output folder for experiment (required for experiment)
  --options FILE        JSON file of per-experiment options: { "1": { "words": [...] }, "9": { "maxK": 10 } }
  --skip-missing        skip probe words that are not single tokens (listed in the results) instead of failing
  --backend B           auto | webgpu | wasm | cpu (default auto)
  -h, --help            show this help
`;

/**
 * Parsed reflow flags.
 *
 * @category reFlow
 */
export interface ReflowArgs {
  /** Sub-command. */
  command: "check" | "experiment";
  /** Model source. */
  model: string;
  /** Selected experiment ids. */
  experiments: number[];
  /** Output folder (experiment). */
  out?: string;
  /** Path of a JSON options file. */
  options?: string;
  /** Skip probe words that are not single tokens. */
  skipMissing: boolean;
  /** tfjs backend. */
  backend: BackendName | "auto";
}

const FLAGS = ["--model", "--exp", "--out", "--options", "--skip-missing", "--backend", "--help"];

/**
 * Parses reflow flags; null for `--help`. Usage errors throw a message saying what is allowed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseReflowArgs } from "./reflow.ts";
 * assert.deepEqual(parseReflowArgs(["experiment", "--model", "m", "--exp", "1,5", "--out", "o"])?.experiments, [1, 5]);
 * assert.throws(() => parseReflowArgs(["experiment", "--model", "m", "--exp", "13", "--out", "o"]), /valid ids/);
 * assert.throws(() => parseReflowArgs(["chek", "--model", "m"]), /did you mean check/);
 * ```
 *
 * @category reFlow
 */
export function parseReflowArgs(argv: string[]): ReflowArgs | null {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        model: { type: "string" },
        exp: { type: "string" },
        out: { type: "string" },
        options: { type: "string" },
        "skip-missing": { type: "boolean", default: false },
        backend: { type: "string", default: "auto" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (e) {
    const msg = (e as Error).message.split("\n")[0];
    const flag = /'(--?[\w-]+)'/.exec(msg)?.[1];
    const near = flag ? closest(flag, FLAGS) : [];
    throw new Error(
      `${msg}${near.length ? ` (did you mean ${near.join(", ")}?)` : ""}; allowed flags: ${FLAGS.join(", ")}`,
    );
  }
  if (values.help) return null;
  const [command, ...rest] = positionals;
  if (command !== "check" && command !== "experiment") {
    const near = command ? closest(command, ["check", "experiment"]) : [];
    throw new Error(
      command === undefined
        ? "a sub-command is required: check or experiment"
        : `unknown sub-command '${command}'${
          near.length ? ` (did you mean ${near.join(", ")}?)` : ""
        }; use check or experiment`,
    );
  }
  if (rest.length) throw new Error(`unexpected argument '${rest[0]}'`);
  if (!values.model) throw new Error("--model SRC is required");
  if (!["auto", "webgpu", "wasm", "cpu"].includes(values.backend!)) {
    throw new Error(`--backend must be one of auto, webgpu, wasm, cpu, got '${values.backend}'`);
  }
  if (command === "experiment" && !values.out) throw new Error("--out DIR is required for experiment");
  if (command === "check" && (values.exp || values.out || values.options)) {
    throw new Error("check takes only --model and --backend");
  }
  return {
    command,
    model: values.model,
    experiments: parseExperimentIds(values.exp ?? "all"),
    out: values.out,
    options: values.options,
    skipMissing: values["skip-missing"] ?? false,
    backend: values.backend as BackendName | "auto",
  };
}

/**
 * Runs the reflow command; returns the exit code (0 ok, 1 failure, 2 usage error).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reflowMain } from "./reflow.ts";
 * assert.equal(await reflowMain(["--help"]), 0);
 * assert.equal(await reflowMain(["check"]), 2); // --model missing
 * ```
 *
 * @category reFlow
 */
export function reflowMain(argv: string[]): Promise<number> {
  return runCommand(argv, {
    name: "reflow",
    usage: REFLOW_USAGE,
    parse: parseReflowArgs,
    run: async (args) => {
      await initBackend({ backend: args.backend });
      const opened = await openModel(args.model);
      const { model, tokenizer } = opened;
      try {
        if (args.command === "check") {
          console.log(
            `model ${opened.source} (${opened.kind}, ${model.config.family}, ${model.config.nLayers} layers)`,
          );
          if (model.config.family === "reflow") console.log(`variant ${reflowVariantOf(model.config)}`);
          console.log(formatParameterTable(parameterTable(model.config)));
          // Like check.py's iter_num / best_val_loss / model_args: what tools/convert_reflow.py kept from ckpt.pt.
          const hf = await Deno.readTextFile(`${opened.source}/config.json`).then(JSON.parse, () => null)
            .catch(() => null);
          if (hf?.model_type === "reflow") {
            const r = await inspectReflowCheckpoint(opened.source);
            const stored = [
              r.iterNum !== undefined ? `iter_num ${r.iterNum}` : "",
              r.bestValLoss !== undefined ? `best_val_loss ${r.bestValLoss}` : "",
            ].filter(Boolean);
            if (stored.length) console.log(`\n${stored.join(", ")}`);
            if (r.modelArgs) console.log(`model_args ${JSON.stringify(r.modelArgs)}`);
            for (const m of r.mismatches) console.log(`mismatch: ${m}`);
          }
          // Like check.py's iter_num / best_val_loss: what the trainer stored, when the folder has it.
          const state = await Deno.readTextFile(`${opened.source}/state.json`).then(JSON.parse, () => null);
          if (state) {
            const ev = state.lastEval as Record<string, unknown> | undefined;
            console.log(
              `\nstep ${state.step}` +
                (ev?.loss !== undefined ? `, last validation loss ${Number(ev.loss).toFixed(4)}` : ""),
            );
          }
          return 0;
        }
        let tok = tokenizer;
        if (!tok && model.config.family === "reflow" && model.config.vocabSize > GPT2_EOT) {
          // A converted upstream checkpoint has no tokenizer.json: every reFlow config uses GPT-2 BPE.
          tok = new Gpt2BpeTokenizer(model.config.vocabSize);
          console.log(
            "tokenizer: GPT-2 BPE (the folder has no tokenizer.json; reFlow checkpoints use GPT-2 BPE)",
          );
        }
        if (!tok) {
          throw new Error(
            `model ${args.model} has no tokenizer; the experiments need one: put its tokenizer.json in the folder`,
          );
        }
        const parts = reflowParts(model);
        let perExp: Record<string, Record<string, unknown>> = {};
        if (args.options) {
          try {
            perExp = JSON.parse(await Deno.readTextFile(args.options));
          } catch (e) {
            throw new Error(`--options ${args.options}: ${(e as Error).message}`);
          }
        }
        const started = new Date().toISOString();
        const outputs = await runReflowExperiments(model, tok, args.experiments, perExp, {
          skipMissing: args.skipMissing,
        });
        const paths = await writeExperimentOutputs(args.out!, outputs, {
          model: opened.source,
          started,
          scale: {
            layers: parts.layers,
            signals: parts.signals,
            dModel: parts.dModel,
            vocab: parts.vocab,
            parameters: parameterTable(model.config).total,
          },
        });
        for (const o of outputs) {
          const s = Object.entries(o.result.summary).map(([k, v]) =>
            `${k}=${typeof v === "number" ? +v.toPrecision(4) : v}`
          );
          console.log(`${o.result.id} ${o.result.name}: ${s.join(", ")}`);
        }
        console.log(`wrote ${paths.length} files to ${args.out}`);
        return 0;
      } finally {
        model.dispose();
      }
    },
  });
}

if (import.meta.main) Deno.exit(await reflowMain(Deno.args));
