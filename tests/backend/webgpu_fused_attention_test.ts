/**
 * The fused attention kernel (webgpu) against the stock composed formulation (the math of
 * `causalSelfAttention`) over a grid of batch sizes, grouped heads, query lengths, cached columns, head
 * widths and masks (causal + left padding, which also makes fully masked rows): z within 1e-5 absolute;
 * the analytic gradients dq, dk, dv against tf.grads of the composed version within 1e-5 absolute; a
 * fully masked row gives the mean of v as stock softmax does; the attention layer takes the fused path on
 * webgpu (no pattern) and the stock path with a hook, and on cpu and wasm never the fused one (bit-identical
 * to the hooked stock path); nothing leaks over repeated forward and backward passes. The webgpu tests
 * are skipped where no adapter exists.
 */
import { assert, assertEquals } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import { fusedAttention, fusedAttentionCalls } from "../../lib/backend/webgpu_fused_attention.ts";
import { attentionMaskBias, causalSelfAttention } from "../../lib/nn/attention.ts";
import type { Tensor2D, Tensor3D, Tensor4D } from "../../lib/tensor_types.ts";
import { useBackend } from "../fixtures.ts";

const haveAdapter = await (async () => {
  try {
    return (await navigator.gpu?.requestAdapter()) != null;
  } catch {
    return false;
  }
})();

/** softmax(q·kᵀ·scale + mask)·v with the stock ops, grouped as `causalSelfAttention` groups them. */
function reference(q: Tensor4D, k: Tensor4D, v: Tensor4D, mask?: Tensor4D): Tensor4D {
  return tf.tidy(() => {
    const [b, h, t, hd] = q.shape;
    const [, hkv, l] = k.shape;
    const g = h / hkv;
    let s = tf.reshape(tf.matMul(tf.reshape(q, [b, hkv, g * t, hd]), k, false, true), [b, h, t, l]);
    s = tf.mul(s, 1 / Math.sqrt(hd));
    if (mask) s = tf.add(s, mask);
    const p = tf.softmax(s, -1);
    return tf.reshape(tf.matMul(tf.reshape(p, [b, hkv, g * t, l]), v), [b, h, t, hd]) as Tensor4D;
  });
}

/** The causal mask over `past` cached + `t` new columns, with the first `pad` columns of the last row invalid. */
function causalPaddedMask(b: number, t: number, past: number, pad: number): Tensor4D {
  return tf.tidy(() => {
    const l = past + t;
    const valid = tf.buffer([b, l], "float32");
    for (let r = 0; r < b; r++) for (let c = 0; c < l; c++) valid.set(r === b - 1 && c < pad ? 0 : 1, r, c);
    return attentionMaskBias(valid.toTensor() as Tensor2D, t);
  });
}

function randomQkv(
  [b, h, hkv, t, l, hd]: number[],
  seed: number,
): { q: Tensor4D; k: Tensor4D; v: Tensor4D } {
  return {
    q: tf.randomNormal([b, h, t, hd], 0, 1, "float32", seed) as Tensor4D,
    k: tf.randomNormal([b, hkv, l, hd], 0, 1, "float32", seed + 1) as Tensor4D,
    v: tf.randomNormal([b, hkv, l, hd], 0, 1, "float32", seed + 2) as Tensor4D,
  };
}

/** max |a − b| (read back asynchronously: webgpu has no synchronous reads under Deno). */
async function maxDiffOf(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const m = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))));
  const d = (await m.data())[0];
  m.dispose();
  return d;
}

const TOL = 1e-5;

