import { tf } from "../../lib/deps.ts";
import type { KVCache } from "../../lib/models/kv_cache.ts";
import { generate, generateText, type GenerationStep } from "../../lib/generate/generate.ts";
import { CharTokenizer } from "../../lib/tokenizers/char.ts";
import { tinyLearnedConfig, tinyModel, tinyRotaryConfig, useBackend } from "../fixtures.ts";
import { assert, assertClose, assertEquals, assertRejects, assertThrows } from "../assert.ts";

await useBackend("cpu");

const V = 61;
// A small rotary/RMSNorm/SwiGLU model and a learned-position/LayerNorm one, with weights large enough
// that the next-token distributions are far from uniform.
const rotary = tinyModel(
  tinyRotaryConfig({ dModel: 32, nHeads: 4, nKvHeads: 2, vocabSize: V, maxPositions: 96, dMlp: 64 }),
  11,
  0.3,
);
const learned = tinyModel(
  tinyLearnedConfig({ dModel: 32, nHeads: 4, vocabSize: V, maxPositions: 96 }),
  12,
  0.3,
);
const models = { rotary, learned };

Deno.test("generate: seeded runs are deterministic and different seeds differ", async () => {
  for (const model of Object.values(models)) {
    const a = await generate(model, [1, 2, 3], { maxNewTokens: 20, seed: 5, sampling: { topP: 0.95 } })
      .collect();
    const b = await generate(model, [1, 2, 3], { maxNewTokens: 20, seed: 5, sampling: { topP: 0.95 } })
      .collect();
    const c = await generate(model, [1, 2, 3], { maxNewTokens: 20, seed: 6, sampling: { topP: 0.95 } })
      .collect();
    assertEquals(a.rows[0].tokens, b.rows[0].tokens);
    assertEquals(a.rows[0].cosims, b.rows[0].cosims);
    assertEquals(a.rows[0].tokens.length, 20);
    assert(a.rows[0].tokens.join() !== c.rows[0].tokens.join(), "seed 6 should give another sequence");
    assert(Number.isNaN(a.rows[0].cosims[0]) && a.rows[0].cosims.slice(1).every(Number.isFinite));
    assertEquals(a.rows[0].finishReason, "length");
  }
});

Deno.test("generate: a batch of N rows equals N single runs with the same seeds", async () => {
  const seeds = [3, 4, 5, 6];
  const prompts = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [1, 2, 3, 4]];
  const sampling = { temperature: 0.9, topK: 20 };
  const batch = await generate(rotary, prompts, { maxNewTokens: 12, seeds, sampling, returnHidden: true })
    .collect();
  for (let b = 0; b < 4; b++) {
    const single = await generate(rotary, [prompts[b]], { maxNewTokens: 12, seeds: [seeds[b]], sampling })
      .collect();
    assertEquals(batch.rows[b].tokens, single.rows[0].tokens, `row ${b}`);
    assertClose(batch.rows[b].cosims, single.rows[0].cosims, 1e-5, `row ${b} cosims`);
    assertClose(batch.rows[b].logprobs, single.rows[0].logprobs, 1e-4, `row ${b} logprobs`);
  }
  // One prompt with several seeds makes one row per seed.
  const fan = await generate(rotary, prompts[0], { maxNewTokens: 12, seeds, sampling }).collect();
  assertEquals(fan.rows.length, 4);
  assertEquals(fan.rows[0].tokens, batch.rows[0].tokens);
  assertEquals(fan.rows[3].tokens, batch.rows[3].tokens);
});

Deno.test("generate: ragged prompts are left-padded and match unpadded single runs", async () => {
  const prompts = [[7], [1, 2, 3, 4, 5], [8, 9]];
  for (const model of Object.values(models)) {
    const batch = await generate(model, prompts, { maxNewTokens: 10, sampling: { temperature: 0 } })
      .collect();
    for (let b = 0; b < prompts.length; b++) {
      const single = await generate(model, [prompts[b]], { maxNewTokens: 10, sampling: { temperature: 0 } })
        .collect();
      assertEquals(batch.rows[b].tokens, single.rows[0].tokens);
      assertClose(batch.rows[b].cosims, single.rows[0].cosims, 1e-4);
    }
  }
});

