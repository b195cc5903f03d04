import { strict as assert } from "node:assert";
import {
  display,
  formatProgressDuration,
  html,
  isJupyter,
  isMimeBundle,
  JUPYTER_DISPLAY,
  LivePlot,
  md,
  type MimeBundle,
  mimeBundleOf,
  type NotebookDisplayOptions,
  Progress,
  richDisplay,
} from "../../lib/notebook/mod.ts";
import { Plot, plot } from "../../lib/plot/mod.ts";

/** A display sink that records what a kernel would receive. */
function recorder() {
  const calls: { bundle: MimeBundle; options: NotebookDisplayOptions }[] = [];
  const sink = (bundle: MimeBundle, options: NotebookDisplayOptions) => {
    calls.push({ bundle, options });
    return Promise.resolve();
  };
  return { calls, sink };
}

Deno.test("notebook: not in Jupyter under deno test", () => {
  assert.equal(isJupyter(), false);
});

Deno.test("notebook: html escapes values, nests html, md keeps source", async () => {
  const cell = html`<td>${"<b>&"}</td>`;
  assert.equal(
    String(html`<tr>${cell}${[html`<i>1</i>`, 2]}${null}</tr>`),
    "<tr><td>&lt;b&gt;&amp;</td><i>1</i>2</tr>",
  );
  assert.deepEqual(await mimeBundleOf(cell), { "text/html": "<td>&lt;b&gt;&amp;</td>" });
  const m = md`# Title ${1 + 1}`;
  assert.deepEqual(await mimeBundleOf(m), { "text/markdown": "# Title 2", "text/plain": "# Title 2" });
});

Deno.test("notebook: mimeBundleOf handles bundles, rich objects, DOM elements and plain values", async () => {
  assert.ok(isMimeBundle({ "text/html": "<p/>" }));
  assert.ok(!isMimeBundle({ loss: 1 }));
  assert.ok(!isMimeBundle(new Map()));
  assert.deepEqual(await mimeBundleOf({ "image/svg+xml": "<svg/>" }), { "image/svg+xml": "<svg/>" });
  const obj = richDisplay({ n: 3 }, (o) => Promise.resolve({ "text/plain": `n=${o.n}` }));
  assert.deepEqual(await mimeBundleOf(obj), { "text/plain": "n=3" });
  assert.deepEqual(Object.keys(obj), ["n"], "display method is not enumerable");
  const fig = plot({ marks: [Plot.lineY([1, 2, 3])] });
  assert.ok(((await mimeBundleOf(fig))["image/svg+xml"] as string).startsWith("<svg xmlns="));
  assert.equal(typeof (fig as unknown as Record<symbol, unknown>)[JUPYTER_DISPLAY], "function");
  assert.deepEqual(await mimeBundleOf({ a: 1 }), { "text/plain": "{ a: 1 }" });
  assert.deepEqual(await mimeBundleOf("hi"), { "text/plain": "hi" });
});

Deno.test("notebook: display() outside Jupyter prints the plain-text form", async () => {
  const original = console.log;
  const lines: string[] = [];
  console.log = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    await display(md`**x**`);
    await display({ "text/html": "<b>x</b>" });
  } finally {
    console.log = original;
  }
  assert.deepEqual(lines, ["**x**", "[text/html]"]);
});

Deno.test("Progress: lines mode throttles to one line per interval plus the final line", async () => {
  let t = 0;
  const out: string[] = [];
  const bar = new Progress(100, {
    label: "train",
    unit: "step",
    mode: "lines",
    intervalSec: 10,
    write: (s) => out.push(s),
    now: () => t,
  });
  for (let i = 0; i < 100; i++) {
    t += 500; // 0.5 s per step: 50 s in all
    bar.tick(1, { loss: (1 / (i + 1)).toFixed(2) });
  }
  await bar.done();
  // Lines at t=0.5 s (first), then every >= 10 s: 10.5, 20.5, 30.5, 40.5, plus the final line.
  assert.equal(out.length, 6, out.join(""));
  assert.ok(out.every((l) => l.endsWith("\n")));
  assert.match(
    out[0],
    /^train \| 1\/100 \(1%\) \| 2\.00 step\/s \| elapsed 0\.5s \| ETA 50s \| loss=1\.00\n$/,
  );
  assert.match(out[5], /^train \| 100\/100 \(100%\) \| 2\.00 step\/s \| elapsed 50s \| loss=0\.01\n$/);
  await bar.done(); // idempotent
  assert.equal(out.length, 6);
});

