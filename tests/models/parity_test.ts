/**
 * Parity with Hugging Face transformers 5.17 (fp32 reference outputs in ../shared/fixtures/hf/<name>/
 * reference.safetensors) for gpt2, gpt_neox, llama and qwen2, on cpu, wasm and (where an adapter exists)
 * webgpu: logits, final hidden state, the first block's output, KV-cached incremental decoding, and
 * greedy decoding with the cache.
 *
 * Tolerance: 1e-4 absolute on every backend, webgpu included. The models are fp32 end to end and tiny
 * (d = 64, 2 layers), so accumulated rounding stays near 1e-6; on Mesa llvmpipe WebGPU we measured at most
 * 3.3e-6 (same as cpu/wasm), which leaves a 30x margin while still catching any real mapping error
 * (a wrong transpose, rotary layout or norm epsilon moves logits by 1e-2 or more).
 */
import { assert, assertEquals } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import { initBackend, requestAdapter } from "../../lib/backend/backend.ts";
import { readTfSafetensors } from "../../lib/io/safetensors_tf.ts";
import { loadModel } from "../../lib/models/load.ts";
import type { Decoder } from "../../lib/models/decoder.ts";

const FIXTURES = new URL("../../../shared/fixtures/hf/", import.meta.url).pathname;
const NAMES = ["tiny-gpt2", "tiny-gpt-neox", "tiny-llama", "tiny-qwen2"];
const haveFixtures = await Deno.stat(FIXTURES).then(() => true, () => false);
if (!haveFixtures) console.log(`parity tests skipped: ${FIXTURES} is absent (needs ../shared)`);
const haveAdapter = (await requestAdapter()) !== null;
const TOL = 1e-4;

async function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  assertEquals(a.shape, b.shape);
  const d = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))));
  const v = (await d.data())[0];
  d.dispose();
  return v;
}

/** Greedy decoding with the KV cache: prefill the prompt, then feed one token at a time. */
async function greedy(model: Decoder, prompt: number[], total: number): Promise<number[]> {
  const out = [...prompt];
  const cache = model.createCache(1);
  let ids = tf.tensor2d([prompt], [1, prompt.length], "int32");
  try {
    while (out.length < total) {
      const r = model.forward(ids, { cache, lastOnly: true });
      const next = tf.tidy(() => tf.argMax(tf.reshape(r.logits, [-1])));
      const id = (await next.data())[0];
      tf.dispose([r.logits, r.hidden, r.residual, next, ids]);
      out.push(id);
      ids = tf.tensor2d([[id]], [1, 1], "int32");
    }
  } finally {
    ids.dispose();
    cache.dispose();
  }
  return out;
}

for (const backend of ["cpu", "wasm", "webgpu"] as const) {
  for (const name of NAMES) {
    Deno.test({
      name:
        `parity[${backend}] ${name}: logits, hidden states, cached decode and greedy ids match transformers`,
      ignore: !haveFixtures || (backend === "webgpu" && !haveAdapter),
      sanitizeResources: false,
      sanitizeOps: false,
      async fn() {
        await initBackend({ backend });
        const dir = FIXTURES + name;
        const ref = await readTfSafetensors(`${dir}/reference.safetensors`);
        const model = await loadModel(dir);
        let before = 0;
        try {
          const ids = ref.input_ids as tf.Tensor2D;
          const [b, t] = ids.shape;

          // Full forward.
          const full = model.forward(ids, { capture: ["blocks.0.hook_resid_post"] });
          const dLogits = await maxAbsDiff(full.logits, ref.logits);
          const dHidden = await maxAbsDiff(full.hidden, ref.last_hidden_state);
          const dH1 = await maxAbsDiff(
            full.activations!.get("blocks.0.hook_resid_post")!,
            ref.hidden_state_1,
          );
          assert(dLogits < TOL, `logits differ by ${dLogits}`);
          assert(dHidden < TOL, `last hidden state differs by ${dHidden}`);
          assert(dH1 < TOL, `hidden_states[1] differs by ${dH1}`);
          tf.dispose([full.logits, full.hidden, full.residual, ...full.activations!.values()]);
          // Counted after the first forward: on wasm a tied model keeps a derived [d, V] head copy from then on.
          before = tf.memory().numTensors;

          // KV-cached incremental decoding (prefill half, then one position at a time) == full forward.
          const cache = model.createCache(b);
          const half = t / 2;
          const parts: tf.Tensor[] = [];
          const pre = tf.slice(ids, [0, 0], [b, half]) as tf.Tensor2D;
          const r0 = model.forward(pre, { cache });
          parts.push(r0.logits);
          tf.dispose([pre, r0.hidden, r0.residual]);
          for (let i = half; i < t; i++) {
            const step = tf.slice(ids, [0, i], [b, 1]) as tf.Tensor2D;
            const r = model.forward(step, { cache });
            parts.push(r.logits);
            tf.dispose([step, r.hidden, r.residual]);
          }
          assertEquals(cache.rowLengths(), [t, t]);
          const inc = tf.concat(parts, 1);
          const dInc = await maxAbsDiff(inc, ref.logits);
          assert(dInc < TOL, `cached incremental logits differ by ${dInc}`);
          tf.dispose([inc, ...parts]);
          cache.dispose();

          // Greedy decoding with the cache reproduces transformers' greedy ids exactly.
          const expected = Array.from(await ref.greedy_ids.data());
          const prompt = expected.slice(0, 8);
          const head = tf.slice(ids, [0, 0], [1, 8]);
          assertEquals(prompt, Array.from(await head.data()), "greedy prompt = first 8 ids of row 0");
          head.dispose();
          assertEquals(await greedy(model, prompt, expected.length), expected);

          assertEquals(tf.memory().numTensors, before, "tensors leaked");
        } finally {
          model.dispose();
          tf.dispose(Object.values(ref));
        }
      },
    });
  }
}
