/** Chunked prefill: the same generation as one whole-prompt forward, on cpu and wasm, ragged prompts too. */
import { tf } from "../../lib/deps.ts";
import { generate, prefillChunkSize } from "../../lib/generate/generate.ts";
import { tinyLearnedConfig, tinyModel, tinyRotaryConfig, useBackend } from "../fixtures.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";

const V = 61;
const make = {
  rotary: () =>
    tinyModel(
      tinyRotaryConfig({ dModel: 32, nHeads: 4, nKvHeads: 2, vocabSize: V, maxPositions: 128 }),
      11,
      0.3,
    ),
  learned: () =>
    tinyModel(tinyLearnedConfig({ dModel: 32, nHeads: 4, vocabSize: V, maxPositions: 128 }), 12, 0.3),
};

for (const backend of ["cpu", "wasm"] as const) {
  for (const [kind, build] of Object.entries(make)) {
    Deno.test(`prefill[${backend}, ${kind}]: chunks of 1, 7 and 64 positions give the whole-prompt generation`, async () => {
      await useBackend(backend);
      const model = build();
      const prompts = [
        Array.from({ length: 41 }, (_, i) => (i * 7 + 3) % V),
        Array.from({ length: 29 }, (_, i) => (i * 5 + 1) % V), // ragged: left-padded by 12
      ];
      const opts = { maxNewTokens: 12, seeds: [1, 2], sampling: { temperature: 0.8 } };
      const whole = await generate(model, prompts, opts).collect();
      const before = tf.memory().numTensors; // after the first run: wasm keeps a transposed head copy
      for (const prefillChunk of [1, 7, 64]) {
        const got = await generate(model, prompts, { ...opts, prefillChunk }).collect();
        for (let b = 0; b < 2; b++) {
          assertEquals(got.rows[b].tokens, whole.rows[b].tokens, `chunk ${prefillChunk}, row ${b}`);
          const d = Math.max(...got.rows[b].logprobs.map((x, i) => Math.abs(x - whole.rows[b].logprobs[i])));
          assert(d < 1e-4, `chunk ${prefillChunk}, row ${b}: log-probabilities differ by ${d}`);
        }
      }
      assertEquals(tf.memory().numTensors, before, "chunked prefill leaked tensors");
      model.dispose();
    });
  }
}

Deno.test("prefillChunkSize: automatic above 256 MiB of scores, explicit values checked", () => {
  assertEquals(prefillChunkSize(1, 12, 1024), 1024);
  assertEquals(prefillChunkSize(16, 12, 968), 128);
  assertEquals(prefillChunkSize(64, 16, 4096), 64, "never below 64");
  assertEquals(prefillChunkSize(16, 12, 968, 300), 300);
  assertEquals(prefillChunkSize(2, 2, 10, 300), 10);
  assertThrows(() => prefillChunkSize(1, 1, 10, 0), Error, "positive integer");
});
