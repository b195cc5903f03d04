/**
 * reFlow speed: training tokens/s of reFlow vs GPT-2-New at the same width and depth (the library's
 * `Trainer`, full optimiser step), the same two models in PyTorch (tools/reflow_torch.py, at 1 and 2
 * threads with `OMP_WAIT_POLICY=ACTIVE`) where `/usr/bin/python3` has torch, and the cost of the
 * factorised head at V = 50304 (forward + backward of the loss from the final hidden) against a plain tied
 * head. Prints markdown tables; `--json FILE` keeps the rows.
 *
 * ```sh
 * deno run -A bench/reflow_bench.ts                                  # wasm, the -tiny size, V 50304
 * deno run -A bench/reflow_bench.ts --backend wasm --size mini --batch 4 --block 64 --steps 3
 * deno run -A bench/reflow_bench.ts --no-torch --head-widths 128,256,512
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../lib/deps.ts";
import { type BackendName, initBackend } from "../lib/backend/backend.ts";
import { countParameters } from "../lib/models/params.ts";
import { modelPreset } from "../lib/models/presets.ts";
import type { Tensor2D } from "../lib/tensor_types.ts";
import { tokenLosses } from "../lib/train/loss.ts";
import { fillNormal, Prng } from "../lib/random/mod.ts";
import { writeTextAtomic } from "../lib/io/atomic.ts";
import "../lib/reflow/mod.ts";
import { benchTrainerFor } from "./train_bench.ts";

/** One training-throughput row. */
export interface ReflowTrainRow {
  /** "tfjs-wasm", "torch 1.13 cpu (1 thread)", ... */
  impl: string;
  /** reflow or gpt2-new. */
  variant: string;
  params: number;
  batch: number;
  block: number;
  msPerStep: number;
  tokensPerSec: number;
}

/** One head-cost row: forward + backward of CE from a [N, d] hidden, factorised (S = d) or tied. */
export interface HeadCostRow {
  impl: string;
  d: number;
  signals: number;
  tokens: number;
  vocab: number;
  factorisedMs: number;
  tiedMs: number;
  /** factorised / tied − 1. */
  overhead: number;
}

/** Training tokens/s of preset `name` on the active backend (2 warm-up steps). */
export async function benchPresetTraining(
  name: string,
  batch: number,
  block: number,
  steps: number,
  lossChunk?: number,
): Promise<ReflowTrainRow> {
  const config = modelPreset(name, { maxPositions: block });
  // Forces the chunked loss (positions per chunk) on a reFlow preset, to measure its cost.
  if (lossChunk && config.embedding) config.embedding = { ...config.embedding, lossChunk };
  const trainer = benchTrainerFor(config, batch, block);
  try {
    for (let i = 0; i < 2; i++) await trainer.trainStep();
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await trainer.trainStep();
    const ms = (performance.now() - t0) / steps;
    return {
      impl: `tfjs-${tf.getBackend()}`,
      variant: config.embedding?.kind === "reflow"
        ? (lossChunk ? `reflow (loss in chunks of ${lossChunk})` : "reflow")
        : "gpt2-new",
      params: countParameters(config),
      batch,
      block,
      msPerStep: ms,
      tokensPerSec: (batch * block * 1000) / ms,
    };
  } finally {
    trainer.dispose();
    trainer.model.dispose();
  }
}

function normal(shape: number[], std: number, seed: number): tf.Variable {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  fillNormal(data, 0, std, new Prng(seed));
  return tf.variable(tf.tensor(data, shape));
}

/**
 * Milliseconds of forward + backward of the mean CE from a `[tokens, d]` hidden through the factorised
 * head (σ = y·Φᵀ, logits = σ·Rᵀ; gradients for y, R, Φ) and through a tied head (logits = y·Eᵀ; gradients
 * for y, E), median of `repeats` after one warm-up.
 */
