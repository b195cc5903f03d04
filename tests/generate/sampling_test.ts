import { tf } from "../../lib/deps.ts";
import { sampleLogits, type SamplingParams, TokenSampler } from "../../lib/generate/sampling.ts";
import { Prng } from "../../lib/random/prng.ts";
import { assert, assertClose, assertEquals, assertThrows } from "../assert.ts";
import { referenceSample } from "./sampling_reference.ts";
import { initBackend, requestAdapter } from "../../lib/backend/backend.ts";

// The sampler is checked on every backend it runs on (webgpu where an adapter exists, e.g. llvmpipe).
const haveAdapter = (await requestAdapter()) !== null;
const BACKENDS = ["cpu", "wasm", ...(haveAdapter ? ["webgpu" as const] : [])] as const;

async function run(
  logits: number[][],
  params: SamplingParams | SamplingParams[],
  u: number[],
  history?: number[][],
  forced?: number[],
) {
  const x = tf.tensor2d(logits);
  const h = history ? tf.tensor2d(history) : undefined;
  const out = sampleLogits(x, params, u, h, forced);
  // data(), not dataSync(): the webgpu backend cannot read back synchronously under Deno.
  const res = {
    tokens: Array.from(await out.tokens.data()),
    logprobs: Array.from(await out.logprobs.data()),
    sampled: Array.from(await out.sampledLogprobs.data()),
  };
  tf.dispose([x, h, out.tokens, out.logprobs, out.sampledLogprobs].filter(Boolean) as tf.Tensor[]);
  return res;
}

