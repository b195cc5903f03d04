/**
 * The fused decode-attention kernel (wasm) against the stock formulation over a grid of shapes, masks and
 * grouped heads; the in-place column writes (wasm, cpu) and their refusals; the committed kernel bytes
 * against their source; and the preallocated KV cache in generation: the fast path runs, decoding equals
 * the cpu reference, a cache grows by doubling, a rewind moves only the length, nothing leaks.
 */
import { assert, assertEquals, assertThrows } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import {
  decodeAttention,
  decodeAttentionCalls,
  inPlaceWritesSupported,
  writeColumnsInPlace,
} from "../../lib/backend/decode_attention.ts";
import { KVLayerState } from "../../lib/models/standard_components.ts";
import type { Decoder } from "../../lib/models/decoder.ts";
import { generate } from "../../lib/generate/generate.ts";
import { tinyLearnedConfig, tinyModel, tinyRotaryConfig, useBackend } from "../fixtures.ts";
import { bytesModule, compileKernels } from "../../tools/build_wasm_kernels.ts";
import { loadNativeKernels } from "../../lib/backend/native_kernels.ts";
import { setWasmNativeKernels, wasmNativeKernels } from "../../lib/backend/wasm_matmul.ts";

/** softmax(q·kᵀ/√hd + mask)·v over the first L columns, with the stock ops. */
function reference(
  q: tf.Tensor3D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  l: number,
  mask?: tf.Tensor3D,
): tf.Tensor3D {
  return tf.tidy(() => {
    const [b, h, hd] = q.shape;
    const hkv = k.shape[1];
    const ks = tf.slice(k, [0, 0, 0, 0], [-1, -1, l, -1]), vs = tf.slice(v, [0, 0, 0, 0], [-1, -1, l, -1]);
    let s = tf.mul(tf.matMul(tf.reshape(q, [b, hkv, h / hkv, hd]), ks, false, true), 1 / Math.sqrt(hd));
    if (mask) s = tf.add(s, tf.reshape(mask, [b, 1, 1, l]));
    return tf.reshape(tf.matMul(tf.softmax(s), vs), [b, h, hd]) as tf.Tensor3D;
  });
}

Deno.test("wasm kernels: the committed bytes are the compiled wasm_kernels.wat", async () => {
  const committed = await Deno.readTextFile(
    new URL("../../lib/backend/wasm_kernels_bytes.ts", import.meta.url),
  );
  assertEquals(
    committed,
    bytesModule(await compileKernels()),
    "run: deno run -A tools/build_wasm_kernels.ts",
  );
});

/** The native library when built (`deno task build-native`), for the "wasm-native" cases. */
const nativeLib = loadNativeKernels();

