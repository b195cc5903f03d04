/** PhaseGPT training pieces: LambdaLR, the name-based decay rule, perplexity names, a short run. */
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "../assert.ts";
import type { Variable } from "../../lib/tensor_types.ts";
import { lambdaCosineFloor, learningRate, validateSchedule } from "../../lib/train/schedule.ts";
import { assignParamGroups, DECAY_BY_PHASEGPT_NAMES } from "../../lib/train/adamw.ts";
import { summariseEval } from "../../lib/train/loss.ts";
import { resolveTrainConfig, type TrainConfig } from "../../lib/train/config.ts";
import { trainFromConfig } from "../../lib/train/run.ts";
import { decoderParameterSpecs } from "../../lib/models/params.ts";
import { modelPreset } from "../../lib/models/presets.ts";
import "../../lib/phasegpt/mod.ts";
import { CPU_BACKENDS, useBackend } from "../fixtures.ts";

await useBackend("cpu");

/**
 * The original's lr_lambda (torch 1.13, W 100, 3,600 steps: `max(0.1, 0.5 * (1.0 + torch.cos(torch.tensor(
 * progress * 3.14159))))`), printed with repr() at key steps.
 */
const TORCH_MULTIPLIER: Record<number, number> = {
  0: 0,
  1: 0.01,
  99: 0.99,
  100: 1,
  101: 0.9999997615814209,
  500: 0.9681174755096436,
  1000: 0.8455315828323364,
  1850: 0.5000006556510925,
  2000: 0.4328840970993042,
  2500: 0.2245522439479828,
  3000: 0.1,
  3599: 0.1,
};

Deno.test("lambda-cosine-floor: the original's float32 multiplier at key steps, and within 1 ulp at every step", async () => {
  const W = 100, total = 3600;
  for (const [s, m] of Object.entries(TORCH_MULTIPLIER)) {
    assertEquals(lambdaCosineFloor(Number(s), W, total), m, `step ${s}`);
  }
  // Every step against torch itself, where Debian's torch is installed.
  const py = "/usr/bin/python3";
  const code = "import torch,json\nW,T=100,3600\nprint(json.dumps([s/W if s<W else float(max(0.1,0.5*(1.0+" +
    "torch.cos(torch.tensor((s-W)/(T-W)*3.14159))))) for s in range(T)]))";
  const r = await new Deno.Command(py, { args: ["-c", code], stdout: "piped", stderr: "null" }).output()
    .catch(() => null);
  if (r?.success) {
    const ref: number[] = JSON.parse(new TextDecoder().decode(r.stdout));
    const off = ref.filter((m, s) => lambdaCosineFloor(s, W, total) !== m);
    const worst = Math.max(...ref.map((m, s) => Math.abs(lambdaCosineFloor(s, W, total) - m)));
    assert(worst <= 6e-8, `worst difference ${worst}`); // one float32 ulp near 0.5-1
    assert(off.length < 0.03 * total, `${off.length} steps differ`); // torch's float32 cos is not always rounded
  } else console.log("torch not found under /usr/bin/python3: compared at the key steps only");
  assertEquals(lambdaCosineFloor(0, W, total), 0); // the first update runs at lr 0
  assertEquals(lambdaCosineFloor(100, W, total), 1);
  assertEquals(lambdaCosineFloor(3599, W, total), 0.1); // floor, not 0
  // At the cosine's midpoint the multiplier is 0.5 only up to the 3.14159 rounding.
  assertAlmostEquals(lambdaCosineFloor(1850, W, total), 0.5, 2e-6);
  assert(lambdaCosineFloor(1850, W, total) !== 0.5);
  const sched = { kind: "lambda-cosine-floor", lr: 3e-4, warmupSteps: W, totalSteps: total } as const;
  assertEquals(learningRate(sched, 50), 3e-4 * 0.5);
  assertThrows(() => validateSchedule({ ...sched, totalSteps: 50 }), Error, "must exceed warmupSteps");
  assertThrows(
    () => validateSchedule({ ...sched, kind: "lambda-cosine" } as never),
    Error,
    "lambda-cosine-floor",
  );
});