for (const backend of BACKENDS) {
  Deno.test(`sampling[${backend}]: device sampler equals the JS reference on many random rows and params`, async () => {
    await initBackend({ backend });
    const rng = new Prng(31337);
    const V = 37, B = 8;
    const paramChoices: SamplingParams[] = [
      {},
      { temperature: 0 },
      { temperature: 0.7 },
      { temperature: 1.3, topK: 5 },
      { topP: 0.9 },
      { temperature: 0.8, topK: 10, topP: 0.75 },
      { topK: 1 },
      { topP: 0.3, repetitionPenalty: 1.5 },
      { temperature: 0, repetitionPenalty: 2, bannedTokens: [0, 1, 2] },
      { topK: 3, bannedTokens: [5], repetitionPenalty: 0.8 },
    ];
    let checked = 0;
    for (let trial = 0; trial < 40; trial++) {
      const logits = Array.from({ length: B }, () => Array.from({ length: V }, () => 3 * rng.nextNormal()));
      // A few -Infinity logits (masked vocabulary entries).
      logits[trial % B][trial % V] = -Infinity;
      const params = Array.from({ length: B }, () => paramChoices[rng.nextInt(paramChoices.length)]);
      const u = Array.from({ length: B }, () => Math.fround(rng.nextFloat()));
      const history = logits.map(() => Array.from({ length: V }, () => (rng.nextFloat() < 0.2 ? 1 : 0)));
      const got = await run(logits, params, u, history);
      for (let b = 0; b < B; b++) {
        const seen = new Set(history[b].flatMap((c, i) => (c > 0 ? [i] : [])));
        const ref = referenceSample(logits[b], params[b], u[b], seen);
        assertEquals(got.tokens[b], ref.token, `trial ${trial} row ${b} params ${JSON.stringify(params[b])}`);
        assertClose(got.logprobs[b], ref.logprob, 1e-4, "raw logprob");
        assertClose(got.sampled[b], ref.sampledLogprob, 1e-4, "sampled logprob");
        checked++;
      }
    }
    assertEquals(checked, 320);
  });

  Deno.test(`sampling[${backend}]: edge cases (k=1, p=1, ties, -Infinity, temperature 0, u near 1)`, async () => {
    await initBackend({ backend });
    const logits = [[1, 3, 3, -Infinity, 0]];
    const tokens = async (...a: Parameters<typeof run>) => (await run(...a)).tokens;
    // Greedy picks the first of tied maxima.
    assertEquals(await tokens(logits, { temperature: 0 }, [0.99]), [1]);
    // k=1 keeps both tied tokens (HF keeps ties at the k-th value); u splits them evenly.
    assertEquals(await tokens(logits, { topK: 1 }, [0.2]), [1]);
    const tie = await run(logits, { topK: 1 }, [0.7]);
    assertEquals(tie.tokens, [2]);
    assertClose(tie.sampled, [Math.log(0.5)], 1e-6);
    // p=1 is no filter: sampling from the full softmax; the -Infinity token is never chosen.
    const full = await run(logits, { topP: 1 }, [0.999999]);
    assertEquals(full.tokens, [4]);
    assertClose(full.sampled, full.logprobs, 1e-6);
    // Tiny p still keeps the top token (and its tie).
    assertEquals(await tokens(logits, { topP: 1e-6 }, [0.9]), [2]);
    // u that rounds to 1 in float32 still lands on a kept token.
    assertEquals(await tokens([[0, 0, -Infinity, -Infinity]], {}, [0.99999999]), [1]);
    // A banned maximum moves greedy to the next token; raw logprob stays the unmodified one.
    const banned = await run([[0, 5, 1]], { temperature: 0, bannedTokens: [1] }, [0]);
    assertEquals(banned.tokens, [2]);
    assertClose(banned.logprobs, [1 - Math.log(1 + Math.exp(5) + Math.exp(1))], 1e-5);
    // Repetition penalty: a seen positive logit is divided, a seen negative one multiplied.
    assertEquals(await tokens([[2, 1.5]], { temperature: 0, repetitionPenalty: 2 }, [0], [[1, 0]]), [1]);
    assertEquals(await tokens([[-1, -1.5]], { temperature: 0, repetitionPenalty: 2 }, [0], [[1, 0]]), [1]);
    // Forced tokens replace the choice; their raw logprob is reported, -1 rows sample as usual.
    const forced = await run(
      [[0, 5, 1], [0, 5, 1]],
      [{ temperature: 0 }, { temperature: 0 }],
      [0, 0],
      undefined,
      [
        2,
        -1,
      ],
    );
    assertEquals(forced.tokens, [2, 1]);
    assertClose(forced.logprobs[0], 1 - Math.log(1 + Math.exp(5) + Math.exp(1)), 1e-5);
    assertEquals(forced.sampled, [-Infinity, 0]);
  });

  Deno.test(`sampling[${backend}]: sampled frequencies follow the filtered distribution`, async () => {
    await initBackend({ backend });
    const rng = new Prng(5);
    const logits = [Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)];
    const n = 4000;
    const x = tf.tensor2d(Array.from({ length: n }, () => logits));
    const sampler = new TokenSampler(n, 4, { topP: 0.75 }); // keeps {0.5, 0.3}: renormalised 0.625 / 0.375
    const u = Array.from({ length: n }, () => rng.nextFloat());
    const out = sampler.sample(x, u);
    const toks = await out.tokens.data();
    const c0 = toks.filter((t) => t === 0).length, c1 = toks.filter((t) => t === 1).length;
    assertEquals(c0 + c1, n);
    assert(Math.abs(c0 / n - 0.625) < 0.03, `freq ${c0 / n}`);
    tf.dispose([x, out.tokens, out.logprobs, out.sampledLogprobs]);
    sampler.dispose();
  });
}

