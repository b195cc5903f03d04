/** KV cache: per-row rewind equals a fresh prefill of the kept prefix; ragged left padding; compaction. */
import { assert, assertEquals, assertThrows, maxDiff } from "../assert.ts";
import { tf } from "../../lib/deps.ts";
import type { Decoder } from "../../lib/models/decoder.ts";
import type { KVCache } from "../../lib/models/kv_cache.ts";
import { tinyLearnedConfig, tinyModel, tinyRotaryConfig, useBackend } from "../fixtures.ts";

await useBackend("cpu");
const TOL = 1e-5;
const small = { nLayers: 2, dModel: 32, nHeads: 4, vocabSize: 50, maxPositions: 64 };
const MODELS = {
  rotary: () => tinyModel(tinyRotaryConfig({ ...small, nKvHeads: 2 }), 11),
  learned: () => tinyModel(tinyLearnedConfig(small), 12),
};

/** Runs rows of ids through the model (no cache); returns the logits as nested arrays. */
function logitsOf(model: Decoder, rows: number[][]): number[][][] {
  const x = tf.tensor2d(rows, undefined, "int32");
  const r = model.forward(x);
  const out = r.logits.arraySync();
  tf.dispose([x, r.logits, r.hidden, r.residual]);
  return out;
}

/** Feeds `rows` ([B, T]) into the cache; returns the logits. */
function feed(model: Decoder, cache: KVCache, rows: number[][], mask?: number[][]): number[][][] {
  const x = tf.tensor2d(rows, undefined, "int32");
  const m = mask ? tf.tensor2d(mask, undefined, "int32") : undefined;
  const r = model.forward(x, { cache, attentionMask: m });
  const out = r.logits.arraySync();
  tf.dispose([x, r.logits, r.hidden, r.residual, ...(m ? [m] : [])]);
  return out;
}

function snapshot(cache: KVCache, row: number): number[][] {
  const snap = cache.snapshotRow(row);
  const out = snap.flatMap((s) => [Array.from(s.k.dataSync()), Array.from(s.v.dataSync())]);
  tf.dispose(snap.flatMap((s) => [s.k, s.v]));
  return out;
}

for (const [kind, make] of Object.entries(MODELS)) {
  Deno.test(`kv cache[${kind}]: truncateRow rewinds one row to exactly a fresh prefill of its kept prefix`, () => {
    const model = make();
    const before = tf.memory().numTensors;
    const a = [3, 14, 15, 9, 26, 5], b = [27, 18, 28, 18, 28, 4];
    const cache = model.createCache(2);
    feed(model, cache, [a, b]);
    feed(model, cache, [[7], [8]]);
    feed(model, cache, [[9], [10]]);
    const row1Before = snapshot(cache, 1);
    cache.truncateRow(0, 4);
    assertEquals(cache.rowLengths(), [4, 8]);

    const fresh = model.createCache(1);
    feed(model, fresh, [a.slice(0, 4)]);
    const sFresh = snapshot(fresh, 0), sRewound = snapshot(cache, 0);
    sFresh.forEach((f, i) => assert(maxDiff(f, sRewound[i]) < TOL, `layer tensor ${i} differs after rewind`));
    assertEquals(snapshot(cache, 1), row1Before, "truncating row 0 touched row 1");

    // Continue both rows: row 0 continues at position 4, row 1 at position 8.
    const next = feed(model, cache, [[33], [34]]);
    assertEquals(cache.rowLengths(), [5, 9]);
    const ref0 = logitsOf(model, [[...a.slice(0, 4), 33]])[0][4];
    const ref1 = logitsOf(model, [[...b, 8, 10, 34]])[0][8];
    assert(maxDiff(next[0][0], ref0) < TOL, "row 0 after rewind differs from a fresh run");
    assert(maxDiff(next[1][0], ref1) < TOL, "row 1 changed by row 0's rewind");

    // Rewind row 1 too: columns dead in both rows appear, and compact() drops them without changing results.
    cache.truncateRow(1, 6);
    const cols = cache.columns;
    cache.compact();
    assertEquals(cache.columns, cols - 2, "compact should drop the 2 columns no row uses");
    const after = feed(model, cache, [[1], [2]]);
    assert(
      maxDiff(after[0][0], logitsOf(model, [[...a.slice(0, 4), 33, 1]])[0][5]) < TOL,
      "compact changed row 0",
    );
    assert(maxDiff(after[1][0], logitsOf(model, [[...b, 2]])[0][6]) < TOL, "compact changed row 1");
    assertEquals(cache.rowLengths(), [6, 7]);
    cache.dispose();
    fresh.dispose();
    assertEquals(tf.memory().numTensors, before, "cache leaked tensors");
    model.dispose();
  });

  Deno.test(`kv cache[${kind}]: left-padded ragged prompts match unpadded single-row runs`, () => {
    const model = make();
    const long = [5, 6, 7, 8, 9], short = [40, 41];
    const cache = model.createCache(2);
    const out = feed(model, cache, [long, [0, 0, 0, ...short]], [[1, 1, 1, 1, 1], [0, 0, 0, 1, 1]]);
    assertEquals(cache.rowLengths(), [5, 2]);
    const refShort = logitsOf(model, [short])[0];
    assert(
      maxDiff(out[1][3], refShort[0]) < TOL && maxDiff(out[1][4], refShort[1]) < TOL,
      "padded row differs",
    );
    const refLong = logitsOf(model, [long])[0];
    assert(maxDiff(out[0][4], refLong[4]) < TOL);
    const step = feed(model, cache, [[11], [12]]);
    assert(
      maxDiff(step[1][0], logitsOf(model, [[...short, 12]])[0][2]) < TOL,
      "decode after padding differs",
    );
    assert(maxDiff(step[0][0], logitsOf(model, [[...long, 11]])[0][5]) < TOL);
    // Rewinding the padded row counts only its real tokens.
    cache.truncateRow(1, 1);
    const again = feed(model, cache, [[13], [14]]);
    assert(maxDiff(again[1][0], logitsOf(model, [[40, 14]])[0][1]) < TOL);
    cache.dispose();
    model.dispose();
  });
}

Deno.test("kv cache: truncate() drops columns; bad rewinds and mismatched caches fail clearly", () => {
  const model = MODELS.rotary();
  const cache = model.createCache(2);
  feed(model, cache, [[1, 2, 3, 4], [5, 6, 7, 8]]);
  cache.truncate(2);
  assertEquals(cache.rowLengths(), [2, 2]);
  assertEquals(cache.columns, 2);
  assertThrows(() => cache.truncateRow(0, 3), "holds 2 positions");
  assertThrows(() => cache.truncateRow(2, 0), "out of range");
  const x = tf.tensor2d([[1]], [1, 1], "int32");
  assertThrows(() => model.forward(x, { cache }), "cache has 2 rows");
  cache.truncate(0);
  assertEquals(cache.columns, 0);
  feed(model, cache, [[1], [2]]);
  assertEquals(cache.rowLengths(), [1, 1]);
  cache.dispose();
  assertThrows(() => cache.rowLengths().length && cache.truncate(0), "used after dispose");
  const big = tf.tensor2d([Array.from({ length: 65 }, () => 1)], undefined, "int32");
  assertThrows(() => model.forward(big), "exceed maxPositions");
  tf.dispose([x, big]);
  model.dispose();
});
