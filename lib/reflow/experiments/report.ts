/**
 * Outputs of the reFlow tools: the checkpoint parameter table (`deno task reflow check`, the seed's
 * `check.py`), and the experiment report folder (`results.json`, `report.md`, figures as SVG and PNG).
 *
 * @module
 */
import { formatParameterCount } from "../../models/decoder.ts";
import { savePng, saveSvg } from "../../plot/png.ts";
import { writeTextAtomic } from "../../io/atomic.ts";
import { type ExperimentOutput, REFLOW_EXPERIMENTS } from "./experiments.ts";
import type { ParameterTable } from "../inspect.ts";

/**
 * A {@linkcode ParameterTable} (lib/reflow/inspect.ts) as aligned text: one line per tensor (name, shape, count,
 * group), then the subtotals and the total (exact and in M).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatParameterTable } from "./report.ts";
 * const text = formatParameterTable({
 *   rows: [{ name: "embed.W_recipe", shape: [4, 2], count: 8, group: "recipe" }],
 *   groups: [{ group: "recipe", count: 8 }],
 *   total: 8,
 * });
 * assert.match(text, /total\s+8/);
 * ```
 *
 * @category reFlow
 */
export function formatParameterTable(table: ParameterTable): string {
  const w = Math.max(
    ...table.rows.map((t) => t.name.length),
    ...table.groups.map((g) => g.group.length),
    10,
  );
  const shapeW = Math.max(...table.rows.map((t) => `[${t.shape.join(", ")}]`.length), 5);
  const num = (n: number) => n.toLocaleString("en-US").padStart(14);
  const lines = [`${"tensor".padEnd(w)}  ${"shape".padEnd(shapeW)}  ${"count".padStart(14)}`];
  for (const t of table.rows) {
    lines.push(
      `${t.name.padEnd(w)}  ${`[${t.shape.join(", ")}]`.padEnd(shapeW)}  ${num(t.count)}  ${t.group}`,
    );
  }
  lines.push("", "group subtotals:");
  for (const g of table.groups) {
    lines.push(
      `${g.group.padEnd(w)}  ${"".padEnd(shapeW)}  ${num(g.count)}  (${
        (100 * g.count / table.total).toFixed(2)
      } %)`,
    );
  }
  lines.push(
    `${"total".padEnd(w)}  ${"".padEnd(shapeW)}  ${num(table.total)}  (${formatParameterCount(table.total)})`,
  );
  return lines.join("\n");
}

/**
 * What the report says about the run besides the results.
 *
 * @category reFlow
 */
export interface ReportMeta {
  /** The model source. */
  model: string;
  /** Layers, signals, width, vocabulary (for the scale note). */
  scale: { layers: number; signals: number; dModel: number; vocab: number; parameters: number };
  /** ISO time the run started. */
  started: string;
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return "-";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(4);
  return String(v).replace(/\|/g, "\\|");
}

