/**
 * config.json that asks for unbounded work or has the wrong types: refused before anything is allocated,
 * with the file and the Hugging Face field name in the message.
 */
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import { loadModel } from "../../lib/models/load.ts";
import { RotaryTable } from "../../lib/nn/rotary.ts";
import { tmpDir } from "../io/tmp.ts";
import { useBackend } from "../fixtures.ts";

await useBackend("cpu");
const FIXTURES = new URL("../../../shared/fixtures/hf", import.meta.url).pathname;
// GPT-2 comes from the model the repository ships; the other families need ../shared.
const folderOf = (family: string) =>
  family === "tiny-gpt2"
    ? new URL("../../data/models/tiny-gpt2", import.meta.url).pathname
    : `${FIXTURES}/${family}`;
const present = (family: string) => {
  try {
    return Deno.statSync(folderOf(family)).isDirectory;
  } catch {
    return false;
  }
};
if (!present("tiny-llama")) console.log(`config tests for llama and qwen2 skipped: ${FIXTURES} is absent`);

async function withConfig(
  family: string,
  edit: (c: Record<string, unknown>) => unknown,
): Promise<{ dir: string; file: string }> {
  const dir = await tmpDir();
  const src = folderOf(family);
  for await (const e of Deno.readDir(src)) {
    if (e.isFile && e.name !== "config.json") {
      await Deno.symlink(await Deno.realPath(`${src}/${e.name}`), `${dir}/${e.name}`);
    }
  }
  const config = JSON.parse(await Deno.readTextFile(`${src}/config.json`));
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(edit(config)));
  return { dir, file: `${dir}/config.json` };
}

const cases: [string, string, (c: Record<string, unknown>) => unknown, string][] = [
  ["gpt2", "n_layer 1e6", (c) => ({ ...c, n_layer: 1e6 }), "n_layer is 1000000 but the weights"],
  ["gpt2", "n_layer 1e9", (c) => ({ ...c, n_layer: 1e9 }), "n_layer is 1000000000 but the weights"],
  [
    "gpt2",
    "n_layer 1e12",
    (c) => ({ ...c, n_layer: 1e12 }),
    "field 'n_layer' must be a positive whole number",
  ],
  ["gpt2", "n_layer 2.5", (c) => ({ ...c, n_layer: 2.5 }), "field 'n_layer' must be a positive whole number"],
  ["gpt2", "n_layer -1", (c) => ({ ...c, n_layer: -1 }), "field 'n_layer' must be a positive whole number"],
  ["gpt2", 'n_inner "x"', (c) => ({ ...c, n_inner: "x" }), `field 'n_inner' must be a number, got "x"`],
  ["gpt2", 'n_head "4"', (c) => ({ ...c, n_head: "4" }), `field 'n_head' must be a number`],
  ["tiny-llama", "num_hidden_layers 1e9", (c) => ({ ...c, num_hidden_layers: 1e9 }), "num_hidden_layers is"],
  [
    "tiny-llama",
    'rope_scaling "linear"',
    (c) => ({ ...c, rope_scaling: "linear" }),
    `field 'rope_scaling' must be an object`,
  ],
  [
    "tiny-llama",
    "rope_scaling.type 7",
    (c) => ({ ...c, rope_scaling: { type: 7 } }),
    "rope_scaling.rope_type must be a string",
  ],
  [
    "tiny-qwen2",
    'sliding_window "x"',
    (c) => ({ ...c, sliding_window: "x" }),
    `field 'sliding_window' must be a number`,
  ],
  ["tiny-gpt2", "config.json null", () => null, "expected a JSON object with the model's settings, got null"],
  ["tiny-gpt2", "config.json an array", () => [1], "got an array"],
];

for (const [family0, name, edit, expected] of cases) {
  const family = family0 === "gpt2" ? "tiny-gpt2" : family0;
  Deno.test({
    name: `${family}: ${name} is refused before allocating, naming file and field`,
    ignore: !present(family),
  }, async () => {
    const { dir, file } = await withConfig(family, edit);
    const before = tf.memory().numTensors;
    const err = await assertRejects(() => loadModel(dir), Error, expected);
    assert(err.message.includes(file), err.message);
    assertEquals(tf.memory().numTensors, before);
  });
}

Deno.test({
  name: "max_position_embeddings 1e9 loads without building 1e9 rotary rows; tables grow only as used",
  ignore: !present("tiny-llama"),
}, async () => {
  const { dir } = await withConfig("tiny-llama", (c) => ({ ...c, max_position_embeddings: 1e9 }));
  const model = await loadModel(dir);
  try {
    const logits = tf.tidy(() => model.forward(tf.tensor2d([[1, 2, 3]], [1, 3], "int32")).logits);
    assertEquals(logits.shape.slice(0, 2), [1, 3]);
    logits.dispose();
  } finally {
    model.dispose();
  }
  const rope = new RotaryTable({ headDim: 8, theta: 10000, maxPositions: 1e7 });
  try {
    assertEquals(rope.builtPositions, 8192);
    const x = tf.ones([1, 1, 1, 8]) as tf.Tensor4D;
    const far = tf.tensor2d([[20000]], [1, 1], "int32");
    const y = rope.apply(x, far);
    assertEquals(rope.builtPositions, 20001);
    // Same values as an eagerly built table of that length.
    const small = new RotaryTable({ headDim: 8, theta: 10000, maxPositions: 20001 });
    const y2 = small.apply(x, far);
    assertEquals(Array.from(y.dataSync()), Array.from(y2.dataSync()));
    tf.dispose([x, far, y, y2]);
    small.dispose();
  } finally {
    rope.dispose();
  }
});
