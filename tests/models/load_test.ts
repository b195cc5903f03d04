/** loadModel: config variants (old and new RoPE fields, sequential NeoX), and clear errors for bad input. */
import { assert, assertEquals, assertRejects, assertThrows, maxDiff } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import { readSafetensors, writeSafetensors } from "../../lib/io/safetensors.ts";
import { loadModel } from "../../lib/models/load.ts";
import { gptNeoxConfig } from "../../lib/models/gpt_neox.ts";
import { llamaConfig } from "../../lib/models/llama.ts";
import { qwen2Config } from "../../lib/models/qwen2.ts";
import { scaleRopeFrequencies } from "../../lib/nn/rotary.ts";
import { useBackend } from "../fixtures.ts";

await useBackend("cpu");
const FIXTURES = new URL("../../../shared/fixtures/hf/", import.meta.url).pathname;
const haveFixtures = await Deno.stat(FIXTURES).then(() => true, () => false);
if (!haveFixtures) console.log(`loadModel fixture tests skipped: ${FIXTURES} is absent (needs ../shared)`);

/** Copies a fixture into a temp folder, editing its config and tensors. */
async function variant(
  name: string,
  editConfig: (c: Record<string, unknown>) => void,
  editTensors: (t: Map<string, { dtype: "F32"; shape: number[]; data: Float32Array }>) => void = () => {},
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "coherence-load-" });
  const config = JSON.parse(await Deno.readTextFile(`${FIXTURES}${name}/config.json`));
  editConfig(config);
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
  const loaded = await readSafetensors(`${FIXTURES}${name}/model.safetensors`);
  const tensors = new Map(
    [...loaded].map(([k, v]) => [k, { dtype: "F32" as const, shape: v.shape, data: v.data as Float32Array }]),
  );
  editTensors(tensors);
  await writeSafetensors(`${dir}/model.safetensors`, tensors);
  return dir;
}

async function logits(dir: string): Promise<Float32Array> {
  const model = await loadModel(dir);
  const x = tf.tensor2d([[1, 5, 9, 200, 17, 3]], [1, 6], "int32");
  const r = model.forward(x);
  const out = r.logits.dataSync() as Float32Array;
  tf.dispose([x, r.logits, r.hidden, r.residual]);
  model.dispose();
  return out;
}

const test = (name: string, fn: () => Promise<void>) => Deno.test({ name, ignore: !haveFixtures, fn });

test("loadModel: older config fields (rotary_pct, rotary_emb_base, top-level rope_theta) load identically", async () => {
  const neoxOld = await variant("tiny-gpt-neox", (c) => {
    delete c.rope_parameters;
    c.rotary_pct = 0.25;
    c.rotary_emb_base = 10000;
  });
  assertEquals(await logits(neoxOld), await logits(`${FIXTURES}tiny-gpt-neox`));
  const llamaOld = await variant("tiny-llama", (c) => {
    delete c.rope_parameters;
    c.rope_theta = 10000;
  });
  assertEquals(await logits(llamaOld), await logits(`${FIXTURES}tiny-llama`));
  // A different theta must change the output (the field is really read).
  const llamaTheta = await variant("tiny-llama", (c) => {
    delete c.rope_parameters;
    c.rope_theta = 500;
  });
  assert(maxDiff(await logits(llamaTheta), await logits(`${FIXTURES}tiny-llama`)) > 1e-4);
  for (const d of [neoxOld, llamaOld, llamaTheta]) await Deno.remove(d, { recursive: true });
});

test("loadModel: Llama attention_bias and mlp_bias map every bias (zero biases change nothing)", async () => {
  const addBiases =
    (value: number) => (t: Map<string, { dtype: "F32"; shape: number[]; data: Float32Array }>) => {
      for (const [name, w] of [...t]) {
        if (!/\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$/.test(name)) continue;
        const n = w.shape[0];
        t.set(name.replace(/weight$/, "bias"), {
          dtype: "F32",
          shape: [n],
          data: new Float32Array(n).fill(value),
        });
      }
    };
  const withBias = (c: Record<string, unknown>) => {
    c.attention_bias = true;
    c.mlp_bias = true;
  };
  const zero = await variant("tiny-llama", withBias, addBiases(0));
  const model = await loadModel(zero);
  assert(model.parameters().has("blocks.1.mlp.b_gate") && model.parameters().has("blocks.0.attn.b_O"));
  model.dispose();
  assertEquals(await logits(zero), await logits(`${FIXTURES}tiny-llama`));
  const some = await variant("tiny-llama", withBias, addBiases(0.05));
  assert(maxDiff(await logits(some), await logits(`${FIXTURES}tiny-llama`)) > 1e-4);
  for (const d of [zero, some]) await Deno.remove(d, { recursive: true });
});

