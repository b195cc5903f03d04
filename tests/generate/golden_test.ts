/**
 * Generation on cpu is bit-identical to a recorded trace: tests/generate/golden_cpu_generation.json was
 * written on 2026-12-02 by the code before the preallocated KV cache and the chunked prefill (commit
 * 64739cf), so speed work that changes the cache, attention or sampling paths must keep cpu results exact.
 */
import { generate } from "../../lib/generate/generate.ts";
import { tinyLearnedConfig, tinyModel, tinyRotaryConfig, useBackend } from "../fixtures.ts";
import { assertEquals } from "../assert.ts";

Deno.test("generate (cpu): tokens, log-probabilities and cosims equal the recorded trace bit for bit", async () => {
  await useBackend("cpu");
  const golden = JSON.parse(
    await Deno.readTextFile(new URL("./golden_cpu_generation.json", import.meta.url)),
  ) as Record<string, unknown>;
  const configs = {
    rotary: tinyRotaryConfig({ dModel: 32, nHeads: 4, nKvHeads: 2, vocabSize: 61, maxPositions: 160 }),
    learned: tinyLearnedConfig({ dModel: 32, nHeads: 4, vocabSize: 61, maxPositions: 160 }),
  };
  for (const [kind, cfg] of Object.entries(configs)) {
    const m = tinyModel(cfg, 5, 0.3);
    const t = await generate(m, [[1, 2, 3, 4, 5], [7, 8]], {
      maxNewTokens: 120,
      seeds: [3, 4],
      sampling: { temperature: 0.9, topP: 0.95 },
    }).collect();
    m.dispose();
    const got = t.rows.map((r) => ({ tokens: r.tokens, logprobs: r.logprobs, cosims: r.cosims }));
    // Through JSON, as recorded (NaN cosims become null on both sides).
    assertEquals(JSON.parse(JSON.stringify(got)), golden[kind], `${kind}: cpu generation changed`);
  }
});