Deno.test("generate: cosim and hidden states match a full forward of the final sequence", async () => {
  for (const source of ["postNorm", "preNorm"] as const) {
    const trace = await generate(learned, [4, 8, 15], {
      maxNewTokens: 9,
      seed: 2,
      returnHidden: true,
      hiddenSource: source,
    }).collect();
    const row = trace.rows[0];
    const seq = [...row.prompt, ...row.tokens];
    const ids = tf.tensor2d([seq], [1, seq.length], "int32");
    const full = learned.forward(ids);
    const h = (source === "postNorm" ? full.hidden : full.residual).arraySync()[0];
    tf.dispose([ids, full.logits, full.hidden, full.residual]);
    const cos = (a: number[], b: number[]) => {
      let d = 0, na = 0, nb = 0;
      for (let i = 0; i < a.length; i++) (d += a[i] * b[i]), (na += a[i] * a[i]), (nb += b[i] * b[i]);
      return d / Math.sqrt(na * nb);
    };
    const n = row.prompt.length;
    for (let t = 0; t < row.tokens.length; t++) {
      // h_t sits at position n - 1 + t: the position whose logits sampled y_t.
      assertClose(row.hiddens![t], h[n - 1 + t], 1e-4, `${source} hidden t=${t}`);
      if (t > 0) assertClose(row.cosims[t], cos(h[n - 1 + t], h[n - 2 + t]), 1e-5, `${source} cosim t=${t}`);
    }
  }
});

Deno.test("generate: exactly one device readback per step", async () => {
  const proto = tf.Tensor.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const original = { data: proto.data, dataSync: proto.dataSync };
  let calls = 0;
  proto.data = function (this: unknown, ...a: unknown[]) {
    calls++;
    return original.data.apply(this, a);
  };
  proto.dataSync = function (this: unknown, ...a: unknown[]) {
    calls++;
    return original.dataSync.apply(this, a);
  };
  try {
    const trace = await generate(rotary, [[1, 2], [3, 4]], {
      maxNewTokens: 15,
      seeds: [1, 2],
      sampling: { topP: 0.9, repetitionPenalty: 1.3 },
      probes: [{ name: "hnorm", width: 1, compute: (ctx) => ctx.hidden.norm("euclidean", 1, true) }],
      returnHidden: true,
    }).collect();
    assertEquals(trace.stats.steps, 15);
    assertEquals(trace.stats.readbacks, 15);
    assertEquals(calls, 15);
  } finally {
    proto.data = original.data;
    proto.dataSync = original.dataSync;
  }
});

Deno.test("generate: host sampling (no probes) keeps one readback per step and the device path's tokens", async () => {
  const proto = tf.Tensor.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const original = { data: proto.data, dataSync: proto.dataSync };
  let calls = 0;
  const opts = { maxNewTokens: 12, seeds: [4, 5], sampling: { topP: 0.8, repetitionPenalty: 1.2 } };
  // A no-op probe forces the device sampler; its tokens must equal the host path's.
  const viaDevice = await generate(rotary, [[1, 2], [3, 4]], {
    ...opts,
    probes: [{ name: "z", width: 1, compute: (ctx) => tf.zeros([ctx.batchSize, 1]) }],
  }).collect();
  proto.data = function (this: unknown, ...a: unknown[]) {
    calls++;
    return original.data.apply(this, a);
  };
  proto.dataSync = function (this: unknown, ...a: unknown[]) {
    calls++;
    return original.dataSync.apply(this, a);
  };
  try {
    const trace = await generate(rotary, [[1, 2], [3, 4]], { ...opts, returnHidden: true }).collect();
    assertEquals(trace.stats.readbacks, 12);
    assertEquals(calls, 12);
    assertEquals(trace.rows.map((r) => r.tokens), viaDevice.rows.map((r) => r.tokens));
  } finally {
    proto.data = original.data;
    proto.dataSync = original.dataSync;
  }
});

