/**
 * Our webgpu kernels against tfjs-webgpu's stock kernels and PyTorch on the same device, in one run: the
 * matmul programs (square, prefill-shaped, matrix-vector and the tied head), the fused LayerNorm, and the
 * fused causal attention. Each op's time is the slope of queued repeats: (t(n) − t(1)) / (n − 1), each
 * t ending with one 1-float readback, so Deno's ≥ 10 ms readback floor cancels out. Ratios are the other
 * side's time over ours: above 1, ours is faster.
 *
 * ```sh
 * deno run -A bench/webgpu_kernels_bench.ts              # full shapes: for a GPU (see ../shared/GPU.md)
 * deno run -A bench/webgpu_kernels_bench.ts --quick      # small shapes: checks the plumbing on llvmpipe
 * ```
 *
 * On llvmpipe (a CPU rendering of WebGPU) the figures say nothing about a GPU; the table labels them.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { tf } from "../lib/deps.ts";
import { initBackend } from "../lib/backend/backend.ts";
import { installWebGPUMatMul, uninstallWebGPUMatMul } from "../lib/backend/webgpu_matmul.ts";
import { layerNorm } from "../lib/nn/norm.ts";
import { fusedAttention } from "../lib/backend/webgpu_fused_attention.ts";
import { writeTextAtomic } from "../lib/io/atomic.ts";

/** One case: what it computes, its flops (for GFLOP/s), and the op on prepared inputs. */
interface Case {
  name: string;
  flops: number;
  /** Builds the inputs; returns the op and a disposer. */
  setup: () => { op: () => tf.Tensor; inputs: tf.Tensor[] };
  /** Which of our kernels it measures (how "stock" is selected). */
  kind: "matmul" | "norm" | "attention";
  /** The same case for bench/webgpu_kernels_torch.py. */
  torch: Record<string, unknown>;
}

/** A measured row. */
export interface KernelBenchRow {
  name: string;
  stockMs: number;
  oursMs: number;
  torchMs: number | null;
  gflopsOurs: number | null;
}

function matmulCase(m: number, k: number, n: number, transposeB = false): Case {
  return {
    name: `matmul ${m}x${k}x${n}${transposeB ? " (B transposed)" : ""}`,
    flops: 2 * m * k * n,
    kind: "matmul",
    torch: { op: "matmul", m, k, n, transposeB },
    setup: () => {
      const a = tf.randomUniform([m, k], -1, 1, "float32", 1);
      const b = tf.randomUniform(transposeB ? [n, k] : [k, n], -1, 1, "float32", 2);
      return { op: () => tf.matMul(a, b, false, transposeB), inputs: [a, b] };
    },
  };
}

function normCase(rows: number, width: number): Case {
  return {
    name: `layerNorm [${rows}, ${width}]`,
    flops: 8 * rows * width,
    kind: "norm",
    torch: { op: "layernorm", rows, width },
    setup: () => {
      const x = tf.randomUniform([rows, width], -1, 1, "float32", 3);
      const g = tf.randomUniform([width], 0.5, 1.5, "float32", 4), b = tf.zeros([width]);
      return { op: () => layerNorm(x, g, b, 1e-5), inputs: [x, g, b] };
    },
  };
}

function attentionCase(heads: number, t: number, hd: number): Case {
  return {
    name: `causal attention ${heads} heads x ${t} x ${t} x ${hd}`,
    flops: 4 * heads * t * t * hd,
    kind: "attention",
    torch: { op: "attention", heads, t, hd },
    setup: () => {
      const q = tf.randomUniform([1, heads, t, hd], -1, 1, "float32", 5);
      const k = tf.randomUniform([1, heads, t, hd], -1, 1, "float32", 6);
      const v = tf.randomUniform([1, heads, t, hd], -1, 1, "float32", 7);
      const causal = tf.linalg.bandPart(tf.ones([t, t]), -1, 0);
      const mask = tf.reshape(tf.mul(tf.sub(1, causal), -1e9), [1, 1, t, t]) as tf.Tensor4D;
      causal.dispose();
      const op = () =>
        attention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, mask, 1 / Math.sqrt(hd));
      return { op, inputs: [q, k, v, mask] };
    },
  };
}

let fused: typeof fusedAttention | null = null;
let useFused = true;

/** Fused attention when on and available, else the stock composition (what attention.ts does). */
function attention(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  mask: tf.Tensor4D,
  scale: number,
): tf.Tensor {
  const z = useFused && fused ? fused(q, k, v, mask, scale) : null;
  if (z) return z;
  return tf.tidy(() => tf.matMul(tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), scale), mask)), v));
}