Deno.test("Progress: jupyter mode updates one display in place, in order", async () => {
  let t = 0;
  const { calls, sink } = recorder();
  const bar = new Progress(10, { sink, redrawMs: 200, now: () => t });
  assert.equal(bar.mode, "jupyter");
  for (let i = 0; i < 10; i++) {
    t += 100;
    bar.tick();
  }
  await bar.done();
  // Redraws at 100, 300, 500, 700, 900 ms, and the final one.
  assert.equal(calls.length, 6);
  const ids = new Set(calls.map((c) => c.options.displayId));
  assert.equal(ids.size, 1);
  assert.deepEqual(calls.map((c) => c.options.update), [false, true, true, true, true, true]);
  assert.match(calls[5].bundle["text/html"] as string, /width:100\.0%/);
  assert.match(calls[5].bundle["text/plain"] as string, /10\/10 \(100%\)/);
});

Deno.test("Progress: unknown total, tty redraw and silent mode", async () => {
  let t = 0;
  const out: string[] = [];
  const bar = new Progress(undefined, { mode: "tty", write: (s) => out.push(s), now: () => t, redrawMs: 0 });
  t = 2000;
  bar.tick(4);
  await bar.done();
  assert.ok(out[0].startsWith("\r\x1b[2Kprogress | 4 | 2.00 it/s"));
  assert.ok(out.at(-1)!.endsWith("\n"));
  const quiet: string[] = [];
  const s = new Progress(3, { mode: "silent", write: (x) => quiet.push(x) });
  s.tick(3);
  await s.done();
  assert.equal(quiet.length, 0);
  assert.throws(() => new Progress(-1), /total must be >= 0/);
  assert.equal(formatProgressDuration(65), "1m05s");
  assert.equal(formatProgressDuration(7322), "2h02m");
});

Deno.test("LivePlot: redraws in place at most every minIntervalMs and builds figures lazily", async () => {
  let t = 0;
  let built = 0;
  const { calls, sink } = recorder();
  const live = new LivePlot({ sink, minIntervalMs: 1000, now: () => t });
  const ys: number[] = [];
  for (let i = 0; i < 30; i++) {
    t += 100;
    ys.push(i);
    live.update(() => {
      built++;
      return plot({ marks: [Plot.lineY([...ys])] });
    });
  }
  await live.close();
  // Drawn at 100 ms, 1100 ms, 2100 ms, then the final state on close: 4 renders, not 30.
  assert.equal(built, 4);
  assert.equal(live.renders, 4);
  assert.equal(calls.length, 4);
  assert.deepEqual(calls.map((c) => c.options.update), [false, true, true, true]);
  assert.equal(new Set(calls.map((c) => c.options.displayId)).size, 1);
  assert.ok((calls[3].bundle["image/svg+xml"] as string).startsWith("<svg"));
});

Deno.test("LivePlot: outside Jupyter draws nothing until close, then writes the final SVG", async () => {
  const dir = await Deno.makeTempDir();
  try {
    let built = 0;
    const live = new LivePlot({ finalSvgPath: `${dir}/loss.svg` });
    assert.equal(live.live, false);
    for (let i = 0; i < 5; i++) {
      live.update(() => {
        built++;
        return plot({ marks: [Plot.lineY([1, 2, i])] });
      });
    }
    assert.equal(built, 0);
    await live.close();
    assert.equal(built, 1);
    assert.ok((await Deno.readTextFile(`${dir}/loss.svg`)).startsWith("<svg xmlns="));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
