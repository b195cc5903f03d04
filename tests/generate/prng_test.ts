import { assert, assertEquals, assertThrows } from "../assert.ts";
import { fillNormal, fillTruncatedNormal, fillUniform, Prng, type PrngState } from "../../lib/random/prng.ts";

Deno.test("prng: xoshiro128** core matches the reference sequence for state [1,2,3,4]", () => {
  // Worked by hand from the reference C code: rotl(s1*5, 7)*9 with the xoshiro128 state update.
  const rng = Prng.fromState({ algorithm: "xoshiro128**", s: [1, 2, 3, 4], spareNormal: null });
  assertEquals([rng.nextUint32(), rng.nextUint32(), rng.nextUint32()], [11520, 0, 5927040]);
});

Deno.test("prng: seeded outputs are pinned and deterministic", () => {
  const a = new Prng(42);
  assertEquals([a.nextUint32(), a.nextUint32(), a.nextUint32(), a.nextUint32()], [
    3356598490,
    1689523646,
    2845085624,
    1620110432,
  ]);
  const b = new Prng(42, 1);
  assertEquals([b.nextUint32(), b.nextUint32(), b.nextUint32()], [1176581619, 3498753012, 873920899]);
  const x = new Prng(123), y = new Prng(123);
  for (let i = 0; i < 1000; i++) assertEquals(x.nextFloat(), y.nextFloat());
  assert(new Prng(1).nextUint32() !== new Prng(2).nextUint32());
  assertEquals(new Prng(5n).nextUint32(), new Prng(5).nextUint32());
});

Deno.test("prng: state round trips through JSON, including the cached normal", () => {
  const rng = new Prng(9);
  rng.nextNormal(); // leaves a spare normal in the state
  const saved: PrngState = JSON.parse(JSON.stringify(rng.getState()));
  assert(saved.spareNormal !== null);
  const expected = [rng.nextNormal(), rng.nextNormal(), rng.nextFloat(), rng.nextInt(1000)];
  const restored = Prng.fromState(saved);
  assertEquals(
    [restored.nextNormal(), restored.nextNormal(), restored.nextFloat(), restored.nextInt(1000)],
    expected,
  );
  rng.setState(saved);
  assertEquals(rng.nextNormal(), expected[0]);
});

Deno.test("prng: setState rejects malformed states with a clear message", () => {
  const rng = new Prng(1);
  assertThrows(() => rng.setState({ algorithm: "pcg32" } as unknown as PrngState), TypeError, "algorithm");
  assertThrows(
    () => rng.setState({ algorithm: "xoshiro128**", s: [1, 2, 3] } as unknown as PrngState),
    TypeError,
    "state.s",
  );
  assertThrows(
    () => rng.setState({ algorithm: "xoshiro128**", s: [0, 0, 0, 0], spareNormal: null }),
    RangeError,
  );
  assertThrows(() => new Prng(1.5), RangeError, "seed");
  assertThrows(() => rng.nextInt(0), RangeError);
});

Deno.test("prng: fork is a pure function of the current state and stream id", () => {
  const rng = new Prng(77);
  const c1 = rng.fork(3), c2 = rng.fork(3), c3 = rng.fork(4);
  const v1 = c1.nextUint32();
  assertEquals(v1, c2.nextUint32());
  assert(v1 !== c3.nextUint32());
  const parent = new Prng(77);
  assertEquals(rng.nextUint32(), parent.nextUint32()); // forking did not advance the parent
});

Deno.test("prng: floats and ints are uniform (chi-square), normals have mean 0 and variance 1", () => {
  const rng = new Prng(2024);
  const bins = 20, n = 40000;
  const counts = new Array(bins).fill(0);
  for (let i = 0; i < n; i++) {
    const u = rng.nextFloat();
    assert(u >= 0 && u < 1);
    counts[Math.floor(u * bins)]++;
  }
  const e = n / bins;
  const chi = counts.reduce((s, c) => s + (c - e) ** 2 / e, 0);
  // 19 degrees of freedom: the 99.9% quantile is 43.8.
  assert(chi < 43.8, `chi-square ${chi}`);
  const k = 7, ints = new Array(k).fill(0);
  for (let i = 0; i < 14000; i++) ints[rng.nextInt(k)]++;
  const chiInt = ints.reduce((s, c) => s + (c - 2000) ** 2 / 2000, 0);
  assert(chiInt < 22.5, `chi-square ints ${chiInt}`); // 6 dof, 99.9%
  const z = fillNormal(new Float64Array(40000), 0, 1, rng);
  const mean = z.reduce((s, v) => s + v, 0) / z.length;
  const variance = z.reduce((s, v) => s + (v - mean) ** 2, 0) / z.length;
  assert(Math.abs(mean) < 0.03, `mean ${mean}`);
  assert(Math.abs(variance - 1) < 0.04, `variance ${variance}`);
});

Deno.test("prng: fill helpers respect their ranges and shuffle permutes", () => {
  const rng = new Prng(11);
  const u = fillUniform(new Float32Array(1000), 2, 3, rng);
  assert(u.every((v) => v >= 2 && v <= 3));
  const t = fillTruncatedNormal(new Float32Array(1000), 1, 0.5, rng, 2);
  assert(t.every((v) => Math.abs(v - 1) <= 1.0000001));
  const p = rng.shuffle([0, 1, 2, 3, 4, 5, 6, 7]);
  assertEquals([...p].sort(), [0, 1, 2, 3, 4, 5, 6, 7]);
});
