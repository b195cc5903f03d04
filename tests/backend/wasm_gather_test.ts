/**
 * The row-copying `GatherV2` of the wasm backend (lib/backend/wasm_gather.ts): the same values as the cpu
 * backend for embedding lookups (1-D and 2-D indices, float32 and int32 tables, a table of one column, a
 * repeated index), the stock kernel for other axes and batch dims, a clear error for an index out of
 * range (nothing left allocated), and no tensors left behind.
 */
import { assertEquals, assertThrows } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import { initBackend } from "../../lib/backend/backend.ts";

const cases: {
  x: number[];
  dtype: "float32" | "int32";
  idx: number[][] | number[];
  axis?: number;
  batchDims?: number;
}[] = [
  { x: [50, 8], dtype: "float32", idx: [3, 0, 49, 3] },
  { x: [50, 8], dtype: "float32", idx: [[1, 2, 3], [4, 5, 49]] },
  { x: [20, 3, 4], dtype: "float32", idx: [19, 0] },
  { x: [30], dtype: "float32", idx: [[29, 1], [0, 0]] },
  { x: [12, 5], dtype: "int32", idx: [11, 2] },
  { x: [6, 7], dtype: "float32", idx: [0, 6, 2], axis: 1 }, // stock
  { x: [2, 6, 3], dtype: "float32", idx: [[1, 5], [0, 2]], axis: 1, batchDims: 1 }, // stock
];

async function run(backend: "cpu" | "wasm") {
  await initBackend({ backend });
  return cases.map((c) =>
    tf.tidy(() => {
      const n = c.x.reduce((a, b) => a * b, 1);
      const x = tf.tensor(Array.from({ length: n }, (_, i) => (i * 37) % 101 - 50), c.x, c.dtype);
      const out = tf.gather(x, tf.tensor(c.idx, undefined, "int32"), c.axis ?? 0, c.batchDims ?? 0);
      return { shape: out.shape, values: Array.from(out.dataSync()), dtype: out.dtype };
    })
  );
}

Deno.test("wasm gather: embedding lookups equal the cpu backend; other axes keep the stock kernel", async () => {
  const want = await run("cpu");
  const before = (await initBackend({ backend: "wasm" }), tf.memory().numTensors);
  const got = await run("wasm");
  assertEquals(got, want);
  assertEquals(tf.memory().numTensors, before);
});

Deno.test("wasm gather: an index out of range is refused with its value, and nothing is left allocated", async () => {
  await initBackend({ backend: "wasm" });
  const table = tf.ones([10, 4]);
  for (const bad of [10, -1]) {
    const idx = tf.tensor1d([0, bad], "int32");
    const before = tf.memory().numTensors;
    assertThrows(() => tf.gather(table, idx), Error, `index value ${bad} is not in [0, 9]`);
    assertEquals(tf.memory().numTensors, before);
    idx.dispose();
  }
  table.dispose();
});
