import { assert, assertJsonEquals } from "../assert.ts";
import {
  formatControls,
  formatRecyncTable,
  interventionLengths,
  RECYNC_PAPER_V4,
} from "../../lib/recync/report.ts";

Deno.test("paper table: no p for TinyLlama; header names the definitions", () => {
  const t = formatRecyncTable([]);
  const tiny = t.split("\n").find((l) => l.startsWith("| TinyLlama"))!;
  assert(tiny.split("|").map((c) => c.trim())[5] === "—", tiny);
  assert(RECYNC_PAPER_V4.filter((p) => p.pReported).length === 4);
  for (const word of ["Outcome window", "PIR", "Iatrogenic", "Crisis-free", "Wilcoxon", "Selection"]) {
    assert(t.includes(word), `header lacks ${word}`);
  }
  assert(formatControls([]).includes("### Null process"));
});

Deno.test("v3 intervention lengths: apply to stopEarly/end", () => {
  const log = [
    { step: 23, detail: { action: "apply" } },
    { step: 24, detail: { action: "stopEarly" } },
    { step: 40, detail: { action: "apply" } },
    { step: 41, detail: { action: "refilter" } },
    { step: 45, detail: { action: "end" } },
    { step: 90, detail: { action: "apply" } },
  ];
  assertJsonEquals(interventionLengths(log), [1, 5]);
});
