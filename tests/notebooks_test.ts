/**
 * Executes every notebooks/*.ipynb with the Deno Jupyter kernel (CI scale) and fails on any cell error,
 * naming the cell. Skips, with a note, where Jupyter or the Deno kernel is missing; .ci/run installs both.
 */
import { strict as assert } from "node:assert";
import {
  findNotebooks,
  firstCellError,
  formatNotebookFailure,
  jupyterStatus,
  notebookCodeHash,
  restampCommand,
  runNotebook,
  stampScale,
} from "./run_notebooks.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const status = await jupyterStatus();
if (!status.available) console.warn(`notebooks_test: skipping notebook execution: ${status.reason}`);
const notebooks = await findNotebooks(`${root}/notebooks`);

for (const nb of notebooks) {
  const name = nb.slice(nb.lastIndexOf("/") + 1);
  Deno.test({
    name: `notebook ${name} runs without cell errors (COHERENCE_SCALE=ci)`,
    ignore: !status.available,
    // The kernel is a child process with its own resources; deno test cannot account for them.
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const outDir = await Deno.makeTempDir({ prefix: "coherence-notebooks-" });
      const before = await Deno.readTextFile(nb);
      try {
        const r = await runNotebook(nb, { outDir, scale: "ci", cellTimeoutSec: 600 });
        assert.ok(r.ok, formatNotebookFailure(r));
        assert.equal(await Deno.readTextFile(nb), before, "the committed notebook must not be modified");
      } finally {
        await Deno.remove(outDir, { recursive: true });
      }
    },
  });
}

// Committed outputs must belong to the committed code: a stamped notebook whose code cells changed fails
// with the command that restamps it. Notebooks with no stamp yet (executed some other way) are named, with
// the same command, but do not fail.
for (const nb of notebooks) {
  const rel = nb.slice(root.length + 1);
  Deno.test(`notebook ${rel}: committed outputs match its code (metadata.coherence.code_sha256)`, async () => {
    const ipynb = JSON.parse(await Deno.readTextFile(nb));
    const stamp = ipynb.metadata?.coherence;
    if (!stamp?.code_sha256) {
      console.log(`note: ${rel} has no output stamp; to commit it with outputs run: ${restampCommand(rel)}`);
      return;
    }
    assert.equal(
      notebookCodeHash(ipynb),
      stamp.code_sha256,
      `${rel}: its code cells changed after its outputs were written, so the outputs may be stale. ` +
        `Re-execute and restamp it (one command, a few minutes at the scale its first cell names): ` +
        restampCommand(rel),
    );
  });
}

Deno.test("run_notebooks: the code hash ignores markdown and outputs, and sees any code change", () => {
  const nb = {
    cells: [
      { cell_type: "markdown", source: "# a" },
      { cell_type: "code", source: ["// Committed outputs: COHERENCE_SCALE=ci\n", "1 + 1"], outputs: [] },
    ],
  };
  const h = notebookCodeHash(nb);
  assert.equal(notebookCodeHash({ cells: [{ ...nb.cells[0], source: "# b" }, nb.cells[1]] }), h);
  assert.equal(
    notebookCodeHash({ cells: [nb.cells[0], { ...nb.cells[1], outputs: [{ output_type: "stream" }] }] }),
    h,
  );
  assert.notEqual(notebookCodeHash({ cells: [nb.cells[0], { ...nb.cells[1], source: "1 + 2" }] }), h);
  assert.equal(stampScale(nb), "ci");
  assert.equal(restampCommand("notebooks/x.ipynb"), "deno task notebooks --write notebooks/x.ipynb");
});

Deno.test("run_notebooks: without a Python that has nbclient, the reason names the packages to install", async () => {
  const s = await jupyterStatus(["/nonexistent/python3"]);
  assert.equal(s.available, false);
  assert.match(s.reason!, /no Python with nbclient found \(\/nonexistent\/python3: not found\)/);
  assert.match(s.reason!, /python3-nbclient/);
});

Deno.test("run_notebooks: firstCellError names the first failing code cell and strips ANSI codes", () => {
  const nb = {
    cells: [
      { cell_type: "markdown", source: "# t" },
      { cell_type: "code", source: ["const a = 1;\n", "a"], outputs: [{ output_type: "execute_result" }] },
      {
        cell_type: "code",
        source: "throw new Error('x')",
        metadata: { tags: ["raises-exception"] },
        outputs: [{ output_type: "error", ename: "Error", evalue: "x", traceback: [] }],
      },
      {
        cell_type: "code",
        source: "undefinedName",
        outputs: [{
          output_type: "error",
          ename: "ReferenceError",
          evalue: "\x1b[31mundefinedName is not defined\x1b[0m",
          traceback: ["\x1b[31mReferenceError\x1b[0m: undefinedName is not defined"],
        }],
      },
    ],
  };
  const e = firstCellError(nb)!;
  assert.equal(e.cellIndex, 3);
  assert.equal(e.codeCellNumber, 3);
  assert.equal(e.ename, "ReferenceError");
  assert.equal(e.evalue, "undefinedName is not defined");
  assert.deepEqual(e.traceback, ["ReferenceError: undefinedName is not defined"]);
  assert.equal(firstCellError({ cells: nb.cells.slice(0, 3) }), undefined);
});