Deno.test("generate: no tensor leak across a 100-step generation with rewinds and probes", async () => {
  const run = () =>
    generate(rotary, [[1, 2, 3], [4, 5, 6]], {
      maxNewTokens: 50,
      seeds: [1, 2],
      sampling: { topP: 0.9, repetitionPenalty: 1.2, bannedTokens: [0] },
      maxSteps: 100,
      probes: [{
        name: "attn",
        width: 1,
        capture: ["blocks.1.hook_resid_post"],
        compute: (ctx) => {
          const a = ctx.activations.get("blocks.1.hook_resid_post")!;
          const [b, t, d] = a.shape;
          return a.slice([0, t - 1, 0], [b, 1, d]).reshape([b, d]).mean(1, true);
        },
      }],
      onStep: (step, control) => {
        // Rewind row 1 by 8 tokens every 10 steps, so it never reaches 50 and maxSteps ends the run.
        if (step.step % 10 === 9) control.rewind(1, Math.max(0, control.tokens(1).length - 8), step.step);
      },
    }).collect();
  await run(); // warm-up (kernels, caches)
  const before = tf.memory().numTensors;
  const trace = await run();
  assertEquals(trace.stats.steps, 100);
  assertEquals(tf.memory().numTensors, before);
  // Breaking out of the loop early also frees everything.
  for await (const step of generate(rotary, [1, 2, 3], { maxNewTokens: 30 })) if (step.step === 3) break;
  assertEquals(tf.memory().numTensors, before);
});

Deno.test("generate: rewind keeps the prefix, crops the cache to a fresh prefill, and greedy regenerates the same", async () => {
  for (
    const [model, pipeline] of [[rotary, false], [learned, false], [rotary, true], [learned, true]] as const
  ) {
    const prompt = [3, 1, 4, 1, 5];
    const base = await generate(model, prompt, { maxNewTokens: 16, sampling: { temperature: 0 } }).collect();
    let rewound = false;
    let checked = false;
    const steps: GenerationStep[] = [];
    const trace = await generate(model, prompt, {
      maxNewTokens: 16,
      sampling: { temperature: 0 },
      pipeline,
      onStep: (step, control) => {
        steps.push(step);
        const row = step.rows[0];
        if (!row) return; // with pipelining, the step after the rewind has no row (it sits out)
        if (!rewound && row.t === 11) {
          control.rewind(0, 6, 1234);
          assertEquals(control.tokens(0), base.rows[0].tokens.slice(0, 6));
          rewound = true;
        } else if (rewound && !checked && row.afterRewind) {
          assertEquals(row.t, 6);
          // The cache now holds the prompt and y_0..y_5 (plus y_6 when the next forward is already
          // queued): compare with a fresh prefill of that prefix.
          const prefix = [...prompt, ...control.tokens(0).slice(0, 6)];
          const fresh = model.createCache(1) as KVCache;
          const ids = tf.tensor2d([prefix], [1, prefix.length], "int32");
          const out = model.forward(ids, { cache: fresh });
          tf.dispose([ids, out.logits, out.hidden, out.residual]);
          const got = (control.cache as KVCache).snapshotRow(0), want = fresh.snapshotRow(0);
          assertEquals((control.cache as KVCache).rowLengths()[0], prefix.length + (pipeline ? 1 : 0));
          for (let l = 0; l < got.length; l++) {
            const [h, , d] = want[l].k.shape;
            const head = (x: tf.Tensor3D) => x.slice([0, 0, 0], [h, prefix.length, d]).dataSync();
            assertClose(head(got[l].k), want[l].k.dataSync(), 1e-5, `layer ${l} keys`);
            assertClose(head(got[l].v), want[l].v.dataSync(), 1e-5, `layer ${l} values`);
          }
          tf.dispose(got.flatMap((s) => [s.k, s.v]).concat(want.flatMap((s) => [s.k, s.v])));
          fresh.dispose();
          checked = true;
        }
      },
    }).collect();
    assert(checked);
    const row = trace.rows[0];
    assertEquals(row.tokens, base.rows[0].tokens);
    assertClose(row.cosims, base.rows[0].cosims, 1e-5);
    assertEquals(row.rewinds, [{ step: 12, from: 12, to: 6, seed: 1234 }]);
    assertEquals(row.seed, 1234);
    // 16 kept tokens + 6 regenerated, plus one step sat out when the next forward was already queued.
    assertEquals(trace.stats.steps, 16 + 6 + (pipeline ? 1 : 0));
  }
});

