/**
 * Training throughput: tokens/s of one full optimiser step (forward + backward + clipping + AdamW) through
 * the library's `Trainer`, for "GPT-2-New" decoders (RMSNorm, RoPE, SwiGLU, no biases, tied head) at a
 * few sizes, on every tfjs backend present, side by side with the same model in PyTorch when `python3`
 * with torch is available (CUDA if present, else CPU). Prints one markdown table.
 *
 * ```sh
 * deno run -A bench/train_bench.ts                                   # every backend present, default sizes
 * deno run -A bench/train_bench.ts --backends wasm --sizes 4x128 --steps 3
 * deno run -A bench/train_bench.ts --backends webgpu --sizes 8x512-bpe,12x768-bpe --json out/train_bench.json
 * deno run -A bench/train_bench.ts --backends wasm --sizes 4x128 --compare-stock --torch-threads 1,2
 * ```
 *
 * Each case: 2 warm-up steps (kernel compilation, moment allocation), then `--steps` measured steps;
 * tokens/s = batch x block x steps / seconds. The trainer reads back one packed [loss, grad norm] per step,
 * as in real training.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../lib/deps.ts";
import { type BackendName, initBackend, isSoftwareAdapter, requestAdapter } from "../lib/backend/backend.ts";
import { countParameters, createDecoder, gpt2NewConfig } from "../lib/models/scratch.ts";
import type { DecoderConfig } from "../lib/models/types.ts";
import { Trainer } from "../lib/train/trainer.ts";
import { writeTextAtomic } from "../lib/io/atomic.ts";

/** Benchmark sizes: layers x width, character (65) or BPE (50304) vocabulary. */
export const TRAIN_BENCH_SIZES: Record<
  string,
  { nLayers: number; dModel: number; nHeads: number; vocabSize: number }
> = {
  /** The demo model's shape in the GPT-2-New style (~0.9M parameters). */
  "4x128": { nLayers: 4, dModel: 128, nHeads: 4, vocabSize: 65 },
  /** A larger character model (~5M parameters). */
  "6x256": { nLayers: 6, dModel: 256, nHeads: 8, vocabSize: 65 },
  /** The 10M point of the speed table (~10.7M parameters, nanoGPT's Shakespeare shape). */
  "6x384": { nLayers: 6, dModel: 384, nHeads: 6, vocabSize: 65 },
  /** reFlow-scale small model with the GPT-2 BPE vocabulary (~53M parameters). */
  "8x512-bpe": { nLayers: 8, dModel: 512, nHeads: 8, vocabSize: 50304 },
  /** GPT-2-small width and depth (~124M parameters, GPU only). */
  "12x768-bpe": { nLayers: 12, dModel: 768, nHeads: 12, vocabSize: 50304 },
};

/** One measured row. */
export interface TrainBenchRow {
  /** "tfjs-wasm", "tfjs-webgpu", "tfjs-cpu", "torch-cuda", "torch-cpu". */
  impl: string;
  size: string;
  params: number;
  batch: number;
  block: number;
  steps: number;
  /** Mean seconds per optimiser step. */
  secondsPerStep: number;
  tokensPerSec: number;
  /** Loss of the last measured step (sanity: finite, near ln V at init). */
  loss: number;
}

/** The decoder config of a benchmark size. */
export function trainBenchConfig(size: string, block: number): DecoderConfig {
  const s = TRAIN_BENCH_SIZES[size];
  if (!s) throw new Error(`unknown size '${size}': use one of ${Object.keys(TRAIN_BENCH_SIZES).join(", ")}`);
  return gpt2NewConfig({ ...s, maxPositions: block });
}

/** Measures one size on the active tfjs backend. */
export async function benchTfjs(
  size: string,
  batch: number,
  block: number,
  steps: number,
): Promise<TrainBenchRow> {
  const trainer = benchTrainer(size, batch, block);
  const release = () => {
    trainer.dispose();
    trainer.model.dispose();
  };
  let row: TrainBenchRow;
  try {
    for (let i = 0; i < 2; i++) await trainer.trainStep();
    const t0 = performance.now();
    let loss = NaN;
    for (let i = 0; i < steps; i++) loss = (await trainer.trainStep()).loss;
    const secs = (performance.now() - t0) / 1000;
    row = {
      impl: `tfjs-${tf.getBackend()}`,
      size,
      params: countParameters(trainer.model.config),
      batch,
      block,
      steps,
      secondsPerStep: secs / steps,
      tokensPerSec: (batch * block * steps) / secs,
      loss,
    };
  } catch (e) {
    // After a full wasm heap disposing fails too: keep the first (explained) error.
    try {
      release();
    } catch { /* the backend is unusable; the error below says so */ }
    throw e;
  }
  release();
  return row;
}

