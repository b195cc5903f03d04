/** generate()'s options and prompts: unknown keys, misplaced sampling keys, strings and typed arrays. */
import { generate, generateText } from "../../lib/generate/generate.ts";
import { CharTokenizer } from "../../lib/tokenizers/char.ts";
import { tinyModel, tinyRotaryConfig, useBackend } from "../fixtures.ts";
import { assertEquals, assertRejects, assertThrows } from "../assert.ts";

await useBackend("cpu");
const model = tinyModel(tinyRotaryConfig({ vocabSize: 30 }), 3);

Deno.test("generate: unknown option keys are refused with a did-you-mean", () => {
  assertThrows(
    () => generate(model, [1, 2], { maxNewTokens: 2, sampling: { temp: 0 } as never }),
    Error,
    "generate: sampling: unknown option 'temp' (did you mean temperature",
  );
  assertThrows(
    () => generate(model, [1, 2], { maxNewTokens: 2, temperature: 0 } as never),
    Error,
    "'temperature' is a sampling parameter: pass it as sampling: { temperature: ... }",
  );
  assertThrows(
    () => generate(model, [1, 2], { maxNewTokens: 2, maxNewToken: 3 } as never),
    Error,
    "did you mean maxNewTokens",
  );
  assertThrows(
    () => generate(model, [1, 2], { maxNewTokens: 2, rowSampling: [{ topk: 3 } as never] }),
    Error,
    "did you mean topK",
  );
});

Deno.test("generate: a string prompt is refused with what to do; typed arrays are accepted", async () => {
  assertThrows(() => generate(model, "hello" as never, { maxNewTokens: 2 }), TypeError, "generateText");
  const plain = await generate(model, [1, 2, 3], { maxNewTokens: 4, seed: 5 }).collect();
  const typed = await generate(model, Int32Array.of(1, 2, 3), { maxNewTokens: 4, seed: 5 }).collect();
  const rows = await generate(model, [Uint16Array.of(1, 2, 3)], { maxNewTokens: 4, seed: 5 }).collect();
  assertEquals(typed.rows[0].tokens, plain.rows[0].tokens);
  assertEquals(rows.rows[0].tokens, plain.rows[0].tokens);
});

Deno.test("generateText: options are checked too, and its own options are not passed on", async () => {
  const tok = CharTokenizer.fromCorpus("abcdefghij");
  const m = tinyModel(tinyRotaryConfig({ vocabSize: tok.vocabSize }), 4);
  const r = await generateText(m, tok, "abc", {
    maxNewTokens: 3,
    keepSpecialTokens: true,
    addSpecialTokens: false,
  });
  assertEquals(r.tokens.length <= 3, true);
  await assertRejects(
    () => generateText(m, tok, "abc", { maxNewTokens: 3, sampling: { temprature: 1 } as never }),
    Error,
    "did you mean temperature",
  );
  m.dispose();
});

Deno.test("other public options objects refuse unknown keys with a did-you-mean", async () => {
  const { initBackend } = await import("../../lib/backend/backend.ts");
  const { createDecoder } = await import("../../lib/models/scratch.ts");
  const { trainFromConfig } = await import("../../lib/train/run.ts");
  const { runRecyncExperiment } = await import("../../lib/recync/harness.ts");
  await assertRejects(() => initBackend({ backnd: "cpu" } as never), Error, "did you mean backend");
  await assertRejects(
    () => initBackend({ backend: "gpu" as never }),
    Error,
    "use one of auto, webgpu, wasm, cpu",
  );
  assertThrows(
    () => createDecoder(tinyRotaryConfig(), { seed: 1, sd: 0.1 } as never),
    Error,
    "createDecoder",
  );
  assertThrows(() => model.forward([[1, 2]], { lastonly: true } as never), Error, "did you mean lastOnly");
  await assertRejects(
    () => trainFromConfig({ config: {} as never, outDir: "/nonexistent", step: 3 } as never),
    Error,
    "did you mean steps",
  );
  await assertRejects(
    () => runRecyncExperiment({ out: "x", seed: 1 } as never),
    Error,
    "runRecyncExperiment: unknown option 'seed' (did you mean seeds",
  );
});
