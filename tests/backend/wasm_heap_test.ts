/**
 * A full wasm heap gives a clear error: the classifier on a real exhaustion (in a subprocess, whose heap is
 * left corrupt), on other errors and other backends, and the trainer's and generate()'s rewrapping.
 */
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import { explainWasmHeapError, isWasmHeapError } from "../../lib/backend/wasm_heap.ts";
import { generate } from "../../lib/generate/generate.ts";
import { benchTrainer } from "../../bench/train_bench.ts";
import { tinyModel, tinyRotaryConfig, useBackend } from "../fixtures.ts";

Deno.test("wasm heap: a real exhaustion is recognised and explained (subprocess, about 4 GiB)", async () => {
  const script = `
    import { tf } from "${new URL("../../lib/deps.ts", import.meta.url)}";
    import { initBackend } from "${new URL("../../lib/backend/backend.ts", import.meta.url)}";
    import { explainWasmHeapError, isWasmHeapError } from "${new URL(
    "../../lib/backend/wasm_heap.ts",
    import.meta.url,
  )}";
    await initBackend({ backend: "wasm" });
    const kept = [];
    try {
      let x = tf.ones([64, 1024, 1024]); // 256 MiB a tensor, kept until the 4 GiB heap is full
      for (let i = 0; i < 40; i++) kept.push(x = tf.add(x, 1));
      console.log("NO ERROR");
    } catch (e) {
      console.log(JSON.stringify({ heap: isWasmHeapError(e), message: explainWasmHeapError(e, "the test").message }));
    }`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  assert(
    text.startsWith("{"),
    `unexpected output: ${text} ${new TextDecoder().decode(out.stderr).slice(-500)}`,
  );
  const r = JSON.parse(text);
  assert(r.heap, "a full heap was not recognised");
  assert(/out of memory .*4 GiB.*smaller batch/s.test(r.message), r.message);
});

Deno.test("wasm heap: other errors and other backends pass through unchanged", async () => {
  await useBackend("wasm");
  const plain = new Error("shapes do not match");
  assertEquals(isWasmHeapError(plain), false);
  assertEquals(explainWasmHeapError(plain, "x"), plain);
  assert(isWasmHeapError(new WebAssembly.RuntimeError("memory access out of bounds")));
  assert(!isWasmHeapError(new WebAssembly.RuntimeError("divide by zero")));
  await useBackend("cpu");
  assert(!isWasmHeapError(new WebAssembly.RuntimeError("memory access out of bounds")), "not on cpu");
});

Deno.test("wasm heap: the trainer and generate() rethrow it explained, with the original as cause", async () => {
  await useBackend("wasm");
  const boom = () => {
    throw new WebAssembly.RuntimeError("memory access out of bounds");
  };
  const trainer = benchTrainer("4x128", 1, 8);
  (trainer.model as unknown as { forward: () => never }).forward = boom;
  const e = await assertRejects(
    () => trainer.trainStep(),
    Error,
    "training step 0 ran the wasm backend out of memory",
  );
  assert((e as Error).cause instanceof WebAssembly.RuntimeError);
  trainer.dispose();
  const model = tinyModel(tinyRotaryConfig(), 3);
  const before = tf.memory().numTensors;
  (model as unknown as { forward: () => never }).forward = boom;
  await assertRejects(
    () => generate(model, [1, 2, 3], { maxNewTokens: 2 }).collect(),
    Error,
    "generate ran the wasm",
  );
  assertEquals(tf.memory().numTensors, before);
});
