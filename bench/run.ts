/**
 * `deno task bench`: runs the benchmarks side by side in one run and prints one table.
 *
 * - models: prefill and decode tokens/s of GPT-2-shaped random decoders through `generate()`
 *   (bench/models_bench.ts), one subprocess per tfjs backend (a fresh tfjs each), then the same workload in
 *   PyTorch (bench/torch_models.py) when a python with torch is found.
 * - phasegpt (opt-in: `--only phasegpt`): the Kuramoto mixer against the original O(T²N) layer
 *   (bench/phasegpt_bench.ts).
 * - train, recync: bench/train_bench.ts and bench/recync_bench.ts, when present (their output is shown as
 *   they print it).
 *
 * ```sh
 * deno task bench                                  # 124M model, batch 1 and 16, every backend present
 * deno task bench --sizes 124m,16m --json out/bench.json
 * deno task bench --quick                          # tiny shapes: checks the plumbing in seconds
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { tf } from "../lib/deps.ts";
import { adapterName, isSoftwareAdapter, requestAdapter } from "../lib/backend/backend.ts";
import { writeTextAtomic } from "../lib/io/atomic.ts";
import {
  BENCH_MODEL_SIZES,
  benchModelConfig,
  type ModelBenchRow,
  parsePositiveList,
} from "./models_bench.ts";

const HELP = `deno task bench [options]      (= deno run -A bench/run.ts)

  --only models,train,recync,reflow  which benchmarks (default: all present); also phasegpt (opt-in, ~10 min)
  --backends cpu,wasm,webgpu  tfjs backends (default: cpu, wasm, and webgpu on a hardware adapter;
                              a software adapter such as llvmpipe runs only when named here)
  --sizes 124m,51m,16m        model sizes for the models bench (default 124m)
  --batches 1,16              batch sizes (default 1,16)
  --prompt 128 --new 32       prompt length P and decoded tokens N (default 128, 32)
  --max-seconds 60            skip a case whose estimated time is longer (per backend and case)
  --repeats 1                 measured runs per case, median reported (tfjs and torch alike)
  --python PATH               python with torch (default: python3, then /usr/bin/python3)
  --no-torch                  skip the PyTorch side
  --torch-threads 2,1         CPU threads of the PyTorch runs, one run each (default: all cores; the
                              tfjs wasm backend runs on one thread under Deno)
  --blas-threads 1            threads of the wasm backend's native CBLAS (torch's BLAS follows
                              --torch-threads)
  --sampling greedy,top-p     decoding of the models bench, one pass each (default greedy; top-p is 0.9
                              at temperature 1, on both sides)
  --quick                     tiny shapes (16m, batch 1 and 2, P 8, N 4): checks the plumbing
  --train-args "..."          extra flags for bench/train_bench.ts (e.g. "--sizes 4x128 --steps 3")
  --recync-args "..."         extra flags for bench/recync_bench.ts (e.g. "--backend wasm --T 50")
  --reflow-args "..."         extra flags for bench/reflow_bench.ts (e.g. "--size mini --steps 3")
  --phasegpt-args "..."       extra flags for bench/phasegpt_bench.ts (e.g. "--T 64,128 --torch-T 64")
  --json FILE                 also write everything measured as JSON
  -h, --help                  this text`;

/** Everything one run measured (the `--json` file). */
export interface BenchReport {
  /** ISO date of the run. */
  date: string;
  /** CPU model, cores, memory, load, runtime versions. */
  machine: Record<string, string | number>;
  /** Command-line arguments. */
  args: string[];
  /** Models bench rows from every engine. */
  models: ModelBenchRow[];
  /** Engines that failed or were left out, with the reason. */
  notes: string[];
  /** Printed output of the other benches, by name. */
  other: Record<string, string>;
  /** What the other benches wrote with their own `--json`, by name. */
  otherJson: Record<string, unknown>;
}

