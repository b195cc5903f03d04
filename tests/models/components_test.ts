/**
 * The decoder's pluggable parts: a factorised (reFlow-style recipe x basis) embedding and a non-attention
 * mixer in one layer are swapped in through `components` without touching the decoder.
 */
import { assert, assertEquals } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import { initBackend } from "../../lib/backend/backend.ts";
import { createDecoder, gpt2NewConfig } from "../../lib/models/scratch.ts";
import { decoderParameterShapes } from "../../lib/models/params.ts";
import {
  type DecoderComponents,
  type EmbeddingComponent,
  type SequenceMixer,
  standardAttention,
} from "../../lib/models/decoder.ts";
import type { DecoderConfig } from "../../lib/models/types.ts";

await initBackend({ backend: "cpu" });
const S = 12; // signals

/** E = R Phi used at both ends: x0 = R[ids] Phi, logits = (h Phi^T) R^T. */
function factorised(_c: DecoderConfig, params: Map<string, tf.Variable>): EmbeddingComponent {
  const r = params.get("embed.W_recipe")!, phi = params.get("embed.W_basis")!;
  return {
    hookNames: ["hook_embed"],
    embed(ids, _positions, fire) {
      const [b, t] = ids.shape;
      let x = tf.reshape(tf.matMul(tf.gather(r, tf.reshape(ids, [-1])), phi), [b, t, -1]) as tf.Tensor3D;
      if (fire) x = fire("hook_embed", undefined, x) as tf.Tensor3D;
      return x;
    },
    unembed(h) {
      const [b, t, d] = h.shape;
      const sig = tf.matMul(tf.reshape(h, [b * t, d]), phi, false, true);
      return tf.reshape(tf.matMul(sig, r, false, true), [b, t, -1]) as tf.Tensor3D;
    },
  };
}

/** Layer 1 mixes by a causal running mean of its input (no q/k/v), keeping the cache contract. */
function meanMixer(c: DecoderConfig, params: Map<string, tf.Variable>, layer: number): SequenceMixer {
  if (layer !== 1) return standardAttention(c, params, layer);
  return {
    hookPoints: [],
    forward(x, _l, ctx) {
      const [b, t, d] = x.shape;
      // Causal running mean as a matmul (tfjs' cumsum gradient is wrong off the last axis).
      const avg = tf.div(
        tf.linalg.bandPart(tf.ones([t, t]), -1, 0),
        tf.add(tf.range(0, t), 1).reshape([t, 1]),
      );
      const out = tf.matMul(tf.tile(avg.reshape([1, t, t]), [b, 1, 1]), x) as tf.Tensor3D;
      const empty = tf.zeros([b, c.nKvHeads, (ctx.past?.k.shape[2] ?? 0) + t, c.headDim]) as tf.Tensor4D;
      return { out: tf.reshape(out, [b, t, d]) as tf.Tensor3D, k: empty, v: empty };
    },
  };
}

const components: DecoderComponents = {
  embedding: factorised,
  mixer: meanMixer,
  shapes: (c) => {
    const s = decoderParameterShapes(c);
    s.delete("embed.W_E");
    s.set("embed.W_recipe", [c.vocabSize, S]);
    s.set("embed.W_basis", [S, c.dModel]);
    for (const k of [...s.keys()]) if (k.startsWith("blocks.1.attn.")) s.delete(k);
    return s;
  },
};

Deno.test("components: factorised embedding + mean mixer build, run, hook and train through the one decoder", () => {
  const config = gpt2NewConfig({ nLayers: 2, dModel: 16, nHeads: 2, vocabSize: 30, maxPositions: 32 });
  const model = createDecoder(config, {
    seed: 9,
    components,
    initFor: (name) => (name === "embed.W_basis" ? { std: 1 / Math.sqrt(S) } : undefined),
  });
  const p = model.parameters();
  assert(p.has("embed.W_recipe") && !p.has("embed.W_E") && !p.has("blocks.1.attn.W_Q"));
  assertEquals(
    model.numParameters,
    [...components.shapes!(config).values()].reduce((a, s) => a + s[0] * (s[1] ?? 1), 0),
  );
  assert(
    !model.hookNames.includes("blocks.1.attn.hook_pattern") &&
      model.hookNames.includes("blocks.0.attn.hook_pattern"),
  );
  const basisStd = tf.tidy(() => Math.sqrt(tf.moments(p.get("embed.W_basis")!).variance.dataSync()[0]));
  assert(Math.abs(basisStd - 1 / Math.sqrt(S)) < 0.08, `basis std ${basisStd}`);

  const x = tf.tensor2d([[1, 4, 9, 16, 25]], [1, 5], "int32");
  const full = model.forward(x);
  assertEquals(full.logits.shape, [1, 5, 30]);
  // Cached decoding works with the custom parts too.
  const cache = model.createCache(1);
  const a = model.forward(tf.slice(x, [0, 0], [1, 4]) as tf.Tensor2D, { cache });
  const step = model.forward(tf.slice(x, [0, 4], [1, 1]) as tf.Tensor2D, { cache });
  // The mean mixer keeps no state across steps, so only the cache contract is checked here.
  assertEquals(step.logits.shape, [1, 1, 30]);
  assertEquals(cache.rowLengths(), [5]);
  // Gradients reach both factors.
  const { grads } = tf.variableGrads(
    () => tf.tidy(() => tf.mean(tf.square(model.forward(x, { training: true }).logits)) as tf.Scalar),
    [p.get("embed.W_recipe")!, p.get("embed.W_basis")!],
  );
  for (const g of Object.values(grads)) assert(g.dataSync().some((v) => v !== 0));
  tf.dispose([x, ...Object.values(grads), full.logits, full.hidden, full.residual]);
  tf.dispose([a.logits, a.hidden, a.residual, step.logits, step.hidden, step.residual]);
  cache.dispose();
  model.dispose();
});
