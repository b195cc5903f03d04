import { assertEquals, assertThrows } from "../assert.ts";
import { V3Controller } from "../../lib/recync/controller.ts";

/** A crisis confirmed at step 23, then cosim back above the threshold from step 24 on. */
const SERIES = [
  ...Array.from({ length: 20 }, (_, i) => 0.9 + (i % 2 ? 0.01 : -0.01)),
  0.89,
  0.885,
  0.88,
  0.95,
  0.95,
  0.95,
];

function stops(gateDelay?: number): { apply: number; stop: number; length: number } {
  const ctl = new V3Controller(gateDelay === undefined ? {} : { gateDelay });
  SERIES.forEach((c, i) => ctl.observe(c, null, i + 1));
  const apply = ctl.log.find((e) => e.action === "apply")!.step;
  const stop = ctl.log.find((e) => e.action === "stopEarly")!.step;
  return { apply, stop, length: stop - apply };
}

Deno.test("v3 gate delay: the gate waits for the first step the intervention can affect", () => {
  // Applied after step 23 (from y_24 on). cosim(24) = cos(h_24, h_23) predates that change.
  assertEquals(stops(1), { apply: 23, stop: 24, length: 1 }); // the earlier behaviour: one-token interventions
  assertEquals(stops(), { apply: 23, stop: 25, length: 2 }); // default 2: first affected state
  assertEquals(stops(3), { apply: 23, stop: 26, length: 3 });
  assertThrows(() => new V3Controller({ gateDelay: 0 }));
});
