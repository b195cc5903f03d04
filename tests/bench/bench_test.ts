// Smoke tests of the benchmark plumbing at tiny sizes: they check that rows come out, not how fast.
import assert from "node:assert/strict";
import { benchPrompts, type ModelBenchRow, parsePositiveList } from "../../bench/models_bench.ts";
import { type BenchReport, formatModelsTable } from "../../bench/run.ts";

const root = new URL("../../", import.meta.url).pathname;

async function deno(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await new Deno.Command(Deno.execPath(), { args, cwd: root, env: { NO_COLOR: "1" } }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

Deno.test("benchPrompts is deterministic and inside the vocabulary", () => {
  const a = benchPrompts(3, 5, 50257, 7), b = benchPrompts(3, 5, 50257, 7);
  assert.deepEqual(a, b);
  assert.deepEqual(a.length, 3);
  assert(a.every((r) => r.length === 5 && r.every((id) => Number.isInteger(id) && id >= 0 && id < 50257)));
  assert(JSON.stringify(benchPrompts(3, 5, 50257, 8)) !== JSON.stringify(a));
});

Deno.test("parsePositiveList names the flag on bad input", () => {
  assert.deepEqual(parsePositiveList("batches", "1, 16"), [1, 16]);
  assert.throws(() => parsePositiveList("batches", "1,0"), /--batches/);
  assert.throws(() => parsePositiveList("prompt", "abc"), /--prompt/);
});

Deno.test("formatModelsTable puts engines side by side with the best-tfjs/best-torch ratio", () => {
  const row = (engine: string, workload: "prefill" | "decode", tps: number | null): ModelBenchRow => ({
    workload,
    size: "16m",
    params: 1,
    batch: 1,
    prompt: 8,
    newTokens: 4,
    engine,
    tokensPerSec: tps,
    msPerToken: tps && 1000 / tps,
    seconds: tps && 1,
    ...(tps === null ? { skipped: "estimated 99 s > --max-seconds 60" } : {}),
  });
  const table = formatModelsTable([
    row("tfjs-cpu", "prefill", 10),
    row("tfjs-wasm", "prefill", 40),
    row("torch-cpu", "prefill", 20),
    row("tfjs-cpu", "decode", null),
    row("tfjs-wasm", "decode", 5),
    row("torch-cpu", "decode", 10),
    row("torch-cpu (1 thread)", "decode", 20),
  ]);
  const lines = table.split("\n");
  assert.deepEqual(lines.length, 4);
  assert.match(
    lines[0],
    /tfjs-cpu tok\/s.*tfjs-wasm tok\/s.*torch-cpu tok\/s.*torch-cpu \(1 thread\) tok\/s.*best tfjs \/ best torch/,
  );
  assert.match(lines[2], /prefill.*10\.0.*40\.0.*20\.0.*2\.00x \(wasm \/ cpu\)/);
  assert.match(lines[3], /decode.*skipped.*5\.00.*10\.0.*0\.25x \(wasm \/ cpu \(1 thread\)\)/);
  // Greedy and top-p engines get one ratio each, never one engine against the other's decoding.
  const both = formatModelsTable([
    row("tfjs-wasm", "decode", 30),
    row("torch-cpu", "decode", 10),
    row("tfjs-wasm, top-p 0.9", "decode", 5),
    row("torch-cpu, top-p 0.9", "decode", 20),
  ]).split("\n");
  assert.match(both[0], /best tfjs \/ best torch \(greedy\).*best tfjs \/ best torch \(top-p\)/);
  assert.match(both[2], /3\.00x \(wasm \/ cpu\).*0\.25x \(wasm, top-p 0\.9 \/ cpu, top-p 0\.9\)/);
});

Deno.test("run.ts --only models measures tfjs (and torch when present) and writes the JSON report", async () => {
  const out = await Deno.makeTempFile({ suffix: ".json" });
  try {
    const r = await deno([
      "run",
      "-A",
      "bench/run.ts",
      "--only",
      "models",
      "--backends",
      "cpu",
      "--quick",
      "--batches",
      "1",
      "--prompt",
      "4",
      "--new",
      "2",
      "--json",
      out,
    ]);
    assert.deepEqual(r.code, 0, r.stderr);
    assert.match(r.stdout, /\| prefill +\| 16m +\| 1 /);
    const report = JSON.parse(await Deno.readTextFile(out)) as BenchReport;
    const ours = report.models.filter((m) => m.engine === "tfjs-cpu");
    assert.deepEqual(ours.map((m) => m.workload).sort(), ["decode", "prefill"]);
    for (const m of ours) assert(m.tokensPerSec! > 0 && Number.isFinite(m.tokensPerSec!), JSON.stringify(m));
    assert.deepEqual(report.machine.cores, navigator.hardwareConcurrency);
    if (report.machine.torch) {
      const torch = report.models.filter((m) => m.engine.startsWith("torch"));
      assert.deepEqual(torch.length, 2, "torch rows");
      assert.deepEqual(torch[0].params, ours[0].params, "same model size on both sides");
    } else {
      assert(report.notes.some((n) => n.includes("PyTorch side left out")));
    }
  } finally {
    await Deno.remove(out);
  }
});

Deno.test("models_bench.ts skips cases over --max-seconds and says why", async () => {
  const r = await deno([
    "run",
    "-A",
    "bench/models_bench.ts",
    "--backend",
    "cpu",
    "--sizes",
    "16m",
    "--batches",
    "2",
    "--prompt",
    "4",
    "--new",
    "2",
    "--max-seconds",
    "0.000001",
  ]);
  assert.deepEqual(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as ModelBenchRow[];
  assert.deepEqual(rows.length, 2);
  for (const row of rows) {
    assert.deepEqual(row.tokensPerSec, null);
    assert.match(row.skipped!, /estimated .* > --max-seconds/);
  }
});

Deno.test("models_bench.ts rejects an unknown size with the list of known ones", async () => {
  const r = await deno(["run", "-A", "bench/models_bench.ts", "--sizes", "7b"]);
  assert.deepEqual(r.code, 1);
  assert.match(r.stderr, /unknown model size '7b': use one of 124m, 51m, 16m/);
});

Deno.test("webgpu_kernels_bench.ts --quick measures ours against stock and writes the JSON report", async () => {
  const out = await Deno.makeTempFile({ suffix: ".json" });
  try {
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "bench/webgpu_kernels_bench.ts",
        "--quick",
        "--min-ms",
        "10",
        "--no-torch",
        "--json",
        out,
      ],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(r.stdout);
    assert.ok(r.success, new TextDecoder().decode(r.stderr));
    assert.match(text, /\| op \| stock tfjs ms \| ours ms \| ours vs stock \|/);
    const report = JSON.parse(await Deno.readTextFile(out));
    assert.equal(report.rows.length, 6);
    for (const row of report.rows) assert.ok(row.stockMs > 0 && row.oursMs > 0, JSON.stringify(row));
  } finally {
    await Deno.remove(out);
  }
});
