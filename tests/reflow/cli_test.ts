import { assert, assertEquals } from "../assert.ts";
import { initBackend } from "../../lib/backend/backend.ts";
import { reflowMain } from "../../lib/cli/reflow.ts";
import { encodeSafetensors } from "../../lib/io/safetensors.ts";
import { createDecoder } from "../../lib/models/scratch.ts";
import { reflowVariantConfig } from "../../lib/reflow/mod.ts";
import { saveTinyModelFolder, tinyReflowModel } from "./tiny.ts";

await initBackend({ backend: "cpu" });

/** Runs the CLI in-process (the test-only embedding kind is registered here), capturing its output. */
async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [], err: string[] = [];
  const log = console.log, error = console.error;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    return { code: await reflowMain(argv), out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("reflow CLI: check prints every tensor, the group subtotals and the total", async () => {
  const { model, tokenizer } = tinyReflowModel();
  const dir = await saveTinyModelFolder(model, tokenizer, await Deno.makeTempDir());
  const total = [...model.parameters().values()].reduce((a, v) => a + v.size, 0);
  const names = [...model.parameters().keys()];
  model.dispose();
  const r = await run(["check", "--model", dir]);
  assertEquals(r.code, 0, r.err);
  for (const n of names) assert(r.out.includes(n), `missing ${n}`);
  assert(/embed\.W_recipe\s+\[\d+, 8\]/.test(r.out), r.out);
  assert(/group subtotals:\nrecipe\s/.test(r.out) && r.out.includes("attention") && r.out.includes("mlp"));
  assert(new RegExp(`total\\s+${total.toLocaleString("en-US")}`).test(r.out), r.out);
  // A damaged trainer state next to the weights is named, not a bare JSON error.
  await Deno.writeTextFile(`${dir}/state.json`, '{"step": 3,');
  const bad = await run(["check", "--model", dir]);
  assert(bad.code !== 0);
  assert(/state\.json' is corrupt \(.*\): use an earlier checkpoint or retrain/.test(bad.err), bad.err);
});

Deno.test("reflow CLI: check of a converted checkpoint prints its variant, iter_num, best_val_loss and model_args", async () => {
  const dir = await Deno.makeTempDir({ prefix: "reflow-check-" });
  try {
    const sizes = {
      nLayers: 1,
      dModel: 16,
      nHeads: 2,
      nSignals: 8,
      topK: 3,
      vocabSize: 20,
      maxPositions: 16,
    };
    const model = createDecoder(reflowVariantConfig("reflow-topk", sizes), { seed: 1 });
    const tensors: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
    for (const [name, v] of model.parameters()) {
      tensors[name] = { dtype: "F32", shape: v.shape, data: v.dataSync() as Float32Array };
    }
    model.dispose();
    await Deno.writeFile(`${dir}/model.safetensors`, encodeSafetensors(tensors));
    // What tools/convert_reflow.py writes: nanoGPT sizes, the stored training state and the original model_args.
    const modelArgs = {
      n_layer: 1,
      n_head: 2,
      n_embd: 16,
      block_size: 16,
      vocab_size: 20,
      n_signals: 8,
      top_k: 3,
    };
    await Deno.writeTextFile(
      `${dir}/config.json`,
      JSON.stringify({
        model_type: "reflow",
        model_config: "reflow-topk",
        ...modelArgs,
        iter_num: 1234,
        best_val_loss: 3.25,
        source: { checkpoint: "ckpt.pt", model_args: modelArgs },
      }),
    );
    const r = await run(["check", "--model", dir]);
    assertEquals(r.code, 0, r.err);
    assert(r.out.includes("variant reflow-topk"), r.out);
    assert(r.out.includes("iter_num 1234") && r.out.includes("best_val_loss 3.25"), r.out);
    assert(r.out.includes(`model_args ${JSON.stringify(modelArgs)}`), r.out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reflow CLI: experiments on a converted checkpoint (no tokenizer.json) use GPT-2 BPE", async () => {
  const dir = await Deno.makeTempDir({ prefix: "reflow-conv-exp-" });
  try {
    const sizes = { nLayers: 1, dModel: 16, nHeads: 2, nSignals: 8, maxPositions: 32 }; // V = 50304
    const model = createDecoder(reflowVariantConfig("reflow", sizes), { seed: 2 });
    const tensors: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
    for (const [name, v] of model.parameters()) {
      tensors[name] = { dtype: "F32", shape: v.shape, data: v.dataSync() as Float32Array };
    }
    model.dispose();
    await Deno.writeFile(`${dir}/model.safetensors`, encodeSafetensors(tensors));
    await Deno.writeTextFile(
      `${dir}/config.json`,
      JSON.stringify({
        model_type: "reflow",
        model_config: "reflow",
        n_layer: 1,
        n_head: 2,
        n_embd: 16,
        n_signals: 8,
        vocab_size: 50304,
        block_size: 32,
      }),
    );
    const r = await run(["experiment", "--model", dir, "--exp", "5", "--out", `${dir}/rep`]);
    assertEquals(r.code, 0, r.err);
    assert(r.out.includes("GPT-2 BPE"), r.out);
    const results = JSON.parse(await Deno.readTextFile(`${dir}/rep/results.json`));
    assertEquals(results.experiments.map((e: { id: number }) => e.id), [5]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reflow CLI: experiment writes results.json, report.md and SVG + PNG figures", async () => {
  const { model, tokenizer } = tinyReflowModel();
  const dir = await saveTinyModelFolder(model, tokenizer, await Deno.makeTempDir());
  model.dispose();
  const out = await Deno.makeTempDir();
  const opts = `${out}/options.json`;
  await Deno.writeTextFile(opts, JSON.stringify({ "9": { maxK: 3, randomTrials: 1 } }));
  const r = await run([
    "experiment",
    "--model",
    dir,
    "--exp",
    "1,5,9",
    "--out",
    `${out}/rep`,
    "--options",
    opts,
  ]);
  assertEquals(r.code, 0, r.err);
  const results = JSON.parse(await Deno.readTextFile(`${out}/rep/results.json`));
  assertEquals(results.experiments.map((e: { id: number }) => e.id), [1, 5, 9]);
  const md = await Deno.readTextFile(`${out}/rep/report.md`);
  assert(md.includes("## 9. Causal Ablation") && md.includes("8.31 %"), md);
  for (const f of ["01_recipe-atlas_heatmap", "09_causal-ablation_knockout"]) {
    assert((await Deno.stat(`${out}/rep/figures/${f}.svg`)).size > 0);
    const png = await Deno.readFile(`${out}/rep/figures/${f}.png`);
    assertEquals([...png.slice(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
  }
});

Deno.test("reflow CLI: usage errors exit 2 and name the valid choices", async () => {
  let r = await run(["experiment", "--model", "x", "--exp", "1,99", "--out", "o"]);
  assertEquals(r.code, 2);
  assert(r.err.includes("unknown experiment '99'") && r.err.includes("valid ids: 1 recipe-atlas"), r.err);
  r = await run(["chek", "--model", "x"]);
  assertEquals(r.code, 2);
  assert(r.err.includes("did you mean check"), r.err);
  r = await run(["experiment", "--model", "x"]);
  assertEquals(r.code, 2);
  r = await run(["check", "--model", "/nonexistent-model"]);
  assertEquals(r.code, 1);
  assert(r.err.includes("not found"), r.err);
});
