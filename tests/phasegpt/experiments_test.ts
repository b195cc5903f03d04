import assert from "node:assert/strict";
import { initBackend } from "../../lib/backend/backend.ts";
import { appendJsonl, readJsonl } from "../../lib/io/atomic.ts";
import { countParameters, modelPreset } from "../../lib/models/mod.ts";
import "../../lib/phasegpt/mod.ts";
import {
  analyticChanceR,
  chanceLevelR,
  evaluateHypotheses,
  expandPlan,
  formatPhaseATable,
  formatPhaseGptReport,
  loadPlan,
  modelSectionFor,
  type PhaseGptPlan,
  type PhaseGptRunRecord,
  readPhaseGptResults,
  runPhaseGptSweep,
  summarizePhaseGpt,
  validatePlan,
} from "../../lib/phasegpt/experiments/mod.ts";
import { modelConfigFor } from "../../lib/train/config.ts";
import { parseShard, selectShard } from "../../lib/io/shard.ts";
import { phasegptMain } from "../../lib/cli/phasegpt.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const PLAN_A = `${ROOT}data/configs/phasegpt/phase_a.json`;
const PLAN_B = `${ROOT}data/configs/phasegpt/phase_b.json`;

async function tinyPlan(): Promise<PhaseGptPlan> {
  const corpus = await Deno.makeTempFile({ suffix: ".txt" });
  await Deno.writeTextFile(corpus, "the quick brown fox jumps over the lazy dog. ".repeat(40));
  return {
    schema: "coherence-lab/phasegpt-plan@1",
    name: "t",
    phase: "A",
    data: { corpus },
    modes: { faithful: { preset: "faithful" }, corrected: { preset: "corrected" } },
    seeds: [0, 1],
    defaultScale: "tiny",
    configs: [
      { id: "base", preset: "phasegpt-baseline", role: "baseline" },
      {
        id: "l7",
        preset: "phasegpt-baseline",
        phaseLayers: [7],
        mixer: { numOscillators: 4, couplingInit: 1 },
      },
    ],
    scales: {
      tiny: {
        model: { nLayers: 2, dModel: 16, nHeads: 2, dMlp: 32 },
        steps: 2,
        batchSize: 2,
        blockSize: 16,
        evalInterval: 1,
        evalBatches: 1,
      },
    },
  };
}

Deno.test("plans: the shipped plans load, expand with equal budgets, and keep ≥ 3 seeds", async () => {
  const a = await loadPlan(PLAN_A);
  const b = await loadPlan(PLAN_B);
  assert.ok(a.seeds.length >= 3 && b.seeds.length >= 3);
  const runsA = expandPlan(a); // default scale: cpu
  // 2 baselines + 7 phase configs × 2 modes, per seed
  assert.equal(runsA.length, 3 * (3 + 7 * 2)); // baseline, one matched baseline per mode, 7 configs × 2 modes
  assert.equal(new Set(runsA.map((r) => r.id)).size, runsA.length);
  assert.equal(expandPlan(b, "cpu").length, 3 * (1 + 3));
  assert.equal(expandPlan(b, "cpu-bpe")[0].tokenizer, "gpt2");
  assert.ok(
    expandPlan(b, "original").some((r) => r.variant === "char") &&
      expandPlan(b, "original").some((r) => r.variant === "bpe"),
  );
  // B4 actually applies noise, jitter and a weighted regulariser.
  const b4 = expandPlan(b).find((r) => r.config === "B4")!;
  const mixer = b4.model.mixers!.find((m) => m.kind === "kuramoto")!;
  assert.deepEqual([mixer.phaseNoise, mixer.freqJitter, b4.lossTerms.coherence], [0.03, 0.02, 0.1]);
});

Deno.test("plans: at the original scale the winner is exactly the registered phasegpt-l7-n32-k1 preset", async () => {
  const a = await loadPlan(PLAN_A);
  const run = expandPlan(a, "original").find((r) => r.config === "l7-n32-k1" && r.mode === "faithful")!;
  const ours = modelConfigFor(run.model, 65, 512);
  assert.equal(countParameters(ours), countParameters(modelPreset("phasegpt-l7-n32-k1")));
  const scaled = expandPlan(a, "cpu").find((r) => r.config === "l67-n32-k1")!;
  assert.deepEqual(scaled.model.mixers![1].layers, [2, 3]); // [6, 7] of 12 → 4 blocks, still distinct
});