/** The same model and step in PyTorch (printed JSON rows); run by {@linkcode benchTorch}. */
export const TORCH_TRAIN_SCRIPT = `
import inspect, json, math, os, sys, time
import torch, torch.nn as nn, torch.nn.functional as F
if os.environ.get("TORCH_THREADS"): torch.set_num_threads(int(os.environ["TORCH_THREADS"]))
label = "" if not os.environ.get("TORCH_THREADS") else " (%d thread%s)" % (torch.get_num_threads(), "" if torch.get_num_threads() == 1 else "s")

class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__(); self.eps = eps; self.weight = nn.Parameter(torch.ones(d))
    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight

def rope(x, cos, sin):  # rotate-half over the full head, as the library's rotary
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return x * cos + torch.cat((-x2, x1), -1) * sin

def attend(q, k, v):
    # torch >= 2.0 has a fused kernel; Debian's torch 1.13 does not, so spell it out there.
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    T = q.shape[-2]
    s = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    s = s.masked_fill(torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    return s.softmax(-1) @ v

class Block(nn.Module):
    def __init__(s, d, h, f):
        super().__init__(); s.h = h
        s.ln1, s.ln2 = RMSNorm(d), RMSNorm(d)
        s.q, s.k, s.v, s.o = (nn.Linear(d, d, bias=False) for _ in range(4))
        s.gate, s.up, s.down = nn.Linear(d, f, bias=False), nn.Linear(d, f, bias=False), nn.Linear(f, d, bias=False)
    def forward(s, x, cos, sin):
        B, T, D = x.shape; hd = D // s.h
        a = s.ln1(x)
        q, k, v = (p(a).view(B, T, s.h, hd).transpose(1, 2) for p in (s.q, s.k, s.v))
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        y = attend(q, k, v).transpose(1, 2).reshape(B, T, D)
        x = x + s.o(y)
        m = s.ln2(x)
        return x + s.down(F.silu(s.gate(m)) * s.up(m))

class Model(nn.Module):
    def __init__(s, V, L, d, h, f, T):
        super().__init__()
        s.emb = nn.Embedding(V, d); s.blocks = nn.ModuleList(Block(d, h, f) for _ in range(L)); s.lnf = RMSNorm(d)
        hd = d // h
        inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
        ang = torch.outer(torch.arange(T).float(), inv); ang = torch.cat((ang, ang), -1)
        s.register_buffer("cos", ang.cos()); s.register_buffer("sin", ang.sin())
        for p in s.parameters():
            if p.dim() >= 2: nn.init.normal_(p, 0, 0.02)
        for b in s.blocks:  # createDecoder's "scaled" init: residual output projections at 0.02 / sqrt(2 L)
            for p in (b.o.weight, b.down.weight): nn.init.normal_(p, 0, 0.02 / math.sqrt(2 * L))
    def forward(s, ids):
        x = s.emb(ids)
        for b in s.blocks: x = b(x, s.cos, s.sin)
        return s.lnf(x) @ s.emb.weight.t()

cases = json.loads(sys.argv[1]); dev = "cuda" if torch.cuda.is_available() else "cpu"
# fused AdamW exists from torch 2.0 on and only for CUDA tensors
fused = {"fused": True} if dev == "cuda" and "fused" in inspect.signature(torch.optim.AdamW).parameters else {}
torch.manual_seed(1)
for c in cases:
    m = Model(c["vocabSize"], c["nLayers"], c["dModel"], c["nHeads"], c["dMlp"], c["block"]).to(dev)
    decay = [p for p in m.parameters() if p.dim() >= 2]; rest = [p for p in m.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8, **fused)
    # the same synthetic ids as the tfjs side (token i = i * 2654435761 mod V), so the losses are comparable
    n_ids = c["batch"] * (c["block"] + 1)
    ids = (torch.arange(n_ids, dtype=torch.long) * 2654435761 % c["vocabSize"]).view(c["batch"], -1).to(dev)
    def step():
        loss = F.cross_entropy(m(ids[:, :-1]).reshape(-1, c["vocabSize"]), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True); loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step()
        return loss.item()  # one readback per step, as the tfjs trainer
    for _ in range(2): step()
    if dev == "cuda": torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(c["steps"]): loss = step()
    if dev == "cuda": torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    n = sum(p.numel() for p in m.parameters())
    print(json.dumps({"impl": "torch-" + dev + label, "size": c["size"], "params": n, "batch": c["batch"], "block": c["block"],
                      "steps": c["steps"], "secondsPerStep": secs / c["steps"],
                      "tokensPerSec": c["batch"] * c["block"] * c["steps"] / secs, "loss": loss}), flush=True)
`;

