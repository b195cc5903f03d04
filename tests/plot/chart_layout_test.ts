/**
 * Every chart kind, rendered to SVG: no text outside the viewBox (clipped), labels that do not overprint,
 * and legend entries only for what is drawn. PNGs go to $COHERENCE_CHART_DIR when set, to look at.
 */
import { parseHTML } from "../../lib/deps.ts";
import { cosimTracePlot } from "../../lib/plot/charts.ts";
import { savePng, toSvgString } from "../../lib/plot/mod.ts";
import { lossCurvePlot } from "../../lib/train/display.ts";
import { recyncForestPlot, recyncUnitTracePlot, summarizeRecync } from "../../lib/recync/report.ts";
import type { PlotFigure } from "../../lib/plot/plot.ts";
import { readRecyncResults } from "../../lib/recync/report.ts";
import { runRecyncExperiment } from "../../lib/recync/harness.ts";
import { initBackend } from "../../lib/backend/backend.ts";
import { createDecoder, gpt2NewConfig } from "../../lib/models/scratch.ts";
import { CharTokenizer } from "../../lib/tokenizers/char.ts";
import { assert } from "../assert.ts";

interface Box {
  text: string;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

const num = (v: string | null, em = 10) =>
  v === null ? 0 : v.endsWith("em") ? parseFloat(v) * em : parseFloat(v) || 0;

/** Approximate boxes of every text run, following translate()s and nested <svg x y>. */
export function textBoxes(svg: string): { width: number; height: number; boxes: Box[] } {
  // linkedom's types are loose; only these few DOM members are used.
  type Node = {
    tagName: string;
    nodeType: number;
    textContent: string | null;
    childNodes: Node[];
    children: Node[];
    getAttribute(name: string): string | null;
  };
  const parsed = parseHTML(`<html><body>${svg}</body></html>`) as unknown as {
    document: { querySelector(sel: string): Node | null };
  };
  const root = parsed.document.querySelector("svg")!;
  const [, , width, height] = (root.getAttribute("viewBox") ?? "0 0 0 0").split(/\s+/).map(Number);
  const boxes: Box[] = [];
  const walk = (el: Node, ox: number, oy: number, anchor: string, size: number) => {
    const t = /translate\(\s*([-\d.e]+)[ ,]*([-\d.e]*)\s*\)/.exec(el.getAttribute("transform") ?? "");
    if (t) [ox, oy] = [ox + Number(t[1]), oy + Number(t[2] || 0)];
    if (el.tagName.toLowerCase() === "svg" && el !== root) {
      [ox, oy] = [ox + num(el.getAttribute("x")), oy + num(el.getAttribute("y"))];
    }
    anchor = el.getAttribute("text-anchor") ?? anchor;
    size = num(el.getAttribute("font-size")) || size;
    const tag = el.tagName.toLowerCase();
    if (tag === "text" || tag === "tspan") {
      const own = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join("")
        .trim();
      const x = ox + num(el.getAttribute("x"), size) + num(el.getAttribute("dx"), size);
      const y = oy + num(el.getAttribute("y"), size) + num(el.getAttribute("dy"), size);
      if (own) {
        const w = 0.6 * size * own.length;
        const left = anchor === "middle" ? x - w / 2 : anchor === "end" ? x - w : x;
        boxes.push({ text: own, left, right: left + w, top: y - size, bottom: y + 0.3 * size });
      }
      if (tag === "text") [ox, oy] = [x, y];
    }
    for (const c of el.children) walk(c, ox, oy, anchor, size);
  };
  walk(root, 0, 0, "start", 10);
  return { width, height, boxes };
}

function checkLayout(name: string, fig: PlotFigure): Box[] {
  const { width, height, boxes } = textBoxes(toSvgString(fig));
  for (const b of boxes) {
    assert(
      b.left >= -2 && b.right <= width + 2 && b.top >= -2 && b.bottom <= height + 2,
      `${name}: text "${b.text}" is clipped: x ${b.left.toFixed(0)}..${b.right.toFixed(0)}, ` +
        `y ${b.top.toFixed(0)}..${b.bottom.toFixed(0)} outside 0..${width} x 0..${height}`,
    );
  }
  return boxes;
}

const overlaps = (a: Box, b: Box) =>
  a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;

async function look(name: string, fig: PlotFigure) {
  const dir = Deno.env.get("COHERENCE_CHART_DIR");
  if (dir) await savePng(`${dir}/${name}.png`, fig, { scale: 1 });
}

const trace = Array.from({ length: 120 }, (_, i) => 0.9 + 0.05 * Math.sin(i / 3));

Deno.test("cosim trace: neighbouring event labels do not overprint, none is clipped, the caption names the threshold", async () => {
  const fig = cosimTracePlot(trace, {
    thresholds: trace.map((v) => v - 0.03),
    thresholdLabel: "crisis threshold (mean − 0.6·std of the previous 20 values)", // as the demo draws it
    events: [
      { step: 30, label: "crisis (mild)" },
      { step: 33, label: "crisis (severe)" },
      { step: 36, label: "crisis (mild)" },
      { step: 118, label: "crisis (mild)" },
    ],
  });
  const boxes = checkLayout("cosim", fig);
  const labels = boxes.filter((b) => b.text.startsWith("crisis ("));
  assert(labels.length === 4, JSON.stringify(labels));
  for (let i = 0; i < labels.length; i++) {
    for (let j = i + 1; j < labels.length; j++) {
      assert(!overlaps(labels[i], labels[j]), `"${labels[i].text}" overprints "${labels[j].text}"`);
    }
  }
  assert(boxes.some((b) => b.text.includes("dashed red: crisis threshold")), "threshold has no legend");
  await look("cosim", fig);
});

Deno.test("loss curve: no 'val' legend entry without evaluation records; axes have units", async () => {
  const recs = [1, 2, 3].map((step) => ({
    kind: "train" as const,
    step,
    loss: 3 - step / 10,
    elapsed: step,
  }));
  const boxes = checkLayout("loss", lossCurvePlot(recs));
  assert(!boxes.some((b) => b.text === "val"), "empty 'val' legend entry");
  assert(boxes.some((b) => b.text.includes("nats")), "the y axis names its unit");
  await look("loss", lossCurvePlot(recs));
});

/** Real unit records from a tiny seeded model, with a long model label. */
async function records() {
  await initBackend({ backend: "cpu" });
  const tokenizer = CharTokenizer.fromCorpus("abcdefghij ");
  const config = gpt2NewConfig({
    nLayers: 1,
    dModel: 16,
    nHeads: 2,
    vocabSize: tokenizer.vocabSize,
    maxPositions: 96,
  });
  const model = createDecoder(config, { seed: 1 });
  const out = await Deno.makeTempFile({ suffix: ".jsonl" });
  const prompts = ["abc", "hij", "bad", "cafe", "jig", "head"].map((text, i) => ({ id: `p${i}`, text }));
  await runRecyncExperiment({
    model,
    tokenizer,
    modelLabel: "data/models/a-rather-long-model-folder-name",
    prompts,
    seeds: 2,
    T: 60,
    policy: "v4",
    out,
  });
  model.dispose();
  return (await readRecyncResults([out])).records;
}

Deno.test("recync trace and forest: named bands, thresholds and restarts; legend entries only for what is drawn", async () => {
  const recs = await records();
  const one = recs.find((r) => r.intervened) ?? recs[0];
  const fig = recyncUnitTracePlot(one, { arms: ["baseline"] });
  const boxes = checkLayout("trace", fig);
  assert(!boxes.some((b) => b.text === "intervention"), "legend lists 'intervention' with no series");
  assert(boxes.some((b) => b.text.includes("dashed")), "the threshold lines are not named");
  await look("trace", fig);
  const both = recyncUnitTracePlot(one);
  checkLayout("trace-both", both);
  await look("trace-both", both);
  const summaries = summarizeRecync(recs, { resamples: 50, seed: 1 });
  const forest = recyncForestPlot(summaries);
  const fb = checkLayout("forest", forest);
  assert(!fb.some((b) => b.text === "paper"), "legend lists 'paper' with no paper marks");
  await look("forest", forest);
});