test("loadModel: linear RoPE scaling x2 at positions 2p equals plain RoPE at positions p", async () => {
  const dir = await variant("tiny-llama", (c) => void (c.rope_scaling = { type: "linear", factor: 2 }));
  const scaled = await loadModel(dir), plain = await loadModel(`${FIXTURES}tiny-llama`);
  assertEquals(scaled.config.ropeScaling, { type: "linear", factor: 2 });
  const x = tf.tensor2d([[1, 5, 9, 200, 17, 3]], [1, 6], "int32");
  const even = tf.tensor2d([[0, 2, 4, 6, 8, 10]], [1, 6], "int32");
  const a = scaled.forward(x, { positions: even }), b = plain.forward(x);
  assert(
    maxDiff(a.logits.dataSync(), b.logits.dataSync()) < 1e-5,
    "linear scaling is not position stretching",
  );
  const c = scaled.forward(x);
  assert(maxDiff(c.logits.dataSync(), b.logits.dataSync()) > 1e-4, "scaling had no effect");
  tf.dispose([
    x,
    even,
    a.logits,
    a.hidden,
    a.residual,
    b.logits,
    b.hidden,
    b.residual,
    c.logits,
    c.hidden,
    c.residual,
  ]);
  scaled.dispose();
  plain.dispose();
  await Deno.remove(dir, { recursive: true });
});

test("loadModel: a sharded checkpoint (model.safetensors.index.json) loads like the single file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "coherence-shards-" });
  await Deno.copyFile(`${FIXTURES}tiny-qwen2/config.json`, `${dir}/config.json`);
  const loaded = [...await readSafetensors(`${FIXTURES}tiny-qwen2/model.safetensors`)];
  const weightMap: Record<string, string> = {};
  for (const [part, slice] of [loaded.slice(0, 7), loaded.slice(7)].entries()) {
    const file = `model-0000${part + 1}-of-00002.safetensors`;
    await writeSafetensors(
      `${dir}/${file}`,
      new Map(
        slice.map(([k, v]) => [k, { dtype: "F32" as const, shape: v.shape, data: v.data as Float32Array }]),
      ),
    );
    for (const [k] of slice) weightMap[k] = file;
  }
  await Deno.writeTextFile(
    `${dir}/model.safetensors.index.json`,
    JSON.stringify({ metadata: {}, weight_map: weightMap }),
  );
  assertEquals(await logits(dir), await logits(`${FIXTURES}tiny-qwen2`));
  await Deno.remove(dir, { recursive: true });
});

test("loadModel: hf:org/name@rev resolves through a Hugging Face cache folder (offline)", async () => {
  const cacheDir = await Deno.makeTempDir({ prefix: "coherence-hfcache-" });
  const commit = "0123456789abcdef0123456789abcdef01234567";
  const repo = `${cacheDir}/models--tiny--gpt2`;
  await Deno.mkdir(`${repo}/snapshots/${commit}`, { recursive: true });
  await Deno.mkdir(`${repo}/refs`);
  await Deno.writeTextFile(`${repo}/refs/main`, commit);
  for (const f of ["config.json", "model.safetensors"]) {
    await Deno.copyFile(`${FIXTURES}tiny-gpt2/${f}`, `${repo}/snapshots/${commit}/${f}`);
  }
  const model = await loadModel("hf:tiny/gpt2@main", { hub: { cacheDir, allowDownload: false } });
  assertEquals(model.source, `${repo}/snapshots/${commit}`);
  assertEquals(model.config.family, "gpt2");
  model.dispose();
  await assertRejects(
    () => loadModel("hf:tiny/absent", { hub: { cacheDir, allowDownload: false } }),
    "tiny/absent",
  );
  await Deno.remove(cacheDir, { recursive: true });
});

test("loadModel: NeoX with use_parallel_residual=false runs sequentially (hook_resid_mid present)", async () => {
  const dir = await variant("tiny-gpt-neox", (c) => void (c.use_parallel_residual = false));
  const model = await loadModel(dir);
  assert(model.hookNames.includes("blocks.0.hook_resid_mid"));
  assertEquals(model.config.parallelResidual, false);
  assert(maxDiff(await logits(dir), await logits(`${FIXTURES}tiny-gpt-neox`)) > 1e-4);
  assertEquals(model.source, dir);
  const display = (model as unknown as Record<symbol, () => Record<string, string>>)
    [Symbol.for("Jupyter.display")]();
  assert(display["text/html"].includes("gpt_neox") && display["text/plain"].includes("2 layers"));
  model.dispose();
  await Deno.remove(dir, { recursive: true });
});

