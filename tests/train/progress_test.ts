/** The trainer's terminal lines: step k / total, tokens/s and an ETA from the first step; a resume to no more steps says so. */
import { trainFromConfig } from "../../lib/train/run.ts";
import { useBackend } from "../fixtures.ts";
import { assert } from "../assert.ts";
import { tmpDir } from "../io/tmp.ts";

await useBackend("cpu");

async function captured<T>(fn: () => Promise<T>): Promise<{ lines: string[]; value: T }> {
  const lines: string[] = [];
  const [log, err] = [console.log, console.error];
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  console.error = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    return { lines, value: await fn() };
  } finally {
    [console.log, console.error] = [log, err];
  }
}

Deno.test("trainer progress: step k/total, tok/s and ETA from the first step; resume to <= saved step says nothing runs", async () => {
  const corpus = await Deno.makeTempFile({ suffix: ".txt" });
  await Deno.writeTextFile(corpus, "to be or not to be, that is the question. ".repeat(30));
  const outDir = await tmpDir();
  const config = {
    model: { preset: "gpt2-new", nLayers: 1, dModel: 16, nHeads: 2 },
    data: { corpus },
    training: { steps: 4, batchSize: 2, blockSize: 8 },
    log: { interval: 10 },
    eval: { interval: 0 },
  };
  const first = await captured(() => trainFromConfig({ outDir, config, handleSigint: false }));
  first.value.model.dispose();
  const line1 = first.lines.find((l) => l.startsWith("step 1/4"));
  assert(line1, first.lines.join("\n"));
  assert(/tok\/s/.test(line1!) && /ETA \S+/.test(line1!), line1);
  const again = await captured(() =>
    trainFromConfig({ outDir, config, resume: true, steps: 3, handleSigint: false })
  );
  again.value.model.dispose();
  assert(
    again.lines.some((l) => l.startsWith("nothing to run: the checkpoint is at step 4 and --steps 3")),
    again.lines.join("\n"),
  );
});
