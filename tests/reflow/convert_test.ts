/**
 * Converted checkpoints: tools/convert_reflow.py on tiny nanoGPT-layout `ckpt.pt` files (written by
 * tools/reflow_torch.py) loads with the PyTorch logits, for every variant; mismatched tensors are one
 * clear message on both sides. The torch part skips, with a message, where /usr/bin/python3 lacks torch.
 */
import { assert, assertEquals, assertRejects, maxDiff } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import { encodeSafetensors } from "../../lib/io/safetensors.ts";
import { loadModel } from "../../lib/models/load.ts";
import { createDecoder } from "../../lib/models/scratch.ts";
import { inspectReflowCheckpoint, reflowVariantConfig } from "../../lib/reflow/mod.ts";
import { useBackend } from "../fixtures.ts";

await useBackend("cpu");
const PY = "/usr/bin/python3";
const TOOLS = new URL("../../tools/", import.meta.url).pathname;

async function python(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    // No __pycache__ in tools/: the test imports the converter as a module.
    const env = { PYTHONDONTWRITEBYTECODE: "1" };
    const out = await new Deno.Command(PY, { args, env, stdout: "piped", stderr: "piped" }).output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } catch (e) {
    return { code: -1, stdout: "", stderr: String(e) };
  }
}

const torchMissing = (await python(["-c", "import torch"])).code !== 0;
if (torchMissing) console.warn(`convert_test: skipping the PyTorch round trips: ${PY} cannot import torch`);