Deno.test("plans: unknown presets, options, modes and scales fail with did-you-mean and the allowed values", async () => {
  const plan = await tinyPlan();
  assert.throws(
    () => validatePlan({ ...plan, configs: [{ id: "x", preset: "phasegpt-baselin" }] }),
    /plan: config x: unknown model preset "phasegpt-baselin" \(did you mean phasegpt-baseline.*use one of .*gpt2/,
  );
  assert.throws(
    () => validatePlan({ ...plan, configs: [{ id: "x", preset: "gpt2", seedPPL: 4 }] }),
    /unknown option 'seedPPL' \(did you mean seedPpl\?\); allowed: id, preset/,
  );
  assert.throws(
    () => validatePlan({ ...plan, scales: { tiny: { ...plan.scales.tiny, stepz: 3 } } }),
    /scale tiny: unknown option 'stepz' \(did you mean steps\?\)/,
  );
  assert.throws(
    () => validatePlan({ ...plan, scales: { tiny: { ...plan.scales.tiny, modes: ["corected"] } } }),
    /did you mean corrected/,
  );
  assert.throws(
    () => validatePlan({ ...plan, configs: [{ id: "x", preset: "gpt2", overrides: { nLayer: 2 } }] }),
    /unknown option 'nLayer' \(did you mean nLayers/,
  );
  assert.throws(
    () => expandPlan(plan, "tinyy"),
    /unknown scale "tinyy" \(did you mean tiny\?\); use one of tiny/,
  );
  // The CLI answers a bad plan with exit 1 and the same message; a misspelt command with exit 2.
  const bad = await Deno.makeTempFile({ suffix: ".json" });
  await Deno.writeTextFile(bad, JSON.stringify({ ...plan, configs: [{ id: "x", preset: "gpt-2" }] }));
  assert.equal(await phasegptMain(["sweep", "--plan", bad, "--out", bad + ".jsonl", "--dry-run"]), 1);
  assert.equal(await phasegptMain(["sweeep"]), 2);
  // A phase layer beyond the preset's depth names the allowed range.
  assert.throws(
    () => modelSectionFor({ id: "z", preset: "phasegpt-baseline", phaseLayers: [12] }, plan.scales.tiny, {}),
    /phase layer 12 is out of range for preset phasegpt-baseline: use 0..11/,
  );
  // The criteria read R from the training log, which holds only the layer's own R.
  assert.throws(
    () => validatePlan({ ...plan, r: { metric: "R", definition: "heads-mean", band: [0.35, 0.55] } }),
    /r.definition "heads-mean" is not logged during training: .* "layer" definition/,
  );
  assert.throws(
    () => validatePlan({ ...plan, r: { metric: "R", definition: "tokens" as never, band: [0.35, 0.55] } }),
    /use one of layer, oscillators, heads-mean, circular-heads/,
  );
});

Deno.test("sweep: --shard i/n partitions the plan; shard files report like one file", async () => {
  await initBackend({ backend: "cpu" });
  const plan = await tinyPlan();
  const all = expandPlan(plan);
  const shards = [0, 1, 2].map((i) => selectShard(all, parseShard(`${i}/3`)));
  assert.deepEqual(shards.flat().map((r) => r.index).sort((x, y) => x - y), all.map((r) => r.index));
  assert.equal(new Set(shards.flat().map((r) => r.id)).size, all.length);
  const dir = await Deno.makeTempDir();
  for (const i of [0, 1]) {
    await runPhaseGptSweep({ plan, out: `${dir}/s${i}.jsonl`, shard: parseShard(`${i}/2`) });
  }
  const lines0 = (await readJsonl<PhaseGptRunRecord>(`${dir}/s0.jsonl`)).records;
  assert.deepEqual(lines0.map((r) => r.index), all.filter((r) => r.index % 2 === 0).map((r) => r.index));
  const merged = await readPhaseGptResults([`${dir}/s0.jsonl`, `${dir}/s1.jsonl`, `${dir}/s0.jsonl`]);
  assert.equal(merged.length, all.length); // de-duplicated by id
  const r = lines0.find((x) => x.mode === "faithful")!;
  assert.ok(r.leak && r.curve.length === 2 && Number.isFinite(r.best.batch_mean_exp.ppl));
  assert.ok(Object.keys(r.train.at(-1)!.metrics).some((k) => k.endsWith(".R"))); // R logged by the mixer
});

Deno.test("sweep: a parameter-matched baseline matches the phase model of its own mode", async () => {
  await initBackend({ backend: "cpu" });
  const plan = await tinyPlan();
  plan.seeds = [0];
  plan.configs = [
    { id: "m-f", preset: "phasegpt-baseline", role: "baseline", matchParamsOf: "l7", matchMode: "faithful" },
    { id: "m-c", preset: "phasegpt-baseline", role: "baseline", matchParamsOf: "l7", matchMode: "corrected" },
    plan.configs[1],
  ];
  const dir = await Deno.makeTempDir();
  await runPhaseGptSweep({ plan, out: `${dir}/r.jsonl` });
  const rs = (await readJsonl<PhaseGptRunRecord>(`${dir}/r.jsonl`)).records;
  const p = (config: string, mode: string) => rs.find((r) => r.config === config && r.mode === mode)!.params;
  assert.notEqual(p("l7", "faithful"), p("l7", "corrected")); // the sin/cos readout is larger
  // dMlp moves the count in steps of one MLP column, so "matched" is within one column's parameters.
  const column = 2 * 16 + 1;
  assert.ok(
    Math.abs(p("m-f", "-") - p("l7", "faithful")) <= column,
    `${p("m-f", "-")} vs ${p("l7", "faithful")}`,
  );
  assert.ok(
    Math.abs(p("m-c", "-") - p("l7", "corrected")) <= column,
    `${p("m-c", "-")} vs ${p("l7", "corrected")}`,
  );
  // A scale that runs only one mode leaves out the baseline matched to the other.
  plan.scales.tiny.modes = ["corrected"];
  assert.deepEqual(expandPlan(plan).map((r) => r.config), ["m-c", "l7"]);
  assert.throws(
    () =>
      validatePlan(
        { ...plan, configs: [{ id: "x", preset: "phasegpt-baseline", matchMode: "corrected" }] },
        "p",
      ),
    /matchMode needs matchParamsOf/,
  );
});

Deno.test("sweep: the offline gpt2 variant trains on GPT-2 BPE ids (50,257, EOT between articles)", async () => {
  await initBackend({ backend: "cpu" });
  const plan = await tinyPlan();
  const text = " = First = \n the quick brown fox \n = Second = \n jumps over the lazy dog \n";
  await Deno.writeTextFile(plan.data.corpus, text.repeat(20));
  plan.variants = [{ id: "bpe", tokenizer: "gpt2" }];
  plan.configs = [plan.configs[0]];
  plan.seeds = [0];
  const dir = await Deno.makeTempDir();
  await runPhaseGptSweep({ plan, out: `${dir}/r.jsonl` });
  const [r] = (await readJsonl<PhaseGptRunRecord>(`${dir}/r.jsonl`)).records;
  assert.equal(r.vocabSize, 50257);
  assert.equal(r.tokenizer, "gpt2");
  assert.ok(Number.isFinite(r.best.token_mean.ppl));
  assert.match(r.dataNote, /GPT-2 byte-level BPE/);
});

Deno.test("sweep: killed after one run, a rerun resumes without duplicate lines", async () => {
  const plan = await tinyPlan();
  const dir = await Deno.makeTempDir();
  const planPath = `${dir}/plan.json`, out = `${dir}/results.jsonl`;
  await Deno.writeTextFile(planPath, JSON.stringify(plan));
  const args = [
    "run",
    "-A",
    `${ROOT}lib/cli/phasegpt.ts`,
    "sweep",
    "--plan",
    planPath,
    "--out",
    out,
    "--backend",
    "cpu",
  ];
  const child = new Deno.Command(Deno.execPath(), { args, stdout: "null", stderr: "null" }).spawn();
  // Kill it (SIGKILL: no clean-up, the lock goes stale) as soon as the first run is written.
  const lines = async () =>
    (await Deno.readTextFile(out).catch(() => "")).split("\n").filter((l) => l).length;
  for (let i = 0; i < 600 && (await lines()) < 1; i++) await new Promise((r) => setTimeout(r, 100));
  child.kill("SIGKILL");
  await child.status;
  const afterKill = await lines();
  assert.ok(afterKill >= 1 && afterKill < expandPlan(plan).length, `after the kill: ${afterKill} lines`);
  const rerun = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" }).output();
  assert.equal(rerun.code, 0, new TextDecoder().decode(rerun.stderr));
  const { records } = await readJsonl<{ id: string }>(out);
  assert.equal(records.length, expandPlan(plan).length);
  assert.equal(new Set(records.map((r) => r.id)).size, records.length);
  assert.match(new TextDecoder().decode(rerun.stdout), new RegExp(`${afterKill} already in`));
});

function handRun(
  config: string,
  mode: string,
  seed: number,
  ppl: number,
  R: number[] | null,
): PhaseGptRunRecord {
  const p = { token_mean: ppl, batch_mean_exp: ppl * 1.01, batch_mean: ppl };
  return {
    schema: "coherence-lab/phasegpt-run@1",
    index: 0,
    id: `h|char|${config}|${mode}|${seed}|x`,
    plan: "h",
    phase: "B",
    scale: "x",
    variant: "char",
    tokenizer: "char",
    config,
    mode,
    seed,
    model: { preset: "gpt2" },
    lossTerms: {},
    params: 100,
    vocabSize: 10,
    architecture: { nLayers: 1, dModel: 8, nHeads: 1, dMlp: 8 },
    training: { schedule: { kind: "constant", lr: 1e-3 }, optimizer: {}, gradClip: 1 },
    budget: { steps: 10, batchSize: 1, blockSize: 8, tokens: 80 },
    curve: [{ step: 5, loss: 1, ppl: { ...p, token_mean: ppl + 1 }, metrics: {} }, {
      step: 10,
      loss: 1,
      ppl: p,
      metrics: {},
    }],
    train: (R ?? []).map((r, i) => ({ step: (i + 1) * 10, loss: 1, metrics: { "blocks.1.attn.R": r } })),
    best: {
      token_mean: { ppl, step: 10 },
      batch_mean_exp: { ppl: ppl * 1.01, step: 10 },
      batch_mean: { ppl, step: 10 },
    },
    test: { ppl: p, tokens: 80 },
    dataNote: "",
    leak: null,
    elapsedSec: 1,
    secPerStep: 0.1,
    backend: "cpu",
  };
}

Deno.test("report: mean ± std per config from a hand-made results file", async () => {
  const out = (await Deno.makeTempDir()) + "/r.jsonl";
  for (const [s, v] of [[0, 10], [1, 12], [2, 14]]) await appendJsonl(out, handRun("B1", "-", s, v, null));
  await Deno.writeTextFile(out, '{"torn', { append: true }); // a torn last line is skipped
  const [s] = summarizePhaseGpt(await readPhaseGptResults([out]));
  assert.equal(s.best.token_mean.mean, 12);
  assert.equal(s.best.token_mean.std, 2); // sample std of 10, 12, 14
  assert.ok(Math.abs(s.best.batch_mean_exp.mean - 12.12) < 1e-9);
  assert.equal(s.test!.token_mean.mean, 12);
  const report = formatPhaseGptReport(await readPhaseGptResults([out]), { band: [0.3, 0.6] });
  assert.match(report, /B1 \| - \| 3 \| 12\.000 ± 2\.000/);
  assert.match(report, /R: the metric `blocks\.\{L\}\.attn\.R` .*definition "layer".*band \[0\.3, 0\.6\]/);
  // Another scale of the same plan gets its own section, never pooled with this one.
  const other = { ...handRun("B1", "-", 0, 50, null), id: "h|char|B1|-|0|y", scale: "y" };
  const two = formatPhaseGptReport([...(await readPhaseGptResults([out])), other]);
  assert.equal(two.match(/^## Phase B/gm)?.length, 2);
  assert.match(two, /scale y.*\n\n\| config[^]*\| B1 \| - \| 1 \| 50\.000/);
});

Deno.test("results: the same run id under two budgets is refused, in the report and on resume", async () => {
  const dir = await Deno.makeTempDir();
  const a = handRun("B1", "-", 0, 10, null), b = { ...handRun("B1", "-", 0, 11, null) };
  b.budget = { ...b.budget, steps: 400 };
  await appendJsonl(`${dir}/a.jsonl`, a);
  await appendJsonl(`${dir}/b.jsonl`, b);
  await appendJsonl(`${dir}/a2.jsonl`, a);
  assert.equal((await readPhaseGptResults([`${dir}/a.jsonl`, `${dir}/a2.jsonl`])).length, 1); // a duplicate is fine
  await assert.rejects(
    () => readPhaseGptResults([`${dir}/a.jsonl`, `${dir}/b.jsonl`]),
    /h\|char\|B1\|-\|0\|x appears with two budgets \(10 steps of 1 x 8 and 400 steps of 1 x 8/,
  );
  // Resuming into a file whose finished run had another budget stops before training anything.
  await initBackend({ backend: "cpu" });
  const plan = await tinyPlan();
  const out = `${dir}/r.jsonl`;
  await runPhaseGptSweep({ plan, out, maxRuns: 1 });
  plan.scales.tiny.steps = 3;
  await assert.rejects(
    () => runPhaseGptSweep({ plan, out }),
    /recorded with 2 steps of 2 x 16, but the plan now gives 3 steps/,
  );
});

Deno.test("report: configs that train the same architecture at a scale are marked as the same model", () => {
  const phase = (config: string, layers: number[]) => ({
    ...handRun(config, "corrected", 0, 10, null),
    architecture: {
      nLayers: 4,
      dModel: 8,
      nHeads: 1,
      dMlp: 8,
      mixers: [{ kind: "attention" }, { kind: "kuramoto", layers }],
    },
  });
  const sums = summarizePhaseGpt([phase("l6", [2]), phase("l7", [2]), phase("l47", [1, 2])]);
  assert.deepEqual(sums.map((x) => [x.config, x.phaseLayers, x.sameModelAs]), [
    ["l6", [2], ["l7"]],
    ["l7", [2], ["l6"]],
    ["l47", [1, 2], []],
  ]);
  const table = formatPhaseATable(sums);
  assert.match(table, /\| l6 ¹ \| corrected \| 2 of 4 \|/);
  assert.match(table, /\| l47 \| corrected \| 1, 2 of 4 \|/);
  assert.match(table, /same model at this scale.*l6 = l7/);
});

Deno.test("report: H1-H6 PASS and FAIL on hand-made numbers", () => {
  const band = [0.4, 0.45, 0.5, 0.45, 0.46, 0.44, 0.45, 0.45]; // in band, settles at step 20
  const high = [0.9, 0.7, 0.95, 0.7, 0.9, 0.7, 0.9, 0.8]; // out of band, never settles
  const pass = [
    ...[0, 1, 2].map((s) => handRun("B1", "-", s, 10 + s * 0.1, null)),
    ...[0, 1, 2].map((s) => handRun("B2", "c", s, 10.2 + s * 0.1, high.map((x) => x - 0.1))),
    ...[0, 1, 2].map((s) => handRun("B3", "c", s, 10.4 + s * 0.1, high)),
    ...[0, 1, 2].map((s) => handRun("B4", "c", s, 10.1 + s * 0.1, band)),
  ];
  const verdict = (rs: PhaseGptRunRecord[]) =>
    Object.fromEntries(evaluateHypotheses(summarizePhaseGpt(rs)).map((h) => [h.id, h.pass]));
  assert.deepEqual(verdict(pass), {
    "H1 (B2)": true,
    "H1 (B3)": true,
    "H1 (B4)": true,
    H2a: true,
    H2b: true,
    H3a: true,
    H3b: true,
    H3c: true,
    H4: null, // no Phase A runs given
    H5: true,
    H6: true,
  });
  // Make B3 win, B4 leave the band and collapse: the matching criteria flip to FAIL.
  const fail = pass.map((r) => {
    if (r.config === "B3") return handRun("B3", "c", r.seed, 9 + r.seed * 0.1, high.map((x) => x - 0.2));
    if (r.config === "B4") {
      const x = handRun("B4", "c", r.seed, 11 + r.seed * 0.1, high);
      x.curve[1].ppl.token_mean = 30; // ends at 30 after a best of 11: collapse
      return x;
    }
    if (r.config === "B2") return handRun("B2", "c", r.seed, 10.6 + r.seed * 0.1, high.map((x) => x - 0.1));
    return r;
  });
  const v = verdict(fail);
  assert.deepEqual(
    [v["H1 (B2)"], v["H1 (B4)"], v.H2a, v.H2b, v.H3a, v.H3b, v.H5, v.H6],
    [false, false, false, false, false, false, false, false],
  );
  // H4 against Phase A: B's seeds vary more (relative) than A's here.
  const a = summarizePhaseGpt(
    [0, 1, 2].map((s) => ({ ...handRun("A1", "faithful", s, 5 + s * 0.001, null), phase: "A" })),
  );
  const h4 = evaluateHypotheses(summarizePhaseGpt(pass), a).find((h) => h.id === "H4")!;
  assert.equal(h4.pass, false);
});

Deno.test("chance-level R: analytic and simulated agree under every definition; heads-mean is near the seed's 0.88", () => {
  const shape = { heads: 12, tokens: 128, oscillators: 32 };
  const r = chanceLevelR({ shape, reps: 6, seed: 3, dModel: 0 });
  for (const [name, d] of Object.entries(r.definitions)) {
    const tol = name === "layer" ? 0.003 : 0.006;
    assert.ok(
      Math.abs(d.uniform.mean - d.analytic.mean) < tol,
      `${name}: ${d.uniform.mean} vs ${d.analytic.mean}`,
    );
  }
  assert.ok(
    Math.abs(analyticChanceR({ heads: 12, tokens: 512, oscillators: 32 })["heads-mean"].mean - 0.876) < 1e-3,
  );
  assert.ok(r.definitions["heads-mean"].uniform.mean > 0.86);
  assert.ok(r.definitions.oscillators.uniform.mean < 0.2);
  // Seeded: the same seed gives the same numbers.
  assert.deepEqual(
    chanceLevelR({ shape, reps: 1, seed: 3, dModel: 0 }).definitions.layer.uniform,
    chanceLevelR({ shape, reps: 1, seed: 3, dModel: 0 }).definitions.layer.uniform,
  );
});

Deno.test("Slurm script: valid bash, and each array task runs its own shard into its own file", async () => {
  const script = `${ROOT}data/configs/phasegpt/slurm_array.sh`;
  const syntax = await new Deno.Command("bash", { args: ["-n", script] }).output();
  assert.equal(syntax.code, 0, new TextDecoder().decode(syntax.stderr));
  // A stub `deno` on PATH records the command the task would run.
  const bin = await Deno.makeTempDir();
  await Deno.writeTextFile(`${bin}/deno`, '#!/usr/bin/env bash\necho "$@"\n');
  await Deno.chmod(`${bin}/deno`, 0o755);
  const outDir = await Deno.makeTempDir();
  const run = await new Deno.Command("bash", {
    args: [script],
    env: {
      PATH: `${bin}:${Deno.env.get("PATH")}`,
      SLURM_ARRAY_TASK_ID: "2",
      SLURM_ARRAY_TASK_COUNT: "4",
      OUT_DIR: outDir,
    },
  }).output();
  const text = new TextDecoder().decode(run.stdout);
  assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
  assert.match(
    text,
    new RegExp(
      `task phasegpt sweep --plan data/configs/phasegpt/phase_a.json --scale cpu --shard 2/4 --out ${outDir}/phase_a.2.jsonl`,
    ),
  );
  const bad = await new Deno.Command("bash", {
    args: [script],
    env: { PATH: `${bin}:${Deno.env.get("PATH")}`, SLURM_ARRAY_TASK_ID: "4", N: "4", OUT_DIR: outDir },
  }).output();
  assert.equal(bad.code, 2);
});
