import { tf } from "../../lib/deps.ts";
import { initBackend } from "../../lib/backend/backend.ts";
import { geluTanh } from "../../lib/nn/mlp.ts";
import { RotaryTable } from "../../lib/nn/rotary.ts";
import { assert, maxDiff } from "../assert.ts";

/** The previous formulation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
function geluTanhViaTanh(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.square(x), x), 0.044715)), Math.sqrt(2 / Math.PI));
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
  });
}

/** The previous RoPE: split into halves and concatenate them swapped. */
function rotateViaConcat(rope: RotaryTable, x: tf.Tensor4D, ang: { cos: tf.Tensor4D; sin: tf.Tensor4D }) {
  return tf.tidy(() => {
    const rd = rope.rotaryDim;
    const partial = rd < rope.headDim;
    const xr = partial ? tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, rd]) : x;
    const [x1, x2] = tf.split(xr, 2, 3);
    const out = tf.add(tf.mul(xr, ang.cos), tf.mul(tf.concat([x2, x1], 3), ang.sin));
    return partial ? tf.concat([out, tf.slice(x, [0, 0, 0, rd], [-1, -1, -1, -1])], 3) : out;
  });
}

for (const backend of ["cpu", "wasm"] as const) {
  Deno.test(`nn[${backend}]: GELU-tanh through the sigmoid identity equals the tanh form to 1e-6`, async () => {
    await initBackend({ backend });
    const x = tf.linspace(-12, 12, 4801);
    const a = geluTanh(x), b = geluTanhViaTanh(x);
    const d = maxDiff(a.dataSync(), b.dataSync());
    assert(d <= 1e-6, `max |diff| ${d}`);
    const ga = tf.grad((t: tf.Tensor) => geluTanh(t).sum())(x);
    const gb = tf.grad((t: tf.Tensor) => geluTanhViaTanh(t).sum())(x);
    const dg = maxDiff(ga.dataSync(), gb.dataSync());
    assert(dg <= 1e-5, `gradient max |diff| ${dg}`);
    tf.dispose([x, a, b, ga, gb]);
  });

  Deno.test(`nn[${backend}]: RoPE (split + concat kept: the reverse rewrite measured slower) equals the rotate_half form`, async () => {
    await initBackend({ backend });
    for (const [headDim, rotaryDim] of [[16, 16], [16, 8], [12, 4]]) {
      const rope = new RotaryTable({ headDim, rotaryDim, theta: 10000, maxPositions: 32 });
      const x = tf.randomNormal([2, 5, 3, headDim], 0, 1, "float32", 7) as tf.Tensor4D;
      const pos = tf.tensor2d([[0, 1, 2, 3, 4], [9, 10, 11, 12, 31]], [2, 5], "int32");
      const ang = rope.angles(pos);
      const a = rope.rotate(x, ang), b = rotateViaConcat(rope, x, ang);
      assert(maxDiff(a.dataSync(), b.dataSync()) === 0, `rotaryDim ${rotaryDim}: outputs differ`);
      const w = tf.randomNormal(x.shape, 0, 1, "float32", 8);
      const ga = tf.grad((t: tf.Tensor) => rope.rotate(t as tf.Tensor4D, ang).mul(w).sum())(x);
      const gb = tf.grad((t: tf.Tensor) => rotateViaConcat(rope, t as tf.Tensor4D, ang).mul(w).sum())(x);
      assert(maxDiff(ga.dataSync(), gb.dataSync()) <= 1e-6, `rotaryDim ${rotaryDim}: gradients differ`);
      tf.dispose([x, pos, ang.cos, ang.sin, a, b, w, ga, gb]);
      rope.dispose();
    }
  });
}
