/**
 * `deno task demo`: generate from the bundled demo model while watching the cosine similarity between
 * consecutive hidden states, flag coherence dips with the Recync crisis monitor, and write a chart
 * (SVG + PNG), the generated text and a JSON summary.
 *
 * ```sh
 * deno task demo
 * deno task demo --prompt "ROMEO:" --tokens 300 --temperature 0.8 --out out/demo
 * deno task demo --model data/models/tiny-gpt2
 * ```
 *
 * @module
 */
import { parseFlags, runCommand } from "./command.ts";

import { type BackendName, initBackend } from "../backend/backend.ts";
import { writeJsonAtomic, writeTextAtomic } from "../io/atomic.ts";
import { generate } from "../generate/generate.ts";
import { loadExampleModel } from "../examples/example_model.ts";
import { cosimTracePlot } from "../plot/charts.ts";
import { savePng, saveSvg } from "../plot/png.ts";
import { CosimMonitor, type CrisisEvent } from "../recync/monitor.ts";
export type { BackendName } from "../backend/backend.ts";
export type { CrisisEvent, SeverityBucket } from "../recync/monitor.ts";

const USAGE = `Usage: deno task demo [options]

Generates text while monitoring the cosine similarity of consecutive hidden states (cosim), reports
coherence dips ("crises") found by the Recync monitor, and writes cosim.svg, cosim.png, generated.txt
and summary.json to the output folder.

Options:
  --model SRC          any model source: a folder (HF config.json or a trainer checkpoint), hf:org/name
                       (Hugging Face cache), an http(s):// folder URL or bundled:NAME
                       (default: data/models/shakespeare-char, else data/models/tiny-gpt2)
  --prompt TEXT        prompt (default "ROMEO:")
  --tokens N           new tokens to generate (default 200)
  --temperature T      sampling temperature, 0 = greedy (default 0.9)
  --top-p P            nucleus sampling threshold in (0, 1] (default 0.95)
  --seed N             sampling seed (default 0)
  --backend NAME       auto | webgpu | wasm | cpu (default auto)
  --out DIR            output folder (default out/demo)
  -h, --help           show this help`;

/** What the demo produced. */
export interface DemoSummary {
  /** Model folder and kind. */
  model: { source: string; kind: string; family: string; nLayers: number; dModel: number; vocabSize: number };
  /** Notes about fallbacks taken. */
  notes: string[];
  /** tfjs backend used. */
  backend: string;
  /** Prompt text and ids length. */
  prompt: string;
  /** Sampling settings. */
  sampling: { temperature: number; topP: number; seed: number };
  /** Generated text. */
  text: string;
  /** Generated tokens. */
  tokens: number;
  /** Decode throughput (tokens per second, prefill excluded). */
  tokensPerSecond: number;
  /** cosim(t) for t = 1.. (t = 0 has no predecessor). */
  cosims: number[];
  /** Mean and minimum cosim. */
  cosimMean: number;
  /** Minimum cosim. */
  cosimMin: number;
  /** Crises confirmed by the monitor. */
  crises: CrisisEvent[];
  /** Files written. */
  files: string[];
}

function positiveInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got '${v}'`);
  return n;
}

function finite(name: string, v: string, lo: number, hi: number): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < lo || n > hi) {
    throw new Error(`--${name} must be in [${lo}, ${hi}], got '${v}'`);
  }
  return n;
}

/**
 * Runs the demo with command-line `args`; returns the exit code.
 *
 * @example
 * ```ts
 * import { runDemoCli } from "./demo.ts";
 * const code = await runDemoCli(["--tokens", "16", "--backend", "cpu", "--out", await Deno.makeTempDir()]);
 * ```
 */
export function runDemoCli(args: string[]): Promise<number> {
  return runCommand(args, {
    name: "demo",
    usage: USAGE,
    parse: (argv): DemoOptions | null => {
      const { values } = parseFlags({
        args: argv,
        options: {
          model: { type: "string" },
          prompt: { type: "string", default: "ROMEO:" },
          tokens: { type: "string", default: "200" },
          temperature: { type: "string", default: "0.9" },
          "top-p": { type: "string", default: "0.95" },
          seed: { type: "string", default: "0" },
          backend: { type: "string", default: "auto" },
          out: { type: "string", default: "out/demo" },
          help: { type: "boolean", short: "h", default: false },
        },
        strict: true,
        allowPositionals: false,
      });
      if (values.help) return null;
      if (!["auto", "webgpu", "wasm", "cpu"].includes(values.backend)) {
        throw new Error(`--backend must be one of auto, webgpu, wasm, cpu, got '${values.backend}'`);
      }
      const seed = Number(values.seed);
      if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be a non-negative integer`);
      return {
        model: values.model,
        prompt: values.prompt,
        backend: values.backend as BackendName | "auto",
        out: values.out,
        tokens: positiveInt("tokens", values.tokens),
        temperature: finite("temperature", values.temperature, 0, 100),
        topP: finite("top-p", values["top-p"], Number.MIN_VALUE, 1),
        seed,
      };
    },
    run: async (options) => {
      console.log(formatDemoSummary(await runDemo(options)));
      return 0;
    },
  });
}

/** Options for {@linkcode runDemo}. */
export interface DemoOptions {
  /** Model folder (default: the example model). */
  model?: string;
  /** Prompt text. */
  prompt: string;
  /** New tokens. */
  tokens: number;
  /** Sampling temperature (0 = greedy). */
  temperature: number;
  /** Nucleus threshold. */
  topP: number;
  /** Sampling seed. */
  seed: number;
  /** Backend choice. */
  backend: BackendName | "auto";
  /** Output folder. */
  out: string;
  /** Print tokens as they are generated (default true). */
  stream?: boolean;
}

/**
 * Generates with per-step cosim monitoring and writes the chart, text and summary.
 *
 * @example
 * ```ts
 * import { runDemo } from "./demo.ts";
 * const s = await runDemo({ prompt: "ROMEO:", tokens: 16, temperature: 0.9, topP: 0.95, seed: 0, backend: "cpu", out: await Deno.makeTempDir(), stream: false });
 * console.log(s.tokens, s.crises.length, s.files);
 * ```
 */