Deno.test({
  name: "run_notebooks: a failing notebook is reported with its cell; env and cwd reach the kernel",
  ignore: !status.available,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "coherence-nbtest-" });
    try {
      const cell = (source: string) => ({
        cell_type: "code",
        metadata: {},
        outputs: [],
        source,
        execution_count: null,
      });
      const nb = {
        cells: [
          // An expression result, not console.log: the kernel's stdout stream can arrive after the cell ends.
          cell('[Deno.env.get("COHERENCE_SCALE"), Deno.env.get("NO_COLOR"), Deno.cwd()].join(" ")'),
          cell('throw new TypeError("broken on purpose");'),
        ],
        metadata: { kernelspec: { display_name: "Deno", language: "typescript", name: "deno" } },
        nbformat: 4,
        nbformat_minor: 4,
      };
      await Deno.mkdir(`${dir}/nb`);
      await Deno.writeTextFile(`${dir}/nb/fail.ipynb`, JSON.stringify(nb));
      const r = await runNotebook(`${dir}/nb/fail.ipynb`, {
        outDir: `${dir}/out`,
        scale: "ci",
        cellTimeoutSec: 60,
      });
      assert.equal(r.ok, false);
      assert.equal(r.error?.cellIndex, 1);
      assert.equal(r.error?.ename, "TypeError");
      assert.equal(r.error?.evalue, "broken on purpose");
      assert.match(formatNotebookFailure(r), /cell 1 \(code cell #2\) failed: TypeError: broken on purpose/);
      const executed = JSON.parse(await Deno.readTextFile(r.executedPath!));
      const result = executed.cells[0].outputs.find((o: { output_type: string }) =>
        o.output_type === "execute_result"
      );
      const text = [result.data["text/plain"]].flat().join("");
      assert.equal(text, `"ci 1 ${await Deno.realPath(`${dir}/nb`)}"`, "env and cwd reach the kernel");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "notebook display: Progress and LivePlot update one output each in place inside the Deno kernel",
  ignore: !status.available,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "coherence-nbtest-" });
    try {
      const lib = new URL("../lib/", import.meta.url).href;
      const source = [
        `import { LivePlot, Progress } from "${lib}notebook/mod.ts";`,
        `import { plot, Plot } from "${lib}plot/mod.ts";`,
        `const live = new LivePlot({ minIntervalMs: 0 });`,
        `const bar = new Progress(12, { label: "loop", redrawMs: 0 });`,
        `const ys: number[] = [];`,
        `for (let i = 0; i < 12; i++) {`,
        `  ys.push(i * i);`,
        `  live.update(() => plot({ marks: [Plot.lineY([...ys])] }));`,
        `  bar.tick();`,
        `  await new Promise((r) => setTimeout(r, 5));`,
        `}`,
        `await live.close();`,
        `await bar.done();`,
        `"finished"`,
      ].join("\n");
      const nb = {
        cells: [{ cell_type: "code", metadata: {}, outputs: [], source, execution_count: null }],
        metadata: { kernelspec: { display_name: "Deno", language: "typescript", name: "deno" } },
        nbformat: 4,
        nbformat_minor: 4,
      };
      await Deno.mkdir(`${dir}/nb`);
      await Deno.writeTextFile(`${dir}/nb/live.ipynb`, JSON.stringify(nb));
      const r = await runNotebook(`${dir}/nb/live.ipynb`, { outDir: `${dir}/out`, cellTimeoutSec: 120 });
      assert.ok(r.ok, formatNotebookFailure(r));
      const outputs: { output_type: string; data?: Record<string, string | string[]> }[] =
        JSON.parse(await Deno.readTextFile(r.executedPath!)).cells[0].outputs;
      const text = (o: { data?: Record<string, string | string[]> }, k: string) =>
        [o.data?.[k] ?? ""].flat().join("");
      const displays = outputs.filter((o) => o.output_type === "display_data");
      assert.equal(displays.length, 2, `one chart and one bar, updated in place: ${JSON.stringify(outputs)}`);
      const chart = displays.find((o) => o.data?.["image/svg+xml"])!;
      const path = /aria-label="line"[\s\S]*?<path[^>]* d="([^"]+)"/.exec(text(chart, "image/svg+xml"))![1];
      assert.equal(path.split("L").length, 12, "the chart shows the final 12 points");
      const bar = displays.find((o) => o.data?.["text/html"])!;
      assert.match(text(bar, "text/plain"), /^loop \| 12\/12 \(100%\)/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