Deno.test("sampling: parameter validation and no tensor leaks", async () => {
  await initBackend({ backend: "cpu" });
  assertThrows(() => new TokenSampler(1, 4, { topP: 0 }), RangeError, "topP");
  assertThrows(() => new TokenSampler(1, 4, { temperature: -1 }), RangeError, "temperature");
  assertThrows(() => new TokenSampler(1, 4, { bannedTokens: [4] }), RangeError, "banned token 4");
  assertThrows(() => new TokenSampler(1, 2, { bannedTokens: [0, 1] }), RangeError, "every token");
  assertThrows(() => new TokenSampler(2, 4, [{}]), RangeError, "1 params objects for 2 rows");
  const x = tf.tensor2d([[1, 2, 3, 4, 5], [5, 4, 3, 2, 1]]);
  const h = tf.zeros([2, 5]) as tf.Tensor2D;
  const before = tf.memory().numTensors;
  const sampler = new TokenSampler(2, 5, [{ topK: 2 }, { repetitionPenalty: 1.2 }]);
  assertThrows(() => sampler.sample(x, [0.5, 0.5]), Error, "history");
  for (let i = 0; i < 5; i++) {
    const out = sampler.sample(x, [0.1 * i, 0.5], h);
    tf.dispose([out.tokens, out.logprobs, out.sampledLogprobs]);
    sampler.setParams(0, { topK: 1 + i });
  }
  sampler.dispose();
  assertEquals(tf.memory().numTensors, before);
  tf.dispose([x, h]);
});

for (const backend of ["cpu", "wasm"] as const) {
  Deno.test(`sampling[${backend}]: host path equals the device path (same tokens, seeded, mixed batches)`, async () => {
    await initBackend({ backend });
    const rng = new Prng(2718);
    const choices: SamplingParams[] = [
      {},
      { temperature: 0 },
      { temperature: 0.6 },
      { temperature: 1.2, topK: 40 },
      { topP: 0.9 },
      { topP: 0.5, temperature: 0.8 },
      { topK: 7, topP: 0.6 },
      { topK: 1 },
      { topP: 0.95, repetitionPenalty: 1.3 },
      { temperature: 0, repetitionPenalty: 1.7, bannedTokens: [3, 4] },
      { topK: 5, bannedTokens: [0], repetitionPenalty: 0.9 },
    ];
    let rows = 0;
    for (const V of [50, 1000, 5003]) {
      for (let trial = 0; trial < 12; trial++) {
        const B = 1 + rng.nextInt(4);
        const data = new Float32Array(B * V).map(() => 4 * rng.nextNormal());
        // Exact ties and masked entries.
        data[rng.nextInt(B * V)] = -Infinity;
        data[1] = data[0];
        const hist = new Float32Array(B * V).map(() => (rng.nextFloat() < 0.1 ? 1 : 0));
        const params = Array.from({ length: B }, () => choices[rng.nextInt(choices.length)]);
        const u = Array.from({ length: B }, () => rng.nextFloat());
        const forced = trial % 5 === 0 ? Array.from({ length: B }, (_, b) => (b === 0 ? 2 : -1)) : undefined;
        const x = tf.tensor2d(data, [B, V]), h = tf.tensor2d(hist, [B, V]);
        const get = (path: "host" | "device") => {
          const s = new TokenSampler(B, V, params, { path });
          const o = s.sample(x, u, h, forced);
          const r = {
            tokens: Array.from(o.tokens.dataSync()),
            logprobs: Array.from(o.logprobs.dataSync()),
            sampled: Array.from(o.sampledLogprobs.dataSync()),
          };
          tf.dispose([o.tokens, o.logprobs, o.sampledLogprobs]);
          s.dispose();
          return r;
        };
        const dev = get("device"), host = get("host");
        const what = `V ${V} trial ${trial} params ${JSON.stringify(params)}`;
        assertEquals(host.tokens, dev.tokens, what);
        assertClose(host.logprobs, dev.logprobs, 1e-4, what);
        for (let b = 0; b < B; b++) {
          if (dev.sampled[b] === -Infinity) assertEquals(host.sampled[b], -Infinity, what);
          else assertClose(host.sampled[b], dev.sampled[b], 1e-4, what);
        }
        tf.dispose([x, h]);
        rows += B;
      }
    }
    assert(rows > 50);
  });
}
