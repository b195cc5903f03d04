/** Plain-number ids, hook-name suggestions, hook return checks and how an activation cache prints. */
import { tf } from "../../lib/deps.ts";
import { runWithCache, runWithHooks } from "../../lib/models/hooks.ts";
import { tinyModel, useBackend } from "../fixtures.ts";
import { assert, assertEquals, assertThrows } from "../assert.ts";

await useBackend("cpu");
const model = tinyModel();

Deno.test("forward/runWithCache/runWithHooks take plain number arrays and typed arrays", () => {
  const t = tf.tensor2d([[1, 2, 3]], [1, 3], "int32");
  const ref = model.forward(t).logits;
  for (const ids of [[[1, 2, 3]], [1, 2, 3], Int32Array.of(1, 2, 3), [Uint16Array.of(1, 2, 3)]]) {
    const r = model.forward(ids);
    assertEquals(r.logits.shape, [1, 3, 30]);
    assert(tf.max(tf.abs(tf.sub(r.logits, ref))).dataSync()[0] === 0);
    tf.dispose([r.logits, r.hidden, r.residual]);
  }
  const { logits, cache } = runWithCache(model, [[1, 2, 3]], { names: ["hook_embed"] });
  const edited = runWithHooks(model, [[1, 2, 3]], {});
  tf.dispose([logits, edited, t, ref]);
  cache.dispose();
  assertThrows(
    () => model.forward([[1, 2, 99]]),
    RangeError,
    "id 99 at row 0, position 2 is outside the vocabulary",
  );
  assertThrows(() => model.forward([[1, 2], [3]]), Error, "row 1 has 1 ids");
});

Deno.test("a misspelt hook name gets a did-you-mean", () => {
  assertThrows(
    () => runWithHooks(model, [[1, 2]], { "blocks.0.attn.hook_patern": () => {} }),
    Error,
    "did you mean blocks.0.attn.hook_pattern",
  );
  assertThrows(
    () => runWithCache(model, [[1, 2]], { names: ["hook_embd"] }),
    Error,
    "did you mean hook_embed",
  );
});

Deno.test("a hook returning something other than a tensor of the right shape is named", () => {
  assertThrows(
    () => runWithHooks(model, [[1, 2]], { "blocks.0.hook_attn_out": () => 0 as never }),
    Error,
    "hook 'blocks.0.hook_attn_out' returned number",
  );
  assertThrows(
    () => runWithHooks(model, [[1, 2]], { "blocks.0.hook_attn_out": (async () => {}) as never }),
    Error,
    "returned a Promise",
  );
  assertThrows(
    () => runWithHooks(model, [[1, 2]], { "blocks.0.hook_attn_out": () => tf.zeros([1, 2, 3]) }),
    Error,
    "hook 'blocks.0.hook_attn_out' returned shape [1,2,3]",
  );
});

Deno.test("console.log of an activation cache shows its names and shapes", () => {
  const { logits, cache } = runWithCache(model, [[1, 2]], {
    names: ["hook_embed", "blocks.0.attn.hook_pattern"],
  });
  const text = Deno.inspect(cache);
  assert(text.startsWith("ActivationCache (2 activations)"), text);
  assert(text.includes("hook_embed [1, 2, 16] float32"), text);
  assert(text.includes("blocks.0.attn.hook_pattern [1, 2, 2, 2]"), text);
  logits.dispose();
  cache.dispose();
});
