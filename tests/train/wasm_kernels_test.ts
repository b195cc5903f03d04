import { tf } from "../../lib/deps.ts";
import { initBackend } from "../../lib/backend/backend.ts";
import { registerWasmTrainingKernels } from "../../lib/train/wasm_kernels.ts";
import { assertEquals } from "./assert.ts";

registerWasmTrainingKernels();
const ok = await initBackend({ backend: "wasm" }).then(() => true, () => false);

Deno.test({
  name: "wasm: the gradient of gather (embedding lookup) matches a hand-computed scatter-add",
  ignore: !ok,
  fn: () => {
    const table = tf.tensor2d([[1, 2], [3, 4], [5, 6]]);
    const ids = tf.tensor1d([2, 0, 2, 5], "int32"); // 5 is out of range on purpose: tf drops it in the backward pass
    const g = tf.grad((t: tf.Tensor) =>
      tf.gather(t, ids.slice([0], [3])).mul(tf.tensor2d([[1, 10], [100, 1000], [7, 70]])).sum()
    )(
      table,
    );
    // Row 2 gets rows 0 and 2 of the upstream gradient; row 0 gets row 1; row 1 nothing.
    assertEquals(Array.from(g.dataSync()), [100, 1000, 0, 0, 8, 80]);
    const seg = tf.unsortedSegmentSum(tf.tensor2d([[1, 1], [2, 2], [3, 3], [4, 4]]), ids, 3);
    assertEquals(Array.from(seg.dataSync()), [2, 2, 0, 0, 4, 4]);
  },
});
if (!ok) console.log("note: wasm backend unavailable; skipping the wasm kernel test");