test("loadModel: unknown model_type, missing and mis-shaped weights give one clear error", async () => {
  const unknown = await variant("tiny-gpt2", (c) => void (c.model_type = "mamba"));
  await assertRejects(
    () => loadModel(unknown),
    "model_type 'mamba' is not supported (supported: gpt2, gpt_neox, llama, qwen2)",
  );
  const missing = await variant("tiny-llama", () => {}, (t) => {
    t.delete("model.layers.1.mlp.up_proj.weight");
    t.delete("lm_head.weight");
  });
  const e = await assertRejects(
    () => loadModel(missing),
    "missing 'model.layers.1.mlp.up_proj.weight' (expected shape [176,64])",
  );
  assert(e.message.includes("missing 'lm_head.weight'"), "every missing tensor is listed");
  const shaped = await variant("tiny-qwen2", (c) => void (c.intermediate_size = 100));
  await assertRejects(
    () => loadModel(shaped),
    "'model.layers.0.mlp.gate_proj.weight': expected shape [100,64], found [128,64]",
  );
  const extra = await variant("tiny-gpt2", () => {}, (t) => {
    t.set("transformer.h.0.attn.rogue.weight", { dtype: "F32", shape: [2], data: new Float32Array(2) });
  });
  await assertRejects(
    () => loadModel(extra),
    "unexpected tensors not used by the gpt2 mapping: transformer.h.0.attn.rogue.weight",
  );
  await assertRejects(() => loadModel(`${FIXTURES}does-not-exist`), "does-not-exist");
  for (const d of [unknown, missing, shaped, extra]) await Deno.remove(d, { recursive: true });
});

Deno.test("family configs: unsupported RoPE scaling, activations and sliding windows are refused clearly", () => {
  const base = {
    hidden_size: 64,
    num_attention_heads: 4,
    num_hidden_layers: 2,
    intermediate_size: 128,
    vocab_size: 512,
  };
  assertThrows(
    () => llamaConfig({ ...base, rope_scaling: { rope_type: "dynamic", factor: 8 } }),
    "rope_type 'dynamic' is not supported",
  );
  assertThrows(
    () => llamaConfig({ ...base, rope_scaling: { rope_type: "llama3", factor: 8 } }),
    "low_freq_factor must be a number",
  );
  assertThrows(
    () => llamaConfig({ ...base, rope_parameters: { rope_type: "yarn", rope_theta: 1e4 } }),
    "'yarn'",
  );
  assertThrows(() => llamaConfig({ ...base, hidden_act: "gelu" }), "hidden_act 'gelu' is not supported");
  assertThrows(
    () =>
      qwen2Config({ ...base, use_sliding_window: true, sliding_window: 64, max_position_embeddings: 128 }),
    "sliding_window",
  );
  assertThrows(
    () => llamaConfig({ ...base, hidden_size: undefined }),
    "required field 'hidden_size' is missing",
  );
  const neox = gptNeoxConfig({ ...base, rope_parameters: { partial_rotary_factor: 0.5, rope_theta: 20000 } });
  assertEquals([neox.rotaryDim, neox.ropeTheta, neox.parallelResidual, neox.mlp], [8, 20000, true, "gelu"]);
  assertEquals(llamaConfig({ ...base, head_dim: 32, num_key_value_heads: 1 }).headDim, 32);
  const l3 = llamaConfig({
    ...base,
    rope_parameters: {
      rope_type: "llama3",
      rope_theta: 500000,
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 8192,
    },
  });
  assertEquals(l3.ropeScaling, {
    type: "llama3",
    factor: 8,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositions: 8192,
  });
  assertEquals(l3.ropeTheta, 500000);
});

Deno.test("RoPE llama3 scaling: high frequencies kept, low ones divided by the factor, a smooth blend between", () => {
  const dim = 128, theta = 500000;
  const base = Float32Array.from({ length: dim / 2 }, (_, i) => 1 / Math.pow(theta, (2 * i) / dim));
  const scaled = scaleRopeFrequencies(base.slice(), {
    type: "llama3",
    factor: 8,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositions: 8192,
  });
  let kept = 0, divided = 0, blended = 0;
  base.forEach((inv, i) => {
    const wavelen = (2 * Math.PI) / inv;
    if (wavelen < 2048) {
      assertEquals(scaled[i], inv);
      kept++;
    } else if (wavelen > 8192) {
      assert(Math.abs(scaled[i] - Math.fround(inv / 8)) < 1e-12, `low frequency ${i} not divided by 8`);
      divided++;
    } else {
      assert(scaled[i] < inv && scaled[i] > inv / 8, `medium frequency ${i} not blended`);
      blended++;
    }
  });
  assert(kept > 0 && divided > 0 && blended > 0, `${kept}/${blended}/${divided}`);
  // Monotone: the blend never reorders frequencies.
  for (let i = 1; i < scaled.length; i++) assert(scaled[i] < scaled[i - 1]);
});
