/**
 * The standard head's chunked training loss equals the full-logits loss (value and every gradient) for
 * tied and untied heads; the chunk policy; the option is checked; chunking keeps memory flat.
 */
import { assert, assertEquals, assertThrows } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import { crossEntropy } from "../../lib/train/loss.ts";
import { createDecoder } from "../../lib/models/scratch.ts";
import { headLossChunkRows } from "../../lib/nn/chunked_loss.ts";
import { tinyLearnedConfig, tinyRotaryConfig, useBackend } from "../fixtures.ts";

await useBackend("cpu");

for (
  const [kind, cfg] of [
    ["tied, learned positions", tinyLearnedConfig({ vocabSize: 37, dModel: 16, nHeads: 2 })],
    ["untied, rotary", tinyRotaryConfig({ vocabSize: 37, dModel: 16, nHeads: 2, tieEmbeddings: false })],
  ] as const
) {
  Deno.test(`chunked head loss[${kind}]: value and gradients equal the full logits' cross-entropy`, () => {
    const full = createDecoder(cfg, { seed: 4 });
    const chunked = createDecoder({ ...cfg, embedding: { kind: "standard", lossChunk: 5 } }, { seed: 4 });
    const x = tf.tensor2d([[1, 5, 9, 2, 6, 3, 7], [4, 8, 1, 3, 5, 2, 0]], undefined, "int32");
    const y = tf.tensor2d([[5, 9, 2, 6, 3, 7, 1], [8, 1, 3, 5, 2, 0, 4]], undefined, "int32");
    const run = (model: typeof full, expectLoss: boolean) => {
      const vars = model.parameters();
      const { value, grads } = tf.variableGrads(() => {
        const out = model.forward(x, { targets: y, training: true });
        assertEquals(out.loss !== undefined, expectLoss, "which path scored the targets");
        return (out.loss ?? crossEntropy(out.logits, y)) as tf.Scalar;
      }, [...vars.values()]);
      const names = [...vars.keys()];
      const g = Object.fromEntries(names.map((n, i) => [n, grads[[...vars.values()][i].name].arraySync()]));
      const v = value.dataSync()[0];
      tf.dispose([value, ...Object.values(grads)]);
      return { v, g };
    };
    const a = run(full, false), b = run(chunked, true);
    assert(Math.abs(a.v - b.v) < 1e-6, `loss ${a.v} vs ${b.v}`);
    for (const n of Object.keys(a.g)) {
      const d = Math.max(
        ...(a.g[n] as number[]).flat(3).map((v, i) => Math.abs(v - (b.g[n] as number[]).flat(3)[i])),
      );
      assert(d < 1e-6, `gradient of ${n} differs by ${d}`);
    }
    tf.dispose([x, y]);
    full.dispose();
    chunked.dispose();
  });
}

Deno.test("chunked head loss: memory does not grow over steps; the option is checked", () => {
  const cfg = { ...tinyLearnedConfig({ vocabSize: 37 }), embedding: { kind: "standard", lossChunk: 3 } };
  const m = createDecoder(cfg, { seed: 1 });
  const x = tf.tensor2d([[1, 2, 3, 4]], undefined, "int32"),
    y = tf.tensor2d([[2, 3, 4, 5]], undefined, "int32");
  const step = () => {
    const { value, grads } = tf.variableGrads(() => m.forward(x, { targets: y, training: true }).loss!);
    tf.dispose([value, ...Object.values(grads)]);
  };
  step();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) step();
  assertEquals(tf.memory().numTensors, before);
  tf.dispose([x, y]);
  m.dispose();
  assertThrows(
    () => createDecoder({ ...cfg, embedding: { kind: "standard", lossChunk: 0 } }, { seed: 1 }),
    Error,
    "lossChunk: must be a positive integer",
  );
  assertThrows(
    () => createDecoder({ ...cfg, embedding: { kind: "standard", lossChnk: 3 } }, { seed: 1 }),
    Error,
    "lossChunk",
  );
});

Deno.test("headLossChunkRows: chunking starts at 2^27 logits, at 2^24 on wasm", async () => {
  await useBackend("cpu");
  assertEquals(headLossChunkRows(1024, 50304), 0);
  assertEquals(headLossChunkRows(12 * 1024, 50304), 333);
  await useBackend("wasm");
  assertEquals(headLossChunkRows(1024, 50304), 333, "51M logits on wasm are chunked");
  assertEquals(headLossChunkRows(1024, 65), 0);
  await useBackend("cpu");
});