Deno.test("generate: rewinding one row leaves the other rows' tokens untouched", async () => {
  for (const pipeline of [true, false]) {
    const opts = { maxNewTokens: 14, seeds: [21, 22, 23], sampling: { topP: 0.9 }, pipeline };
    const prompts = [[1, 2], [3, 4], [5, 6]];
    const base = await generate(rotary, prompts, opts).collect();
    const trace = await generate(rotary, prompts, {
      ...opts,
      onStep: (step, control) => {
        if (step.step === 8) control.rewind(1, 2, 777);
        if (step.step === 10) control.rewind(1, 0, 778);
      },
    }).collect();
    assertEquals(trace.rows[0].tokens, base.rows[0].tokens);
    assertEquals(trace.rows[2].tokens, base.rows[2].tokens);
    assertEquals(trace.rows[1].tokens.length, 14);
    // Row 1 restarted from index 0 with seed 778: equal to a fresh run seeded 778.
    const fresh = await generate(rotary, [prompts[1]], { ...opts, seeds: [778] }).collect();
    assertEquals(trace.rows[1].tokens, fresh.rows[0].tokens);
    assertEquals(trace.rows[1].rewinds.map((r) => r.to), [2, 0]);
  }
});

Deno.test("generate: stop tokens, stop(), sampling changes, forced tokens and the step cap", async () => {
  const greedy = await generate(rotary, [1, 2, 3], { maxNewTokens: 10, sampling: { temperature: 0 } })
    .collect();
  const stopAt = greedy.rows[0].tokens[4];
  const firstIdx = greedy.rows[0].tokens.indexOf(stopAt);
  const stopped = await generate(rotary, [1, 2, 3], {
    maxNewTokens: 10,
    sampling: { temperature: 0 },
    stopTokens: [stopAt],
  }).collect();
  assertEquals(stopped.rows[0].tokens, greedy.rows[0].tokens.slice(0, firstIdx + 1));
  assertEquals(stopped.rows[0].finishReason, "stop");

  const two = await generate(rotary, [[1, 2], [3, 4]], {
    maxNewTokens: 10,
    onStep: (step, control) => {
      if (step.step === 2) control.stop(0);
      if (step.step === 4) control.setSampling(1, { temperature: 0 });
    },
  }).collect();
  assertEquals(two.rows[0].tokens.length, 3);
  assertEquals(two.rows[0].finishReason, "stopped");
  assertEquals(two.rows[1].tokens.length, 10);
  assert(two.rows[1].sampledLogprobs.slice(5).every((x) => x === 0), "greedy from step 5 on");

  const forced = await generate(rotary, [1, 2, 3], { maxNewTokens: 6, forceTokens: [[9, 8, 7]] }).collect();
  assertEquals(forced.rows[0].tokens.slice(0, 3), [9, 8, 7]);

  const capped = await generate(rotary, [1, 2, 3], {
    maxNewTokens: 10,
    maxSteps: 7,
    onStep: (step, control) => {
      if (step.rows.length) control.rewind(0, Math.max(0, step.rows[0].t - 1));
    },
  }).collect();
  assertEquals(capped.stats.steps, 7);
  assertEquals(capped.rows[0].finishReason, "maxSteps");
});

