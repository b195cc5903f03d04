/**
 * One convention for every command: usage errors exit 2 prefixed with the command's name, `--T -1` and
 * `--T=-1` parse the same, flags are checked before a backend starts, a bare `recync` prints help.
 * Each command runs in its own process, as a user runs it.
 */
import { assert, assertEquals } from "../assert.ts";

const CLI = new URL("../../lib/cli/", import.meta.url).pathname;

async function run(script: string, ...args: string[]) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${CLI}${script}.ts`, ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

Deno.test("usage errors exit 2 with the command's name, before any backend starts", async () => {
  const cases: [string, string[], string][] = [
    [
      "recync",
      ["run", "--model", "m", "--prompts", "p", "--out", "o", "--T", "-1"],
      "recync run: --T must be",
    ],
    ["recync", ["run", "--model", "m", "--prompts", "p", "--out", "o", "--T=-1"], "recync run: --T must be"],
    ["recync", ["report"], "recync report: give at least one results"],
    ["recync", ["null", "--N", "-3"], "recync null: --N must be"],
    ["recync", ["rnu"], "recync: unknown command 'rnu' (did you mean run"],
    ["recync", [], "recync: give a command"],
    ["demo", ["--tokens", "-1"], "demo: --tokens"],
    ["demo", ["--tokns", "5"], "demo: unknown option '--tokns' (did you mean --tokens?)"],
    ["train", ["--config", "c.json", "--out", "o", "--steps", "-1"], "train: --steps must be"],
    ["sample", ["--ckpt", "x", "--temperature", "-1"], "sample:"],
  ];
  for (const [script, args, expected] of cases) {
    const r = await run(script, ...args);
    assertEquals(r.code, 2, `${script} ${args.join(" ")}: exit ${r.code}\n${r.err}`);
    assert(r.err.startsWith(expected), `${script} ${args.join(" ")}:\n${r.err}`);
    assert(r.err.includes("Usage") || r.err.includes("deno task"), `usage missing:\n${r.err}`);
    assert(!r.err.includes("[backend]"), `a backend started before the flags were checked:\n${r.err}`);
  }
});

Deno.test("--help exits 0 on every command", async () => {
  for (
    const [script, args] of [["recync", ["--help"]], ["recync", ["run", "--help"]], ["demo", [
      "--help",
    ]]] as const
  ) {
    const r = await run(script, ...args);
    assertEquals(r.code, 0, `${script} ${args.join(" ")}\n${r.err}`);
  }
});