/**
 * Runs the PyTorch side with the first of `pythons` that imports torch, once per entry of `threads`
 * (`torch.set_num_threads`, with `OMP_WAIT_POLICY=ACTIVE`: with the default policy torch 1.13 collapses on
 * small shared VMs); `threads` empty means torch's default. Returns its rows, or a note saying why not.
 */
export async function benchTorch(
  sizes: string[],
  batch: number,
  block: number,
  steps: number,
  options: { pythons?: string[]; threads?: number[] } = {},
): Promise<{ rows: TrainBenchRow[]; note?: string }> {
  let python: string | null = null;
  for (const candidate of options.pythons ?? ["python3", "/usr/bin/python3"]) {
    const probe = await new Deno.Command(candidate, {
      args: ["-c", "import torch"],
      stdout: "null",
      stderr: "null",
    }).output().catch(() => null);
    if (probe?.success) {
      python = candidate;
      break;
    }
  }
  if (!python) return { rows: [], note: "PyTorch not run: no python3 with torch is available here" };
  const cases = sizes.map((size) => ({ size, ...trainBenchConfig(size, block), batch, block, steps }));
  const file = await Deno.makeTempFile({ suffix: ".py" });
  await Deno.writeTextFile(file, TORCH_TRAIN_SCRIPT);
  const rows: TrainBenchRow[] = [];
  let note: string | undefined;
  try {
    for (const t of options.threads?.length ? options.threads : [0]) {
      const env: Record<string, string> = { OMP_WAIT_POLICY: "ACTIVE" };
      // OPENBLAS_NUM_THREADS too: Debian's torch runs its GEMMs on OpenBLAS, whose own threads ignore
      // torch.set_num_threads (without it a "1 thread" torch multiplies on every core).
      if (t > 0) {
        Object.assign(env, {
          TORCH_THREADS: String(t),
          OMP_NUM_THREADS: String(t),
          OPENBLAS_NUM_THREADS: String(t),
        });
      }
      const out = await new Deno.Command(python, {
        args: [file, JSON.stringify(cases)],
        stderr: "piped",
        env,
      })
        .output();
      rows.push(
        ...new TextDecoder().decode(out.stdout).trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)),
      );
      if (!out.success) {
        note = `PyTorch failed: ${new TextDecoder().decode(out.stderr).trim().split("\n").at(-1)}`;
      }
    }
  } finally {
    await Deno.remove(file);
  }
  return { rows, note };
}

