/** The kuramoto mixer inside the decoder: causality, generation state, hooks, metrics, presets, bad input. */
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import {
  causalityCheck,
  createPhaseGPT,
  orderParameter,
  PHASE_A_PRESETS,
  phaseGPTConfig,
} from "../../lib/phasegpt/mod.ts";
import { countParameters } from "../../lib/models/params.ts";
import { modelPreset } from "../../lib/models/presets.ts";
import { createDecoder } from "../../lib/models/scratch.ts";
import { generate } from "../../lib/generate/generate.ts";
import { runWithCache, runWithHooks } from "../../lib/models/hooks.ts";
import type { KVCache } from "../../lib/models/kv_cache.ts";
import type { Decoder } from "../../lib/models/decoder.ts";
import type { ForwardResult } from "../../lib/models/types.ts";
import { useBackend } from "../fixtures.ts";

await useBackend("cpu");

const TINY = { nLayers: 3, dModel: 32, nHeads: 2, maxPositions: 32, vocabSize: 30 };
const tiny = (preset: "faithful" | "corrected" | null, extra = {}): Decoder =>
  createPhaseGPT(
    phaseGPTConfig(
      preset
        ? { phaseLayers: [1], model: TINY, mixer: { preset, numOscillators: 4, steps: 5, ...extra } }
        : { model: TINY },
    ),
    3,
  );

function disposeResult(o: ForwardResult): void {
  tf.dispose([
    o.logits,
    o.hidden,
    o.residual,
    ...Object.values(o.aux ?? {}),
    ...Object.values(o.metrics ?? {}),
  ]);
  for (const a of o.activations?.values() ?? []) a.dispose();
}

Deno.test("parameter counts equal the original's (spec §2.1, §5)", () => {
  assertEquals(countParameters(modelPreset("phasegpt-baseline")), 85_499_136);
  const emb = (65 + 512) * 768;
  assertEquals(countParameters(modelPreset("phasegpt-baseline")) - emb, 85_056_000);
  assertEquals(countParameters(modelPreset("phasegpt-l7-n32-k1")) - emb, 83_285_004);
  // Each phase layer with N = 32 replaces 2,362,368 attention parameters by 591,372.
  const perLayer = (n: number) => 2 * 768 * 12 * n + 12 * n + 768 + 12 * n + 12;
  assertEquals(perLayer(32), 591_372);
  for (const p of PHASE_A_PRESETS) {
    const want = 85_499_136 + p.phaseLayers.length * (perLayer(p.numOscillators ?? 0) - 2_362_368);
    assertEquals(countParameters(modelPreset(p.name)), want, p.name);
  }
  // The corrected readout reads cos and sin: W_out doubles.
  assertEquals(
    countParameters(modelPreset("phasegpt-l7-n32-k1-corrected")) -
      countParameters(modelPreset("phasegpt-l7-n32-k1")),
    384 * 768,
  );
  const c = modelPreset("phasegpt-l7-n32-k1");
  assertEquals([c.mlp, c.normEps, c.dropout, c.positional, c.tieEmbeddings], [
    "gelu",
    1e-5,
    0.1,
    "learned",
    true,
  ]);
  // Scaled presets keep head width 64 and N = 32 at ~60 % depth.
  const mini = modelPreset("phasegpt-mini-l2-n32-k1");
  assertEquals([mini.headDim, mini.nLayers, mini.mixers?.[1].layers], [64, 4, [2]]);
});

Deno.test("causalityCheck: 0 for the baseline and the corrected mixer, > 0 for faithful", () => {
  const models = { baseline: tiny(null), corrected: tiny("corrected"), faithful: tiny("faithful") };
  const before = tf.memory().numTensors;
  assertEquals(causalityCheck(models.baseline).maxEarlierChange, 0);
  assertEquals(causalityCheck(models.corrected).maxEarlierChange, 0);
  const leak = causalityCheck(models.faithful);
  assert(leak.maxEarlierChange > 0 && leak.perPosition[0] > 0, `faithful leak ${leak.maxEarlierChange}`);
  // Causal with the original's divisor T is causal too.
  const causalT = tiny("faithful", { causal: true });
  assertEquals(causalityCheck(causalT).maxEarlierChange, 0);
  assertEquals(tf.memory().numTensors, before + causalT.parameters().size, "no tensor leak");
  for (const m of [...Object.values(models), causalT]) m.dispose();
});