Deno.test({
  name:
    "fusedAttention[webgpu] equals the stock formulation over B, grouped heads, T, cached columns, hd, masks",
  ignore: !haveAdapter,
  async fn() {
    await useBackend("webgpu");
    const before = tf.memory().numTensors;
    const layouts = [[1, 4, 4], [2, 4, 2], [1, 4, 1], [2, 4, 4], [1, 4, 2], [2, 4, 1]]; // [B, H, Hkv]
    let i = 0, worst = 0;
    for (const hd of [4, 16, 64, 80]) {
      for (const t of [1, 2, 17, 64, 130]) {
        for (const past of [0, 5, 100]) {
          const [b, h, hkv] = layouts[i++ % layouts.length]; // every layout meets every hd, T and L
          const l = t + past;
          const { q, k, v } = randomQkv([b, h, hkv, t, l, hd], i * 3);
          const mask = causalPaddedMask(b, t, past, 3); // padding: fully masked rows where past = 0
          for (const m of [undefined, mask]) {
            const z = fusedAttention(q, k, v, m);
            assert(z !== null, `refused [${b}, ${h}, ${hkv}, ${t}, ${l}, ${hd}]`);
            const ref = reference(q, k, v, m);
            const d = await maxDiffOf(z, ref);
            worst = Math.max(worst, d);
            assert(
              d < TOL,
              `[B ${b}, H ${h}, Hkv ${hkv}, T ${t}, L ${l}, hd ${hd}] masked=${!!m}: max |Δ| ${d}`,
            );
            tf.dispose([z, ref]);
          }
          tf.dispose([q, k, v, mask]);
        }
      }
    }
    console.log(`fused attention: worst max |Δz| ${worst.toExponential(2)} over ${i * 2} cases`);
    assertEquals(tf.memory().numTensors, before, "fusedAttention leaked tensors");
  },
});

Deno.test({
  name: "fusedAttention[webgpu]: the widest heads (hd 256, 130) and odd widths (5, 33) match too",
  ignore: !haveAdapter,
  async fn() {
    await useBackend("webgpu");
    for (
      const [b, h, hkv, t, past, hd] of [[1, 2, 1, 70, 9, 256], [2, 4, 2, 33, 0, 130], [1, 3, 3, 9, 4, 5], [
        1,
        2,
        2,
        40,
        40,
        33,
      ]]
    ) {
      const l = t + past;
      const { q, k, v } = randomQkv([b, h, hkv, t, l, hd], 11);
      const mask = causalPaddedMask(b, t, past, 2);
      const z = fusedAttention(q, k, v, mask)!;
      const ref = reference(q, k, v, mask);
      const d = await maxDiffOf(z, ref);
      assert(d < TOL, `hd ${hd}: max |Δ| ${d}`);
      tf.dispose([q, k, v, mask, z, ref]);
    }
  },
});

Deno.test({
  name: "fusedAttention[webgpu]: a fully masked row gives the mean of v, as stock softmax does",
  ignore: !haveAdapter,
  async fn() {
    await useBackend("webgpu");
    const [b, h, t, l, hd] = [1, 2, 4, 40, 16];
    const { q, k, v } = randomQkv([b, h, h, t, l, hd], 5);
    // Row 1 sees nothing; the others see every column.
    const rowMask = tf.tensor1d([0, -1e9, 0, 0]).reshape([1, 1, t, 1]);
    const mask = tf.add(rowMask, tf.zeros([1, 1, t, l])) as Tensor4D;
    const z = fusedAttention(q, k, v, mask)!;
    const got = await z.array() as number[][][][];
    const ref = await reference(q, k, v, mask).array() as number[][][][];
    const mean = await tf.mean(v, 2).array() as number[][][]; // [B, H, hd]
    for (let hh = 0; hh < h; hh++) {
      for (let j = 0; j < hd; j++) {
        assert(Number.isFinite(got[0][hh][1][j]), "finite");
        assert(Math.abs(got[0][hh][1][j] - mean[0][hh][j]) < TOL, `head ${hh} col ${j}: not the mean of v`);
        assert(
          Math.abs(got[0][hh][1][j] - ref[0][hh][1][j]) < TOL,
          `head ${hh} col ${j}: differs from stock`,
        );
      }
    }
    tf.dispose([q, k, v, rowMask, mask, z]);
  },
});