/** The rows as a markdown table. */
export function formatTrainBenchTable(rows: TrainBenchRow[]): string {
  const lines = [
    "| implementation | size | params | batch x block | s/step | tokens/s | last loss |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.impl} | ${r.size} | ${(r.params / 1e6).toFixed(2)}M | ${r.batch} x ${r.block} | ${
        r.secondsPerStep.toFixed(3)
      } | ` +
        `${Math.round(r.tokensPerSec).toLocaleString("en-US")} | ${r.loss.toFixed(3)} |`,
    );
  }
  return lines.join("\n");
}

async function presentBackends(): Promise<BackendName[]> {
  const out: BackendName[] = ["wasm", "cpu"];
  const adapter = await requestAdapter();
  if (adapter && !isSoftwareAdapter(adapter)) out.unshift("webgpu");
  return out;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    strict: true,
    options: {
      backends: { type: "string" },
      sizes: { type: "string", default: "4x128,6x256" },
      batch: { type: "string", default: "8" },
      block: { type: "string", default: "128" },
      steps: { type: "string", default: "5" },
      torch: { type: "boolean", default: true },
      "no-torch": { type: "boolean", default: false },
      python: { type: "string" },
      "compare-stock": { type: "boolean", default: false },
      "blas-threads": { type: "string", default: "1" },
      "torch-threads": { type: "string" },
      json: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "Usage: deno run -A bench/train_bench.ts [--backends webgpu,wasm,cpu] [--sizes " +
        `${
          Object.keys(TRAIN_BENCH_SIZES).join(",")
        }] [--batch 8] [--block 128] [--steps 5] [--no-torch] [--python PY] [--torch-threads 1,2] [--blas-threads 1] [--compare-stock] [--json FILE]`,
    );
    Deno.exit(0);
  }
  const sizes = values.sizes!.split(",");
  for (const s of sizes) trainBenchConfig(s, 8); // validate names before any work
  const batch = Number(values.batch), block = Number(values.block), steps = Number(values.steps);
  for (const [k, v] of [["batch", batch], ["block", block], ["steps", steps]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`--${k} must be a positive integer, got ${v}`);
  }
  const backends = values.backends ? values.backends.split(",") as BackendName[] : await presentBackends();
  const rows: TrainBenchRow[] = [];
  const notes: string[] = [];
  if (values["compare-stock"] && backends.includes("wasm")) {
    // The same step on tfjs-wasm's stock matmul kernels (lib/backend/wasm_matmul.ts disabled).
    // And on the XNNPACK rerouting without the native CBLAS.
    for (
      const [opts, impl] of [
        [{ wasmMatMul: false }, "tfjs-wasm (stock matmul)"],
        [{ nativeBlas: false }, "tfjs-wasm (XNNPACK matmul)"],
      ] as const
    ) {
      await initBackend({ backend: "wasm", ...opts });
      for (const size of sizes) {
        const row = { ...(await benchTfjs(size, batch, block, steps)), impl };
        rows.push(row);
        console.error(`${row.impl} ${size}: ${Math.round(row.tokensPerSec)} tokens/s`);
      }
    }
  }
  for (const b of backends) {
    const blasThreads = Number(values["blas-threads"]);
    const info = await initBackend({ backend: b, blasThreads });
    const label = info.blas
      ? ` (native BLAS: ${info.blas.split("/").pop()}, ${blasThreads} thread${blasThreads > 1 ? "s" : ""})`
      : "";
    for (const size of sizes) {
      // The cpu backend is ~20x slower than wasm: keep it to the smallest models.
      if (b === "cpu" && countParameters(trainBenchConfig(size, block)) > 2e6) {
        notes.push(`tfjs-cpu ${size}: skipped (over 2M parameters; too slow on the reference cpu backend)`);
        continue;
      }
      let row: TrainBenchRow;
      try {
        row = await benchTfjs(size, batch, block, steps);
      } catch (e) {
        // A full wasm heap leaves the backend unusable: note it and skip this backend's other sizes.
        notes.push(`tfjs-${b} ${size}: failed: ${(e as Error).message}`);
        console.error(`tfjs-${b} ${size}: failed: ${(e as Error).message}`);
        break;
      }
      row.impl += label;
      rows.push(row);
      console.error(`${row.impl} ${size}: ${Math.round(row.tokensPerSec)} tokens/s`);
    }
  }
  if (values.torch && !values["no-torch"]) {
    const t = await benchTorch(sizes, batch, block, steps, {
      pythons: values.python ? [values.python] : undefined,
      threads: values["torch-threads"] ? values["torch-threads"].split(",").map(Number) : undefined,
    });
    rows.push(...t.rows);
    if (t.note) notes.push(t.note);
  }
  const cpu = Deno.build.os === "linux"
    ? (await Deno.readTextFile("/proc/cpuinfo").catch(() => "")).match(/model name\s*:\s*(.*)/)?.[1] ??
      "unknown CPU"
    : Deno.build.arch;
  console.log(
    `Training throughput (fwd + bwd + clip + AdamW), ${new Date().toISOString().slice(0, 10)}, ` +
      `${cpu}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}\n`,
  );
  console.log(formatTrainBenchTable(rows));
  for (const n of notes) console.log(`\n- ${n}`);
  if (values.json) await writeTextAtomic(values.json, JSON.stringify({ rows, notes }, null, 2) + "\n");
}

/** The bench's trainer: a seeded model of `size` over synthetic ids, no eval, logs or checkpoints. */
export function benchTrainer(size: string, batch: number, block: number): Trainer {
  return benchTrainerFor(trainBenchConfig(size, block), batch, block);
}

/** The bench's trainer for any decoder config (the reFlow bench compares variants with it). */
export function benchTrainerFor(config: DecoderConfig, batch: number, block: number): Trainer {
  const model = createDecoder(config, { seed: 1 });
  const n = Math.max(batch * block * 4, 4096);
  const ids = new Uint32Array(n);
  for (let i = 0; i < n; i++) ids[i] = (i * 2654435761) % config.vocabSize;
  const trainer = new Trainer({
    model,
    train: ids,
    val: ids,
    print: false,
    settings: {
      batchSize: batch,
      blockSize: block,
      gradAccum: 1,
      gradClip: 1,
      seed: 1,
      optimizer: {
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        groups: [{ minRank: 2, weightDecay: 0.1 }, { weightDecay: 0 }],
      },
      schedule: { kind: "constant", lr: 1e-4 },
      evalInterval: 0,
      evalBatches: 1,
      evalBatchSize: 1,
      perplexity: "token_mean",
      logInterval: 1_000_000,
      checkpointInterval: 0,
      keepLast: 1,
    },
  });
  return trainer;
}