for (const extra of [{}, { readout: "angle" as const, sign: "repulsive" as const }]) {
  Deno.test(`corrected mixer ${JSON.stringify(extra)}: cached decoding with rewind and row selection equals full recompute`, async () => {
    const m = tiny("corrected", extra);
    const before = tf.memory().numTensors;
    const rows = [[1, 5, 9, 2, 6, 3], [4, 8, 1, 7, 2, 2]];
    const full = (ids: number[]) =>
      tf.tidy(() => {
        const o = m.forward(tf.tensor2d([ids], [1, ids.length], "int32"));
        return o.logits.slice([0, ids.length - 1, 0], [1, 1, -1]).dataSync();
      });
    const cache = m.createCache(2) as KVCache;
    const feed = (ids: number[][]) =>
      tf.tidy(() => {
        const o = m.forward(tf.tensor2d(ids, [ids.length, ids[0].length], "int32"), { cache });
        return o.logits.slice([0, ids[0].length - 1, 0], [-1, 1, -1]).dataSync();
      });
    const v = TINY.vocabSize;
    const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) => {
      for (let i = 0; i < b.length; i++) {
        assert(Math.abs(a[i] - b[i]) < 1e-4, `${what} [${i}] ${a[i]} vs ${b[i]}`);
      }
    };
    const pre = feed(rows.map((r) => r.slice(0, 4)));
    close(pre.slice(0, v), full(rows[0].slice(0, 4)), "prefill");
    const step = feed(rows.map((r) => [r[4]]));
    close(step.slice(v), full(rows[1].slice(0, 5)), "decode step");
    cache.truncateRow(1, 3);
    const got = feed([[rows[0][5]], [9]]);
    close(got.slice(0, v), full(rows[0]), "row 0");
    close(got.slice(v), full([...rows[1].slice(0, 3), 9]), "row 1 after rewind");
    cache.selectRows([1]);
    close(feed([[11]]), full([...rows[1].slice(0, 3), 9, 11]), "selected row");
    cache.compact();
    close(feed([[12]]), full([...rows[1].slice(0, 3), 9, 11, 12]), "after compact");
    cache.dispose();
    assertEquals(tf.memory().numTensors, before, "no tensor leak");
    // Through generate(): greedy with a rewind regenerates the same tokens, equal to greedy by recompute.
    const base = await generate(m, [1, 2, 3], { maxNewTokens: 6, sampling: { temperature: 0 } }).collect();
    let rewound = false;
    const again = await generate(m, [1, 2, 3], {
      maxNewTokens: 6,
      sampling: { temperature: 0 },
      onStep: (_s, control) => {
        if (!rewound && control.tokens(0).length === 5) {
          control.rewind(0, 1, 4);
          rewound = true;
        }
      },
    }).collect();
    assert(rewound);
    assertEquals(again.rows[0].tokens, base.rows[0].tokens);
    const greedy: number[] = [1, 2, 3];
    for (let i = 0; i < 6; i++) {
      const l = full(greedy);
      greedy.push(l.indexOf(Math.max(...l)));
    }
    assertEquals(base.rows[0].tokens, greedy.slice(3));
    assertEquals(tf.memory().numTensors, before, "no tensor leak after generate");
    m.dispose();
  });
}

