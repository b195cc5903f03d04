import { tf } from "../../lib/deps.ts";
import { initBackend } from "../../lib/backend/backend.ts";
import { gatherRows } from "../../lib/nn/embedding.ts";
import { crossEntropy } from "../../lib/train/loss.ts";
import { assertJsonEquals as assertEquals } from "../assert.ts";

const ok = await initBackend({ backend: "wasm" }).then(() => true, () => false);

Deno.test({
  name: "wasm: gathers differentiate without UnsortedSegmentSum (embedding lookups and the loss)",
  ignore: !ok,
  fn: () => {
    const table = tf.tensor2d([[1, 2], [3, 4], [5, 6]]);
    const ids = tf.tensor1d([2, 0, 2], "int32");
    const g = tf.grad((t: tf.Tensor) =>
      gatherRows(t, ids).mul(tf.tensor2d([[1, 10], [100, 1000], [7, 70]])).sum()
    )(
      table,
    );
    // Row 2 gets rows 0 and 2 of the upstream gradient; row 0 gets row 1; row 1 nothing.
    assertEquals(Array.from(g.dataSync()), [100, 1000, 0, 0, 8, 80]);
    // The loss's own gather: d/dlogits of mean CE = (softmax - onehot) / N.
    const logits = tf.tensor2d([[0, 0], [0, 0]]);
    const gl = tf.grad((l: tf.Tensor) => crossEntropy(l, tf.tensor1d([1, 0], "int32")))(logits);
    assertEquals(Array.from(gl.dataSync()), [0.25, -0.25, -0.25, 0.25]);
    tf.dispose([table, ids, g, logits, gl]);
  },
});
if (!ok) console.log("note: wasm backend unavailable; skipping the wasm gradient test");