Deno.test("generate: probes see captured activations and come back per row", async () => {
  const trace = await generate(learned, [[1, 2, 3], [4, 5, 6]], {
    maxNewTokens: 5,
    seeds: [1, 2],
    returnHidden: true,
    probes: [
      { name: "norm", width: 1, compute: (ctx) => ctx.hidden.norm("euclidean", 1, true) },
      {
        name: "resid0",
        width: 2,
        capture: ["blocks.0.hook_resid_post"],
        compute: (ctx) => {
          const a = ctx.activations.get("blocks.0.hook_resid_post")!;
          const [b, t] = a.shape;
          return a.slice([0, t - 1, 0], [b, 1, 2]).reshape([b, 2]);
        },
      },
    ],
  }).collect();
  for (const row of trace.rows) {
    assertEquals(row.probes.norm.length, 5);
    assertEquals(row.probes.resid0[0].length, 2);
    row.hiddens!.forEach((h, t) => assertClose(row.probes.norm[t][0], Math.hypot(...h), 1e-4));
  }
  await assertRejects(
    () =>
      generate(learned, [1], {
        maxNewTokens: 2,
        probes: [{ name: "bad", width: 3, compute: (c) => c.hidden }],
      }).collect(),
    Error,
    "expected [1, 3]",
  );
});

Deno.test("generate: bad input gives clear errors", () => {
  assertThrows(() => generate(rotary, [1, V], { maxNewTokens: 3 }), RangeError, "outside the vocabulary");
  assertThrows(() => generate(rotary, [[]], { maxNewTokens: 3 }), RangeError, "empty");
  assertThrows(() => generate(rotary, [1], { maxNewTokens: 0 }), RangeError, "maxNewTokens");
  assertThrows(
    () => generate(rotary, [[1], [2]], { maxNewTokens: 3, seeds: [1] }),
    RangeError,
    "1 seeds for 2 rows",
  );
  assertThrows(() => generate(rotary, [1], { maxNewTokens: 3, sampling: { topP: 2 } }), RangeError, "topP");
});

Deno.test("generateText: encodes, stops at EOS-less max length, decodes; trace renders", async () => {
  // 39 characters for a 61-token model: ids past the tokenizer's vocabulary are banned automatically.
  const tok = CharTokenizer.fromCorpus("abcdefghijklmnopqrstuvwxyz .,;:!?'-\n");
  assert(tok.vocabSize < V);
  const res = await generateText(learned, tok, "hello", { maxNewTokens: 12, seed: 4 });
  assertEquals(res.tokens.length, 12);
  assert(res.tokens.every((id) => id < tok.vocabSize));
  assertEquals(res.text, tok.decode(res.tokens));
  const jupyter = res.trace as unknown as Record<symbol, () => Record<string, string>>;
  const display = jupyter[Symbol.for("Jupyter.display")]();
  assert(display["text/html"].includes("<table>") && display["text/html"].includes("<svg"));
  assert(display["text/plain"].includes("row 0: 12 tokens (length)"));
  JSON.stringify(res.trace);
});