/**
 * The Markdown report: the scale, then per experiment its headline numbers beside upstream's reported
 * ones, its definitions and its figures.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { basisGeometry } from "./experiments.ts";
 * import { experimentReportMarkdown } from "./report.ts";
 * const { model, tokenizer } = tinyReflowModel();
 * const out = await basisGeometry(model, tokenizer);
 * const md = experimentReportMarkdown([out], {
 *   model: "tiny", started: "now", scale: { layers: 2, signals: 8, dModel: 16, vocab: 10, parameters: 1 },
 * });
 * assert.match(md, /## 3\. Basis Geometry/);
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export function experimentReportMarkdown(outputs: ExperimentOutput[], meta: ReportMeta): string {
  const s = meta.scale;
  const lines = [
    "# reFlow interpretability report",
    "",
    `Model: \`${meta.model}\`; ${s.layers} layers, S = ${s.signals} signals, d = ${s.dModel}, V = ${s.vocab}, ` +
    `${formatParameterCount(s.parameters)} parameters. Run started ${meta.started}.`,
    "",
    "Upstream's numbers are for reFlow-1-Big (36 layers, S = 1024, 515 M parameters, OpenWebText). On a smaller " +
    "model they are a reference point, not a target: layer indices scale with depth, and word-level probes need a " +
    "model that has seen the words.",
    "",
  ];
  for (const o of outputs) {
    lines.push(experimentSectionMarkdown(o, { figurePrefix: "figures/" }));
  }
  return lines.join("\n");
}

/**
 * One experiment's Markdown section: upstream's reported numbers, our headline numbers, the definitions
 * used and (with `figurePrefix`) links to its PNG figures.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { semanticAlgebra } from "./experiments.ts";
 * import { experimentSectionMarkdown } from "./report.ts";
 * const { model, tokenizer } = tinyReflowModel();
 * const md = experimentSectionMarkdown(await semanticAlgebra(model, tokenizer));
 * assert.match(md, /Upstream reported: 3\/3 hits/);
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export function experimentSectionMarkdown(
  output: ExperimentOutput,
  options: { figurePrefix?: string; heading?: boolean } = {},
): string {
  const { result, figures } = output;
  const info = REFLOW_EXPERIMENTS.find((e) => e.id === result.id);
  const lines: string[] = [];
  if (options.heading ?? true) lines.push(`## ${result.id}. ${result.name}`, "");
  lines.push(`Upstream reported: ${info?.reported ?? "no number recovered"}.`, "");
  lines.push("| quantity | ours |", "|---|---|");
  for (const [k, v] of Object.entries(result.summary)) lines.push(`| ${k} | ${cell(v)} |`);
  lines.push("", "Definitions:", "");
  for (const [k, v] of Object.entries(result.definitions)) lines.push(`- **${k}**: ${v}`);
  if (result.skipped?.length) {
    lines.push(`- **skipped probe words** (not single tokens): ${result.skipped.join(", ")}`);
  }
  lines.push("");
  if (options.figurePrefix !== undefined) {
    for (const name of Object.keys(figures)) {
      const file = `${String(result.id).padStart(2, "0")}_${result.key}_${name}.png`;
      lines.push(`![${result.name}: ${name}](${options.figurePrefix}${file})`, "");
    }
  }
  return lines.join("\n");
}

/**
 * Writes `results.json`, `report.md` and every figure (`figures/NN_key_name.svg` and `.png`) into `dir`;
 * returns the paths written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tinyReflowModel } from "../../../tests/reflow/tiny.ts";
 * import { basisGeometry } from "./experiments.ts";
 * import { writeExperimentOutputs } from "./report.ts";
 * const { model, tokenizer } = tinyReflowModel();
 * const dir = await Deno.makeTempDir();
 * const paths = await writeExperimentOutputs(dir, [await basisGeometry(model, tokenizer)], {
 *   model: "tiny", started: "now", scale: { layers: 2, signals: 8, dModel: 16, vocab: 10, parameters: 1 },
 * });
 * assert.ok(paths.some((p) => p.endsWith("03_basis-geometry_spectrum.png")));
 * model.dispose();
 * ```
 *
 * @category reFlow
 */
export async function writeExperimentOutputs(
  dir: string,
  outputs: ExperimentOutput[],
  meta: ReportMeta,
): Promise<string[]> {
  await Deno.mkdir(`${dir}/figures`, { recursive: true });
  const written: string[] = [];
  const results = {
    format: "coherence-lab/reflow-experiments@1",
    meta,
    reported: Object.fromEntries(REFLOW_EXPERIMENTS.map((e) => [e.id, e.reported])),
    experiments: outputs.map((o) => o.result),
  };
  await writeTextAtomic(`${dir}/results.json`, JSON.stringify(results, null, 2) + "\n");
  written.push(`${dir}/results.json`);
  await writeTextAtomic(`${dir}/report.md`, experimentReportMarkdown(outputs, meta) + "\n");
  written.push(`${dir}/report.md`);
  for (const { result, figures } of outputs) {
    for (const [name, fig] of Object.entries(figures)) {
      const stem = `${dir}/figures/${String(result.id).padStart(2, "0")}_${result.key}_${name}`;
      await saveSvg(`${stem}.svg`, fig);
      await savePng(`${stem}.png`, fig);
      written.push(`${stem}.svg`, `${stem}.png`);
    }
  }
  return written;
}