Deno.test("name-based weight decay: the winner's 83,184,780 decayed / 543,360 not (spec §4.3)", () => {
  const specs = decoderParameterSpecs(modelPreset("phasegpt-l7-n32-k1"));
  // Shapes only: assignParamGroups reads names and ranks, so stand-ins of the right rank suffice.
  const params = new Map([...specs].map(([n, s]) => [n, { rank: s.shape.length } as unknown as Variable]));
  const groups = assignParamGroups(params, DECAY_BY_PHASEGPT_NAMES(0.1));
  let decayed = 0, not = 0;
  for (const [n, g] of groups) {
    const size = specs.get(n)!.shape.reduce((a, b) => a * b, 1);
    if (g.weightDecay > 0) decayed += size;
    else not += size;
  }
  assertEquals([decayed, not], [83_184_780, 543_360]);
  assertEquals(groups.get("blocks.0.ln1.w")!.weightDecay, 0.1); // LN gains decayed, as the original
  assertEquals(groups.get("blocks.7.attn.omega")!.weightDecay, 0.1);
  assertEquals(groups.get("blocks.7.attn.b_phase")!.weightDecay, 0);
});

Deno.test("perplexity definitions by PhaseGPT script name", () => {
  const losses = [1, 2], tokens = [100, 300];
  assertEquals(summariseEval(losses, tokens, "phasegpt_train").perplexity, (Math.E + Math.E ** 2) / 2);
  assertAlmostEquals(summariseEval(losses, tokens, "phasegpt_evaluate").perplexity, Math.exp(1.75), 1e-12);
  assertEquals(
    summariseEval(losses, tokens, "phasegpt_generalize"),
    summariseEval(losses, tokens, "token_mean"),
  );
});

for (const backend of CPU_BACKENDS) {
  // wasm too: the hand-written gradient must not depend on the caller's mask tensor still being alive.
  Deno.test(`a PhaseGPT training config trains (${backend}): R metrics per head (train and val), the coherence term weighted`, async () => {
    await useBackend(backend);
    const dir = await Deno.makeTempDir();
    try {
      const corpus = `${dir}/corpus.txt`;
      await Deno.writeTextFile(corpus, "To be, or not to be, that is the question. ".repeat(30));
      const cfg: TrainConfig = {
        model: { preset: "phasegpt-mini-l2-n32-k1-corrected", dModel: 32, nHeads: 2, init: "normal" },
        data: { corpus },
        training: { steps: 3, batchSize: 2, blockSize: 16, seed: 1 },
        optimizer: { beta1: 0.9, beta2: 0.999, weightDecay: 0.1, groups: "phasegpt-names" },
        schedule: { kind: "lambda-cosine-floor", lr: 3e-3, warmupSteps: 1, totalSteps: 3 },
        eval: { interval: 3, batches: 1, perplexity: "phasegpt_train" },
        log: { interval: 1 },
        checkpoint: { interval: 0 },
        loss: { terms: { coherence: 0.1 } },
      };
      resolveTrainConfig(cfg);
      assertThrows(
        () => resolveTrainConfig({ ...cfg, optimizer: { groups: "phasegpt" } }),
        Error,
        "phasegpt-names",
      );
      const r = await trainFromConfig({
        config: cfg,
        outDir: `${dir}/run`,
        print: false,
        handleSigint: false,
      });
      r.model.dispose();
      const log = (await Deno.readTextFile(`${dir}/run/log.jsonl`)).trim().split("\n").map((l) =>
        JSON.parse(l)
      );
      const train = log.filter((x) => x.kind === "train"), evals = log.filter((x) => x.kind === "eval");
      assert(train.length === 3 && evals.length >= 1);
      for (const rec of [...train, ...evals]) {
        for (const k of ["blocks.2.attn.R", "blocks.2.attn.R_h0", "blocks.2.attn.R_h1"]) {
          const v = rec.metrics?.[k];
          assert(typeof v === "number" && v >= 0 && v <= 1, `${rec.kind} ${k} = ${v}`);
        }
        assert(rec.terms?.coherence >= 0, `${rec.kind} coherence term`);
      }
      for (const rec of train) assertAlmostEquals(rec.objective, rec.loss + 0.1 * rec.terms.coherence, 1e-4);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
