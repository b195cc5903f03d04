/**
 * How often the demo's settings show a Recync crisis: runs the `deno task demo` generation (prompt, length,
 * temperature, top-p as its defaults) for seeds 0 … n-1 on a model folder and counts the crises the
 * monitor flags (`CosimMonitor` with its defaults: threshold mean − 0.6·std of the previous 20 cosims).
 * Prints one markdown table row per model plus the per-seed counts.
 *
 * ```sh
 * deno run -A tools/demo_crisis_rate.ts                                   # the bundled demo model, 20 seeds
 * deno run -A tools/demo_crisis_rate.ts --model data/models/shakespeare-char --seeds 50 --backend wasm
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type BackendName, initBackend } from "../lib/backend/backend.ts";
import { loadModelFolder } from "../lib/examples/example_model.ts";
import { generate } from "../lib/generate/generate.ts";
import { CosimMonitor } from "../lib/recync/monitor.ts";

/** Crisis counts of one model over seeds 0 … seeds-1. */
export async function crisisRate(
  model: string,
  o: { seeds: number; prompt: string; tokens: number; temperature: number; topP: number },
): Promise<{ counts: number[]; runsWithCrisis: number; perHundredTokens: number; tokens: number }> {
  const ex = await loadModelFolder(model);
  const ids = ex.encode(o.prompt);
  const counts: number[] = [];
  let tokens = 0;
  for (let seed = 0; seed < o.seeds; seed++) {
    const trace = await generate(ex.model, ids, {
      maxNewTokens: Math.min(o.tokens, ex.model.config.maxPositions - ids.length),
      seed,
      sampling: { temperature: o.temperature, topP: o.topP },
    }).collect();
    const monitor = new CosimMonitor();
    const cos = trace.rows[0].cosims;
    for (let t = 1; t < cos.length; t++) monitor.observe(cos[t], t); // cosim(0) has no previous state
    counts.push(monitor.events.length);
    tokens += trace.rows[0].tokens.length;
  }
  ex.model.dispose();
  const total = counts.reduce((a, b) => a + b, 0);
  return {
    counts,
    runsWithCrisis: counts.filter((c) => c > 0).length,
    perHundredTokens: (100 * total) / tokens,
    tokens,
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      model: { type: "string", multiple: true },
      seeds: { type: "string", default: "20" },
      prompt: { type: "string", default: "ROMEO:" },
      tokens: { type: "string", default: "200" },
      temperature: { type: "string", default: "0.9" },
      "top-p": { type: "string", default: "0.95" },
      backend: { type: "string", default: "wasm" },
    },
  });
  const seeds = Number(values.seeds);
  if (!Number.isInteger(seeds) || seeds < 1) throw new Error(`--seeds must be a positive integer`);
  await initBackend({ backend: values.backend as BackendName });
  const o = {
    seeds,
    prompt: values.prompt!,
    tokens: Number(values.tokens),
    temperature: Number(values.temperature),
    topP: Number(values["top-p"]),
  };
  console.log(
    `demo settings: prompt ${JSON.stringify(o.prompt)}, ${o.tokens} tokens, temperature ${o.temperature}, ` +
      `top-p ${o.topP}, seeds 0-${seeds - 1}\n`,
  );
  console.log("| model | runs with a crisis | crises per 100 tokens | crises per run (seeds in order) |");
  console.log("|---|---|---|---|");
  for (const m of values.model ?? ["data/models/shakespeare-char"]) {
    const r = await crisisRate(m, o);
    console.log(
      `| ${m} | ${r.runsWithCrisis}/${seeds} | ${r.perHundredTokens.toFixed(2)} | ${r.counts.join(" ")} |`,
    );
  }
}
