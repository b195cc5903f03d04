/**
 * reFlow through the trainer and the data side: a `model.preset: "reflow-..."` config trains, resumes
 * and reloads with the same logits; GPT-2 BPE token folders (EOT between WikiText articles, padded V);
 * a separate evaluation split; the streamed nanoGPT .bin sampler. Tests on ../shared data skip when it is
 * absent.
 */
import { assert, assertEquals, assertRejects, maxDiff } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import { BinTokenFile } from "../../lib/data/bin_files.ts";
import { BatchSampler } from "../../lib/data/sampler.ts";
import { readTokenFiles, writeTokenFiles } from "../../lib/data/token_files.ts";
import { loadCorpus } from "../../lib/data/corpus.ts";
import { GPT2_EOT, Gpt2BpeTokenizer, splitDocuments } from "../../lib/tokenizers/gpt2_bpe.ts";
import { loadTrainedModel, trainFromConfig } from "../../lib/train/run.ts";
import type { TrainConfig } from "../../lib/train/config.ts";
import { reflowWeights } from "../../lib/reflow/mod.ts";
import { useBackend } from "../fixtures.ts";

await useBackend("cpu");
const SHARED = new URL("../../../shared/data/", import.meta.url).pathname;
const haveWikiText = await Deno.stat(`${SHARED}wikitext-2/test.txt`).then(() => true, () => false);
if (!haveWikiText) {
  console.warn(`train_data_test: skipping the WikiText-2 checks: ${SHARED}wikitext-2 is absent`);
}

function tinyConfig(corpus: string, preset: string, extra: Record<string, unknown> = {}): TrainConfig {
  return {
    model: { preset, nLayers: 1, dModel: 32, nHeads: 2, ...extra },
    data: { corpus, tokenizer: "char", valFraction: 0.2 },
    training: { steps: 3, batchSize: 2, blockSize: 16, seed: 3 },
    schedule: { kind: "constant", lr: 3e-3 },
    eval: { interval: 3, batches: 1, batchSize: 2 },
    log: { interval: 1 },
    checkpoint: { interval: 3 },
  } as TrainConfig;
}