for (const backend of ["wasm", "wasm-native", "webgpu"] as const) {
  Deno.test(`decodeAttention[${backend}] equals the stock formulation over shapes, masks and grouped heads`, {
    ignore: backend === "wasm-native" && !nativeLib,
  }, async () => {
    await useBackend(backend === "webgpu" ? "webgpu" : "wasm");
    // "wasm" runs the wasm SIMD kernels, "wasm-native" the native library (built by `deno task build-native`).
    const saved = wasmNativeKernels();
    setWasmNativeKernels(backend === "wasm-native" ? saved ?? nativeLib : null);
    const before = tf.memory().numTensors;
    try {
      // [B, H, Hkv, L, capacity, hd]: MHA, GQA, MQA, odd lane-group counts (hd 4, 12), L = 1, L = capacity.
      const grid = [
        [1, 1, 1, 1, 1, 4],
        [1, 12, 12, 128, 192, 64],
        [2, 4, 2, 5, 9, 8],
        [3, 6, 1, 17, 32, 12],
        [4, 8, 4, 33, 33, 16],
        [2, 2, 2, 64, 100, 128],
      ];
      let seed = 1;
      for (const [b, h, hkv, l, cap, hd] of grid) {
        for (const masked of [false, true]) {
          const diff = tf.tidy(() => {
            const q = tf.randomNormal([b, h, hd], 0, 1, "float32", seed++) as tf.Tensor3D;
            const k = tf.randomNormal([b, hkv, cap, hd], 0, 1, "float32", seed++) as tf.Tensor4D;
            const v = tf.randomNormal([b, hkv, cap, hd], 0, 1, "float32", seed++) as tf.Tensor4D;
            // Mask about a fifth of the columns, never the last (a row must see something).
            const keep = tf.concat([
              tf.less(tf.randomUniform([b, 1, l - 1], 0, 1, "float32", seed++), 0.8),
              tf.ones([b, 1, 1], "bool"),
            ], 2);
            const mask = masked
              ? tf.mul(tf.sub(1, tf.cast(keep, "float32")), -1e9) as tf.Tensor3D
              : undefined;
            const z = decodeAttention(q, k, v, l, mask);
            assert(z !== null, `kernel refused [${b}, ${h}, ${hkv}, ${l}, ${cap}, ${hd}]`);
            return tf.max(tf.abs(tf.sub(z, reference(q, k, v, l, mask))));
          });
          const d = (await diff.data())[0];
          diff.dispose();
          assert(d < 1e-5, `[${b}, ${h}, ${hkv}, ${l}, ${cap}, ${hd}] masked=${masked}: max |Δ| ${d}`);
        }
      }
    } finally {
      setWasmNativeKernels(saved);
    }
    assertEquals(tf.memory().numTensors, before, "decodeAttention leaked tensors");
  });
}

Deno.test("decodeAttention declines what it cannot do: cpu, on wasm hd not a multiple of 4, a tape", async () => {
  await useBackend("wasm");
  const q = tf.ones([1, 2, 6]) as tf.Tensor3D, kv = tf.ones([1, 2, 4, 6]) as tf.Tensor4D;
  assertEquals(decodeAttention(q, kv, kv, 3), null, "hd 6 is not a multiple of 4");
  const q8 = tf.ones([1, 2, 8]) as tf.Tensor3D, kv8 = tf.ones([1, 2, 4, 8]) as tf.Tensor4D;
  assertEquals(decodeAttention(q8, kv8, kv8, 5), null, "length past the capacity");
  const w = tf.variable(tf.ones([1, 2, 8]));
  tf.variableGrads(() => {
    assertEquals(decodeAttention(tf.mul(q8, w) as tf.Tensor3D, kv8, kv8, 4), null, "under a tape");
    return tf.sum(w) as tf.Scalar;
  });
  tf.dispose([q, kv, q8, kv8, w]);
  await useBackend("cpu");
  const a = tf.ones([1, 1, 4]) as tf.Tensor3D, b = tf.ones([1, 1, 2, 4]) as tf.Tensor4D;
  assertEquals(decodeAttention(a, b, b, 2), null, "cpu has no fused kernel");
  tf.dispose([a, b]);
});

for (const backend of ["cpu", "wasm", "webgpu"] as const) {
  Deno.test(`writeColumnsInPlace[${backend}]: writes each row and head block; refuses shared or misfit buffers`, async () => {
    await useBackend(backend);
    assert(inPlaceWritesSupported());
    const buf = tf.keep(tf.add(tf.zeros([2, 2, 4, 2]), 0)) as tf.Tensor4D; // computed: on the device on webgpu
    assertEquals((await buf.array())[0][0][2], [0, 0]); // read once: webgpu then holds a CPU copy that must go stale
    const src = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 1, 2]);
    assert(writeColumnsInPlace(buf, src, 2));
    const got = await buf.array(); // webgpu has no synchronous reads under Deno
    assertEquals(got[0][0], [[0, 0], [0, 0], [1, 2], [0, 0]]);
    assertEquals(got[1][1], [[0, 0], [0, 0], [7, 8], [0, 0]]);
    assertEquals(writeColumnsInPlace(buf, src, 4), false, "past the capacity");
    assertEquals(
      writeColumnsInPlace(buf, tf.zeros([1, 2, 1, 2]) as tf.Tensor4D, 0),
      false,
      "row count differs",
    );
    const alias = tf.reshape(buf, [4, 4, 2]) as tf.Tensor3D; // shares buf's memory on both backends
    assertEquals(
      writeColumnsInPlace(buf, src, 0),
      false,
      "a buffer shared with another tensor must not change",
    );
    assertEquals((await alias.array())[0][0], [0, 0]);
    tf.dispose([buf, src, alias]);
  });
}

