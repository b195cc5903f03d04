import { trainFromConfig } from "../../lib/train/run.ts";
import { parseSampleArgs, sampleFromCheckpoint } from "../../lib/cli/sample.ts";
import { loadCheckpoint } from "../../lib/train/checkpoint.ts";
import { lossCurvePlot, TrainingDisplay } from "../../lib/train/display.ts";
import { assert, assertJsonEquals as assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { useBackend } from "../fixtures.ts";

await useBackend("cpu");

const TEXT = "O Romeo, Romeo, wherefore art thou Romeo? Deny thy father and refuse thy name. ".repeat(20);

async function tinyRun(dir: string, steps = 2): Promise<string> {
  const corpus = `${dir}/c.txt`;
  await Deno.writeTextFile(corpus, TEXT);
  const out = `${dir}/run`;
  const r = await trainFromConfig({
    config: {
      model: { preset: "gpt2", nLayers: 1, dModel: 16, nHeads: 2 },
      data: { corpus },
      training: { steps, batchSize: 2, blockSize: 16 },
    },
    outDir: out,
    print: false,
    handleSigint: false,
  });
  r.model.dispose();
  return out;
}

Deno.test("sample flags: defaults, bad values and unknown flags say what is allowed", () => {
  const a = parseSampleArgs(["--ckpt", "x"])!;
  assertEquals([a.prompt, a.maxNewTokens, a.temperature, a.topP, a.seed], ["\n", 200, 0.8, 1, 0]);
  assertEquals(parseSampleArgs(["-h"]), null);
  assertThrows(
    () => parseSampleArgs(["--ckpt", "x", "--top-p", "1.5"]),
    Error,
    "--top-p must be a number in (0, 1]",
  );
  assertThrows(
    () => parseSampleArgs(["--ckpt", "x", "--temperature", "hot"]),
    Error,
    "--temperature must be",
  );
  assertThrows(() => parseSampleArgs(["--ckpt", "x", "--max-new-tokens", "2.5"]), Error, "positive integer");
  assertThrows(() => parseSampleArgs(["--ckpt", "x", "--top_p", "0.9"]), Error, "allowed flags: --ckpt");
  assertThrows(() => parseSampleArgs([]), Error, "--ckpt DIR is required");
});

Deno.test("sampling a trained checkpoint is reproducible by seed and checks the context length", async () => {
  const out = await tinyRun(await Deno.makeTempDir());
  const opts = { prompt: "Romeo", maxNewTokens: 8, temperature: 1, topP: 1, topK: 0, numSamples: 2, seed: 3 };
  const a = await sampleFromCheckpoint(out, opts);
  const b = await sampleFromCheckpoint(out, opts);
  assertEquals(a.length, 2);
  assertEquals(a, b);
  assert(a.every((t) => [...t].length === 8), JSON.stringify(a));
  await assertRejects(
    () => sampleFromCheckpoint(out, { ...opts, maxNewTokens: 50 }),
    Error,
    "exceeds the model's context of 16",
  );
  await assertRejects(() => sampleFromCheckpoint(`${out}/nope`, opts), Error, "does not exist");
});

Deno.test("Ctrl-C during `deno task train` saves a checkpoint before exiting", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/c.txt`, TEXT);
  await Deno.writeTextFile(
    `${dir}/config.json`,
    JSON.stringify({
      model: { preset: "gpt2", nLayers: 1, dModel: 16, nHeads: 2 },
      data: { corpus: `${dir}/c.txt` },
      training: { steps: 100000, batchSize: 2, blockSize: 16 },
      log: { interval: 1 },
    }),
  );
  const cli = new URL("../../lib/cli/train.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cli, "--config", `${dir}/config.json`, "--out", `${dir}/run`, "--backend", "cpu"],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Wait until a few steps have been logged, then interrupt.
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!/step 3[:/]/.test(seen)) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += value;
  }
  child.kill("SIGINT");
  while (!(await reader.read()).done) { /* drain */ }
  const status = await child.status;
  const err = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
  assertEquals(status.code, 130, err);
  assert(err.includes("interrupted: saving a checkpoint"), err);
  const ck = await loadCheckpoint(`${dir}/run`);
  assert(ck.state.step >= 3, `checkpoint at step ${ck.state.step}`);
});

Deno.test("training display keeps records and draws a loss chart", async () => {
  const d = new TrainingDisplay(10, { mode: "silent" });
  d.onMetrics({ kind: "train", step: 5, elapsed: 1, loss: 3, tokensPerSec: 10 });
  d.onMetrics({ kind: "eval", step: 5, elapsed: 1, valLoss: 3.2 });
  await d.close();
  assertEquals(d.records.length, 2);
  const fig = lossCurvePlot(d.records);
  assert(fig.outerHTML.includes("<svg"), "an svg chart");
});
