/**
 * Validation of relative paths that come from untrusted data (an index json, a revision string, a
 * server's answer) before they are joined onto a local folder.
 *
 * @module
 */

/**
 * Throws unless `path` is a plain relative path that stays inside whatever folder it is joined to:
 * non-empty, `/`-separated, no absolute path or drive letter, no backslash, no NUL or control character,
 * no empty, `.` or `..` segment.
 *
 * @param path The untrusted path.
 * @param what What the path is, for the error message (e.g. `shard file name in model.safetensors.index.json`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { assertSafeRelativePath } from "./paths.ts";
 * assertSafeRelativePath("model-00001-of-00002.safetensors", "shard name"); // ok
 * assert.throws(() => assertSafeRelativePath("../../etc/passwd", "shard name"), /has a "\.\." segment/);
 * ```
 *
 * @category IO
 * @internal Used inside the library; not part of the stable API.
 */
export function assertSafeRelativePath(path: unknown, what: string): asserts path is string {
  const bad = (why: string): never => {
    throw new Error(`Unsafe ${what} ${JSON.stringify(path)}: ${why}; refusing to use it as a local path`);
  };
  if (typeof path !== "string") return bad("not a string");
  if (path.length === 0) return bad("empty");
  if (path.length > 1024) return bad("longer than 1024 characters");
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) return bad("contains a control character");
  if (path.includes("\\")) return bad("contains a backslash");
  if (path.startsWith("/")) return bad("is absolute");
  if (/^[A-Za-z]:/.test(path)) return bad("starts with a drive letter");
  for (const seg of path.split("/")) {
    if (seg === "") return bad("has an empty segment");
    if (seg === "." || seg === "..") return bad(`has a "${seg}" segment`);
  }
}

/**
 * Why `path` is not a regular file (after following symlinks), in words, or null when it is one: "does
 * not exist", "is a symlink to X, which does not exist", "is a directory", "is a named pipe (FIFO)", "is a
 * character device" ... Checked before opening, so a FIFO never blocks and a device is never read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { notRegularFileReason } from "./paths.ts";
 * assert.equal(await notRegularFileReason("/dev/null"), "is a character device, not a regular file");
 * ```
 *
 * @category IO
 */
export async function notRegularFileReason(path: string): Promise<string | null> {
  let l: Deno.FileInfo;
  try {
    l = await Deno.lstat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return "does not exist";
    return `cannot be inspected (${(err as Error).message})`;
  }
  let st = l;
  let via = "";
  if (l.isSymlink) {
    const target = await Deno.readLink(path).catch(() => "?");
    via = `is a symlink to "${target}", which `;
    try {
      st = await Deno.stat(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return `${via}does not exist (a dangling link)`;
      return `${via}cannot be inspected (${(err as Error).message})`;
    }
  }
  if (st.isFile) return null;
  const kind = st.isDirectory
    ? "a directory"
    : st.isFifo
    ? "a named pipe (FIFO)"
    : st.isCharDevice
    ? "a character device"
    : st.isBlockDevice
    ? "a block device"
    : st.isSocket
    ? "a socket"
    : "not a regular file";
  return `${via}is ${kind}${kind === "not a regular file" ? "" : ", not a regular file"}`;
}

/**
 * Throws `Error("<what> \"<path>\" <reason>")` unless `path` is a regular file after following links.
 *
 * @example
 * ```ts
 * import { assertRegularFile } from "./paths.ts";
 * await assertRegularFile("deno.json", "config file");
 * ```
 *
 * @category IO
 */
export async function assertRegularFile(path: string, what: string): Promise<void> {
  const why = await notRegularFileReason(path);
  if (why) throw new Error(`${what} "${path}" ${why}`);
}