export async function benchHeadCost(
  d: number,
  tokens: number,
  vocab: number,
  repeats = 3,
): Promise<HeadCostRow> {
  const y = normal([tokens, d], 1, 1);
  const r = normal([vocab, d], 0.02, 2);
  const phi = normal([d, d], 1 / Math.sqrt(d), 3);
  const e = normal([vocab, d], 0.02, 4);
  const ids = tf.tensor1d(Array.from({ length: tokens }, (_, i) => (i * 7919) % vocab), "int32");
  const time = async (f: () => tf.Scalar, vars: tf.Variable[]): Promise<number> => {
    const once = async () => {
      const t0 = performance.now();
      const g = tf.variableGrads(f, vars);
      await Promise.all(Object.values(g.grads).map((t) => t.data()));
      const ms = performance.now() - t0;
      tf.dispose([g.value, ...Object.values(g.grads)]);
      return ms;
    };
    await once();
    const ms: number[] = [];
    for (let i = 0; i < repeats; i++) ms.push(await once());
    return ms.sort((a, b) => a - b)[Math.floor(repeats / 2)];
  };
  const ce = (logits: Tensor2D) => tf.mean(tokenLosses(logits, ids)) as tf.Scalar;
  const factorisedMs = await time(
    () => ce(tf.matMul(tf.matMul(y, phi, false, true), r, false, true)),
    [y, r, phi],
  );
  const tiedMs = await time(() => ce(tf.matMul(y, e, false, true)), [y, e]);
  tf.dispose([y, r, phi, e, ids]);
  return {
    impl: `tfjs-${tf.getBackend()}`,
    d,
    signals: d,
    tokens,
    vocab,
    factorisedMs,
    tiedMs,
    overhead: factorisedMs / tiedMs - 1,
  };
}

/** The two models in PyTorch, once per thread count; rows, or a note saying why not. */
export async function benchTorchTraining(
  size: { nLayers: number; dModel: number; nHeads: number },
  batch: number,
  block: number,
  steps: number,
  threads: number[],
  python = "/usr/bin/python3",
): Promise<{ rows: ReflowTrainRow[]; note?: string }> {
  const probe = await new Deno.Command(python, {
    args: ["-c", "import torch"],
    stdout: "null",
    stderr: "null",
  })
    .output().catch(() => null);
  if (!probe?.success) return { rows: [], note: `PyTorch not run: ${python} cannot import torch` };
  const script = new URL("../tools/reflow_torch.py", import.meta.url).pathname;
  const rows: ReflowTrainRow[] = [];
  for (const t of threads) {
    for (const variant of ["reflow", "gpt2-new"]) {
      const args = [
        script,
        "train-bench",
        "--variant",
        variant,
        "--layers",
        String(size.nLayers),
        "--d",
        String(size.dModel),
        "--heads",
        String(size.nHeads),
        "--signals",
        String(size.dModel),
        "--batch",
        String(batch),
        "--block",
        String(block),
        "--steps",
        String(steps),
        "--threads",
        String(t),
      ];
      // OpenBLAS (Debian's torch BLAS) keeps its own threads unless told: see bench/torch_models.py.
      const env = { OMP_WAIT_POLICY: "ACTIVE", OMP_NUM_THREADS: String(t), OPENBLAS_NUM_THREADS: String(t) };
      const out = await new Deno.Command(python, { args, env, stderr: "piped" }).output();
      if (!out.success) {
        return {
          rows,
          note: `PyTorch failed: ${new TextDecoder().decode(out.stderr).trim().split("\n").at(-1)}`,
        };
      }
      const j = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
      rows.push({
        impl: `${j.engine} (${t} thread${t > 1 ? "s" : ""})`,
        variant,
        params: j.params,
        batch,
        block,
        msPerStep: j.msPerStep,
        tokensPerSec: j.tokensPerSecond,
      });
    }
  }
  return { rows };
}

