/** Messages a researcher meets first: Hub ids without hf:, widths that do not split into heads, the context. */
import { createDecoder } from "../../lib/models/scratch.ts";
import { gpt2NewConfig } from "../../lib/models/scratch.ts";
import { generateText } from "../../lib/generate/generate.ts";
import { loadModelFolder } from "../../lib/examples/example_model.ts";
import { openModel } from "../../lib/models/open.ts";
import { resolveCheckpointDir } from "../../lib/train/checkpoint.ts";
import { runDemo } from "../../lib/cli/demo.ts";
import { CharTokenizer } from "../../lib/tokenizers/char.ts";
import { tinyModel, tinyRotaryConfig, useBackend } from "../fixtures.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { tmpDir } from "../io/tmp.ts";

await useBackend("cpu");
const TINY = new URL("../../data/models/tiny-gpt2", import.meta.url).pathname;

Deno.test("a bare Hub id suggests hf:", async () => {
  await assertRejects(() => loadModelFolder("gpt2"), Error, "use hf:gpt2");
  await assertRejects(() => openModel("EleutherAI/pythia-160m"), Error, "use hf:EleutherAI/pythia-160m");
});

Deno.test("sample --ckpt with a bare Hub id says how a Hub model is opened", async () => {
  await assertRejects(() => resolveCheckpointDir("gpt2"), Error, "use hf:gpt2");
  await assertRejects(
    () => resolveCheckpointDir("EleutherAI/pythia-160m"),
    Error,
    "hf:EleutherAI/pythia-160m",
  );
  // A path that is clearly a path gets no Hub hint.
  const err = await resolveCheckpointDir("./runs/none").catch((e) => (e as Error).message);
  assert(!String(err).includes("hf:"), String(err));
});

Deno.test("a width that does not divide into heads names nHeads and dModel", () => {
  assertThrows(
    () => createDecoder(gpt2NewConfig({ nLayers: 1, dModel: 30, nHeads: 4, vocabSize: 20 }), { seed: 1 }),
    Error,
    "DecoderConfig.nHeads: dModel 30 does not divide into nHeads 4 heads",
  );
});

Deno.test("generateText that stops at the context limit says so", async () => {
  const tok = CharTokenizer.fromCorpus("abcdefgh");
  const model = tinyModel(tinyRotaryConfig({ vocabSize: tok.vocabSize, maxPositions: 12 }), 2);
  const r = await generateText(model, tok, "abcdef", { maxNewTokens: 40, seed: 1 });
  assertEquals(r.finishReason, "context");
  assert(r.note?.includes("context limit (12 positions)"), r.note);
  const ok = await generateText(model, tok, "ab", { maxNewTokens: 3, seed: 1 });
  assertEquals([ok.finishReason, ok.note], ["length", undefined]);
  model.dispose();
});

Deno.test("the demo takes any model source, e.g. hf:gpt2 from a Hugging Face cache", async () => {
  const cache = await tmpDir();
  const commit = "0123456789abcdef0123456789abcdef01234567";
  const snap = `${cache}/models--gpt2/snapshots/${commit}`;
  await Deno.mkdir(snap, { recursive: true });
  await Deno.mkdir(`${cache}/models--gpt2/refs`);
  await Deno.writeTextFile(`${cache}/models--gpt2/refs/main`, commit);
  for (const f of Deno.readDirSync(TINY)) await Deno.copyFile(`${TINY}/${f.name}`, `${snap}/${f.name}`);
  const before = Deno.env.get("HF_HUB_CACHE");
  Deno.env.set("HF_HUB_CACHE", cache);
  try {
    const s = await runDemo({
      model: "hf:gpt2",
      prompt: "Hi",
      tokens: 8,
      temperature: 0.9,
      topP: 0.95,
      seed: 0,
      backend: "cpu",
      out: await tmpDir(),
      stream: false,
    });
    assertEquals(s.model.family, "gpt2");
  } finally {
    if (before === undefined) Deno.env.delete("HF_HUB_CACHE");
    else Deno.env.set("HF_HUB_CACHE", before);
  }
});
