import { assert, assertAlmostEquals, assertEquals } from "../assert.ts";
import {
  type ArmUnit,
  bootstrapDzDifference,
  clusterReplicateDz,
  controlRows,
  dzOf,
} from "../../lib/recync/controls.ts";
import type { RecyncUnitRecord } from "../../lib/recync/harness.ts";

// Prompt A holds units with Δ 1 and 2, prompt B one unit with Δ 4.
const UNITS: ArmUnit[] = [
  { pairId: "a0", cluster: "A", delta: 1 },
  { pairId: "a1", cluster: "A", delta: 2 },
  { pairId: "b0", cluster: "B", delta: 4 },
];
// By hand: {A, A} → [1, 2, 1, 2]: mean 1.5, sd √(1/3) → d 1.5·√3 = 2.5981;
// {A, B} or {B, A} → [1, 2, 4]: mean 7/3, var 7/3 → d (7/3)/√(7/3) = √(7/3) = 1.5275; {B, B} → sd 0: none.
const D_AA = 1.5 * Math.sqrt(3), D_AB = Math.sqrt(7 / 3);

Deno.test("prompt-clustered bootstrap: replicates match the hand-computed example", () => {
  assertAlmostEquals(clusterReplicateDz(UNITS, ["A", "A"]), D_AA, 1e-12);
  assertAlmostEquals(clusterReplicateDz(UNITS, ["B", "A"]), D_AB, 1e-12);
  assert(Number.isNaN(clusterReplicateDz(UNITS, ["B", "B"])));
  assertAlmostEquals(dzOf([1, 2, 4]), D_AB, 1e-12);
  const B = 4000;
  const res = bootstrapDzDifference(UNITS, [], { level: "prompt", resamples: B, seed: 3 });
  // Only two finite values can occur, D_AB (prob 1/2) and D_AA (1/4): the 2.5/97.5 % limits are them.
  assertAlmostEquals(res.a.lower, D_AB, 1e-12);
  assertAlmostEquals(res.a.upper, D_AA, 1e-12);
  assert(Math.abs(res.a.replicates / B - 0.75) < 0.03, `${res.a.replicates} finite of ${B}`);
  assertAlmostEquals(res.a.estimate, D_AB, 1e-12);
  // The unit level resamples the three units: other replicates, wider spread.
  const unit = bootstrapDzDifference(UNITS, [], { level: "unit", resamples: B, seed: 3 });
  assert(unit.a.upper > D_AA, `${unit.a.upper}`);
});

Deno.test("difference of d: both arms resampled together, paired by unit", () => {
  const shifted = UNITS.map((u) => ({ ...u, delta: u.delta + 0.5 }));
  // Identical arms: the difference is 0 in every replicate.
  const same = bootstrapDzDifference(UNITS, UNITS, { resamples: 500 });
  assertEquals([same.difference.lower, same.difference.upper], [0, 0]);
  const diff = bootstrapDzDifference(shifted, UNITS, { resamples: 500 });
  assertAlmostEquals(diff.difference.estimate, dzOf([1.5, 2.5, 4.5]) - D_AB, 1e-12);
});

Deno.test("control rows: each observed policy against each control present", () => {
  const rec = (policy: string, seed: number, delta: number) =>
    ({
      model: "m",
      T: 50,
      policy,
      promptId: `p${seed % 3}`,
      seed,
      pairId: `m|p${seed % 3}|${seed}|50`,
      intervened: true,
      metrics: { delta: { crisisFraction: delta } },
    }) as unknown as RecyncUnitRecord;
  const records = [0, 1, 2, 3, 4, 5].flatMap((s) => [
    rec("v4", s, 0.1 + 0.05 * s),
    rec("sham-matched", s, 0.05 * s),
  ]);
  const rows = controlRows(records, { resamples: 300 });
  assertEquals(rows.map((r) => [r.policy, r.control, r.nPolicy, r.nControl]), [["v4", "sham-matched", 6, 6]]);
  assert(rows[0].unit.difference.estimate > 0);
});
