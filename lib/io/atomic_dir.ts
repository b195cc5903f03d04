/**
 * Whole-folder atomic writes: fill a temporary sibling folder, fsync it, then rename it into place.
 * Files inside are written with `lib/io/atomic.ts`; this module only adds the folder-level commit.
 *
 * @module
 */

/**
 * Options of {@linkcode writeDirAtomic}.
 *
 * @category IO
 */
export interface WriteDirOptions {
  /** Fault injection for tests: called after `fill` succeeds, right before the rename into place. */
  beforeCommit?(tempDir: string, targetDir: string): void | Promise<void>;
}

function parentOf(path: string): string {
  const i = path.replace(/\/+$/, "").lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

function baseOf(path: string): string {
  const p = path.replace(/\/+$/, "");
  return p.slice(p.lastIndexOf("/") + 1);
}

async function fsyncDir(dir: string): Promise<void> {
  // fsync on a folder makes its entries (the new names) durable; not every platform allows opening one.
  try {
    const f = await Deno.open(dir, { read: true });
    try {
      await f.sync();
    } finally {
      f.close();
    }
  } catch { /* best effort */ }
}

/**
 * Creates `targetDir` with the files `fill` writes into a temporary sibling folder, then renames it into
 * place. If `fill` (or the commit) fails, the temporary folder is removed and an existing `targetDir` is
 * left exactly as it was. An existing `targetDir` is replaced: it is first renamed aside, the new folder
 * renamed in, and only then the old one deleted, so at every moment one complete folder exists.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeDirAtomic } from "./atomic_dir.ts";
 * const root = await Deno.makeTempDir();
 * await writeDirAtomic(`${root}/ckpt`, async (tmp) => {
 *   await Deno.writeTextFile(`${tmp}/state.json`, "{}");
 * });
 * assert.equal(await Deno.readTextFile(`${root}/ckpt/state.json`), "{}");
 * ```
 *
 * @category IO
 */
export async function writeDirAtomic(
  targetDir: string,
  fill: (tempDir: string) => Promise<void>,
  options: WriteDirOptions = {},
): Promise<void> {
  const parent = parentOf(targetDir);
  await Deno.mkdir(parent, { recursive: true });
  const tmp = await Deno.makeTempDir({ dir: parent, prefix: `.tmp-${baseOf(targetDir)}-` });
  try {
    await fill(tmp);
    await Deno.chmod(tmp, 0o755).catch(() => {}); // makeTempDir creates 0700; the result is an ordinary folder
    await fsyncDir(tmp);
    await options.beforeCommit?.(tmp, targetDir);
    let aside: string | undefined;
    try {
      await Deno.rename(tmp, targetDir);
    } catch (e) {
      // Renaming onto a non-empty folder fails on POSIX: move the old one aside first.
      if (
        !(e instanceof Deno.errors.AlreadyExists) &&
        !(e instanceof Error && /not empty|exists/i.test(e.message))
      ) throw e;
      aside = `${parent}/.old-${baseOf(targetDir)}-${baseOf(tmp).slice(-6)}`;
      await Deno.rename(targetDir, aside);
      try {
        await Deno.rename(tmp, targetDir);
      } catch (e2) {
        await Deno.rename(aside, targetDir);
        throw e2;
      }
    }
    await fsyncDir(parent);
    if (aside) await Deno.remove(aside, { recursive: true });
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}

/**
 * Removes temporary and aside folders a crashed {@linkcode writeDirAtomic} left in `parent`
 * (names starting with `.tmp-` or `.old-`). Returns the names removed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cleanStaleTempDirs } from "./atomic_dir.ts";
 * const root = await Deno.makeTempDir();
 * await Deno.mkdir(`${root}/.tmp-ckpt-abc`);
 * assert.deepEqual(await cleanStaleTempDirs(root), [".tmp-ckpt-abc"]);
 * ```
 *
 * @category IO
 */
export async function cleanStaleTempDirs(parent: string): Promise<string[]> {
  const removed: string[] = [];
  try {
    for await (const e of Deno.readDir(parent)) {
      if (e.isDirectory && (e.name.startsWith(".tmp-") || e.name.startsWith(".old-"))) {
        await Deno.remove(`${parent}/${e.name}`, { recursive: true });
        removed.push(e.name);
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return removed;
}
