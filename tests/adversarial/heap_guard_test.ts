// Issue 10, item 13: glibc's heap-corruption report does not say which process wrote it. CI can only name it if
// (a) no process the tests start writes to the CI log (their stderr is piped or discarded, checked here), so a
// report there comes from the test runner itself, and (b) a crashed process leaves a core file that
// tools/core_owner.ts attributes (checked here on a hand-built core and on a real one where dumps are allowed).
import assert from "node:assert/strict";
import { coreOwner } from "../../tools/core_owner.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** A minimal ELF64 core: header, one PT_NOTE program header, one NT_PRPSINFO note. */
function handMadeCore(pid: number, name: string, args: string): Uint8Array {
  const noteName = new TextEncoder().encode("CORE\0\0\0\0"); // "CORE\0" padded to 8
  const desc = new Uint8Array(136);
  const dv = new DataView(desc.buffer);
  dv.setInt32(24, pid, true);
  desc.set(new TextEncoder().encode(name).subarray(0, 15), 40);
  desc.set(new TextEncoder().encode(args).subarray(0, 79), 56);
  const noteOff = 64 + 56, noteLen = 12 + noteName.length + desc.length;
  const out = new Uint8Array(noteOff + noteLen);
  const v = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  v.setUint16(16, 4, true); // ET_CORE
  v.setBigUint64(32, 64n, true); // e_phoff
  v.setUint16(54, 56, true); // e_phentsize
  v.setUint16(56, 1, true); // e_phnum
  v.setUint32(64, 4, true); // PT_NOTE
  v.setBigUint64(64 + 8, BigInt(noteOff), true);
  v.setBigUint64(64 + 32, BigInt(noteLen), true);
  v.setUint32(noteOff, 5, true);
  v.setUint32(noteOff + 4, desc.length, true);
  v.setUint32(noteOff + 8, 3, true); // NT_PRPSINFO
  out.set(noteName, noteOff + 12);
  out.set(desc, noteOff + 12 + noteName.length);
  return out;
}

Deno.test("core_owner: names the process of a hand-built core, and says what is wrong with other files", () => {
  assert.deepEqual(coreOwner(handMadeCore(4242, "deno", "deno test -A tests/")), {
    pid: 4242,
    name: "deno",
    args: "deno test -A tests/",
  });
  assert.throws(
    () => coreOwner(new TextEncoder().encode("hello, not an ELF file at all ".repeat(4))),
    /not an ELF/,
  );
  const exe = handMadeCore(1, "x", "x");
  exe[16] = 2; // ET_EXEC
  assert.throws(() => coreOwner(exe), /not a core dump/);
  const truncated = handMadeCore(1, "x", "x").subarray(0, 100);
  assert.throws(() => coreOwner(truncated), /truncated|NT_PRPSINFO/);
});

Deno.test("core_owner: names a real process that aborted (skips where this machine does not write core files)", async () => {
  const pattern = await Deno.readTextFile("/proc/sys/kernel/core_pattern").catch(() => "");
  if (pattern.trim() !== "core" && !pattern.startsWith("core")) {
    console.log(`skipped: core_pattern is '${pattern.trim()}' (cores do not land in the working folder)`);
    return;
  }
  const dir = await Deno.makeTempDir();
  try {
    const r = await new Deno.Command("bash", {
      args: [
        "-c",
        "ulimit -c unlimited 2>/dev/null || ulimit -c 100000 2>/dev/null; sh -c 'kill -ABRT $$'; echo $?",
      ],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const cores = [...Deno.readDirSync(dir)].filter((e) => /^core(\.\d+)?$/.test(e.name));
    if (cores.length === 0) {
      console.log(
        `skipped: no core file written (ulimit -c refused?): ${new TextDecoder().decode(r.stderr).trim()}`,
      );
      return;
    }
    const owner = coreOwner(await Deno.readFile(`${dir}/${cores[0].name}`));
    assert.equal(owner.name, "sh");
    assert.match(owner.args, /kill -ABRT/);
    assert.ok(owner.pid > 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Subprocess calls in `text` (line numbers) whose stderr would go to this process's stderr. */
function inheritedStderr(text: string): number[] {
  const lines: number[] = [];
  for (const m of text.matchAll(/new Deno\.Command\(/g)) {
    // The call's options run to the first .output() / .outputSync() / .spawn() after it.
    const rest = text.slice(m.index!);
    const end = rest.search(/\.(output|outputSync|spawn)\(\)/);
    if (end < 0) continue;
    const spawned = rest.startsWith(".spawn()", end);
    const stderr = rest.slice(0, end).match(/stderr:\s*"(\w+)"/)?.[1];
    // output() pipes stderr unless told otherwise; spawn() inherits it unless told otherwise.
    if (stderr ? stderr === "inherit" : spawned) lines.push(text.slice(0, m.index).split("\n").length);
  }
  return lines;
}

Deno.test("every process the tests start has its stderr piped or discarded, so the CI log only shows the runner's", async () => {
  // The check itself: it flags spawn() without stderr and an explicit inherit, and passes piped output().
  assert.deepEqual(inheritedStderr('new Deno.Command("a", { args: [] }).spawn();'), [1]);
  assert.deepEqual(inheritedStderr('\nnew Deno.Command("a", { stderr: "inherit" }).output();'), [2]);
  assert.deepEqual(
    inheritedStderr('new Deno.Command("a", { stderr: "null" }).spawn(); new Deno.Command("b").output();'),
    [],
  );
  const offenders: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for await (const e of Deno.readDir(dir)) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (e.name.endsWith(".ts") && path !== new URL(import.meta.url).pathname) {
        for (const line of inheritedStderr(await Deno.readTextFile(path))) {
          offenders.push(`${path.slice(ROOT.length)}:${line}`);
        }
      }
    }
  };
  for (const d of ["tests", "lib"]) await walk(`${ROOT}${d}`);
  assert.deepEqual(offenders, [], "these subprocesses would write to the test runner's stderr");
});
