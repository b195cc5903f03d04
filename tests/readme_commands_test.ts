/**
 * Runs every shell command the README marks runnable (a `<!-- readme-test: run -->` line right before its
 * fence) in a fresh copy of the repository, at a small scale, so a README command cannot break silently.
 * The copy holds only the files git tracks (what a fresh clone has), with `../shared` linked beside it when
 * this checkout has one.
 *
 * @module
 */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const MARK = "<!-- readme-test: run -->";

/** One command of a marked block, continuation lines joined, comments dropped. */
export interface ReadmeCommand {
  line: number;
  command: string;
}

/** The commands of the README's marked `sh` blocks. */
export function runnableCommands(markdown: string): ReadmeCommand[] {
  const lines = markdown.split("\n");
  const out: ReadmeCommand[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== MARK) continue;
    let fence = i + 1;
    while (lines[fence]?.trim() === "") fence++; // deno fmt puts a blank line after the comment
    if (!/^```(sh|bash)\s*$/.test(lines[fence] ?? "")) {
      throw new Error(`README.md:${i + 1}: ${MARK} must be followed by a \`\`\`sh fence`);
    }
    let j = fence + 1;
    let pending = "";
    let start = j;
    for (; j < lines.length && !lines[j].startsWith("```"); j++) {
      const text = lines[j].replace(/(^|\s)#.*$/, "").trimEnd();
      if (!pending) start = j;
      if (text.endsWith("\\")) {
        pending += text.slice(0, -1) + " ";
        continue;
      }
      const command = (pending + text).trim().replace(/\s+/g, " ");
      pending = "";
      if (command) out.push({ line: start + 1, command });
    }
    i = j;
  }
  return out;
}

/**
 * The same command at test scale: fewer steps, tokens, seeds and prompts. Only the sizes change, never
 * what the command does.
 */
export function atSmallScale(command: string): string {
  const set = (c: string, flag: string, value: string) => {
    const re = new RegExp(`(${flag})(=|\\s+)\\S+`);
    return re.test(c) ? c.replace(re, `$1 ${value}`) : `${c} ${flag} ${value}`;
  };
  let c = command;
  if (/deno task train\b/.test(c)) c = set(c, "--steps", /--resume/.test(c) ? "4" : "2");
  if (/deno task sample\b/.test(c)) c = set(c, "--max-new-tokens", "8");
  if (/deno task recync run\b/.test(c)) {
    c = set(set(set(c, "--T", "40"), "--seeds", "1"), "--max-prompts", "2");
  }
  if (/deno task recync report\b/.test(c)) c = set(set(c, "--resamples", "200"), "--traces", "1");
  if (/deno task recync null\b/.test(c)) c = set(set(c, "--N", "10"), "--T", "40");
  if (/deno task demo\b/.test(c)) c = set(c, "--tokens", "16");
  return c;
}

async function copyTracked(to: string): Promise<void> {
  const ls = await new Deno.Command("git", { args: ["ls-files", "-z"], cwd: ROOT, stdout: "piped" }).output();
  const files = new TextDecoder().decode(ls.stdout).split("\0").filter(Boolean);
  for (const f of files) {
    const src = `${ROOT}/${f}`;
    try {
      if (!(await Deno.lstat(src)).isFile) continue;
    } catch {
      continue; // deleted in the work tree
    }
    const dst = `${to}/${f}`;
    await Deno.mkdir(dst.slice(0, dst.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(src, dst);
  }
}

Deno.test("runnableCommands: joins continuations and drops comments", () => {
  const md =
    `x\n${MARK}\n\n\`\`\`sh\n# a comment\ndeno task a --x 1 \\\n  --y 2   # trailing\n\ndeno task b\n\`\`\`\n`;
  assert.deepEqual(runnableCommands(md).map((c) => c.command), ["deno task a --x 1 --y 2", "deno task b"]);
  assert.equal(
    atSmallScale("deno task recync run --T 100 --seeds 2"),
    "deno task recync run --T 40 --seeds 1 --max-prompts 2",
  );
});

Deno.test({
  name: "README: every command marked runnable succeeds in a fresh copy of the repository",
  // Spawns deno for each command: minutes on a shared machine.
  sanitizeResources: false,
  fn: async (t) => {
    const commands = runnableCommands(await Deno.readTextFile(`${ROOT}/README.md`));
    assert.ok(
      commands.length >= 5,
      `expected the README to mark its commands runnable, found ${commands.length}`,
    );
    const base = await Deno.makeTempDir({ prefix: "coherence-readme-" });
    const repo = `${base}/repo`;
    await copyTracked(repo);
    let shared = false;
    try {
      shared = (await Deno.stat(`${ROOT}/../shared`)).isDirectory;
    } catch { /* absent */ }
    if (shared) await Deno.symlink(await Deno.realPath(`${ROOT}/../shared`), `${base}/shared`);
    try {
      for (const { line, command } of commands) {
        const small = atSmallScale(command);
        await t.step(`README.md:${line}: ${small}`, async () => {
          if (!shared && small.includes("../shared")) {
            console.log(`skipped (needs ../shared, absent here): ${small}`);
            return;
          }
          const r = await new Deno.Command("bash", {
            args: ["-c", small],
            cwd: repo,
            env: { NO_COLOR: "1", COHERENCE_SCALE: "ci" },
            stdout: "piped",
            stderr: "piped",
          }).output();
          const dec = new TextDecoder();
          const stderr = dec.decode(r.stderr);
          // deno.json denies core-js's banner-only postinstall; a fresh clone must not warn about it.
          assert.ok(
            !stderr.includes("Ignored build scripts"),
            `README.md:${line}: \`${small}\` warned:\n${stderr}`,
          );
          assert.equal(
            r.code,
            0,
            `README.md:${line}: \`${small}\` exited ${r.code}\n--- stdout\n${
              dec.decode(r.stdout).slice(-3000)
            }\n` +
              `--- stderr\n${stderr.slice(-3000)}`,
          );
        });
      }
    } finally {
      await Deno.remove(base, { recursive: true }).catch(() => {});
    }
  },
});
