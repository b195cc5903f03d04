/** `deno publish --dry-run` ships only the library and its data, with no warnings. */
import { assert } from "./assert.ts";

const ROOT = new URL("..", import.meta.url).pathname;

Deno.test({
  name: "deno publish --dry-run: library and data only, no warnings",
  sanitizeResources: false,
  fn: async () => {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["publish", "--dry-run", "--allow-dirty"],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
    assert(r.code === 0, out);
    assert(!/warning/i.test(out), `deno publish warns:\n${out}`);
    const files = [...out.matchAll(/file:\/\/(\S+)/g)].map((m) => m[1].slice(ROOT.length));
    assert(files.includes("mod.ts") && files.some((f) => f.startsWith("data/models/")), files.join("\n"));
    const stray = files.filter((f) => /^(tests|bench|notebooks|\.ci|lib\/cli)\//.test(f));
    assert(stray.length === 0, `published but should not be:\n${stray.join("\n")}`);
  },
});

Deno.test({
  name: "every export of mod.ts carries a @category",
  sanitizeResources: false,
  fn: async () => {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["doc", "--json", "mod.ts"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "null",
    }).output();
    const doc = JSON.parse(new TextDecoder().decode(r.stdout));
    type Sym = { name: string; declarations?: { jsDoc?: { tags?: { kind: string }[] } }[] };
    const symbols: Sym[] = (Object.values(doc.nodes)[0] as { symbols: Sym[] }).symbols;
    const missing = symbols.filter((s) =>
      !(s.declarations?.[0]?.jsDoc?.tags ?? []).some((t) => t.kind === "category")
    ).map((s) => s.name);
    assert(symbols.length > 100, `only ${symbols.length} symbols read`);
    assert(missing.length === 0, `exports without @category: ${missing.join(", ")}`);
  },
});
