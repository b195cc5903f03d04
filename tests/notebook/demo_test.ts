import { strict as assert } from "node:assert";
import { runDemo, runDemoCli } from "../../lib/cli/demo.ts";
import { loadExampleModel } from "../../lib/examples/mod.ts";
import { detectCrises } from "../../lib/recync/monitor.ts";
import { initBackend } from "../../lib/backend/backend.ts";
import { createDecoder, gpt2NewConfig } from "../../lib/models/scratch.ts";
import { CharTokenizer } from "../../lib/tokenizers/char.ts";
import { saveCheckpoint } from "../../lib/train/checkpoint.ts";

const root = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const fixture = `${root}/../shared/fixtures/hf/tiny-gpt2`;
const haveModel = await loadExampleModel().then((ex) => {
  ex.model.dispose();
  return true;
}, (e) => {
  console.warn(`demo_test: skipping model tests: ${(e as Error).message.split("\n")[0]}`);
  return false;
});
const haveFixture = await Deno.stat(`${fixture}/config.json`).then(() => true, () => false);
if (!haveFixture) console.warn(`demo_test: ${fixture} is absent; the fixture test is skipped`);

Deno.test({
  name: "demo: generates, monitors cosim, writes SVG, PNG, text and a consistent summary",
  ignore: !haveModel,
  fn: async () => {
    const out = await Deno.makeTempDir({ prefix: "coherence-demo-" });
    try {
      const s = await runDemo({
        prompt: "ROMEO:",
        tokens: 24,
        temperature: 0.9,
        topP: 0.95,
        seed: 3,
        backend: "wasm",
        out,
        stream: false,
      });
      assert.equal(s.tokens, 24);
      assert.equal(s.backend, "wasm");
      assert.equal(s.cosims.length, 23, "cosim(t) for t = 1..23");
      assert.ok(s.cosims.every((c) => Number.isFinite(c) && c >= -1.0001 && c <= 1.0001));
      // The streaming monitor agrees with the offline detector on the same series.
      assert.deepEqual(s.crises.map((c) => c.onset), detectCrises(s.cosims).map((c) => c.onset));
      const names = [...Deno.readDirSync(out)].map((e) => e.name).sort();
      assert.deepEqual(names, ["cosim.png", "cosim.svg", "generated.txt", "summary.json"]);
      const png = await Deno.readFile(`${out}/cosim.png`);
      assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
      assert.ok((await Deno.readTextFile(`${out}/cosim.svg`)).includes("cosine similarity"));
      const json = JSON.parse(await Deno.readTextFile(`${out}/summary.json`));
      assert.equal(json.tokens, 24);
      assert.equal(json.text, s.text);
      assert.ok((await Deno.readTextFile(`${out}/generated.txt`)).startsWith("ROMEO:"));
      // Same seed, same output.
      const again = await runDemo({
        prompt: "ROMEO:",
        tokens: 24,
        temperature: 0.9,
        topP: 0.95,
        seed: 3,
        backend: "wasm",
        out,
        stream: false,
      });
      assert.equal(again.text, s.text);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "loadExampleModel: an HF folder without tokenizer gets a byte codec",
  ignore: !haveFixture,
  fn: async () => {
    const ex = await loadExampleModel(fixture);
    try {
      assert.equal(ex.kind, "hf");
      assert.equal(ex.tokenizer, undefined);
      assert.deepEqual(ex.encode("hi"), [104, 105]);
      assert.equal(ex.decode([1, 2]), "[1][2]");
    } finally {
      ex.model.dispose();
    }
  },
});

Deno.test("loadExampleModel: a missing folder is a clear error", async () => {
  await assert.rejects(
    () => loadExampleModel("/nonexistent/model"),
    /model folder '\/nonexistent\/model' not found/,
  );
});

Deno.test("demo CLI: --help, unknown flags and bad values", async () => {
  const logs: string[] = [];
  const errors: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (s: string) => logs.push(s);
  console.error = (s: string) => errors.push(s);
  try {
    assert.equal(await runDemoCli(["--help"]), 0);
    assert.match(logs[0], /^Usage: deno task demo/);
    assert.equal(await runDemoCli(["--frobnicate"]), 2);
    assert.match(errors[0], /unknown option '--frobnicate'/);
    assert.equal(await runDemoCli(["--tokens", "0"]), 2);
    assert.match(errors[1], /--tokens must be a positive integer/);
    assert.equal(await runDemoCli(["--top-p", "2"]), 2);
    assert.match(errors[2], /--top-p must be in/);
    assert.equal(await runDemoCli(["--backend", "tpu"]), 2);
    assert.match(errors[3], /--backend must be one of/);
  } finally {
    console.log = log;
    console.error = error;
  }
});

Deno.test("loadExampleModel + demo: the bundled trained model is preferred and decodes text", async () => {
  await initBackend({ backend: "wasm" });
  const root = await Deno.makeTempDir({ prefix: "coherence-root-" });
  try {
    const tok = CharTokenizer.fromCorpus("ROMEO: abcdefghijklmnopqrstuvwxyz\n");
    const model = createDecoder(
      gpt2NewConfig({ nLayers: 1, dModel: 16, nHeads: 2, vocabSize: tok.vocabSize, maxPositions: 64 }),
      { seed: 5 },
    );
    await saveCheckpoint(`${root}/data/models/shakespeare-char`, {
      weights: model.parameters(),
      optimizer: new Map(),
      state: {
        format: "coherence-lab/checkpoint@1",
        step: 7,
        modelConfig: model.config,
        tokenizer: tok.toJSON(),
      },
    });
    model.dispose();
    const ex = await loadExampleModel(undefined, { repoRoot: root });
    try {
      assert.equal(ex.kind, "trained");
      assert.deepEqual(ex.notes, []);
      assert.ok(ex.tokenizer);
      assert.equal(ex.decode(ex.encode("ROMEO: hi")), "ROMEO: hi");
    } finally {
      ex.model.dispose();
    }
    const s = await runDemo({
      model: `${root}/data/models/shakespeare-char`,
      prompt: "ROMEO:",
      tokens: 12,
      temperature: 1,
      topP: 1,
      seed: 1,
      backend: "wasm",
      out: `${root}/out`,
      stream: false,
    });
    assert.equal(s.model.kind, "trained");
    assert.equal(s.tokens, 12);
    assert.equal([...s.text].length, 12, "one character per token");
    assert.ok([...s.text].every((c) => "ROMEO: abcdefghijklmnopqrstuvwxyz\n".includes(c)));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test({
  name: "demo: the bundled demo model (a trainer run with its own config.json) is the default, not skipped",
  ignore: !(await Deno.stat(`${root}/data/models/shakespeare-char/model.safetensors`).then(() =>
    true, () =>
    false)),
  fn: async () => {
    await initBackend({ backend: "cpu" });
    const ex = await loadExampleModel(undefined, { repoRoot: root });
    try {
      assert.equal(ex.kind, "trained");
      assert.deepEqual(ex.notes, []);
      assert.ok(ex.source.endsWith("data/models/shakespeare-char"), ex.source);
      assert.equal(ex.decode(ex.encode("ROMEO:")), "ROMEO:");
    } finally {
      ex.model.dispose();
    }
  },
});