Deno.test("faithful mixer: generation recomputes the dynamics over the cached columns (prefill equals the forward)", async () => {
  const m = tiny("faithful");
  const before = tf.memory().numTensors;
  const ids = [3, 1, 4, 1, 5];
  const full = tf.tidy(() => m.forward(tf.tensor2d([ids], [1, 5], "int32")).logits.dataSync());
  const cache = m.createCache(1);
  const pre = tf.tidy(() => m.forward(tf.tensor2d([ids], [1, 5], "int32"), { cache }).logits.dataSync());
  assertEquals(Array.from(pre), Array.from(full));
  tf.tidy(() => m.forward(tf.tensor2d([[9]], [1, 1], "int32"), { cache }).logits.dataSync());
  assertEquals((cache as KVCache).columns, 6);
  cache.dispose();
  const out = await generate(m, [1, 2, 3], { maxNewTokens: 4, sampling: { temperature: 0 } }).collect();
  assertEquals(out.rows[0].tokens.length, 4);
  assertEquals(tf.memory().numTensors, before, "no tensor leak");
  m.dispose();
});

Deno.test("hooks, R metrics and the coherence aux term (with a gradient into the phase projection)", () => {
  const m = tiny("corrected");
  const x = tf.tensor2d([[1, 2, 3, 4, 5, 6]], [1, 6], "int32");
  const o = m.forward(x, { capture: ["blocks.1.attn.hook_phases_init", "blocks.1.attn.hook_phases"] });
  const phases = o.activations!.get("blocks.1.attn.hook_phases")!;
  assertEquals(phases.shape, [1, 2, 6, 4]);
  assertEquals(o.activations!.get("blocks.1.attn.hook_phases_init")!.shape, [1, 2, 6, 4]);
  assertEquals(Object.keys(o.metrics ?? {}).sort(), [
    "blocks.1.attn.R",
    "blocks.1.attn.R_h0",
    "blocks.1.attn.R_h1",
  ]);
  const r = tf.tidy(() => tf.mean(orderParameter(phases, "layer")).dataSync()[0]);
  assertAlmostEquals(o.metrics!["blocks.1.attn.R"].dataSync()[0], r, 1e-6);
  assertEquals(Object.keys(o.aux ?? {}), ["coherence"]);
  // Editing the phases through the hook changes the output.
  const edited = m.forward(x, { hooks: { "blocks.1.attn.hook_phases": (t) => tf.zerosLike(t) } });
  assert(tf.tidy(() => tf.max(tf.abs(tf.sub(edited.logits, o.logits))).dataSync()[0]) > 0);
  // The regulariser's gradient reaches W_phase (the original's was detached). Target 0 so it is active.
  const m2 = tiny("corrected", { coherence: { target: 0, mode: "center" } });
  const w = m2.parameters().get("blocks.1.attn.W_phase")!;
  const g = tf.grad(() => {
    const out = m2.forward(x, { training: true, dropoutSeed: 1 });
    const term = out.aux!.coherence;
    return term;
  })(w);
  assert(tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]) > 0, "the coherence term has a gradient");
  // runWithCache / runWithHooks free the metrics and aux terms they do not return.
  const before = tf.memory().numTensors;
  const rc = runWithCache(m, x, { names: ["blocks.1.attn.hook_phases"] });
  rc.cache.dispose();
  rc.logits.dispose();
  runWithHooks(m, x, {}).dispose();
  assertEquals(tf.memory().numTensors, before, "no tensor leak through runWithCache / runWithHooks");
  tf.dispose([x, g]);
  disposeResult(o);
  disposeResult(edited);
  m.dispose();
  m2.dispose();
});

