import { BatchSampler, sequentialBatches } from "../../lib/data/sampler.ts";
import { assert, assertJsonEquals as assertEquals, assertThrows } from "../assert.ts";

const ids = Uint16Array.from({ length: 1000 }, (_, i) => (i * 7) % 65);

Deno.test("batch sampler: same seed gives the same batches; targets are inputs shifted by one", () => {
  const a = new BatchSampler(ids, { batchSize: 4, blockSize: 16, seed: 3 });
  const b = new BatchSampler(ids, { batchSize: 4, blockSize: 16, seed: 3 });
  for (let i = 0; i < 5; i++) {
    const x = a.next(), y = b.next();
    assertEquals(x.x, y.x);
    assertEquals(x.y, y.y);
    for (let r = 0; r < 4; r++) {
      for (let t = 0; t < 15; t++) assertEquals(x.y[r * 16 + t], x.x[r * 16 + t + 1]);
    }
  }
  const c = new BatchSampler(ids, { batchSize: 4, blockSize: 16, seed: 4 });
  assert(
    JSON.stringify(Array.from(c.next().x)) !==
      JSON.stringify(Array.from(new BatchSampler(ids, { batchSize: 4, blockSize: 16, seed: 3 }).next().x)),
  );
});

Deno.test("batch sampler: a saved position resumes the exact stream", () => {
  const a = new BatchSampler(ids, { batchSize: 2, blockSize: 8, seed: 11 });
  for (let i = 0; i < 7; i++) a.next();
  const state = JSON.parse(JSON.stringify(a.getState()));
  const expected = [a.next(), a.next()];
  const b = new BatchSampler(ids, { batchSize: 2, blockSize: 8, seed: 999 });
  b.setState(state);
  assertEquals(b.batchesDrawn, 7);
  assertEquals(b.next().x, expected[0].x);
  assertEquals(b.next().y, expected[1].y);
});

Deno.test("batch sampler: every offset in range, the last window reachable", () => {
  const small = Uint16Array.from({ length: 10 }, (_, i) => i);
  const s = new BatchSampler(small, { batchSize: 50, blockSize: 4, seed: 1 });
  const starts = new Set<number>();
  for (let i = 0; i < 10; i++) {
    const b = s.next();
    for (let r = 0; r < 50; r++) starts.add(b.x[r * 4]);
  }
  assertEquals([...starts].sort((p, q) => p - q), [0, 1, 2, 3, 4, 5]); // o ∈ [0, N − T − 1]
});

Deno.test("a split shorter than one block gets a clear error", () => {
  assertThrows(
    () => new BatchSampler(new Uint16Array(8), { batchSize: 1, blockSize: 8, seed: 0 }),
    Error,
    "fewer than one block",
  );
  assertThrows(() => sequentialBatches(new Uint16Array(5), 1, 8), Error, "fewer than one block");
  assertThrows(() => new BatchSampler(ids, { batchSize: 0, blockSize: 8, seed: 0 }), RangeError, "batchSize");
});

Deno.test("sequential evaluation batches tile the split without overlap", () => {
  const seq = Uint16Array.from({ length: 50 }, (_, i) => i);
  const batches = sequentialBatches(seq, 2, 8);
  assertEquals(batches.map((b) => b.batchSize), [2, 2, 2]); // 6 windows of 8 from 49 usable
  assertEquals(Array.from(batches[1].x.slice(0, 3)), [16, 17, 18]);
  assertEquals(batches[2].y[15], 48);
  assertEquals(sequentialBatches(seq, 2, 8, 1).length, 1);
});