export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  // verbose: the same "[backend] ... software fallback" notes as `deno task sample` prints.
  const backend = await initBackend({ backend: options.backend, verbose: options.stream ?? true });
  const ex = await loadExampleModel(options.model);
  try {
    for (const n of ex.notes) console.error(`demo: note: default model skipped: ${n}`);
    if (!ex.tokenizer) {
      console.error(
        `demo: note: ${ex.source} has no tokenizer; the prompt is fed as UTF-8 bytes and ids are shown`,
      );
    }
    const ids = ex.encode(options.prompt);
    if (ids.length === 0) throw new Error("the prompt encodes to no tokens; pass a non-empty --prompt");
    const room = ex.model.config.maxPositions - ids.length;
    if (room < 1) {
      throw new Error(
        `the prompt (${ids.length} tokens) fills the context (${ex.model.config.maxPositions})`,
      );
    }
    const maxNew = Math.min(options.tokens, room);
    if (maxNew < options.tokens) console.error(`demo: note: generating ${maxNew} tokens (context limit)`);
    const monitor = new CosimMonitor();
    const stream = options.stream ?? true;
    const enc = new TextEncoder();
    if (stream) Deno.stdout.writeSync(enc.encode(options.prompt));
    const run = generate(ex.model, ids, {
      maxNewTokens: maxNew,
      seed: options.seed,
      sampling: { temperature: options.temperature, topP: options.topP },
      decode: ex.decode,
    });
    let shown = "";
    for await (const step of run) {
      const row = step.rows[0];
      if (!row) continue;
      // cosim(0) is NaN (no previous hidden state); the monitor numbers steps from 1.
      if (row.t > 0) {
        const rec = monitor.observe(row.cosim, row.t);
        if (rec.event && stream) Deno.stdout.writeSync(enc.encode(` ⟨crisis onset ${rec.event.onset}⟩ `));
      }
      if (stream) {
        const text = ex.decode(run.trace.rows[0].tokens);
        Deno.stdout.writeSync(enc.encode(text.slice(shown.length)));
        shown = text;
      }
    }
    if (stream) Deno.stdout.writeSync(enc.encode("\n\n"));
    const trace = run.trace;
    const row = trace.rows[0];
    const cosims = row.cosims.slice(1);
    const finiteCos = cosims.filter(Number.isFinite);
    const text = ex.decode(row.tokens);

    await Deno.mkdir(options.out, { recursive: true });
    const fig = cosimTracePlot(cosims, {
      startStep: 1,
      title: `cosim per step: ${ex.source.split("/").pop()} (${backend.name})`,
      thresholds: monitor.trace.map((r) => r.thr),
      thresholdLabel: "crisis threshold (mean − 0.6·std of the previous 20 values)",
      events: monitor.events.map((e) => ({ step: e.onset, label: `crisis (${e.bucket})` })),
    });
    const files = ["cosim.svg", "cosim.png", "generated.txt", "summary.json"].map((f) =>
      `${options.out}/${f}`
    );
    await saveSvg(files[0], fig);
    await savePng(files[1], fig, { scale: 2 });
    await writeTextAtomic(files[2], options.prompt + text + "\n");
    const decodeSec = trace.stats.decodeMs / 1000;
    const summary: DemoSummary = {
      model: {
        source: ex.source,
        kind: ex.kind,
        family: ex.model.config.family,
        nLayers: ex.model.config.nLayers,
        dModel: ex.model.config.dModel,
        vocabSize: ex.model.config.vocabSize,
      },
      notes: ex.notes,
      backend: backend.name,
      prompt: options.prompt,
      sampling: { temperature: options.temperature, topP: options.topP, seed: options.seed },
      text,
      tokens: row.tokens.length,
      tokensPerSecond: decodeSec > 0 ? row.tokens.length / decodeSec : NaN,
      cosims,
      cosimMean: finiteCos.reduce((a, b) => a + b, 0) / Math.max(finiteCos.length, 1),
      cosimMin: Math.min(...finiteCos),
      crises: monitor.events,
      files,
    };
    await writeJsonAtomic(files[3], summary);
    return summary;
  } finally {
    ex.model.dispose();
  }
}

/**
 * The summary as a few readable lines.
 *
 * @example
 * ```ts
 * import { formatDemoSummary, runDemo } from "./demo.ts";
 * const s = await runDemo({ prompt: "A", tokens: 8, temperature: 0, topP: 1, seed: 0, backend: "cpu", out: await Deno.makeTempDir(), stream: false });
 * console.log(formatDemoSummary(s));
 * ```
 */
export function formatDemoSummary(s: DemoSummary): string {
  const crisis = s.crises.length === 0
    ? "none"
    : s.crises.map((c) =>
      `onset ${c.onset} (confirmed ${c.confirmedAt}, ${c.bucket}, severity ${c.severity.toFixed(2)})`
    )
      .join("; ");
  return [
    `model     ${s.model.source} (${s.model.kind}, ${s.model.family}, ${s.model.nLayers} layers, d=${s.model.dModel})`,
    `backend   ${s.backend}`,
    `generated ${s.tokens} tokens at ${s.tokensPerSecond.toFixed(1)} tok/s`,
    `cosim     mean ${s.cosimMean.toFixed(4)}, min ${s.cosimMin.toFixed(4)}`,
    `crises    ${s.crises.length}: ${crisis}`,
    `wrote     ${s.files.join(", ")}`,
  ].join("\n");
}

if (import.meta.main) Deno.exit(await runDemoCli(Deno.args));
