/**
 * PhaseGPT's Kuramoto mixer, forward + backward through all Euler steps: this library's mean-field form
 * (O(B·H·T·N) memory) against the original's pairwise O(T²·N) PyTorch layer (bench/phasegpt_torch_bench.py)
 * on the same machine, time and peak memory side by side and over T; then the per-token decode cost of
 * the corrected mixer's prefix-sum state against the faithful mixer's recompute. Every case runs in its own
 * process, so peak RSS is that case's. Prints markdown tables; `--json FILE` writes the rows.
 *
 * ```sh
 * deno run -A bench/phasegpt_bench.ts                        # B 8, H 12, N 32, d 768, 10 steps
 * deno run -A bench/phasegpt_bench.ts --T 32,64 --torch-T 32 --quick
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../lib/deps.ts";
import { type BackendName, initBackend } from "../lib/backend/backend.ts";
import { createDecoder } from "../lib/models/scratch.ts";
import { kuramotoMixer } from "../lib/phasegpt/mixer.ts";
import { phaseGPTConfig } from "../lib/phasegpt/presets.ts";
import type { MixerContext } from "../lib/models/components.ts";
import { writeTextAtomic } from "../lib/io/atomic.ts";
import { median } from "./nn_bench.ts";

const HELP = `deno run -A bench/phasegpt_bench.ts [options]
  --backend wasm        tfjs backend of our side (default wasm)
  --B 8 --H 12 --N 32 --d 768 --steps 10
  --T 32,64,128,256,512 sequence lengths of our side
  --torch-T 32,64,128   sequence lengths of the PyTorch O(T²N) side (it needs ~20 [B,H,T,T,N] tensors)
  --threads 1,2         PyTorch CPU threads (OMP_WAIT_POLICY=ACTIVE)
  --reps 3              measured runs per case (median)
  --decode 64,256,1024  context lengths of the decode-cost table (0 = skip)
  --python PATH         python with torch (default /usr/bin/python3)
  --json FILE           also write the rows as JSON`;

interface Row {
  engine: string;
  T: number;
  ms: number;
  peakRssMiB: number;
  peakTensorMiB?: number;
  savedMiB?: number;
  threads?: number;
}

/** One case of our side in this process: median ms of forward + backward, peak tensor bytes and RSS. */
async function ourCase(backend: BackendName, o: Record<string, number>): Promise<Row> {
  await initBackend({ backend });
  const cfg = phaseGPTConfig({
    phaseLayers: [0],
    model: { nLayers: 1, dModel: o.d, nHeads: o.H, maxPositions: Math.max(o.T, 16), vocabSize: 8 },
    mixer: { numOscillators: o.N, steps: o.steps, coherence: false },
  });
  const model = createDecoder(cfg, { seed: 0, init: "normal" });
  const params = model.parameters();
  const mixer = kuramotoMixer.create(cfg.mixers![1], cfg, params, 0);
  const x = tf.randomNormal([o.B, o.T, o.d], 0, 1, "float32", 1) as tf.Tensor3D;
  const vars = [...params].filter(([n]) => n.startsWith("blocks.0.attn.")).map(([, v]) => v);
  const ctx = (): MixerContext => ({
    fire: null,
    training: true,
    loss: () => {},
    metric: () => {},
    layer: 0,
    positions: tf.zeros([1, o.T], "int32") as tf.Tensor2D,
    state: null,
  });
  const step = () =>
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => tf.sum(mixer.forward(x, ctx()).out) as tf.Scalar, vars);
      const g = Object.values(grads);
      return tf.addN([value, ...g.map((t) => tf.sum(t))]);
    });
  const rss0 = Deno.memoryUsage().rss;
  const info = await tf.profile(() => step());
  const ms = median(step, o.reps); // after its own 2 warm-ups
  const rss = Deno.memoryUsage().rss;
  x.dispose();
  model.dispose();
  return {
    engine: `tfjs ${backend}, mean-field`,
    T: o.T,
    ms,
    peakRssMiB: (rss - rss0) / 2 ** 20,
    peakTensorMiB: info.peakBytes / 2 ** 20,
  };
}

/** Decode cost per token at context `ctxLen`: corrected (prefix-sum state) vs faithful (recompute). */
async function decodeCase(backend: BackendName, preset: "faithful" | "corrected", ctxLen: number) {
  await initBackend({ backend });
  const cfg = phaseGPTConfig({
    phaseLayers: [2],
    model: { nLayers: 4, dModel: 128, nHeads: 2, maxPositions: ctxLen + 16, vocabSize: 65, dropout: 0 },
    mixer: { preset, numOscillators: 32 },
  });
  const model = createDecoder(cfg, { seed: 0, init: "normal" });
  const cache = model.createCache(1);
  const ids = Array.from({ length: ctxLen }, (_, i) => (i * 7) % 65);
  tf.tidy(() => {
    model.forward(tf.tensor2d([ids], [1, ctxLen], "int32"), { cache, lastOnly: true }).logits.dataSync();
  });
  // 10 one-token steps, each one token further into the cache; the median of the last 8.
  let s = 0;
  const msPerToken = median(
    () => tf.tidy(() => model.forward(tf.tensor2d([[s++ % 65]], [1, 1], "int32"), { cache }).logits),
    8,
  );
  cache.dispose();
  model.dispose();
  return { preset, ctxLen, msPerToken };
}

