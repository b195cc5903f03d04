import { tf } from "../../lib/deps.ts";
import { AdamW, assignParamGroups, DECAY_MATRICES_ONLY } from "../../lib/train/adamw.ts";
import { clipByGlobalNorm } from "../../lib/train/clip.ts";
import { crossEntropy, summariseEval, tokenLosses } from "../../lib/train/loss.ts";
import { assert, assertAlmostEquals, assertJsonEquals as assertEquals, assertThrows } from "../assert.ts";
import { useBackend } from "../fixtures.ts";

await useBackend("cpu");

/** Scalar AdamW written out by hand (float64), PyTorch's formula. */
function adamwByHand(
  p: number,
  grads: number[],
  lr: number,
  wd: number,
  b1: number,
  b2: number,
  eps: number,
) {
  let m = 0, v = 0;
  grads.forEach((g, i) => {
    const t = i + 1;
    p *= 1 - lr * wd;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    p -= (lr / (1 - b1 ** t)) * m / (Math.sqrt(v) / Math.sqrt(1 - b2 ** t) + eps);
  });
  return p;
}

Deno.test("AdamW matches a hand-computed step, with and without decay", () => {
  const before = tf.memory().numTensors;
  const w = tf.tidy(() => tf.variable(tf.tensor2d([[1, -2]])));
  const b = tf.tidy(() => tf.variable(tf.tensor1d([1])));
  const opt = new AdamW(new Map<string, tf.Variable>([["w", w], ["b", b]]), {
    groups: DECAY_MATRICES_ONLY(0.1),
  });
  const g1 = new Map<string, tf.Tensor>([["w", tf.tensor2d([[0.5, 0.25]])], ["b", tf.tensor1d([0.5])]]);
  opt.step(g1, 0.1);
  // Step 1 by hand: p·(1 − 0.01) − 0.1·sign(g) (m̂/√v̂ = ±1 on the first step): 0.99 − 0.1 = 0.89.
  assertAlmostEquals(w.dataSync()[0], 0.89, 1e-6);
  assertAlmostEquals(w.dataSync()[1], -1.98 - 0.1, 1e-6);
  assertAlmostEquals(b.dataSync()[0], 0.9, 1e-6); // rank 1: not decayed
  const g2 = new Map<string, tf.Tensor>([["w", tf.tensor2d([[-1, 0.25]])], ["b", tf.tensor1d([-1])]]);
  opt.step(g2, 0.1);
  assertAlmostEquals(w.dataSync()[0], adamwByHand(1, [0.5, -1], 0.1, 0.1, 0.9, 0.95, 1e-8), 1e-6);
  assertAlmostEquals(w.dataSync()[0], 0.9174367, 1e-6);
  assertAlmostEquals(b.dataSync()[0], adamwByHand(1, [0.5, -1], 0.1, 0, 0.9, 0.95, 1e-8), 1e-6);
  assertEquals(opt.stepCount, 2);
  assertEquals([...opt.state().moments.keys()].sort(), ["m.b", "m.w", "v.b", "v.w"]);
  for (const g of [...g1.values(), ...g2.values()]) g.dispose();
  opt.dispose();
  w.dispose();
  b.dispose();
  assertEquals(tf.memory().numTensors, before, "tensors leaked");
});

Deno.test("AdamW state round trip continues identically", () => {
  const mk = () => tf.variable(tf.tensor2d([[0.3, -0.7], [1.1, 0.2]]));
  const a = mk(), c = mk();
  const oa = new AdamW(new Map<string, tf.Variable>([["w", a]]));
  const g = (i: number) => new Map<string, tf.Tensor>([["w", tf.tensor2d([[i, -i], [0.5 * i, 1]])]]);
  for (let i = 1; i <= 3; i++) oa.step(g(i), 0.01);
  const oc = new AdamW(new Map<string, tf.Variable>([["w", c]]));
  c.assign(a);
  oc.loadState(oa.state());
  oa.step(g(4), 0.01);
  oc.step(g(4), 0.01);
  assertEquals(Array.from(a.dataSync()), Array.from(c.dataSync()));
  const bad = new AdamW(new Map<string, tf.Variable>([["x", tf.variable(tf.zeros([2]))]]));
  assertThrows(() => bad.loadState(oa.state()), Error, "matches no model parameter");
});

