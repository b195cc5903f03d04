/**
 * generate() against the Hugging Face reference outputs in ../shared/fixtures/hf (transformers 5.17, fp32):
 * greedy decoding reproduces `greedy_ids`, and the per-step cosims equal the reference's consecutive
 * cosines of the final hidden state.
 */
import { tf } from "../../lib/deps.ts";
import { readTfSafetensors } from "../../lib/io/safetensors_tf.ts";
import { loadModel } from "../../lib/models/load.ts";
import { generate } from "../../lib/generate/generate.ts";
import { assertClose, assertEquals } from "../assert.ts";
import { initBackend, requestAdapter } from "../../lib/backend/backend.ts";

const FIXTURES = new URL("../../../shared/fixtures/hf/", import.meta.url).pathname;
const NAMES = ["tiny-gpt2", "tiny-gpt-neox", "tiny-llama", "tiny-qwen2"];
const haveFixtures = await Deno.stat(FIXTURES).then(() => true, () => false);
if (!haveFixtures) console.log(`generate fixture tests skipped: ${FIXTURES} is absent (needs ../shared)`);

const haveAdapter = (await requestAdapter()) !== null;

for (const backend of ["cpu", "wasm", "webgpu"] as const) {
  for (const name of NAMES) {
    Deno.test({
      name: `generate[${backend}] ${name}: greedy ids and cosims match transformers`,
      ignore: !haveFixtures || (backend === "webgpu" && !haveAdapter),
      async fn() {
        await initBackend({ backend });
        const dir = FIXTURES + name;
        const ref = await readTfSafetensors(`${dir}/reference.safetensors`);
        const refJson = JSON.parse(await Deno.readTextFile(`${dir}/reference.json`));
        const gen = JSON.parse(await Deno.readTextFile(`${dir}/generation_config.json`));
        const model = await loadModel(dir);
        try {
          const V = model.config.vocabSize;
          const eos = typeof gen.eos_token_id === "number" && gen.eos_token_id < V ? [gen.eos_token_id] : [];
          // data(), not dataSync(): webgpu cannot read back synchronously under Deno.
          const expected = Array.from(await ref.greedy_ids.data());
          const flat = Array.from(await ref.input_ids.data());
          const input = flat.slice(0, ref.input_ids.shape[1]);
          assertEquals(expected.slice(0, 8), input.slice(0, 8));

          // Greedy: 8 prompt ids, then up to 24 new tokens, stopping at EOS as transformers does.
          const greedy = await generate(model, expected.slice(0, 8), {
            maxNewTokens: 24,
            sampling: { temperature: 0 },
            stopTokens: eos,
          }).collect();
          assertEquals(greedy.rows[0].tokens, expected.slice(8));

          // Cosims: prompt = the first input id, the other 23 teacher-forced. Then h_t sits at position t
          // and cosim(t) = cos(h_t, h_{t-1}) is the reference's consecutive cosine number t - 1.
          const refCos: number[] = refJson.cosim_consecutive_last_hidden_batch0;
          const forced = await generate(model, input.slice(0, 1), {
            maxNewTokens: refCos.length + 1,
            forceTokens: [input.slice(1)],
          }).collect();
          assertEquals(forced.rows[0].tokens.slice(0, refCos.length), input.slice(1));
          assertClose(forced.rows[0].cosims.slice(1), refCos, 1e-4, "cosims");
          // The raw log-probabilities of the forced tokens equal log-softmax of the reference logits.
          const refLogp = tf.tidy(() =>
            tf.logSoftmax(ref.logits.slice([0, 0, 0], [1, -1, -1]).reshape([-1, V]))
          );
          const lp = await refLogp.data();
          refLogp.dispose();
          assertClose(
            forced.rows[0].logprobs.slice(0, 23),
            input.slice(1).map((id, t) => lp[t * V + id]),
            1e-4,
            "logprobs",
          );
        } finally {
          model.dispose();
          tf.dispose(Object.values(ref));
        }
      },
    });
  }
}
