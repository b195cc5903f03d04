import { tf } from "../../lib/deps.ts";
import {
  assignWeights,
  type CheckpointContents,
  listCheckpoints,
  loadCheckpoint,
  saveCheckpoint,
} from "../../lib/train/checkpoint.ts";
import { writeDirAtomic } from "../../lib/io/atomic_dir.ts";
import { assert, assertJsonEquals as assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { useBackend } from "../fixtures.ts";

await useBackend("cpu");

function contents(step: number, value: number): CheckpointContents {
  return {
    weights: new Map([["w", tf.fill([2, 3], value)], ["b", tf.tensor1d([value, -value])]]),
    optimizer: new Map([["m.w", tf.fill([2, 3], value / 10)]]),
    state: { format: "coherence-lab/checkpoint@1", step, note: `v${value}` },
  };
}

function visible(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

Deno.test("save and load round trip; latest pointer; old checkpoints pruned", async () => {
  const dir = await Deno.makeTempDir();
  await saveCheckpoint(dir, contents(10, 1));
  await saveCheckpoint(dir, contents(20, 2));
  await saveCheckpoint(dir, contents(30, 3), { keepLast: 2 });
  assertEquals(await listCheckpoints(dir), ["step-00000020", "step-00000030"]);
  const c = await loadCheckpoint(dir);
  assertEquals(c.state.step, 30);
  assertEquals(Array.from(c.weights.get("b")!.data as Float32Array), [3, -3]);
  assertEquals(Array.from(c.optimizer.get("m.w")!.data as Float32Array).map((x) => Math.round(x * 10)), [
    3,
    3,
    3,
    3,
    3,
    3,
  ]);
  assertEquals(visible(dir), ["latest", "step-00000020", "step-00000030"]);
});

Deno.test("a failed save (disk full mid-write, crash before rename) leaves the previous checkpoint usable", async () => {
  const dir = await Deno.makeTempDir();
  await saveCheckpoint(dir, contents(10, 1));
  const before = await Deno.readFile(`${dir}/step-00000010/model.safetensors`);
  // Disk full while writing the optimiser file.
  await assertRejects(
    () =>
      saveCheckpoint(dir, contents(20, 2), {
        beforeTensorFile: (p) => {
          if (p.endsWith("optimizer.safetensors")) {
            throw new Deno.errors.WriteZero("No space left on device (injected)");
          }
        },
      }),
    Deno.errors.WriteZero,
  );
  // Crash right before the folder is renamed into place.
  await assertRejects(
    () =>
      saveCheckpoint(dir, contents(20, 2), {
        beforeCommit: () => Promise.reject(new Error("power cut (injected)")),
      }),
    Error,
    "power cut",
  );
  // Re-saving the SAME step with a failure must not damage the existing folder of that step either.
  await assertRejects(
    () =>
      saveCheckpoint(dir, contents(10, 9), {
        beforeCommit: () => Promise.reject(new Error("crash (injected)")),
      }),
    Error,
    "crash",
  );
  assertEquals(visible(dir), ["latest", "step-00000010"]); // no temp folders left behind
  const c = await loadCheckpoint(dir);
  assertEquals(c.state.step, 10);
  assertEquals(c.state.note, "v1");
  assertEquals(await Deno.readFile(`${dir}/step-00000010/model.safetensors`), before);
  // And a successful re-save of the same step replaces it whole.
  await saveCheckpoint(dir, contents(10, 5));
  assertEquals((await loadCheckpoint(dir)).state.note, "v5");
});

Deno.test("writeDirAtomic cleans up its temp folder when filling fails", async () => {
  const root = await Deno.makeTempDir();
  await assertRejects(
    () => writeDirAtomic(`${root}/x`, () => Promise.reject(new Error("boom"))),
    Error,
    "boom",
  );
  assertEquals(visible(root), []);
});

Deno.test("missing or corrupt checkpoint files are named", async () => {
  const dir = await Deno.makeTempDir();
  await assertRejects(() => loadCheckpoint(`${dir}/none`), Error, `'${dir}/none' does not exist`);
  await assertRejects(() => loadCheckpoint(dir), Error, "holds no checkpoint");
  await saveCheckpoint(dir, contents(5, 1));
  const ck = `${dir}/step-00000005`;
  await Deno.writeFile(`${ck}/model.safetensors`, new Uint8Array([1, 2, 3]));
  await assertRejects(() => loadCheckpoint(dir), Error, `${ck}/model.safetensors' is corrupt`);
  await Deno.remove(`${ck}/optimizer.safetensors`);
  await saveCheckpoint(dir, contents(6, 1));
  await Deno.remove(`${dir}/step-00000006/optimizer.safetensors`);
  await assertRejects(() => loadCheckpoint(dir), Error, `step-00000006/optimizer.safetensors' is missing`);
  await Deno.writeTextFile(`${dir}/step-00000006/state.json`, "{ broken");
  await assertRejects(() => loadCheckpoint(dir), Error, "state.json' is corrupt");
  await Deno.writeTextFile(`${dir}/latest`, "../../etc\n");
  await assertRejects(() => loadCheckpoint(dir), Error, "pointer");
});

Deno.test("weights from another config are refused with the differences listed", async () => {
  const dir = await Deno.makeTempDir();
  await saveCheckpoint(dir, contents(1, 1));
  const c = await loadCheckpoint(dir);
  const params = new Map([["w", tf.variable(tf.zeros([3, 3]))], ["b", tf.variable(tf.zeros([2]))]]);
  const err = assertThrows(() => assignWeights(params, c.weights), Error, "another config");
  assert(err.message.includes("'w' is [2,3], model wants [3,3]"), err.message);
  const ok = new Map([["w", tf.variable(tf.zeros([2, 3]))], ["b", tf.variable(tf.zeros([2]))]]);
  assignWeights(ok, c.weights);
  assertEquals(Array.from(ok.get("b")!.dataSync()), [1, -1]);
});