Deno.test("parameter groups by name pattern and rank", () => {
  const params = new Map<string, tf.Variable>([
    ["blocks.0.ln_1.w", tf.variable(tf.zeros([4]))],
    ["blocks.0.attn.W_Q", tf.variable(tf.zeros([4, 4]))],
    ["embed.W_E", tf.variable(tf.zeros([8, 4]))],
    ["blocks.0.attn.b_Q", tf.variable(tf.zeros([4]))],
  ]);
  // PhaseGPT's rule: decay everything whose name lacks bias/norm/embedding markers.
  const g = assignParamGroups(params, [
    { name: "no_decay", match: "embed|\\.b_", weightDecay: 0 },
    { name: "decay", weightDecay: 0.1, lrScale: 2 },
  ]);
  assertEquals(g.get("embed.W_E")!.group, "no_decay");
  assertEquals(g.get("blocks.0.attn.b_Q")!.weightDecay, 0);
  assertEquals(g.get("blocks.0.ln_1.w")!.weightDecay, 0.1);
  assertEquals(g.get("blocks.0.attn.W_Q")!.lrScale, 2);
  const r = assignParamGroups(params, DECAY_MATRICES_ONLY(0.1));
  assertEquals(r.get("embed.W_E")!.weightDecay, 0.1);
  assertEquals(r.get("blocks.0.ln_1.w")!.weightDecay, 0);
  assertThrows(
    () => assignParamGroups(params, [{ minRank: 2, weightDecay: 1 }]),
    Error,
    "matches no parameter-group rule",
  );
  for (const v of params.values()) v.dispose();
});

Deno.test("clipping by global norm scales only when above the limit", () => {
  const grads = new Map<string, tf.Tensor>([["a", tf.tensor1d([3, 0])], ["b", tf.tensor2d([[0, 4]])]]);
  const { grads: c, norm } = clipByGlobalNorm(grads, 1);
  assertAlmostEquals(norm.dataSync()[0], 5, 1e-6);
  assertAlmostEquals(c.get("a")!.dataSync()[0], 0.6, 1e-6);
  assertAlmostEquals(c.get("b")!.dataSync()[1], 0.8, 1e-6);
  const { grads: same } = clipByGlobalNorm(grads, 10);
  assertEquals(Array.from(same.get("a")!.dataSync()), [3, 0]);
  assertThrows(() => clipByGlobalNorm(grads, 0), RangeError);
});

Deno.test("cross-entropy equals -log softmax at the target, stable for large logits", () => {
  const logits = tf.tensor3d([[[1, 2, 3], [1000, 0, -1000]]]);
  const targets = tf.tensor2d([[2, 0]], [1, 2], "int32");
  const l = tokenLosses(logits, targets).arraySync();
  const lse = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
  assertAlmostEquals(l[0], lse - 3, 1e-5);
  assertAlmostEquals(l[1], 0, 1e-5);
  assertAlmostEquals(crossEntropy(logits, targets).dataSync()[0], (lse - 3) / 2, 1e-5);
  // The gradient is softmax − onehot, averaged over positions.
  const g = tf.grad((x: tf.Tensor) => crossEntropy(x, targets))(logits).arraySync() as number[][][];
  const sm = [1, 2, 3].map((z) => Math.exp(z) / Math.exp(lse));
  assertAlmostEquals(g[0][0][2], (sm[2] - 1) / 2, 1e-6);
  assertAlmostEquals(g[0][0][0], sm[0] / 2, 1e-6);
  assertThrows(() => tokenLosses(tf.zeros([1, 3, 4]), targets), Error, "do not match");
});

Deno.test("evaluation summaries under each perplexity definition", () => {
  const s = summariseEval([1, 3], [10, 30], "token_mean");
  assertAlmostEquals(s.loss, 2.5, 1e-12);
  assertAlmostEquals(s.perplexity, Math.exp(2.5), 1e-9);
  assertAlmostEquals(summariseEval([1, 3], [10, 30], "batch_mean").loss, 2, 1e-12);
  const j = summariseEval([1, 3], [10, 30], "batch_mean_exp");
  assertAlmostEquals(j.perplexity, (Math.E + Math.exp(3)) / 2, 1e-9);
  assert(j.perplexity > Math.exp(j.loss), "Jensen");
  assertThrows(() => summariseEval([1], [1], "bogus" as never), Error, "token_mean");
});
