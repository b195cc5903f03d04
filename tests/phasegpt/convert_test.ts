/**
 * tools/convert_phasegpt.py: tiny checkpoints in the original's layout (written by a torch helper that
 * implements the original's forward from the spec) convert to folders that loadModel opens as the
 * faithful model, reproducing the reference logits. Skipped, with a message, where torch is missing.
 */
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import { loadModel } from "../../lib/models/load.ts";
import "../../lib/phasegpt/mod.ts";
import { causalityCheck } from "../../lib/phasegpt/mod.ts";
import { useBackend } from "../fixtures.ts";

await useBackend("cpu");

const PY = Deno.env.get("PHASEGPT_PYTHON") ?? "/usr/bin/python3";
const root = new URL("../../", import.meta.url).pathname;

async function run(args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const r = await new Deno.Command(PY, { args, cwd: root, stdout: "piped", stderr: "piped" }).output();
    const dec = new TextDecoder();
    return { ok: r.success, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
  } catch (e) {
    return { ok: false, out: String(e) };
  }
}

const torch = await run(["-c", "import torch"]);
if (!torch.ok) console.log(`convert_test: skipped, torch is not importable from ${PY} (${torch.out.trim()})`);

const CFG = { vocab_size: 23, n_layers: 3, n_heads: 2, d_model: 16, d_ff: 64, max_seq_len: 16, dropout: 0.1 };

for (
  const [what, layers, n] of [
    ["baseline", [], 0],
    ["faithful phase layer 1", [1], 4],
    ["phase layers 0 and 2", [0, 2], 3],
  ] as [string, number[], number][]
) {
  Deno.test({
    name: `convert_phasegpt: ${what} reproduces the original's logits`,
    ignore: !torch.ok,
    fn: async () => {
      const dir = await Deno.makeTempDir();
      try {
        const made = await run([
          "tests/phasegpt/make_checkpoint.py",
          dir,
          JSON.stringify(CFG),
          JSON.stringify(layers),
          String(n),
          "7",
        ]);
        assert(made.ok, made.out);
        const conv = await run(["tools/convert_phasegpt.py", `${dir}/ckpt.pt`, `${dir}/out`]);
        assert(conv.ok, conv.out);
        const ref = JSON.parse(await Deno.readTextFile(`${dir}/reference.json`));
        const model = await loadModel(`${dir}/out`);
        assertEquals(model.config.mixers?.length, layers.length ? 2 : 1);
        const before = tf.memory().numTensors;
        const got = tf.tidy(() => model.forward(tf.tensor2d(ref.ids, undefined, "int32")).logits.dataSync());
        assertEquals(tf.memory().numTensors, before);
        assertEquals(got.length, ref.logits.length);
        let worst = 0;
        got.forEach((v, i) => worst = Math.max(worst, Math.abs(v - ref.logits[i])));
        assert(worst < 1e-4, `max |Δ logit| ${worst}`);
        // The converted faithful model leaks the future exactly as the original does.
        const leak = causalityCheck(model).maxEarlierChange;
        assert(layers.length ? leak > 0 : leak === 0, `leak ${leak}`);
        model.dispose();
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name: "convert_phasegpt: a config that does not match the weights is refused with the field named",
  ignore: !torch.ok,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      assert(
        (await run(["tests/phasegpt/make_checkpoint.py", dir, JSON.stringify(CFG), "[1]", "4", "1"])).ok,
      );
      assert((await run(["tools/convert_phasegpt.py", `${dir}/ckpt.pt`, `${dir}/out`])).ok);
      const cfg = JSON.parse(await Deno.readTextFile(`${dir}/out/config.json`));
      await Deno.writeTextFile(`${dir}/out/config.json`, JSON.stringify({ ...cfg, num_oscillators: 5 }));
      await assertRejects(() => loadModel(`${dir}/out`), Error, "natural_freq");
      await Deno.writeTextFile(`${dir}/out/config.json`, JSON.stringify({ ...cfg, phase_layer_idx: [3] }));
      await assertRejects(() => loadModel(`${dir}/out`), Error, "use 0..2");
      const bad = await run(["tools/convert_phasegpt.py", `${dir}/ckpt.pt`, `${dir}/o2`, "--steps", "0"]);
      assert(!bad.ok && bad.out.includes("--steps must be a positive integer"), bad.out);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