Deno.test("reflow: trains from a config's model.preset and reloads from its checkpoint with the same logits", async () => {
  const dir = await Deno.makeTempDir({ prefix: "reflow-train-" });
  try {
    const corpus = `${dir}/corpus.txt`;
    await Deno.writeTextFile(corpus, "to be or not to be, that is the question. ".repeat(20));
    for (const preset of ["reflow-tiny", "reflow-topk-tiny"]) {
      const extra = preset === "reflow-topk-tiny"
        ? { embedding: { kind: "reflow", signals: 16, topK: 4 } }
        : {};
      const r = await trainFromConfig({
        config: tinyConfig(corpus, preset, extra),
        outDir: `${dir}/${preset}`,
        print: false,
        handleSigint: false,
      });
      assertEquals(r.step, 3);
      assertEquals(r.model.config.embedding?.kind, "reflow");
      assert(reflowWeights(r.model).signals === (preset === "reflow-tiny" ? 32 : 16));
      const loaded = await loadTrainedModel(`${dir}/${preset}`);
      const ids = tf.tensor2d([[1, 2, 3, 4]], undefined, "int32");
      const a = r.model.forward(ids), b = loaded.model.forward(ids);
      assertEquals(maxDiff(a.logits.dataSync(), b.logits.dataSync()), 0);
      tf.dispose([ids, a.logits, a.hidden, a.residual, b.logits, b.hidden, b.residual]);
      loaded.model.dispose();
      r.model.dispose();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("GPT-2 BPE token folders: EOT after each document, padded vocabulary, separate eval text", async () => {
  const dir = await Deno.makeTempDir({ prefix: "reflow-bpe-" });
  try {
    const text =
      " = Alpha = \n The first article .\n = = Part = = \n More text .\n = Beta = \n Second one .\n";
    assertEquals(splitDocuments(text).length, 2);
    const tok = new Gpt2BpeTokenizer();
    const meta = await writeTokenFiles(text, tok, `${dir}/t`, { valText: " = Gamma = \n Held out .\n" });
    assertEquals([meta.vocabSize, meta.dtype, meta.valFraction], [50304, "uint16", 0]);
    const files = await readTokenFiles(`${dir}/t`);
    assertEquals(Array.from(files.train).filter((i) => i === GPT2_EOT).length, 2);
    assertEquals(files.train.at(-1), GPT2_EOT);
    assertEquals(
      files.tokenizer.decode(Array.from(files.val), { skipSpecialTokens: true }),
      " = Gamma = \n Held out .\n",
    );
    assertEquals(files.tokenizer.vocabSize, 50304);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "WikiText-2 (../shared): valid tokenises into articles with EOT; test is the evaluation split",
  ignore: !haveWikiText,
  async fn() {
    const valid = await loadCorpus("wikitext-2", { dataDir: SHARED, split: "valid" });
    const test = await loadCorpus("wikitext-2", { dataDir: SHARED, split: "test" });
    const docs = splitDocuments(valid.text);
    assert(docs.length > 50 && docs.length < 100, `valid has ${docs.length} articles`);
    assert(test.text.length > 1_000_000);
  },
});

Deno.test("streamed .bin sampler: same batches as the in-memory sampler, reading windows only", async () => {
  const ids = Uint16Array.from({ length: 4096 }, (_, i) => (i * 31) % 50257);
  const path = await Deno.makeTempFile({ suffix: ".bin" });
  try {
    await Deno.writeFile(path, new Uint8Array(ids.buffer));
    const file = BinTokenFile.open(path);
    const a = new BatchSampler(file, { batchSize: 4, blockSize: 64, seed: 9, stream: 1 });
    const b = new BatchSampler(ids, { batchSize: 4, blockSize: 64, seed: 9, stream: 1 });
    for (let i = 0; i < 5; i++) {
      const x = a.next(), y = b.next();
      assertEquals([x.x, x.y], [y.x, y.y]);
    }
    file.close();
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("trainer: a nanoGPT folder (train.bin / val.bin, no meta.json) trains with GPT-2 BPE, train.bin read by window", async () => {
  const dir = await Deno.makeTempDir({ prefix: "reflow-nanogpt-" });
  try {
    const tok = new Gpt2BpeTokenizer();
    const ids = Uint16Array.from(
      tok.encode("It was the best of times, it was the worst of times. ".repeat(12)),
    );
    await Deno.mkdir(`${dir}/owt`);
    await Deno.writeFile(`${dir}/owt/train.bin`, new Uint8Array(ids.buffer));
    await Deno.writeFile(`${dir}/owt/val.bin`, new Uint8Array(ids.slice(0, 80).buffer));
    const config = tinyConfig(`${dir}/owt`, "reflow-tiny");
    (config.data as { tokenizer?: string }).tokenizer = undefined;
    delete (config.data as { valFraction?: number }).valFraction;
    Object.assign(config, {
      training: { ...config.training, steps: 1 },
      eval: { interval: 1, batches: 1, batchSize: 1 },
    });
    Object.assign(config, { checkpoint: { interval: 1 } });
    const r = await trainFromConfig({ config, outDir: `${dir}/run`, print: false, handleSigint: false });
    assertEquals([r.step, r.model.config.vocabSize, r.tokenizer.vocabSize], [1, 50304, 50304]);
    assert(Number.isFinite(r.lastEval?.loss ?? NaN));
    r.model.dispose();
    const bad = tinyConfig(`${dir}/owt`, "reflow-tiny");
    await assertRejects(
      () => trainFromConfig({ config: bad, outDir: `${dir}/run2`, print: false, handleSigint: false }),
      'data.tokenizer must be "gpt2" or absent',
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