/** The child script next to this one (`.js` siblings when this file was bundled for the GPU machine). */
function sibling(name: string): string {
  const ext = import.meta.url.endsWith(".js") ? ".js" : ".ts";
  return fileURLToPath(new URL(`./${name}${ext}`, import.meta.url));
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Runs a command, forwarding its stderr live; returns its stdout, exit code and an error summary. */
async function runChild(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; errTail: string }> {
  const child = new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  })
    .spawn();
  const errLines: string[] = [];
  const forwardStderr = async () => {
    const dec = new TextDecoder();
    let partial = "";
    for await (const chunk of child.stderr) {
      await Deno.stderr.write(chunk);
      const lines = (partial + dec.decode(chunk, { stream: true })).split("\n");
      partial = lines.pop()!;
      errLines.push(...lines);
      if (errLines.length > 400) errLines.splice(0, errLines.length - 400);
    }
    if (partial) errLines.push(partial);
  };
  const [stdout] = await Promise.all([new Response(child.stdout).text(), forwardStderr()]);
  const { code } = await child.status;
  return { code, stdout, errTail: errorSummary(errLines) };
}

/** The first line that names an error (else the last line) of a child's stderr. */
function errorSummary(lines: string[]): string {
  const l = lines.find((x) => /error/i.test(x)) ?? lines.findLast((x) => x.trim() !== "") ?? "";
  return l.trim().slice(0, 300);
}

/** Splits a flag string on whitespace (no quoting: the benches' flags take no spaces). */
function splitArgs(text: string): string[] {
  return text.split(/\s+/).filter(Boolean);
}

/** The first of `candidates` that imports torch, with its version; null when none does. */
async function findTorchPython(candidates: string[]): Promise<{ python: string; version: string } | null> {
  for (const python of candidates) {
    try {
      const r = await new Deno.Command(python, {
        args: ["-c", "import torch; print(torch.__version__)"],
        stdout: "piped",
        stderr: "null",
      }).output();
      if (r.success) return { python, version: new TextDecoder().decode(r.stdout).trim() };
    } catch { /* not installed */ }
  }
  return null;
}

async function machineInfo(): Promise<Record<string, string | number>> {
  const read = async (p: string) => {
    try {
      return await Deno.readTextFile(p);
    } catch {
      return "";
    }
  };
  const cpuinfo = await read("/proc/cpuinfo");
  const mem = (await read("/proc/meminfo")).match(/MemTotal:\s+(\d+)/);
  return {
    cpu: cpuinfo.match(/model name\s*:\s*(.+)/)?.[1] ?? Deno.build.arch,
    cores: navigator.hardwareConcurrency,
    memGiB: mem ? Math.round(Number(mem[1]) / 1048576) : "unknown",
    loadavgAtStart: (await read("/proc/loadavg")).split(" ").slice(0, 3).join(" "),
    os: `${Deno.build.os} ${Deno.build.arch}`,
    deno: Deno.version.deno,
    tfjs: tf.version.tfjs,
  };
}