Deno.test({
  name: "convert_reflow.py: every variant's tiny ckpt.pt loads with the PyTorch logits",
  ignore: torchMissing,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "reflow-convert-" });
    try {
      const made = await python([`${TOOLS}reflow_torch.py`, "tiny", dir]);
      assertEquals(made.code, 0, made.stderr);
      const ref = JSON.parse(await Deno.readTextFile(`${dir}/reference.json`));
      assertEquals(Object.keys(ref), [
        "reflow",
        "reflow-interleaved",
        "reflow-topk",
        "reflow-lite",
        "gpt2",
        "gpt2-new",
      ]);
      // The first through the command line, the rest in one process (each torch import costs seconds).
      const entries = Object.entries(ref) as [
        string,
        { ckpt: string; ids: number[][]; logits: number[][][] },
      ][];
      const cli = await python([
        `${TOOLS}convert_reflow.py`,
        entries[0][1].ckpt,
        `${dir}/out-${entries[0][0]}`,
      ]);
      assertEquals(cli.code, 0, cli.stderr);
      // The Meta-style RoPE checkpoint goes through the --rope-layout flag, which reorders q/k rows.
      const inter = entries.find(([v]) => v === "reflow-interleaved")![1].ckpt;
      const cli2 = await python([
        `${TOOLS}convert_reflow.py`,
        "--rope-layout",
        "interleaved",
        inter,
        `${dir}/out-reflow-interleaved`,
      ]);
      assertEquals(cli2.code, 0, cli2.stderr);
      const rest = entries.slice(2).map(([v, r]) => [r.ckpt, `${dir}/out-${v}`]);
      const batch = await python([
        "-c",
        `import sys; sys.path.insert(0, ${JSON.stringify(TOOLS)}); from convert_reflow import convert\n` +
        `for c, o in ${JSON.stringify(rest)}: convert(c, o)`,
      ]);
      assertEquals(batch.code, 0, batch.stderr);
      for (const [variant, r] of entries) {
        const out = `${dir}/out-${variant}`;
        const config = JSON.parse(await Deno.readTextFile(`${out}/config.json`));
        const expected = variant === "reflow-interleaved" ? "reflow" : variant;
        assertEquals(config.model_config, expected, "model_config (gpt2 = a checkpoint without one)");
        assert(typeof config.iter_num === "number" && typeof config.best_val_loss === "number");
        const report = await inspectReflowCheckpoint(out);
        assertEquals([report.variant, report.iterNum, report.mismatches], [expected, config.iter_num, []]);
        assertEquals(report.modelArgs?.n_layer, 2);
        const model = await loadModel(out);
        const ids = tf.tensor2d(r.ids, undefined, "int32");
        const res = model.forward(ids);
        const diff = maxDiff(res.logits.dataSync(), r.logits.flat(2));
        assert(diff < 1e-4, `${variant}: logits differ from PyTorch by ${diff}`);
        tf.dispose([ids, res.logits, res.hidden, res.residual]);
        model.dispose();
      }
      // model_args without n_kv_head / d_mlp / n_signals (spec §1.4: Lite's H_kv and F are not pinned down by
      // the counts): the converter reads them off the tensors instead of assuming H/4, 256·ceil(8d/3/256), d.
      const inferred = await python([
        "-c",
        `import sys, json, torch; sys.path.insert(0, ${JSON.stringify(TOOLS)}); import reflow_torch as rt\n` +
        `from convert_reflow import convert\n` +
        `a = rt.model_args_for("reflow-lite", 2, 32, 4, vocab_size=40, block_size=32, n_signals=20, n_kv_head=2)\n` +
        `a["d_mlp"] = 128\n` +
        `m = rt.ReflowGPT("reflow-lite", a, seed=7).eval()\n` +
        `ids = [[1, 5, 9, 33, 2, 17]]\n` +
        `with torch.no_grad(): logits = m(torch.tensor(ids)).tolist()\n` +
        `stored = {k: v for k, v in a.items() if k not in ("n_kv_head", "d_mlp", "n_signals")}\n` +
        `torch.save(dict(model=m.state_dict(), model_args=stored, config=dict(model_config="reflow-lite")), ` +
        `"${dir}/lite-inferred.pt")\n` +
        `c = convert("${dir}/lite-inferred.pt", "${dir}/out-lite-inferred")\n` +
        `print(json.dumps(dict(ids=ids, logits=logits, config=c)))`,
      ]);
      assertEquals(inferred.code, 0, inferred.stderr);
      const inf = JSON.parse(inferred.stdout.trim().split("\n").at(-1)!);
      assertEquals([inf.config.n_kv_head, inf.config.d_mlp, inf.config.n_signals], [2, 128, 20]);
      assertEquals(inf.config.source.inferred, ["n_kv_head", "d_mlp", "n_signals"]);
      const lite = await loadModel(`${dir}/out-lite-inferred`);
      const liteIds = tf.tensor2d(inf.ids, undefined, "int32");
      const liteRes = lite.forward(liteIds);
      const liteDiff = maxDiff(liteRes.logits.dataSync(), inf.logits.flat(2));
      assert(liteDiff < 1e-4, `inferred Lite: logits differ from PyTorch by ${liteDiff}`);
      tf.dispose([liteIds, liteRes.logits, liteRes.hidden, liteRes.residual]);
      lite.dispose();
      // A gpt2-new checkpoint without model_config is read as gpt2: the message says so and how to fix it.
      const noCfg = `${dir}/gpt2-new-no-config.pt`;
      const strip = await python([
        "-c",
        `import torch; c = torch.load("${ref["gpt2-new"].ckpt}"); del c["config"]; torch.save(c, "${noCfg}")`,
      ]);
      assertEquals(strip.code, 0, strip.stderr);
      const guessed = await python([`${TOOLS}convert_reflow.py`, noCfg, `${dir}/out-no-config`]);
      assert(guessed.code !== 0, "a gpt2-new checkpoint read as gpt2 must fail");
      assert(
        guessed.stderr.includes("names no model_config") && guessed.stderr.includes("--model-config"),
        guessed.stderr,
      );
      const named = await python([
        `${TOOLS}convert_reflow.py`,
        "--model-config",
        "gpt2-new",
        noCfg,
        `${dir}/out-no-config`,
      ]);
      assertEquals(named.code, 0, named.stderr);
      assertEquals(
        JSON.parse(await Deno.readTextFile(`${dir}/out-no-config/config.json`)).model_config,
        "gpt2-new",
      );
      // A checkpoint whose tensors do not match its model_args: one message listing them.
      const bad = `${dir}/bad.pt`;
      const edit = await python([
        "-c",
        `import torch; c = torch.load("${ref.reflow.ckpt}"); c["model_args"]["n_signals"] = 20; ` +
        `c["model"]["stray.weight"] = torch.zeros(2); torch.save(c, "${bad}")`,
      ]);
      assertEquals(edit.code, 0, edit.stderr);
      const conv = await python([`${TOOLS}convert_reflow.py`, bad, `${dir}/out-bad`]);
      assert(conv.code !== 0, "a mismatched checkpoint must fail");
      assert(conv.stderr.includes("do not match its config"), conv.stderr);
      assert(
        conv.stderr.includes("expected shape [40, 20]") && conv.stderr.includes("stray.weight"),
        conv.stderr,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const pythonMissing = (await python(["-c", "pass"])).code !== 0;

Deno.test({
  name:
    "convert_reflow.py: S or k out of range is refused at conversion, with the range; --model-config names the variant",
  ignore: pythonMissing,
  async fn() {
    // library_config and variant_of need no torch: this part runs wherever python3 does.
    const r = await python([
      "-c",
      `import sys; sys.path.insert(0, ${JSON.stringify(TOOLS)}); import convert_reflow as c\n` +
      `args = dict(n_layer=2, n_head=4, n_embd=32, vocab_size=40, block_size=32, n_signals=24)\n` +
      `def err(f):\n  try: f(); print("no error")\n  except c.ConversionError as e: print(e)\n` +
      `err(lambda: c.library_config("reflow-topk", dict(args, top_k=30), "recipe"))\n` +
      `err(lambda: c.library_config("reflow", dict(args, n_signals=0), "recipe"))\n` +
      `print(c.variant_of({"model": {}}, None), c.variant_of({"model": {}}, "gpt2_new"))\n` +
      `err(lambda: c.variant_of({"model": {}}, "gpt3"))`,
    ]);
    assertEquals(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assertEquals(lines.length, 4, r.stdout);
    assert(lines[0].includes("top_k 30 is out of range 1..24 (n_signals)"), lines[0]);
    assert(lines[1].includes("n_signals 0 is out of range 1..65536"), lines[1]);
    assertEquals(lines[2], "gpt2 gpt2-new", "--model-config wins; without it a checkpoint is gpt2");
    assert(lines[3].includes("--model-config is 'gpt3'; expected one of reflow"), lines[3]);
  },
});

Deno.test("reflow loader: a converted folder round-trips, and tensors that do not match config.json are refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "reflow-load-" });
  try {
    const config = reflowVariantConfig("reflow-lite", {
      nLayers: 2,
      dModel: 32,
      nHeads: 4,
      nSignals: 24,
      vocabSize: 40,
      maxPositions: 32,
    });
    const model = createDecoder(config, { seed: 2 });
    const tensors: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
    for (const [name, v] of model.parameters()) {
      tensors[name] = { dtype: "F32", shape: v.shape, data: v.dataSync() as Float32Array };
    }
    await Deno.writeFile(`${dir}/model.safetensors`, encodeSafetensors(tensors));
    const json = {
      model_type: "reflow",
      model_config: "reflow-lite",
      n_layer: 2,
      n_head: 4,
      n_kv_head: 1,
      n_embd: 32,
      n_signals: 24,
      vocab_size: 40,
      block_size: 32,
    };
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(json));
    const loaded = await loadModel(dir);
    const ids = tf.tensor2d([[1, 2, 3]], undefined, "int32");
    const a = model.forward(ids), b = loaded.forward(ids);
    assertEquals(maxDiff(a.logits.dataSync(), b.logits.dataSync()), 0);
    tf.dispose([ids, a.logits, a.hidden, a.residual, b.logits, b.hidden, b.residual]);
    loaded.dispose();
    model.dispose();
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify({ ...json, n_signals: 20 }));
    await assertRejects(() => loadModel(dir), "'embed.W_recipe': expected shape [40,20], found [40,24]");
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify({ ...json, model_config: "reflow-lit" }));
    await assertRejects(() => loadModel(dir), "did you mean reflow-lite");
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify({ ...json, rope_layout: "interleaved" }));
    await assertRejects(() => loadModel(dir), "--rope-layout interleaved");
    // Sizes must be whole numbers, named with the file.
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify({ ...json, n_signals: 24.5 }));
    await assertRejects(
      () => loadModel(dir),
      "config.json: field 'n_signals' must be a positive whole number",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
