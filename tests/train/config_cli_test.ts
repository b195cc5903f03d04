import { modelConfigFor, resolveTrainConfig } from "../../lib/train/config.ts";
import { loadTrainedModel, trainFromConfig } from "../../lib/train/run.ts";
import { parseTrainArgs } from "../../lib/cli/train.ts";
import { countParameters } from "../../lib/models/scratch.ts";
import { decoderParameterShapes } from "../../lib/models/params.ts";
import { assert, assertJsonEquals as assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { useBackend } from "../fixtures.ts";

await useBackend("cpu");

const base = () => ({
  model: { preset: "gpt2-new" as const, nLayers: 1, dModel: 16, nHeads: 2 },
  data: { corpus: "x.txt" },
  training: { steps: 2, batchSize: 2, blockSize: 8 },
});

Deno.test("config errors name the field and what is allowed", () => {
  assertThrows(() => resolveTrainConfig({ ...base(), trainning: {} }), Error, "unknown key 'trainning'");
  assertThrows(
    () => resolveTrainConfig({ ...base(), training: { steps: 0, batchSize: 1, blockSize: 8 } }),
    Error,
    "training.steps",
  );
  assertThrows(() => resolveTrainConfig({ ...base(), model: { preset: "gpt3" } }), Error, "gpt2, gpt2-new");
  assertThrows(
    () => resolveTrainConfig({ ...base(), eval: { perplexity: "mean" } }),
    Error,
    "token_mean, batch_mean_exp, batch_mean",
  );
  assertThrows(
    () => resolveTrainConfig({ ...base(), optimizer: { groups: [{ match: "(", weightDecay: 0 }] } }),
    Error,
    "regular expression",
  );
  assertThrows(() => resolveTrainConfig({ model: base().model }), Error, "missing section 'data'");
  assertThrows(
    () => modelConfigFor({ preset: "gpt2", dModel: 100, nHeads: 3 }, 65, 8),
    Error,
    "model.dModel 100 is not divisible by model.nHeads 3",
  );
  assertThrows(
    () => modelConfigFor({ preset: "gpt2", dModel: 16, nHeads: 2, maxPositions: 4 }, 65, 8),
    Error,
    "exceeds model.maxPositions",
  );
  assertThrows(
    () => modelConfigFor({ preset: "gpt2", dModel: 16, nHeads: 2, vocabSize: 10 }, 65, 8),
    Error,
    "taken from the tokenizer",
  );
});

Deno.test("parameter counts: the closed form equals the sum over every parameter tensor", () => {
  for (const preset of ["gpt2", "gpt2-new"] as const) {
    for (
      const over of [{ nLayers: 4, dModel: 128, nHeads: 4 }, {
        nLayers: 2,
        dModel: 96,
        nHeads: 3,
        tieEmbeddings: false,
      }]
    ) {
      const c = modelConfigFor({ preset, ...over }, 65, 128);
      const summed = [...decoderParameterShapes(c).values()].reduce(
        (a, s) => a + s.reduce((x, y) => x * y, 1),
        0,
      );
      assertEquals(countParameters(c), summed, `${preset} ${JSON.stringify(over)}`);
    }
  }
  // The demo model, by hand: 65·128 tok + 128·128 pos + 4·(2·2·128 LN + 4·128²+4·128 attn + 8·128²+5·128 MLP) + 2·128.
  const demo = modelConfigFor({ preset: "gpt2", nLayers: 4, dModel: 128, nHeads: 4 }, 65, 128);
  assertEquals(
    countParameters(demo),
    65 * 128 + 128 * 128 + 4 * (512 + 4 * 16384 + 512 + 8 * 16384 + 640) + 256,
  );
});

Deno.test("train CLI flags: required, unknown and bad values rejected with what is allowed", () => {
  assertEquals(parseTrainArgs(["--help"]), null);
  assertEquals(parseTrainArgs(["--config", "c.json", "--out", "o", "--resume", "--backend", "cpu"]), {
    config: "c.json",
    out: "o",
    steps: undefined,
    resume: true,
    backend: "cpu",
  });
  assertThrows(
    () => parseTrainArgs(["--config", "c.json", "--out", "o", "--lr", "1"]),
    Error,
    "allowed flags: --config",
  );
  assertThrows(
    () => parseTrainArgs(["--config", "c.json", "--out", "o", "--steps", "ten"]),
    Error,
    "--steps must be a positive integer",
  );
  assertThrows(
    () => parseTrainArgs(["--config", "c.json", "--out", "o", "--backend", "cuda"]),
    Error,
    "auto, webgpu, wasm, cpu",
  );
  assertThrows(() => parseTrainArgs(["--out", "o"]), Error, "--config PATH is required");
});

Deno.test("trainFromConfig end to end: train, refuse to clobber, resume, load for inference", async () => {
  const dir = await Deno.makeTempDir();
  const corpus = `${dir}/corpus.txt`;
  await Deno.writeTextFile(corpus, "Now is the winter of our discontent made glorious summer. ".repeat(30));
  const cfg = { ...base(), data: { corpus }, checkpoint: { interval: 1 } };
  const out = `${dir}/run`;
  const r = await trainFromConfig({ config: cfg, outDir: out, print: false, handleSigint: false });
  assertEquals(r.step, 2);
  r.model.dispose();
  await assertRejects(
    () => trainFromConfig({ config: cfg, outDir: out, print: false, handleSigint: false }),
    Error,
    "pass --resume",
  );
  const r2 = await trainFromConfig({
    config: cfg,
    outDir: out,
    steps: 4,
    resume: true,
    print: false,
    handleSigint: false,
  });
  assertEquals(r2.step, 4);
  r2.model.dispose();
  const other = { ...cfg, model: { ...cfg.model, dModel: 32 } };
  await assertRejects(
    () =>
      trainFromConfig({
        config: other,
        outDir: out,
        steps: 6,
        resume: true,
        print: false,
        handleSigint: false,
      }),
    Error,
    "another model config",
  );
  const loaded = await loadTrainedModel(out);
  assertEquals(loaded.step, 4);
  assertEquals(loaded.tokenizer.decode(loaded.tokenizer.encode("winter")), "winter");
  loaded.model.dispose();
  const log = (await Deno.readTextFile(`${out}/log.jsonl`)).trim().split("\n").map((l) => JSON.parse(l));
  assert(log.filter((x) => x.kind === "eval").length >= 2);
  // A corpus shorter than one block is refused before training.
  await Deno.writeTextFile(`${dir}/short.txt`, "tiny");
  await assertRejects(
    () =>
      trainFromConfig({
        config: { ...cfg, data: { corpus: `${dir}/short.txt` } },
        outDir: `${dir}/r2`,
        print: false,
        handleSigint: false,
      }),
    Error,
    "fewer than one block",
  );
  assert(!(await Deno.stat(`${dir}/r2`).then(() => true, () => false)), "no partial run folder left behind");
});