/** The gradients of Σ w ⊙ f(q, k, v) in q, k and v. */
function grads(
  f: (q: Tensor4D, k: Tensor4D, v: Tensor4D) => Tensor4D,
  q: Tensor4D,
  k: Tensor4D,
  v: Tensor4D,
  w: Tensor4D,
): tf.Tensor[] {
  return tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
    tf.sum(tf.mul(f(a as Tensor4D, b as Tensor4D, c as Tensor4D), w))
  )([q, k, v]);
}

Deno.test({
  name: "fusedAttention[webgpu]: dq, dk, dv equal tf.grads of the stock formulation (grouped heads, masks)",
  ignore: !haveAdapter,
  async fn() {
    await useBackend("webgpu");
    for (
      const [b, h, hkv, t, past, hd, masked] of [[1, 4, 4, 17, 0, 16, 1], [2, 4, 2, 17, 5, 16, 1], [
        1,
        4,
        1,
        64,
        100,
        80,
        1,
      ], [2, 4, 2, 2, 0, 4, 0]]
    ) {
      const l = t + past;
      const { q, k, v } = randomQkv([b, h, hkv, t, l, hd], 21);
      const w = tf.randomNormal([b, h, t, hd], 0, 1, "float32", 9) as Tensor4D;
      const mask = masked ? causalPaddedMask(b, t, past, 3) : undefined;
      const got = grads((a, c, e) => fusedAttention(a, c, e, mask)!, q, k, v, w);
      const want = grads((a, c, e) => reference(a, c, e, mask), q, k, v, w);
      for (const [n, i] of [["dq", 0], ["dk", 1], ["dv", 2]] as const) {
        assertEquals(got[i].shape, want[i].shape);
        const d = await maxDiffOf(got[i], want[i]);
        assert(d < TOL, `[${b}, ${h}, ${hkv}, ${t}, ${l}, ${hd}] ${n}: max |Δ| ${d}`);
      }
      tf.dispose([q, k, v, w, ...got, ...want]);
      mask?.dispose();
    }
  },
});

Deno.test({
  name: "fusedAttention[webgpu]: declines what it cannot do (hd > 256, mismatched shapes, a broadcast mask)",
  ignore: !haveAdapter,
  async fn() {
    await useBackend("webgpu");
    const q = tf.zeros([1, 2, 3, 260]) as Tensor4D, kv = tf.zeros([1, 2, 3, 260]) as Tensor4D;
    assertEquals(fusedAttention(q, kv, kv), null, "hd 260");
    const q8 = tf.zeros([1, 3, 3, 8]) as Tensor4D, kv8 = tf.zeros([1, 2, 3, 8]) as Tensor4D;
    assertEquals(fusedAttention(q8, kv8, kv8), null, "3 heads over 2 kv heads");
    const q4 = tf.zeros([2, 2, 3, 8]) as Tensor4D, kv4 = tf.zeros([2, 2, 3, 8]) as Tensor4D;
    const m = tf.zeros([1, 1, 3, 3]) as Tensor4D;
    assertEquals(fusedAttention(q4, kv4, kv4, m), null, "mask batch 1 of 2");
    tf.dispose([q, kv, q8, kv8, q4, kv4, m]);
  },
});

function layer(d: number, h: number, hkv: number, hd: number, seed: number) {
  const r = (shape: number[], s: number) => tf.randomNormal(shape, 0, 0.3, "float32", seed + s);
  return {
    wQ: r([d, h * hd], 1),
    bQ: r([h * hd], 2),
    wK: r([d, hkv * hd], 3),
    wV: r([d, hkv * hd], 4),
    wO: r([h * hd, d], 5),
  };
}

