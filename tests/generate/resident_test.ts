/**
 * The resident decode loop (`generate(..., { resident })`): the same tokens, log-probabilities, cosims and
 * finish reasons as the ordinary loop for the same seeds (cpu, wasm, webgpu), one readback per step with up
 * to lag + 1 in flight, stop tokens found late and their extra steps discarded, the options it refuses,
 * and no leaks.
 */
import { tf } from "../../lib/deps.ts";
import { generate, RESIDENT_LAG } from "../../lib/generate/generate.ts";
import type { GenerateOptions } from "../../lib/generate/generate.ts";
import type { Decoder } from "../../lib/models/decoder.ts";
import { tinyModel, tinyRotaryConfig, useBackend } from "../fixtures.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";

const V = 41;
const model = (): Decoder =>
  tinyModel(tinyRotaryConfig({ dModel: 32, nHeads: 4, nKvHeads: 2, vocabSize: V, maxPositions: 48 }), 5, 0.4);
const prompts = [[1, 2, 3, 4, 5], [7, 8, 9]]; // ragged: the second row is left-padded

async function compare(m: Decoder, opts: GenerateOptions, lag: number, tol: number): Promise<void> {
  const want = await generate(m, prompts, opts).collect();
  const got = await generate(m, prompts, { ...opts, resident: { lag } }).collect();
  for (let b = 0; b < prompts.length; b++) {
    const w = want.rows[b], g = got.rows[b];
    assertEquals(g.tokens, w.tokens, `lag ${lag}, row ${b}: tokens`);
    assertEquals(g.finishReason, w.finishReason, `lag ${lag}, row ${b}: finish reason`);
    for (let i = 0; i < w.tokens.length; i++) {
      assert(Math.abs(g.logprobs[i] - w.logprobs[i]) <= tol, `lag ${lag}, row ${b}, t ${i}: logprob`);
      assert(
        i === 0 ? Number.isNaN(g.cosims[i]) : Math.abs(g.cosims[i] - w.cosims[i]) <= tol,
        `lag ${lag}, row ${b}, t ${i}: cosim ${g.cosims[i]} vs ${w.cosims[i]}`,
      );
    }
  }
  assertEquals(got.stats.readbacks, got.stats.steps, "one readback per step");
}

for (const backend of ["cpu", "wasm", "webgpu"] as const) {
  Deno.test(`resident[${backend}]: the ordinary loop's generation at every lag`, async () => {
    await useBackend(backend);
    const m = model();
    // Tokens must match exactly; log-probabilities and cosims to rounding (host and device samplers).
    const tol = backend === "cpu" ? 1e-5 : 1e-4;
    const cases: GenerateOptions[] = [
      { maxNewTokens: 12, seeds: [3, 4], sampling: { temperature: 0 } },
      { maxNewTokens: 12, seeds: [3, 4], sampling: { temperature: 0.9, topP: 0.8 } },
      { maxNewTokens: 10, seed: 9, rowSampling: [{ topK: 5 }, { temperature: 1.2, repetitionPenalty: 1.3 }] },
    ];
    const lags = backend === "webgpu" ? [0, RESIDENT_LAG] : [0, 1, 3, RESIDENT_LAG];
    await generate(m, prompts, { maxNewTokens: 2 }).collect(); // wasm keeps a transposed head copy
    const before = tf.memory().numTensors;
    for (const opts of cases) for (const lag of lags) await compare(m, opts, lag, tol);
    assertEquals(tf.memory().numTensors, before, "the resident loop leaked tensors");
    m.dispose();
  });
}

Deno.test("resident: a stop token found lag steps late; its extra steps are discarded", async () => {
  await useBackend("cpu");
  const m = model();
  const base = { maxNewTokens: 30, seeds: [3, 4], sampling: { temperature: 1 } };
  const free = await generate(m, prompts, base).collect();
  // Stop on row 0's fifth token: row 0 ends there, row 1 ends there too or runs to the end.
  const stop = free.rows[0].tokens[4];
  for (const lag of [0, 2, 6]) await compare(m, { ...base, stopTokens: [stop] }, lag, 1e-5);
  const run = generate(m, prompts, { ...base, stopTokens: [[stop], []], resident: { lag: 6 } });
  const steps: number[] = [];
  for await (const s of run) steps.push(s.rows.length);
  assertEquals(run.trace.rows[0].finishReason, "stop");
  assertEquals(run.trace.rows[1].tokens.length, 30);
  assert(steps.slice(5).every((n) => n === 1), "after its stop, row 0 is in no step");
  m.dispose();
});

Deno.test("resident: the context of the longest prompt ends every row; returnHidden rows match", async () => {
  await useBackend("cpu");
  const m = model(); // 48 positions; the longest prompt has 5
  const opts = { maxNewTokens: 100, seed: 2, returnHidden: true };
  const got = await generate(m, prompts, { ...opts, resident: true }).collect();
  const want = await generate(m, [prompts[0]], { ...opts, maxNewTokens: 44 }).collect();
  assertEquals(got.rows[0].tokens.length, 44);
  assertEquals(got.rows[0].finishReason, "context");
  assertEquals(got.rows[1].finishReason, "context");
  assertEquals(got.rows[0].tokens, want.rows[0].tokens);
  assertEquals(got.rows[0].hiddens![7], want.rows[0].hiddens![7]);
  m.dispose();
});

Deno.test("resident: options that need the host inside a step are refused, with what to drop", async () => {
  await useBackend("cpu");
  const m = model();
  assertThrows(
    () => generate(m, prompts, { maxNewTokens: 2, resident: true, onStep: () => {} }),
    Error,
    "takes no onStep",
  );
  assertThrows(
    () => generate(m, prompts, { maxNewTokens: 2, resident: true, forceTokens: [[1], [2]] }),
    Error,
    "forceTokens",
  );
  assertThrows(() => generate(m, prompts, { maxNewTokens: 2, resident: { lag: -1 } }), RangeError, "lag");
  assertThrows(
    () => generate(m, prompts, { maxNewTokens: 2, resident: { lags: 2 } as unknown as { lag: number } }),
    Error,
    "lags",
  );
  m.dispose();
});
