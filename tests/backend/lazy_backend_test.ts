/**
 * Entry points started before any initBackend() call: each runs in a fresh process, since the backend is
 * process-wide state.
 */
import { assert, assertEquals } from "../assert.ts";

const MOD = new URL("../../mod.ts", import.meta.url).href;
const TINY = new URL("../../data/models/tiny-gpt2", import.meta.url).pathname;

async function run(script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    env: { NO_COLOR: "1", COHERENCE_WASM_MATMUL: "stock" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

Deno.test("loadModel before initBackend starts the default backend and says which, once", async () => {
  const r = await run(`
    import { loadModel, currentBackend } from "${MOD}";
    const a = await loadModel("${TINY}");
    const b = await loadModel("${TINY}");
    console.log(JSON.stringify({ backend: currentBackend()?.name, vocab: a.config.vocabSize }));
    a.dispose(); b.dispose();
  `);
  assertEquals(r.code, 0, r.stderr);
  assert(!r.stderr.includes("has not yet been initialized"), r.stderr);
  const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
  assertEquals(out.vocab, 266);
  assert(["wasm", "webgpu", "cpu"].includes(out.backend));
  assertEquals(r.stderr.match(/\[backend\] using/g)?.length, 1, r.stderr);
  assert(r.stderr.includes(`[backend] using ${out.backend}`), r.stderr);
});

Deno.test("createDecoder (synchronous) before initBackend runs on cpu and says so; initBackend still chooses", async () => {
  const r = await run(`
    import { createDecoder, gpt2NewConfig, initBackend, currentBackend, tf } from "${MOD}";
    const m = createDecoder(gpt2NewConfig({ nLayers: 1, dModel: 16, nHeads: 2, vocabSize: 20, maxPositions: 8 }), { seed: 1 });
    const { logits } = m.forward(tf.tensor2d([[1, 2]], [1, 2], "int32"));
    const first = currentBackend()?.name;
    await initBackend({ backend: "wasm" });
    console.log(JSON.stringify({ first, then: currentBackend()?.name, shape: logits.shape }));
  `);
  assertEquals(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
  assertEquals(out, { first: "cpu", then: "wasm", shape: [1, 2, 20] });
  assert(r.stderr.includes("[backend] using cpu"), r.stderr);
});