function cases(quick: boolean): Case[] {
  if (quick) {
    return [
      matmulCase(256, 256, 256),
      matmulCase(32, 64, 192),
      matmulCase(1, 64, 256),
      matmulCase(1, 64, 2000, true),
      normCase(128, 64),
      attentionCase(2, 64, 16),
    ];
  }
  return [
    matmulCase(4096, 4096, 4096),
    matmulCase(128, 768, 2304),
    matmulCase(1024, 768, 3072),
    matmulCase(1, 768, 2304),
    matmulCase(1, 3072, 768),
    matmulCase(16, 768, 3072),
    matmulCase(1, 768, 50257, true),
    matmulCase(16, 768, 50257, true),
    normCase(2048, 768),
    attentionCase(12, 1024, 64),
  ];
}

/** Milliseconds per op: the slope of n queued runs, each timing ending with a 1-float readback. */
async function slope(op: () => tf.Tensor, minMs: number): Promise<number> {
  const run = async (n: number) => {
    const t0 = performance.now();
    let last: tf.Tensor | null = null;
    for (let i = 0; i < n; i++) {
      last?.dispose();
      last = op();
    }
    const one = tf.slice(tf.reshape(last!, [-1]), [0], [1]);
    await one.data();
    tf.dispose([one, last!]);
    return performance.now() - t0;
  };
  await run(2); // compile and warm
  const t1 = await run(1);
  let n = 4, tn = await run(n);
  while (tn - t1 < minMs && n < 4096) {
    n *= 4;
    tn = await run(n);
  }
  return Math.max(tn - t1, 0) / (n - 1);
}

async function setOurs(on: boolean): Promise<void> {
  if (on) installWebGPUMatMul();
  else uninstallWebGPUMatMul();
  useFused = on;
  // The norm path reads the switch from initBackend.
  await initBackend({ backend: "webgpu", webgpuKernels: on });
}

async function torchRows(python: string, list: Case[]): Promise<(number | null)[]> {
  // From a bundle (.device/, see ../shared/GPU.md) the script is in the carried working tree instead.
  const local = fileURLToPath(new URL("./webgpu_kernels_torch.py", import.meta.url));
  const script = await Deno.stat(local).then(() => local, () => "bench/webgpu_kernels_torch.py");
  try {
    const out = await new Deno.Command(python, {
      args: [script, JSON.stringify(list.map((c) => c.torch))],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!out.success) return list.map(() => null);
    const rows = JSON.parse(new TextDecoder().decode(out.stdout)) as { ms: number | null; device: string }[];
    console.error(`[torch] device: ${rows[0]?.device}`);
    return rows.map((r) => r.ms);
  } catch (e) {
    console.error(`[torch] not run: ${e instanceof Error ? e.message : e}`);
    return list.map(() => null);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean" },
      "min-ms": { type: "string", default: "300" },
      python: { type: "string", default: "python3" },
      "no-torch": { type: "boolean" },
      json: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(
      "deno run -A bench/webgpu_kernels_bench.ts [--quick] [--min-ms 300] [--python P] [--no-torch] " +
        "[--json FILE]",
    );
    return;
  }
  const minMs = Number(values["min-ms"]);
  if (!(minMs > 0)) throw new Error(`--min-ms must be a positive number, got '${values["min-ms"]}'`);
  const info = await initBackend({ backend: "webgpu" });
  fused = fusedAttention;
  const device = `${info.adapter}${info.isFallbackAdapter ? " (software: not a GPU figure)" : ""}`;
  console.error(`[tfjs-webgpu] adapter: ${device}`);
  const list = cases(!!values.quick);
  const rows: KernelBenchRow[] = [];
  for (const c of list) {
    const { op, inputs } = c.setup();
    await setOurs(false);
    const stockMs = await slope(op, minMs);
    await setOurs(true);
    const oursMs = await slope(op, minMs);
    tf.dispose(inputs);
    rows.push({ name: c.name, stockMs, oursMs, torchMs: null, gflopsOurs: c.flops / (oursMs * 1e6) });
    console.error(`${c.name}: stock ${stockMs.toFixed(3)} ms, ours ${oursMs.toFixed(3)} ms`);
  }
  if (!values["no-torch"]) {
    const t = await torchRows(values.python, list);
    rows.forEach((r, i) => r.torchMs = t[i]);
  }
  const fmt = (x: number | null, d = 3) => x === null ? "-" : x.toFixed(d);
  console.log(`adapter: ${device}; ${new Date().toISOString()}`);
  console.log("| op | stock tfjs ms | ours ms | ours vs stock | torch ms | ours vs torch | ours GFLOP/s |");
  console.log("|---|---|---|---|---|---|---|");
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${fmt(r.stockMs)} | ${fmt(r.oursMs)} | ${(r.stockMs / r.oursMs).toFixed(2)}x | ` +
        `${fmt(r.torchMs)} | ${r.torchMs === null ? "-" : (r.torchMs / r.oursMs).toFixed(2) + "x"} | ` +
        `${fmt(r.gflopsOurs, 1)} |`,
    );
  }
  if (values.json) {
    await writeTextAtomic(
      values.json,
      JSON.stringify({ device, date: new Date().toISOString(), rows }, null, 1),
    );
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`webgpu_kernels_bench: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