Deno.test("generate: pipelined and sequential decoding agree; rows stop at the context limit", async () => {
  // Callbacks that rewind (twice for row 0), reseed without dropping (row 1), rewind twice in one step
  // (row 2) and stop a row. Decisions depend on kept lengths only, so both modes take the same ones.
  const run = (pipeline: boolean) => {
    const done = [0, 0, 0];
    return generate(rotary, [[1, 2], [3, 4], [5, 6]], {
      maxNewTokens: 12,
      seeds: [1, 2, 3],
      sampling: { topK: 10 },
      pipeline,
      onStep: (_step, control) => {
        const n = (row: number) => control.tokens(row).length;
        if (n(0) === 6 && done[0] < 2) control.rewind(0, 3, 100 + done[0]++);
        if (n(1) === 9 && done[1]++ === 0) control.rewind(1, 9, 555);
        if (n(2) === 5 && done[2]++ === 0) {
          control.rewind(2, 4, 7);
          control.rewind(2, 1, 8);
        }
        if (n(1) === 11) control.stop(1);
      },
    }).collect();
  };
  const piped = await run(true), seq = await run(false);
  for (let b = 0; b < 3; b++) {
    assertEquals(piped.rows[b].tokens, seq.rows[b].tokens);
    assertEquals(piped.rows[b].cosims, seq.rows[b].cosims);
    assertEquals(piped.rows[b].finishReason, seq.rows[b].finishReason);
    assertEquals(
      piped.rows[b].rewinds.map((r) => [r.to, r.seed]),
      seq.rows[b].rewinds.map((r) => [r.to, r.seed]),
    );
  }
  assertEquals(piped.rows[0].rewinds.length, 2);
  assertEquals(piped.rows[1].finishReason, "stopped");
  assertEquals(piped.rows[2].tokens.length, 12);
  // maxPositions is 96: a 90-token prompt can feed positions 90..95, so it yields 7 tokens.
  const long = Array.from({ length: 90 }, (_, i) => (i * 7) % V);
  for (const pipeline of [true, false]) {
    const trace = await generate(rotary, [long, [1, 2]], { maxNewTokens: 40, seeds: [5, 6], pipeline })
      .collect();
    assertEquals(trace.rows[0].tokens.length, 7);
    assertEquals(trace.rows[0].finishReason, "context");
    // The short row runs on alone (its finished neighbour is cropped instead of overflowing).
    const alone = await generate(rotary, [[1, 2]], { maxNewTokens: 40, seeds: [6], pipeline }).collect();
    assertEquals(trace.rows[1].tokens, alone.rows[0].tokens);
    assertEquals(trace.rows[1].finishReason, "length");
  }
});

Deno.test("generate: hooks run in every forward and steer the output", async () => {
  let calls = 0;
  const steer = tf.keep(tf.fill([1, 1, 32], 0.5));
  const hooks = {
    "blocks.0.hook_resid_post": (x: tf.Tensor) => {
      calls++;
      return x.add(steer);
    },
  };
  for (const pipeline of [true, false]) {
    calls = 0;
    const plain = await generate(rotary, [1, 2, 3], {
      maxNewTokens: 10,
      sampling: { temperature: 0 },
      pipeline,
    })
      .collect();
    const steered = await generate(rotary, [1, 2, 3], {
      maxNewTokens: 10,
      sampling: { temperature: 0 },
      hooks,
      pipeline,
    }).collect();
    // The prefill plus one forward per later step: no forward is wasted past the last step.
    assertEquals(calls, steered.stats.steps);
    assert(
      plain.rows[0].tokens.join() !== steered.rows[0].tokens.join(),
      "the hook should change the output",
    );
  }
  steer.dispose();
});

Deno.test("generate: repetition penalty with rewinds gives the same tokens pipelined and sequential", async () => {
  const run = (pipeline: boolean, seed: number) => {
    let done = false;
    return generate(rotary, [[1, 2, 3], [4, 5, 6]], {
      maxNewTokens: 16,
      seeds: [seed, seed + 1],
      sampling: { temperature: 1.5, repetitionPenalty: 3 },
      pipeline,
      onStep: (_step, control) => {
        if (!done && control.tokens(1).length === 10) {
          control.rewind(1, 3, seed + 2);
          done = true;
        }
      },
    }).collect();
  };
  for (let seed = 0; seed < 24; seed += 3) {
    const a = await run(true, seed), b = await run(false, seed);
    assertEquals(a.rows.map((r) => r.tokens), b.rows.map((r) => r.tokens), `seed ${seed}`);
  }
});
