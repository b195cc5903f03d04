import { strict as assert } from "node:assert";
import {
  cosimTracePlot,
  Plot,
  plot,
  plotMimeBundle,
  savePng,
  saveSvg,
  svgToPng,
  toSvgString,
} from "../../lib/plot/mod.ts";
import { decodePng } from "./png_decode.ts";
import { JUPYTER_DISPLAY } from "../../lib/notebook/mod.ts";

const data = Array.from({ length: 20 }, (_, i) => ({ x: i, y: Math.sin(i / 3), v: i, k: ["a", "b"][i % 2] }));

/** Counts pixels darker than `max` (all channels) in rows [y0, y1). */
function darkPixels(img: { width: number; rgba: Uint8Array }, y0: number, y1: number, max = 100): number {
  let n = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = 0; x < img.width; x++) {
      const i = (y * img.width + x) * 4;
      if (img.rgba[i] < max && img.rgba[i + 1] < max && img.rgba[i + 2] < max) n++;
    }
  }
  return n;
}

Deno.test("plot: a bare chart is a namespaced standalone SVG with marks, axes and labels", () => {
  const fig = plot({
    marks: [Plot.lineY(data, { x: "x", y: "y" }), Plot.ruleY([0])],
    y: { label: "signal" },
  });
  assert.equal(fig.tagName.toLowerCase(), "svg");
  const svg = toSvgString(fig);
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.ok(svg.includes('aria-label="line"'), "line mark present");
  assert.ok(svg.includes('aria-label="rule"'), "rule mark present");
  assert.ok(svg.includes("signal"), "axis label present");
  assert.ok((svg.match(/<text/g) ?? []).length > 5, "tick labels present");
});

Deno.test("plot: figures with title, swatches and caption are laid out into one SVG", async () => {
  const fig = plot({
    title: "My title",
    subtitle: "sub",
    caption: "the caption",
    color: { legend: true },
    marks: [Plot.lineY(data, { x: "x", y: "y", stroke: "k" })],
  });
  assert.equal(fig.tagName.toLowerCase(), "figure");
  const svg = toSvgString(fig);
  assert.equal((svg.match(/<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g) ?? []).length >= 2, true);
  for (const s of ["My title", "sub", "the caption", ">a</text>", ">b</text>"]) assert.ok(svg.includes(s), s);
  assert.ok(!svg.includes("<h2") && !svg.includes("<div") && !svg.includes("<span"), "no HTML left");
  const height = Number(/height="(\d+)"/.exec(svg)![1]);
  assert.ok(height > 400, `figure taller than the chart: ${height}`);
  // resvg parses SVG as strict XML, so this also checks the composed document is well formed.
  assert.equal((await decodePng(await svgToPng(svg, { scale: 0.5 }))).height, Math.round(height / 2));
});

Deno.test("plot: continuous colour legends (ramp) render instead of crashing the DOM shim", () => {
  const fig = plot({
    color: { legend: true, label: "value" },
    marks: [Plot.dot(data, { x: "x", y: "y", fill: "v" })],
  });
  const svg = toSvgString(fig);
  assert.ok(svg.includes("data:image/svg+xml;base64,"), "ramp image embedded");
  const b64 = /data:image\/svg\+xml;base64,([A-Za-z0-9+/=]+)/.exec(svg)![1];
  const ramp = atob(b64);
  assert.equal((ramp.match(/<rect /g) ?? []).length, 256);
});

Deno.test("plot: rich display bundle for the Jupyter kernel", () => {
  const fig = plot({ marks: [Plot.dot(data, { x: "x", y: "y" })] }) as unknown as Record<
    symbol,
    () => unknown
  >;
  const bundle = fig[JUPYTER_DISPLAY]() as Record<string, string>;
  assert.ok(bundle["image/svg+xml"].startsWith("<svg xmlns="));
  assert.equal(bundle["text/plain"], "Plot figure 640x400");
  assert.deepEqual(Object.keys(plotMimeBundle(fig as never)), ["image/svg+xml", "text/plain"]);
});

Deno.test("plot: PNG has a valid signature, the requested scale and rendered (dark) title text", async () => {
  const fig = plot({
    title: "Rendered text",
    width: 300,
    height: 120,
    marks: [Plot.frame({ stroke: "#ccc" })],
  });
  const dir = await Deno.makeTempDir();
  try {
    await savePng(`${dir}/sub/fig.png`, fig, { scale: 2 });
    const bytes = await Deno.readFile(`${dir}/sub/fig.png`);
    assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const img = await decodePng(bytes);
    assert.equal(img.width, 600);
    // The title band (the first 24 SVG units) holds only the title: dark pixels there mean text was drawn.
    const inTitle = darkPixels(img, 0, 48);
    assert.ok(inTitle > 100, `title text rendered (${inTitle} dark pixels)`);
    // A figure without a title has no dark pixels in the same band: the check above can fail.
    const blank = await decodePng(await svgToPng(plot({ width: 300, height: 120, marks: [] }), { scale: 2 }));
    assert.equal(darkPixels(blank, 0, 10), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("plot: saveSvg writes the standalone SVG atomically (no temp files left)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const fig = cosimTracePlot([0.9, 0.95, 0.99], {
      threshold: 0.98,
      events: [{ step: 1, label: "crisis" }, 2],
    });
    await saveSvg(`${dir}/trace.svg`, fig);
    const text = await Deno.readTextFile(`${dir}/trace.svg`);
    assert.equal(text, toSvgString(fig));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["trace.svg"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cosimTracePlot: line, threshold rule, event rules and labels", () => {
  const svg = toSvgString(
    cosimTracePlot([0.5, 0.7, 0.99, 0.6], {
      threshold: 0.98,
      events: [{ step: 2, label: "crisis" }],
      startStep: 10,
    }),
  );
  assert.ok(svg.includes('aria-label="line"'));
  assert.equal((svg.match(/aria-label="rule"/g) ?? []).length, 2, "threshold rule + event rule");
  assert.ok(svg.includes("crisis"));
  assert.ok(svg.includes("cosine similarity"));
  assert.ok(svg.includes(">10<") || svg.includes(">10.0<"), "steps start at startStep");
  const withThr = toSvgString(cosimTracePlot([0.5, 0.7, 0.6], { thresholds: [null, 0.55, 0.6] }));
  assert.equal((withThr.match(/aria-label="line"/g) ?? []).length, 2, "trace line + threshold line");
  const noExtras = toSvgString(cosimTracePlot([0.5, 0.7]));
  assert.equal((noExtras.match(/aria-label="rule"/g) ?? []).length, 0);
});