Deno.test("phase noise and jitter: on in training (seeded), off in eval", () => {
  const m = tiny("corrected", { phaseNoise: 0.1, freqJitter: 0.05 });
  const x = tf.tensor2d([[1, 2, 3, 4]], [1, 4], "int32");
  const run = (training: boolean) =>
    tf.tidy(() => m.forward(x, { training, dropoutSeed: 5 }).logits.dataSync());
  const evalA = run(false), evalB = run(false);
  assertEquals(Array.from(evalA), Array.from(evalB));
  const plain = tiny("corrected");
  const trainNoisy = run(true);
  const trainPlain = tf.tidy(() => plain.forward(x, { training: true, dropoutSeed: 5 }).logits.dataSync());
  assert(trainNoisy.some((v, i) => v !== trainPlain[i]), "noise changes the training forward");
  const atInit = tiny("corrected", { phaseNoise: 0.1, noiseAt: "init" });
  const initNoisy = tf.tidy(() => atInit.forward(x, { training: true, dropoutSeed: 5 }).logits.dataSync());
  assert(initNoisy.some((v, i) => v !== trainPlain[i] && v !== trainNoisy[i]), "noise on θ⁰ only");
  assertThrows(() => tiny("corrected", { noiseAt: "end" }), Error, "use one of step, init");
  atInit.dispose();
  x.dispose();
  m.dispose();
  plain.dispose();
});

Deno.test("bad input: one message each, naming the allowed values", () => {
  assertThrows(
    () => phaseGPTConfig({ phaseLayers: [12] }),
    Error,
    "phase layer 12 is out of range: use 0..11",
  );
  assertThrows(() => phaseGPTConfig({ phaseLayers: [-1] }), Error, "use 0..11");
  assertThrows(
    () => phaseGPTConfig({ phaseLayers: [7], mixer: { numOscillators: 0 } }),
    Error,
    "numOscillators must be a positive integer",
  );
  assertThrows(
    () => phaseGPTConfig({ phaseLayers: [7], mixer: { steps: -2 } }),
    Error,
    "steps must be a positive integer",
  );
  assertThrows(
    () => phaseGPTConfig({ phaseLayers: [7], mixer: { preset: "exact" as never } }),
    Error,
    "use one of faithful, corrected",
  );
  assertThrows(
    () => phaseGPTConfig({ phaseLayers: [7], mixer: { readout: "cos" as never } }),
    Error,
    "use one of angle, sincos",
  );
  assertThrows(
    () => phaseGPTConfig({ phaseLayers: [7], mixer: { coherence: { mode: "ceil" as never } } }),
    Error,
    "did you mean ceiling",
  );
  assertThrows(
    () => phaseGPTConfig({ phaseLayers: [7], mixer: { numOsc: 32 } as never }),
    Error,
    "did you mean numOscillators",
  );
  assertThrows(() => modelPreset("phasegpt-l7-n32-k1", { nLayers: 4 }), Error, "use 0..3");
  assertThrows(
    () => createDecoder(phaseGPTConfig({ model: TINY, phaseLayers: [1], mixer: { steps: 0 } }), { seed: 1 }),
    Error,
    "steps",
  );
  assertThrows(
    () => phaseGPTConfig({ phaseLayers: [7], mixer: { couplingInit: NaN } }),
    Error,
    "couplingInit must be a finite number, got NaN",
  );
  // A mixer list written by hand (not through phaseGPTConfig) gets the range too.
  assertThrows(
    () =>
      createDecoder({ ...phaseGPTConfig({ model: TINY }), mixers: [{ kind: "kuramoto", layers: [9] }] }, {
        seed: 1,
      }),
    Error,
    '9 is not a layer index of this 3-layer model (use integers 0..2, or "all")',
  );
});

Deno.test("corrected mixer: a ragged (left-padded) batch generates what each prompt generates alone", async () => {
  const m = tiny("corrected");
  const before = tf.memory().numTensors;
  const opts = { maxNewTokens: 5, sampling: { temperature: 0 } };
  const both = await generate(m, [[1, 2, 3, 4, 5], [6, 7]], opts).collect();
  const a = await generate(m, [1, 2, 3, 4, 5], opts).collect();
  const b = await generate(m, [6, 7], opts).collect();
  assertEquals(both.rows[0].tokens, a.rows[0].tokens);
  assertEquals(both.rows[1].tokens, b.rows[0].tokens);
  assertEquals(tf.memory().numTensors, before, "no tensor leak");
  m.dispose();
});