/** Greedy decode of `n` tokens with the cache; returns the tokens and the last step's logits. */
function greedy(model: Decoder, prompt: number[], n: number): { tokens: number[]; logits: number[] } {
  const cache = model.createCache(1);
  const tokens: number[] = [];
  let ids = prompt, logits: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = tf.tensor2d([ids], undefined, "int32");
    const r = model.forward(x, { cache, lastOnly: true });
    logits = Array.from(r.logits.dataSync().slice(-model.config.vocabSize));
    tf.dispose([x, r.logits, r.hidden, r.residual]);
    const next = logits.indexOf(Math.max(...logits));
    tokens.push(next);
    ids = [next];
  }
  cache.dispose();
  return { tokens, logits };
}

const small = { nLayers: 2, dModel: 32, nHeads: 4, vocabSize: 40, maxPositions: 256 };
for (
  const [kind, make] of [
    ["rotary, grouped", () => tinyModel(tinyRotaryConfig({ ...small, nKvHeads: 2 }), 21)],
    ["learned", () => tinyModel(tinyLearnedConfig(small), 22)],
  ] as const
) {
  Deno.test(`KV cache[${kind}]: wasm decoding through the in-place cache and fused kernel equals cpu`, async () => {
    const prompt = [3, 1, 4, 1, 5, 9, 2, 6];
    await useBackend("cpu");
    const m0 = make();
    const ref = greedy(m0, prompt, 150); // crosses the first capacity (8 + 64) and a doubling
    m0.dispose();
    await useBackend("wasm");
    const m1 = make();
    greedy(m1, prompt, 2); // warm-up
    const before = tf.memory().numTensors;
    decodeAttentionCalls(true);
    const got = greedy(m1, prompt, 150);
    assertEquals(
      decodeAttentionCalls(),
      149 * small.nLayers,
      "every one-token step should take the fused kernel",
    );
    assertEquals(tf.memory().numTensors, before, "decoding leaked tensors");
    let same = 0;
    while (same < ref.tokens.length && got.tokens[same] === ref.tokens[same]) same++;
    assert(same >= 100, `wasm and cpu greedy tokens part after ${same} of 150`);
    if (same === 150) {
      const d = Math.max(...got.logits.map((x, i) => Math.abs(x - ref.logits[i])));
      assert(d < 1e-3, `last-step logits differ by ${d}`);
    }
    m1.dispose();
  });
}