/** Markdown tables of both parts. */
export function formatReflowBench(train: ReflowTrainRow[], heads: HeadCostRow[]): string {
  const lines = [
    "| implementation | model | params | batch x block | ms/step | tokens/s | vs gpt2-new |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const r of train) {
    const base = train.find((b) => b.impl === r.impl && b.variant === "gpt2-new");
    const ratio = base && r !== base ? r.msPerStep / base.msPerStep - 1 : 0;
    const rel = base && r !== base
      ? `${(Math.abs(ratio) * 100).toFixed(1)}% ${ratio > 0 ? "slower" : "faster"}`
      : "";
    lines.push(
      `| ${r.impl} | ${r.variant} | ${(r.params / 1e6).toFixed(2)}M | ${r.batch} x ${r.block} | ${
        r.msPerStep.toFixed(0)
      } | ${Math.round(r.tokensPerSec).toLocaleString("en-US")} | ${rel} |`,
    );
  }
  if (heads.length) {
    lines.push(
      "",
      "| implementation | d = S | tokens | V | factorised head fwd+bwd ms | tied head fwd+bwd ms | overhead |",
      "|---|---|---|---|---|---|---|",
    );
    for (const h of heads) {
      lines.push(
        `| ${h.impl} | ${h.d} | ${h.tokens} | ${h.vocab} | ${h.factorisedMs.toFixed(0)} | ${
          h.tiedMs.toFixed(0)
        } | ${(h.overhead * 100).toFixed(1)}% |`,
      );
    }
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    strict: true,
    options: {
      backend: { type: "string", default: "wasm" },
      size: { type: "string", default: "tiny" },
      batch: { type: "string", default: "4" },
      block: { type: "string", default: "64" },
      steps: { type: "string", default: "3" },
      "head-widths": { type: "string", default: "128,256" },
      "head-tokens": { type: "string", default: "256" },
      "torch-threads": { type: "string", default: "1,2" },
      "no-torch": { type: "boolean", default: false },
      "loss-chunk": { type: "string" },
      json: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "Usage: deno run -A bench/reflow_bench.ts [--backend wasm|cpu|webgpu] [--size tiny|mini] [--batch 4] " +
        "[--block 64] [--steps 3] [--head-widths 128,256] [--head-tokens 256] [--torch-threads 1,2] [--no-torch] " +
        "[--loss-chunk N (also time reFlow with its loss in chunks of N positions)] [--json FILE]",
    );
    Deno.exit(0);
  }
  if (!["tiny", "mini"].includes(values.size!)) {
    throw new Error(`--size: use tiny or mini, got ${values.size}`);
  }
  const batch = Number(values.batch), block = Number(values.block), steps = Number(values.steps);
  await initBackend({ backend: values.backend as BackendName });
  const train: ReflowTrainRow[] = [];
  const cases: [string, number | undefined][] = [[`reflow-gpt2-new-${values.size}`, undefined], [
    `reflow-${values.size}`,
    undefined,
  ]];
  if (values["loss-chunk"]) cases.push([`reflow-${values.size}`, Number(values["loss-chunk"])]);
  for (const [name, chunk] of cases) {
    const row = await benchPresetTraining(name, batch, block, steps, chunk);
    train.push(row);
    console.error(`${row.impl} ${row.variant}: ${Math.round(row.tokensPerSec)} tokens/s`);
  }
  const heads: HeadCostRow[] = [];
  for (const d of values["head-widths"]!.split(",").filter(Boolean).map(Number)) {
    const h = await benchHeadCost(d, Number(values["head-tokens"]), 50304);
    heads.push(h);
    console.error(
      `${h.impl} head d=${d}: factorised ${h.factorisedMs.toFixed(0)} ms, tied ${h.tiedMs.toFixed(0)} ms`,
    );
  }
  const notes: string[] = [];
  if (!values["no-torch"]) {
    const c = modelPreset(`reflow-${values.size}`);
    const t = await benchTorchTraining(
      c,
      batch,
      block,
      steps,
      values["torch-threads"]!.split(",").map(Number),
    );
    train.push(...t.rows);
    if (t.note) notes.push(t.note);
  }
  const cpu = (await Deno.readTextFile("/proc/cpuinfo").catch(() =>
    ""
  )).match(/model name\s*:\s*(.*)/)?.[1] ??
    Deno.build.arch;
  console.log(
    `reFlow training throughput (fwd + bwd + clip + AdamW, V 50304), ${
      new Date().toISOString().slice(0, 10)
    }, ` +
      `${cpu}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}\n`,
  );
  console.log(formatReflowBench(train, heads));
  for (const n of notes) console.log(`\n- ${n}`);
  if (values.json) {
    await writeTextAtomic(values.json, JSON.stringify({ train, heads, notes }, null, 2) + "\n");
  }
}