for (const backend of ["cpu", "wasm", "webgpu"] as const) {
  Deno.test({
    name: `causalSelfAttention[${backend}]: ${
      backend === "webgpu"
        ? "fused without a hook (no pattern), stock with one"
        : "never fused, bit-identical"
    }`,
    ignore: backend === "webgpu" && !haveAdapter,
    async fn() {
      await useBackend(backend);
      const [b, t, d, h, hkv, hd] = [2, 9, 24, 4, 2, 8];
      const w = layer(d, h, hkv, hd, 30);
      const x = tf.randomNormal([b, t, d], 0, 1, "float32", 3) as Tensor3D;
      const maskBias = causalPaddedMask(b, t, 0, 2);
      const o = { nHeads: h, nKvHeads: hkv, headDim: hd, maskBias };
      fusedAttentionCalls(true);
      const plain = causalSelfAttention(x, w, o);
      assertEquals(fusedAttentionCalls(), backend === "webgpu" ? 1 : 0);
      const hooked = causalSelfAttention(x, w, { ...o, hook: (_p, y) => y });
      assertEquals(fusedAttentionCalls(), backend === "webgpu" ? 1 : 0, "a hook needs the stock path");
      assert(hooked.pattern !== undefined);
      const diff = await maxDiffOf(plain.out, hooked.out);
      if (backend === "webgpu") {
        assertEquals(plain.pattern, undefined);
        assert(diff < TOL, `fused and stock layer outputs differ by ${diff}`);
      } else {
        assert(plain.pattern !== undefined);
        assertEquals(Array.from(await plain.out.data()), Array.from(await hooked.out.data()));
      }
      // Dropout at rate 0 changes nothing; at a positive rate it needs the pattern.
      const dropped = causalSelfAttention(x, w, { ...o, dropout: { rate: 0.5, seed: 1 } });
      assert(dropped.pattern !== undefined, "dropout takes the stock path");
      tf.dispose([x, maskBias, ...Object.values(w), plain.out, plain.k, plain.v, plain.pattern]);
      tf.dispose([hooked.out, hooked.k, hooked.v, hooked.pattern!, dropped.out, dropped.k, dropped.v]);
      dropped.pattern?.dispose();
    },
  });
}

Deno.test({
  name:
    "causalSelfAttention[webgpu]: layer gradients through the fused kernel match the stock path; no leaks",
  ignore: !haveAdapter,
  async fn() {
    await useBackend("webgpu");
    const [b, t, d, h, hkv, hd] = [2, 12, 16, 4, 1, 8];
    const w = layer(d, h, hkv, hd, 40);
    const x = tf.randomNormal([b, t, d], 0, 1, "float32", 4) as Tensor3D;
    const maskBias = causalPaddedMask(b, t, 0, 3);
    const o = { nHeads: h, nKvHeads: hkv, headDim: hd, maskBias };
    const vars = [w.wQ, w.wK, w.wV, w.wO];
    const loss = (hook?: (p: string, y: tf.Tensor) => tf.Tensor) => (...ws: tf.Tensor[]) =>
      tf.sum(
        tf.square(
          causalSelfAttention(x, { ...w, wQ: ws[0], wK: ws[1], wV: ws[2], wO: ws[3] }, { ...o, hook }).out,
        ),
      );
    const step = () => {
      const g = tf.grads(loss())(vars);
      tf.dispose(g);
    };
    step(); // warm-up: pipelines, pooled buffers
    const before = tf.memory().numTensors;
    fusedAttentionCalls(true);
    for (let i = 0; i < 3; i++) step();
    assertEquals(fusedAttentionCalls(), 3, "each forward takes the fused kernel");
    assertEquals(tf.memory().numTensors, before, "forward + backward leaked tensors");
    const got = tf.grads(loss())(vars);
    const want = tf.grads(loss((_p, y) => y))(vars);
    for (let i = 0; i < vars.length; i++) {
      const dlt = await maxDiffOf(got[i], want[i]);
      assert(dlt < 1e-4, `weight ${i}: gradient differs by ${dlt}`);
    }
    tf.dispose([x, maskBias, ...Object.values(w), ...got, ...want]);
  },
});

Deno.test("fusedAttention declines on cpu: the caller keeps the stock ops", async () => {
  await useBackend("cpu");
  const q = tf.ones([1, 2, 3, 4]) as Tensor4D, kv = tf.ones([1, 1, 3, 4]) as Tensor4D;
  fusedAttentionCalls(true);
  assertEquals(fusedAttention(q, kv, kv), null);
  assertEquals(fusedAttentionCalls(), 0);
  tf.dispose([q, kv]);
});