Deno.test("KVLayerState: writes in place under capacity, doubles when full, rewinds by moving the length", async () => {
  await useBackend("wasm");
  const s = new KVLayerState();
  const col = (x: number) => tf.fill([1, 2, 1, 4], x) as tf.Tensor4D;
  const caps: number[] = [];
  let rebuilt = 0, lastId: unknown = null;
  for (let i = 0; i < 300; i++) {
    const c = col(i);
    tf.tidy(() => {
      const buf = s.append(c, c);
      if (buf.k.dataId !== lastId) rebuilt++;
      lastId = buf.k.dataId;
    });
    s.commit({ appended: 1 });
    c.dispose();
    if (caps.at(-1) !== s.capacity) caps.push(s.capacity);
  }
  assertEquals(caps, [65, 130, 260, 520], "capacity starts at need + 64 and doubles");
  assertEquals(rebuilt, 4, "buffers are rebuilt only when they grow");
  assertEquals(s.past()!.k.arraySync()[0][1].map((r) => r[0]).slice(0, 5), [0, 1, 2, 3, 4]);
  s.keepColumns(Array.from({ length: 10 }, (_, i) => i));
  assertEquals([s.length, s.capacity], [10, 520], "a rewind keeps the buffer");
  tf.tidy(() => {
    s.append(col(77), col(77));
  });
  s.commit({ appended: 1 });
  assertEquals(s.past()!.k.arraySync()[0][0].map((r) => r[0]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 77]);
  // A forward that fails after appending commits nothing: the next one writes over its columns.
  tf.tidy(() => {
    s.append(col(5), col(5));
  });
  tf.tidy(() => {
    s.append(col(6), col(6));
  });
  s.commit({ appended: 1 });
  assertEquals(s.past()!.k.arraySync()[0][0].map((r) => r[0]).slice(-2), [77, 6]);
  s.dispose();
  assertEquals(s.past(), null);
});

Deno.test("KVLayerState: the capacity stops doubling at maxColumns (the model's context)", async () => {
  await useBackend("wasm");
  const s = new KVLayerState({ maxColumns: 100 });
  const col = tf.ones([1, 1, 1, 4]) as tf.Tensor4D;
  const caps = new Set<number>();
  for (let i = 0; i < 120; i++) {
    tf.tidy(() => {
      s.append(col, col);
    });
    s.commit({ appended: 1 });
    caps.add(s.capacity);
  }
  assertEquals([...caps], [65, 100, 165], "65 = 1 + 64, then doubling capped at 100, then 64 more");
  s.dispose();
  col.dispose();
});

Deno.test("KV cache[webgpu]: generation through the in-place cache and WGSL kernel equals cpu", async () => {
  const cfg = tinyRotaryConfig({ ...small, nKvHeads: 2 });
  const run = async (backend: "cpu" | "webgpu") => {
    await useBackend(backend);
    const m = tinyModel(cfg, 23);
    const t = await generate(m, [[3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8]], { maxNewTokens: 90, seeds: [1, 2] })
      .collect();
    m.dispose();
    return t;
  };
  const ref = await run("cpu");
  decodeAttentionCalls(true);
  const got = await run("webgpu");
  assert(decodeAttentionCalls() >= 89 * small.nLayers, "webgpu decode steps should take the fused kernel");
  for (let b = 0; b < 2; b++) {
    let same = 0;
    while (same < 90 && got.rows[b].tokens[same] === ref.rows[b].tokens[same]) same++;
    assert(same >= 60, `row ${b}: webgpu and cpu part after ${same} of 90 tokens`);
  }
});

Deno.test("KVLayerState: a capacity hint is reserved at the first forward; createCache checks it", async () => {
  await useBackend("wasm");
  const s = new KVLayerState({ capacity: 200, maxColumns: 256 });
  const col = tf.ones([1, 1, 3, 4]) as tf.Tensor4D;
  tf.tidy(() => {
    s.append(col, col);
  });
  s.commit({ appended: 3 });
  assertEquals(s.capacity, 200);
  s.dispose();
  col.dispose();
  const m = tinyModel(tinyRotaryConfig(small), 3);
  assertThrows(() => m.createCache(1, { capacity: 0 }), Error, "capacity must be a positive integer");
  const cache = m.createCache(2, { capacity: 50 });
  const x = tf.tensor2d([[1, 2, 3], [4, 5, 6]], undefined, "int32");
  const r = m.forward(x, { cache });
  tf.dispose([x, r.logits, r.hidden, r.residual]);
  assertEquals((cache.layerState(0) as KVLayerState).capacity, 50);
  cache.dispose();
  m.dispose();
});
