/**
 * Recync benchmark: (1) the cost of monitoring, generation with the v4 controller attached in
 * monitor-only mode versus plain `generate()` at batch 1 and 16 (the target is at most 2 % slower);
 * (2) experiment throughput, paired v4 units per minute through the harness.
 *
 * The cosim itself is computed on the device inside every `generate()` step and read back in the step's
 * one packed readback, so "monitor on" measures what Recync adds on top: the per-row host monitor and
 * the policy callback.
 *
 * ```sh
 * deno run -A bench/recync_bench.ts --backend wasm                       # the bundled demo model
 * deno run -A bench/recync_bench.ts --backend webgpu --shape gpt2-small  # random GPT-2-small weights
 * deno run -A bench/recync_bench.ts --backend wasm --shape demo          # the demo model's shape, random weights
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type BackendName, initBackend } from "../lib/backend/backend.ts";
import { generate, type GenerationControl, type GenerationStep } from "../lib/generate/generate.ts";
import { writeTextAtomic } from "../lib/io/atomic.ts";
import { createDecoder, gpt2SmallConfig } from "../lib/models/scratch.ts";
import type { CausalLM } from "../lib/models/types.ts";
import type { TextTokenizer } from "../lib/tokenizers/types.ts";
import { loadPromptSet, loadRecyncModel, runRecyncExperiment } from "../lib/recync/harness.ts";
import { RecyncRestartController, recyncRestartPolicy } from "../lib/recync/restart.ts";

/** UTF-8 bytes as ids 0..255; decodes other ids as "·" (for random-weight models with a big vocabulary). */
class ByteTokenizer implements TextTokenizer {
  readonly vocabSize = 256;
  readonly special = {};
  encode(text: string): number[] {
    return [...new TextEncoder().encode(text)];
  }
  decode(ids: number[]): string {
    return ids.map((i) => (i >= 32 && i < 127 ? String.fromCharCode(i) : "·")).join("");
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Milliseconds per generation step of one generate() call, with or without the monitor. With the
 * monitor, the host cost of the monitor policy is also measured on its own: the run's recorded steps are
 * replayed through fresh controllers 200 times and timed as a whole, so the figure does not depend on the
 * timer's resolution or on machine noise the way the wall-clock difference does.
 */
async function timeGenerate(model: CausalLM, prompt: number[], batch: number, T: number, monitor: boolean) {
  const seeds = Array.from({ length: batch }, (_, i) => 1000 + i);
  const recorded: GenerationStep[] = [];
  const inner = recyncRestartPolicy(new RecyncRestartController(seeds, { maxRestarts: 0 }));
  const policies = monitor
    ? [{
      name: inner.name,
      onStep: (step: GenerationStep, control: GenerationControl) => {
        inner.onStep(step, control);
        recorded.push(step);
      },
    }]
    : [];
  const t0 = performance.now();
  await generate(model, Array.from({ length: batch }, () => prompt), {
    maxNewTokens: T,
    seeds,
    sampling: { temperature: 1, topP: 0.9 },
    policies,
    // Keep the next forward queued during the readback, as plain generation does: a monitor-only
    // policy never rewinds, so results are identical (lib/generate/generate.ts, `pipeline`).
    pipeline: true,
  }).collect();
  const msPerStep = (performance.now() - t0) / T;
  let policyMsPerStep = NaN;
  if (monitor) {
    const replays = 200;
    // A monitor-only controller never calls the control, so none is needed for the replay.
    const noControl = {} as GenerationControl;
    const t1 = performance.now();
    for (let k = 0; k < replays; k++) {
      const p = recyncRestartPolicy(new RecyncRestartController(seeds, { maxRestarts: 0 }));
      for (const step of recorded) p.onStep(step, noControl);
    }
    policyMsPerStep = (performance.now() - t1) / (replays * recorded.length);
  }
  return { msPerStep, policyMsPerStep };
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    backend: { type: "string", default: "auto" },
    model: { type: "string" },
    shape: { type: "string" },
    T: { type: "string", default: "100" },
    reps: { type: "string", default: "5" },
    units: { type: "string", default: "16" },
    batches: { type: "string", default: "1,16" },
    json: { type: "string" },
  },
});
const info = await initBackend({ backend: values.backend as BackendName | "auto" });
const T = Number(values.T), reps = Number(values.reps), nUnits = Number(values.units);
let model: CausalLM, tokenizer: TextTokenizer, label: string;
if (values.shape === "gpt2-small") {
  model = createDecoder(gpt2SmallConfig(), { seed: 1 });
  tokenizer = new ByteTokenizer();
  label = "gpt2-small-shape (random weights)";
} else if (values.shape === "demo") {
  // The bundled demo model's shape (4 layers, d 128, 256 positions) with random weights and byte ids.
  model = createDecoder(
    gpt2SmallConfig({ nLayers: 4, dModel: 128, nHeads: 4, vocabSize: 256, maxPositions: 256 }),
    { seed: 1 },
  );
  tokenizer = new ByteTokenizer();
  label = "demo-shape (random weights)";
} else {
  const src = values.model ?? new URL("../data/models/shakespeare-char", import.meta.url).pathname;
  ({ model, tokenizer, label } = await loadRecyncModel(src));
}
const prompt = tokenizer.encode("ROMEO:\nWhat light through yonder window breaks? It is the east, and");
console.log(`backend ${info.name}${info.adapter ? ` (${info.adapter})` : ""}; model ${label}; T=${T}`);