async function child(args: string[]): Promise<unknown> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(r.stdout).trim().split("\n").pop() ?? "";
  if (!r.success) throw new Error(new TextDecoder().decode(r.stderr).slice(-2000));
  return JSON.parse(out);
}

async function torchCase(python: string, o: Record<string, number>, threads: number): Promise<Row | string> {
  const args = ["bench/phasegpt_torch_bench.py"];
  for (const k of ["B", "T", "H", "N", "d", "steps", "reps"]) args.push(`--${k}`, String(o[k]));
  args.push("--threads", String(threads));
  const r = await new Deno.Command(python, {
    args,
    cwd: new URL("../", import.meta.url).pathname,
    env: { OMP_WAIT_POLICY: "ACTIVE" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) return new TextDecoder().decode(r.stderr).trim().split("\n").pop() ?? "failed";
  return JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").pop()!);
}

const list = (s: string) => s.split(",").filter(Boolean).map(Number);

if (import.meta.main) {
  const { values: v } = parseArgs({
    args: Deno.args,
    options: {
      backend: { type: "string", default: "wasm" },
      B: { type: "string", default: "8" },
      H: { type: "string", default: "12" },
      N: { type: "string", default: "32" },
      d: { type: "string", default: "768" },
      steps: { type: "string", default: "10" },
      T: { type: "string", default: "32,64,128,256,512" },
      "torch-T": { type: "string", default: "32,64,128" },
      threads: { type: "string", default: "1,2" },
      reps: { type: "string", default: "3" },
      decode: { type: "string", default: "64,256,1024" },
      python: { type: "string", default: "/usr/bin/python3" },
      json: { type: "string" },
      case: { type: "string" },
      "decode-case": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (v.help) {
    console.log(HELP);
    Deno.exit(0);
  }
  const backend = v.backend as BackendName;
  const base = {
    B: Number(v.B),
    H: Number(v.H),
    N: Number(v.N),
    d: Number(v.d),
    steps: Number(v.steps),
    reps: Number(v.reps),
  };
  if (v.case) {
    console.log(JSON.stringify(await ourCase(backend, { ...base, T: Number(v.case) })));
    Deno.exit(0);
  }
  if (v["decode-case"]) {
    const [preset, len] = v["decode-case"].split(":");
    console.log(JSON.stringify(await decodeCase(backend, preset as "faithful", Number(len))));
    Deno.exit(0);
  }
  const rows: Row[] = [];
  const notes: string[] = [];
  const common = ["--backend", backend, ...Object.entries(base).flatMap(([k, x]) => [`--${k}`, String(x)])];
  for (const T of list(v.T)) {
    rows.push(await child([...common, "--case", String(T)]) as Row);
    console.error(`ours T=${T}: ${rows.at(-1)!.ms.toFixed(0)} ms`);
  }
  for (const threads of list(v.threads)) {
    for (const T of list(v["torch-T"])) {
      const r = await torchCase(v.python!, { ...base, T }, threads);
      if (typeof r === "string") notes.push(`torch T=${T}, ${threads} thread(s): ${r}`);
      else rows.push(r);
      console.error(
        `torch T=${T} threads=${threads}: ${typeof r === "string" ? r : r.ms.toFixed(0) + " ms"}`,
      );
    }
  }
  const decode = [];
  for (const len of list(v.decode)) {
    for (const preset of ["corrected", "faithful"]) {
      decode.push(await child(["--backend", backend, "--decode-case", `${preset}:${len}`]));
    }
  }
  const cpu = (await Deno.readTextFile("/proc/cpuinfo").catch(() => "")).match(/model name\s*:\s*(.*)/)?.[1];
  console.log(
    `\nPhaseGPT mixer forward + backward, B ${base.B}, H ${base.H}, N ${base.N}, d ${base.d}, ${base.steps} steps` +
      ` (${cpu ?? "cpu"}, ${navigator.hardwareConcurrency} cores, ${
        new Date().toISOString().slice(0, 10)
      })\n`,
  );
  console.log("| engine | T | ms | peak RSS growth MiB | peak tensors MiB | saved for backward MiB |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    console.log(
      `| ${r.engine} | ${r.T} | ${r.ms.toFixed(0)} | ${r.peakRssMiB.toFixed(0)} | ${
        r.peakTensorMiB?.toFixed(0) ?? ""
      } | ${r.savedMiB?.toFixed(0) ?? ""} |`,
    );
  }
  for (const n of notes) console.log(`\n- ${n}`);
  if (decode.length) {
    console.log("\n| mixer | context | ms per decoded token |\n|---|---:|---:|");
    for (const d of decode as { preset: string; ctxLen: number; msPerToken: number }[]) {
      console.log(`| ${d.preset} | ${d.ctxLen} | ${d.msPerToken.toFixed(2)} |`);
    }
  }
  if (v.json) await writeTextAtomic(v.json, JSON.stringify({ rows, decode, notes, cpu }, null, 2));
}
