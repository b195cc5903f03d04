/**
 * The zero-copy wasm `Identity` (lib/backend/wasm_identity.ts): clones share the buffer, training steps are
 * bit-identical to the copying kernel's, memory does not grow, and the in-place cache writes refuse a
 * buffer a clone shares.
 */
import { assert, assertEquals } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import { installWasmIdentity, uninstallWasmIdentity } from "../../lib/backend/wasm_identity.ts";
import { writeColumnsInPlace } from "../../lib/backend/decode_attention.ts";
import { benchTrainer } from "../../bench/train_bench.ts";
import { useBackend } from "../fixtures.ts";

Deno.test("wasm Identity: a clone shares its buffer and survives the original's disposal", async () => {
  await useBackend("wasm");
  assert(installWasmIdentity());
  const x = tf.tensor([1, 2, 3]);
  const y = tf.clone(x);
  assert(y.dataId === x.dataId, "the clone shares the buffer");
  uninstallWasmIdentity();
  const z = tf.clone(x);
  assert(z.dataId !== x.dataId, "tfjs-wasm's own Identity copies");
  z.dispose();
  installWasmIdentity();
  x.dispose();
  assertEquals(await y.data(), new Float32Array([1, 2, 3]));
  y.dispose();
  const s = tf.clone(tf.tensor(["a", "b"]));
  assertEquals(await s.data() as unknown as string[], ["a", "b"]); // strings take the stock kernel
  s.dispose();
});

Deno.test("wasm Identity: training steps are bit-identical to the copying kernel's; nothing leaks", async () => {
  await useBackend("wasm");
  const losses = async (zeroCopy: boolean) => {
    if (zeroCopy) installWasmIdentity();
    else uninstallWasmIdentity();
    const t = benchTrainer("4x128", 2, 32);
    const out: number[] = [];
    for (let i = 0; i < 3; i++) out.push((await t.trainStep()).loss);
    const mem = tf.memory();
    for (let i = 0; i < 2; i++) out.push((await t.trainStep()).loss);
    assertEquals(tf.memory().numTensors, mem.numTensors, "tensors grew across steps");
    assertEquals(tf.memory().numBytes, mem.numBytes, "bytes grew across steps");
    t.dispose();
    t.model.dispose();
    return out;
  };
  const copying = await losses(false);
  const shared = await losses(true);
  assertEquals(shared, copying);
});

Deno.test("wasm Identity: writeColumnsInPlace refuses a buffer that a clone shares", async () => {
  await useBackend("wasm");
  installWasmIdentity();
  const buf = tf.keep(tf.add(tf.zeros([1, 1, 4, 2]), 0)) as tf.Tensor4D;
  const src = tf.ones([1, 1, 1, 2]) as tf.Tensor4D;
  const alias = tf.clone(buf);
  assertEquals(writeColumnsInPlace(buf, src, 0), false, "a shared buffer must not be written in place");
  alias.dispose();
  assertEquals(writeColumnsInPlace(buf, src, 0), true);
  assertEquals((await buf.array())[0][0][0], [1, 1]);
  tf.dispose([buf, src]);
});