function fmtRate(r: ModelBenchRow | undefined): string {
  if (!r) return "-";
  if (r.tokensPerSec === null) return "skipped";
  const v = r.tokensPerSec;
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/**
 * The side-by-side table: one line per (workload, size, batch), tokens/s per engine, and the best tfjs
 * engine's rate divided by the best torch engine's (above 1: ours is faster), both named: one ratio per
 * decoding (greedy; top-p where an engine's name says so), never across them.
 *
 * @example
 * ```ts
 * import { formatModelsTable } from "./run.ts";
 * console.log(formatModelsTable([]));
 * ```
 */
export function formatModelsTable(rows: ModelBenchRow[]): string {
  const engines = [...new Set(rows.map((r) => r.engine))];
  const decoding = (e: string) => e.includes("top-p") ? "top-p" : "greedy";
  const decodings = [...new Set(engines.map(decoding))];
  const keys = [...new Map(rows.map((r) => [`${r.workload}|${r.size}|${r.batch}`, r])).values()];
  const header = [
    "workload",
    "size",
    "batch",
    "P",
    "N",
    ...engines.map((e) => `${e} tok/s`),
    ...decodings.map((d) =>
      decodings.length > 1 ? `best tfjs / best torch (${d})` : "best tfjs / best torch"
    ),
  ];
  const lines = keys.map((k) => {
    const find = (e: string) =>
      rows.find((r) =>
        r.engine === e && r.workload === k.workload && r.size === k.size && r.batch === k.batch
      );
    const fastest = (names: string[]) =>
      names.map(find).filter((r): r is ModelBenchRow => !!r && r.tokensPerSec !== null)
        .sort((a, b) => b.tokensPerSec! - a.tokensPerSec!)[0];
    const ratios = decodings.map((d) => {
      const of = (prefix: string) => engines.filter((e) => e.startsWith(prefix) && decoding(e) === d);
      const best = fastest(of("tfjs")), t = fastest(of("torch"));
      return best && t
        ? `${(best.tokensPerSec! / t.tokensPerSec!).toFixed(2)}x (${best.engine.replace(/^tfjs-/, "")} / ${
          t.engine.replace(/^torch-/, "")
        })`
        : "-";
    });
    return [
      k.workload,
      k.size,
      String(k.batch),
      String(k.prompt),
      String(k.newTokens),
      ...engines.map((e) => fmtRate(find(e))),
      ...ratios,
    ];
  });
  const table = [header, ...lines];
  const widths = header.map((_, i) => Math.max(...table.map((l) => l[i].length)));
  const fmt = (l: string[]) => "| " + l.map((c, i) => c.padEnd(widths[i])).join(" | ") + " |";
  return [fmt(header), "|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|", ...lines.map(fmt)].join(
    "\n",
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      only: { type: "string" },
      backends: { type: "string" },
      sizes: { type: "string" },
      batches: { type: "string" },
      prompt: { type: "string" },
      new: { type: "string" },
      "max-seconds": { type: "string", default: "60" },
      repeats: { type: "string", default: "1" },
      python: { type: "string" },
      "no-torch": { type: "boolean" },
      "torch-threads": { type: "string" },
      sampling: { type: "string", default: "greedy" },
      "blas-threads": { type: "string", default: "1" },
      quick: { type: "boolean" },
      "train-args": { type: "string" },
      "recync-args": { type: "string" },
      "reflow-args": { type: "string" },
      "phasegpt-args": { type: "string" },
      json: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const only = (values.only ?? "models,train,recync,reflow").split(",").map((s) => s.trim()).filter(Boolean);
  for (const o of only) {
    if (!["models", "train", "recync", "reflow", "phasegpt"].includes(o)) {
      throw new Error(`--only: unknown bench '${o}' (models, train, recync, reflow, phasegpt)`);
    }
  }
  const quick = !!values.quick;
  const sizes = (values.sizes ?? (quick ? "16m" : "124m")).split(",").map((s) => s.trim()).filter(Boolean);
  sizes.forEach(benchModelConfig);
  const batches = values.batches ?? (quick ? "1,2" : "1,16");
  parsePositiveList("batches", batches);
  const prompt = values.prompt ?? (quick ? "8" : "128");
  const newTokens = values.new ?? (quick ? "4" : "32");
  parsePositiveList("prompt", prompt);
  parsePositiveList("new", newTokens);
  parsePositiveList("repeats", values.repeats);
  const maxSeconds = values["max-seconds"];
  if (!(Number(maxSeconds) > 0)) {
    throw new Error(`--max-seconds must be a positive number, got '${maxSeconds}'`);
  }

  const report: BenchReport = {
    date: new Date().toISOString(),
    machine: await machineInfo(),
    args: [...Deno.args],
    models: [],
    notes: [],
    other: {},
    otherJson: {},
  };
  const note = (s: string) => {
    report.notes.push(s);
    console.error(`[bench] ${s}`);
  };

  // Backends: webgpu only on a hardware adapter unless asked for by name.
  const adapter = await requestAdapter();
  let backends: string[];
  if (values.backends) {
    backends = values.backends.split(",").map((s) => s.trim()).filter(Boolean);
    for (const b of backends) {
      if (!["cpu", "wasm", "webgpu"].includes(b)) {
        throw new Error(`--backends: unknown backend '${b}' (cpu, wasm, webgpu)`);
      }
    }
    if (backends.includes("webgpu") && !adapter) {
      note("webgpu left out: no WebGPU adapter found");
      backends = backends.filter((b) => b !== "webgpu");
    }
  } else {
    backends = ["cpu", "wasm"];
    if (adapter && !isSoftwareAdapter(adapter)) backends.push("webgpu");
    else if (adapter) {
      note(
        `webgpu left out: '${adapterName(adapter)}' is a software adapter (name it in --backends to run it)`,
      );
    } else note("webgpu left out: no WebGPU adapter found");
  }
  if (adapter) {
    report.machine.webgpuAdapter = adapterName(adapter) + (isSoftwareAdapter(adapter) ? " (software)" : "");
  }

  const found = values["no-torch"]
    ? null
    : await findTorchPython(values.python ? [values.python] : ["python3", "/usr/bin/python3"]);
  const torchPython = found?.python;
  if (found) {
    report.machine.torch = found.version;
    report.machine.python = found.python;
  }

  const samplings = values.sampling.split(",").map((x) => x.trim()).filter(Boolean);
  for (const x of samplings) {
    if (x !== "greedy" && x !== "top-p") throw new Error(`--sampling: use greedy and/or top-p, got '${x}'`);
  }
  for (const sampling of only.includes("models") ? samplings : []) {
    const common = [
      "--sizes",
      sizes.join(","),
      "--batches",
      batches,
      "--prompt",
      prompt,
      "--new",
      newTokens,
      "--sampling",
      sampling,
    ];
    const tfjsOnly = ["--blas-threads", values["blas-threads"]];
    const tmp = await Deno.makeTempDir({ prefix: "bench-" });
    try {
      for (const backend of backends) {
        const out = `${tmp}/${backend}.json`;
        console.error(`[bench] models on tfjs-${backend} ...`);
        const r = await runChild(Deno.execPath(), [
          "run",
          "-A",
          sibling("models_bench"),
          "--backend",
          backend,
          ...common,
          ...tfjsOnly,
          "--max-seconds",
          maxSeconds,
          "--repeats",
          values.repeats,
          "--json",
          out,
        ]);
        if (r.code !== 0 || !(await exists(out))) {
          note(`tfjs-${backend} failed (exit ${r.code}): ${r.errTail}`);
        } else report.models.push(...JSON.parse(await Deno.readTextFile(out)) as ModelBenchRow[]);
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }

    if (!values["no-torch"]) {
      if (!found) note("PyTorch side left out: no python3 with torch found (pass --python PATH)");
      else {
        const local = fileURLToPath(new URL("./torch_models.py", import.meta.url));
        const script = (await exists(local)) ? local : "bench/torch_models.py";
        const sizeSpec = Object.fromEntries(sizes.map((s) => {
          const c = BENCH_MODEL_SIZES[s];
          return [s, [c.nLayers, c.dModel, c.nHeads]];
        }));
        const threads = values["torch-threads"]
          ? parsePositiveList("torch-threads", values["torch-threads"])
          : [0];
        for (const t of threads) {
          console.error(`[bench] models on torch (${found.python}, torch ${found.version}) ...`);
          const r = await runChild(found.python, [
            script,
            "--sizes",
            JSON.stringify(sizeSpec),
            ...common.slice(2),
            "--max-seconds",
            maxSeconds,
            "--repeats",
            values.repeats,
            ...(t ? ["--threads", String(t)] : []),
          ]);
          if (r.code !== 0) note(`torch failed (exit ${r.code}): ${r.errTail}`);
          else report.models.push(...JSON.parse(r.stdout) as ModelBenchRow[]);
        }
      }
    }
  }

  // The training (E) and Recync (F2) benches have flags of their own: quick mode shrinks them, and
  // --train-args / --recync-args pass anything else through. Their PyTorch side looks for `python3` on
  // PATH, so the directory of the python found above goes first.
  const extra: Record<string, string[]> = {
    train: [
      ...(values.backends ? ["--backends", backends.join(",")] : []),
      ...(values["no-torch"] ? ["--no-torch"] : []),
      ...(quick ? ["--sizes", "4x128", "--steps", "2", "--batch", "2", "--block", "32"] : []),
    ],
    recync: quick ? ["--T", "16", "--reps", "1", "--units", "2", "--batches", "1,2"] : [],
    reflow: [
      ...(values["no-torch"] ? ["--no-torch"] : []),
      ...(quick
        ? ["--steps", "1", "--batch", "1", "--block", "16", "--head-widths", "128", "--head-tokens", "32"]
        : []),
    ],
    phasegpt: [
      ...(torchPython && !values["no-torch"] ? ["--python", torchPython] : ["--torch-T", ""]),
      ...(quick
        ? [
          "--B",
          "2",
          "--H",
          "2",
          "--d",
          "64",
          "--T",
          "16,32",
          "--threads",
          "1",
          "--reps",
          "1",
          "--decode",
          "16",
        ]
        : []),
      ...(quick && torchPython && !values["no-torch"] ? ["--torch-T", "16"] : []),
    ],
  };
  for (const name of ["train", "recync", "reflow", "phasegpt"] as const) {
    if (!only.includes(name)) continue;
    const path = sibling(`${name}_bench`);
    if (!(await exists(path))) {
      note(`${name} bench left out: ${path} does not exist yet`);
      continue;
    }
    const jsonOut = await Deno.makeTempFile({ suffix: ".json" });
    await Deno.remove(jsonOut); // written only by a bench that gets that far
    const args = [...extra[name], ...splitArgs(values[`${name}-args`] ?? ""), "--json", jsonOut];
    console.error(`[bench] ${name}: ${path} ${args.join(" ")} ...`);
    const pathEnv: Record<string, string> = torchPython?.includes("/")
      ? { PATH: `${torchPython.slice(0, torchPython.lastIndexOf("/"))}:${Deno.env.get("PATH") ?? ""}` }
      : {};
    const r = await runChild(Deno.execPath(), ["run", "-A", path, ...args], pathEnv);
    report.other[name] = r.stdout;
    if (await exists(jsonOut)) {
      report.otherJson[name] = JSON.parse(await Deno.readTextFile(jsonOut));
      await Deno.remove(jsonOut);
    }
    if (r.code !== 0) note(`${name} bench failed (exit ${r.code}): ${r.errTail}`);
  }
  report.machine.loadavgAtEnd = (await Deno.readTextFile("/proc/loadavg").catch(() => "")).split(" ").slice(
    0,
    3,
  )
    .join(" ");

  // The one side-by-side report.
  const m = report.machine;
  console.log(`\n# Coherence Lab benchmarks, ${report.date}`);
  console.log(
    `machine: ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB; load ${m.loadavgAtStart} -> ${m.loadavgAtEnd}` +
      (m.webgpuAdapter ? `; WebGPU adapter: ${m.webgpuAdapter}` : ""),
  );
  console.log(
    `deno ${m.deno}, tfjs ${m.tfjs}` + (m.torch ? `, torch ${m.torch} (${m.python})` : ", no torch"),
  );
  if (report.models.length) {
    console.log(
      `\n## Inference: GPT-2-shaped random models, generate() with KV cache, greedy unless marked top-p (tokens/s)\n`,
    );
    console.log(formatModelsTable(report.models));
    for (const r of report.models.filter((r) => r.skipped)) {
      console.log(`- ${r.engine} ${r.size} batch ${r.batch} ${r.workload}: ${r.skipped}`);
    }
  }
  for (const [name, text] of Object.entries(report.other)) {
    console.log(`\n## ${name} bench\n\n${text.trim()}`);
  }
  if (report.notes.length) console.log(`\nnotes:\n${report.notes.map((n) => `- ${n}`).join("\n")}`);
  if (values.json) await writeTextAtomic(values.json, JSON.stringify(report, null, 1));
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`bench: ${e instanceof Error ? e.message : e}`);
    Deno.exit(2);
  }
}
