import { tf } from "../../lib/deps.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { readSafetensors, SafetensorsFormatError, writeSafetensors } from "../../lib/io/safetensors.ts";
import { readTfSafetensors, toTfTensor, writeTfSafetensors } from "../../lib/io/safetensors_tf.ts";
import { tmpDir } from "./tmp.ts";

await tf.setBackend("cpu");

Deno.test("tfjs tensors round trip through a safetensors file without leaking", async () => {
  const before = tf.memory().numTensors;
  const path = (await tmpDir()) + "/tf.safetensors";
  const src = {
    w: tf.tensor2d([[1.5, -2], [3, 4.25]]),
    ids: tf.tensor1d([1, -7, 300], "int32"),
    mask: tf.tensor1d([true, false], "bool"),
  };
  await writeTfSafetensors(path, src, { step: "7" });
  const raw = await readSafetensors(path);
  assertEquals(raw.get("w")!.dtype, "F32");
  assertEquals(raw.get("ids")!.dtype, "I32");
  assertEquals(raw.get("mask")!.dtype, "BOOL");
  const back = await readTfSafetensors(path);
  assertEquals(back.w.dtype, "float32");
  assertEquals(back.w.shape, [2, 2]);
  assertEquals(Array.from(await back.w.data()), [1.5, -2, 3, 4.25]);
  assertEquals(back.ids.dtype, "int32");
  assertEquals(Array.from(await back.ids.data()), [1, -7, 300]);
  assertEquals(back.mask.dtype, "bool");
  assertEquals(Array.from(await back.mask.data()), [1, 0]);
  tf.dispose([...Object.values(src), ...Object.values(back)]);
  assertEquals(tf.memory().numTensors, before);
});

Deno.test("bf16 storage and integer conversions", async () => {
  const path = (await tmpDir()) + "/bf.safetensors";
  const w = tf.tensor1d([1, 1 + 2 ** -6, 1 + 2 ** -9]);
  await writeTfSafetensors(path, { w }, undefined, { floatDtype: "BF16" });
  w.dispose();
  const back = await readTfSafetensors(path);
  assertEquals(Array.from(await back.w.data()), [1, 1 + 2 ** -6, 1]);
  back.w.dispose();

  await writeSafetensors(path, {
    i64: { dtype: "I64", shape: [2], data: [5, -5] },
    u8: { dtype: "U8", shape: [1], data: [200] },
    f64: { dtype: "F64", shape: [1], data: [0.1] },
  });
  const t = await readTfSafetensors(path);
  assertEquals(t.i64.dtype, "int32");
  assertEquals(Array.from(await t.i64.data()), [5, -5]);
  assertEquals(Array.from(await t.u8.data()), [200]);
  assertEquals(t.f64.dtype, "float32");
  assert(Math.abs((await t.f64.data())[0] - 0.1) < 1e-8);
  tf.dispose(Object.values(t));

  // U32 values above int32 are refused rather than wrapped.
  assertThrows(
    () => toTfTensor({ name: "u", dtype: "U32", shape: [1], data: new Uint32Array([2 ** 31]) }),
    SafetensorsFormatError,
    "does not fit tfjs int32",
  );
  await writeSafetensors(path, { big: { dtype: "I64", shape: [1], data: new BigInt64Array([2n ** 40n]) } });
  await assertRejects(() => readTfSafetensors(path), SafetensorsFormatError, "does not fit in int32");
});