const overhead: {
  batch: number;
  plainMsPerStep: number;
  monitorMsPerStep: number;
  wallOverheadPct: number;
  policyMsPerStep: number;
  policyOverheadPct: number;
}[] = [];
for (const batch of values.batches!.split(",").map(Number)) {
  await timeGenerate(model, prompt, batch, T, false); // warm-up at full length (kernels, buffer pools)
  await timeGenerate(model, prompt, batch, T, true);
  const plain: number[] = [], mon: number[] = [], pol: number[] = [];
  // ABBA order so drift in machine load hits both sides alike.
  for (let r = 0; r < reps; r++) {
    for (const on of r % 2 === 0 ? [false, true] : [true, false]) {
      const x = await timeGenerate(model, prompt, batch, T, on);
      if (on) {
        mon.push(x.msPerStep);
        pol.push(x.policyMsPerStep);
      } else plain.push(x.msPerStep);
    }
  }
  const p = median(plain), m = median(mon), q = median(pol);
  const row = {
    batch,
    plainMsPerStep: p,
    monitorMsPerStep: m,
    wallOverheadPct: 100 * (m / p - 1),
    policyMsPerStep: q,
    policyOverheadPct: (100 * q) / p,
  };
  overhead.push(row);
  console.log(
    `batch ${batch}: plain ${p.toFixed(2)} ms/step, with monitor ${m.toFixed(2)} ms/step ` +
      `(wall-clock difference ${row.wallOverheadPct.toFixed(2)} %, median of ${reps}); ` +
      `monitor host cost ${(1000 * q).toFixed(1)} us/step = ${row.policyOverheadPct.toFixed(3)} % of a step`,
  );
}

const prompts =
  (await loadPromptSet(new URL("../data/prompts/recync_prompts.jsonl", import.meta.url).pathname))
    .slice(0, nUnits);
const out = await Deno.makeTempFile({ suffix: ".jsonl" });
const t0 = performance.now();
const s = await runRecyncExperiment({
  model,
  tokenizer,
  modelLabel: label,
  prompts,
  seeds: 1,
  T,
  policy: "v4",
  out,
  batchUnits: 8,
});
const minutes = (performance.now() - t0) / 60000;
const unitsPerMinute = s.ran / minutes;
await Deno.remove(out);
console.log(
  `experiment: ${s.ran} v4 units (T=${T}, 8 units = 16 rows per batch) in ${(minutes * 60).toFixed(1)} s: ` +
    `${unitsPerMinute.toFixed(1)} units/min`,
);
if (values.json) {
  await writeTextAtomic(
    values.json,
    JSON.stringify(
      { backend: info.name, adapter: info.adapter, model: label, T, overhead, unitsPerMinute },
      null,
      2,
    ),
  );
}
model.dispose();
