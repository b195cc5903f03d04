/** One scratch folder per test process, removed when the process unloads, so tests leave nothing in /tmp. */
let root: string | undefined;

/** A fresh empty folder under this process's scratch root. */
export async function tmpDir(): Promise<string> {
  if (!root) {
    root = await Deno.makeTempDir({ prefix: "coherence_io_test_" });
    const r = root;
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(r, { recursive: true });
      } catch { /* already gone */ }
    });
  }
  return await Deno.makeTempDir({ dir: root });
}
