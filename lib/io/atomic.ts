/**
 * Crash-safe file writes: a reader sees either the previous file or the complete new one, never a half.
 *
 * Whole files go to a temp file in the same folder (same file system, so the rename is atomic), are
 * fsynced, then renamed over the target. Append-only logs (`.jsonl`) use one `O_APPEND` write per record
 * followed by fsync; a crash can only tear the last line, which {@link readJsonl} reports and skips.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readJsonl, appendJsonl, writeJsonAtomic } from "./atomic.ts";
 * const dir = await Deno.makeTempDir();
 * await writeJsonAtomic(`${dir}/state.json`, { step: 10 });
 * await appendJsonl(`${dir}/log.jsonl`, { step: 10, loss: 2.5 });
 * const { records } = await readJsonl(`${dir}/log.jsonl`);
 * assert.deepEqual(records, [{ step: 10, loss: 2.5 }]);
 * ```
 *
 * @module
 */

/**
 * Fault-injection points of an atomic write. Each hook may throw to simulate a failure at that moment
 * (disk full, crash before rename); the write then cleans up and rethrows, leaving the target untouched.
 *
 * @category IO
 */
export interface AtomicWriteHooks {
  /** Called before each chunk is written to the temp file, with the bytes written so far. */
  beforeWrite?(tempPath: string, bytesWritten: number): void | Promise<void>;
  /** Called after all bytes are written, before fsync. */
  beforeSync?(tempPath: string): void | Promise<void>;
  /** Called after fsync and close, right before the rename over the target. */
  beforeRename?(tempPath: string, targetPath: string): void | Promise<void>;
}

/**
 * Options of the atomic writers.
 *
 * @category IO
 */
export interface AtomicWriteOptions {
  /** Fault injection for tests (see {@link AtomicWriteHooks}). */
  hooks?: AtomicWriteHooks;
  /** Permission bits of the new file (default 0o644, before umask). */
  mode?: number;
}

/**
 * The sink handed to a {@link writeFileAtomicWith} callback.
 *
 * @category IO
 */
export interface AtomicSink {
  /** Appends bytes to the temp file (loops until every byte is written). */
  write(bytes: Uint8Array): Promise<void>;
  /** Bytes written so far. */
  readonly bytesWritten: number;
  /** The temp file's path (for messages). */
  readonly tempPath: string;
}

function splitPath(path: string): { dir: string; base: string } {
  const i = path.lastIndexOf("/");
  if (i < 0) return { dir: ".", base: path };
  return { dir: i === 0 ? "/" : path.slice(0, i), base: path.slice(i + 1) };
}

function randomSuffix(): string {
  // Only names the temp file; no effect on any result, so no seed is needed.
  const b = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * Writes every byte of `bytes` to `file`; `Deno.FsFile.write` may write fewer bytes than asked.
 *
 * @category IO
 * @internal Used inside the library; not part of the stable API.
 */
export async function writeAllBytes(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await file.write(bytes.subarray(off));
}

async function fsyncDir(dir: string): Promise<void> {
  // Makes the rename itself durable. Some platforms cannot open folders; the rename is still atomic.
  try {
    const d = await Deno.open(dir, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch {
    // best effort
  }
}

/**
 * Writes a file atomically by streaming chunks: `produce` writes into a temp file beside `path`, which is
 * fsynced and renamed over `path` only if `produce` resolves. On any failure the temp file is removed and
 * the previous content of `path` (if any) is left intact. Use it for files too large for one buffer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeFileAtomicWith } from "./atomic.ts";
 * const path = await Deno.makeTempFile();
 * await writeFileAtomicWith(path, async (sink) => {
 *   await sink.write(new TextEncoder().encode("hello "));
 *   await sink.write(new TextEncoder().encode("world"));
 * });
 * assert.equal(await Deno.readTextFile(path), "hello world");
 * ```
 *
 * @category IO
 */
export async function writeFileAtomicWith(
  path: string,
  produce: (sink: AtomicSink) => Promise<void>,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const { dir, base } = splitPath(path);
  if (base === "" || base === "." || base === "..") {
    throw new Error(`writeFileAtomic: "${path}" is not a file path`);
  }
  const hooks = options.hooks ?? {};
  const tempPath = `${dir === "/" ? "" : dir}/.${base}.tmp-${Deno.pid}-${randomSuffix()}`;
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(tempPath, { write: true, createNew: true, mode: options.mode ?? 0o644 });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Error(`writeFileAtomic: cannot write "${path}": folder "${dir}" does not exist`);
    }
    throw err;
  }
  let written = 0;
  const sink: AtomicSink = {
    async write(bytes: Uint8Array): Promise<void> {
      if (!file) throw new Error(`writeFileAtomic: write to "${path}" after the write finished`);
      await hooks.beforeWrite?.(tempPath, written);
      await writeAllBytes(file, bytes);
      written += bytes.length;
    },
    get bytesWritten() {
      return written;
    },
    tempPath,
  };
  try {
    await produce(sink);
    await hooks.beforeSync?.(tempPath);
    await file.sync();
    file.close();
    file = undefined;
    await hooks.beforeRename?.(tempPath, path);
    await Deno.rename(tempPath, path);
  } catch (err) {
    try {
      file?.close();
    } catch { /* already closed */ }
    file = undefined;
    await Deno.remove(tempPath).catch(() => {});
    throw err;
  }
  await fsyncDir(dir);
}

/**
 * Writes `bytes` to `path` atomically (temp file in the same folder + fsync + rename).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeFileAtomic } from "./atomic.ts";
 * const path = await Deno.makeTempFile();
 * await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
 * assert.deepEqual(await Deno.readFile(path), new Uint8Array([1, 2, 3]));
 * ```
 *
 * @category IO
 */
export function writeFileAtomic(
  path: string,
  bytes: Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  return writeFileAtomicWith(path, (sink) => sink.write(bytes), options);
}

/**
 * Writes UTF-8 text to `path` atomically.
 *
 * @example
 * ```ts
 * import { writeTextAtomic } from "./atomic.ts";
 * const path = await Deno.makeTempFile();
 * await writeTextAtomic(path, "done\n");
 * ```
 *
 * @category IO
 */
export function writeTextAtomic(path: string, text: string, options: AtomicWriteOptions = {}): Promise<void> {
  return writeFileAtomic(path, new TextEncoder().encode(text), options);
}

/**
 * Options of {@link writeJsonAtomic}.
 *
 * @category IO
 */
export interface WriteJsonOptions extends AtomicWriteOptions {
  /** Indentation passed to JSON.stringify (default 2). */
  indent?: number;
}

/**
 * Writes `value` as JSON (with a trailing newline) to `path` atomically.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeJsonAtomic } from "./atomic.ts";
 * const path = await Deno.makeTempFile();
 * await writeJsonAtomic(path, { step: 3, loss: 1.25 });
 * assert.deepEqual(JSON.parse(await Deno.readTextFile(path)), { step: 3, loss: 1.25 });
 * ```
 *
 * @category IO
 */
export function writeJsonAtomic(path: string, value: unknown, options: WriteJsonOptions = {}): Promise<void> {
  const text = JSON.stringify(value, null, options.indent ?? 2);
  if (text === undefined) throw new Error(`writeJsonAtomic: value for "${path}" is not JSON-serialisable`);
  return writeTextAtomic(path, text + "\n", options);
}

/** Reads the bytes after the last newline of an open file (the torn tail), and where it starts. */
async function readTail(file: Deno.FsFile, size: number): Promise<{ start: number; bytes: Uint8Array }> {
  const chunk = 65536;
  let end = size;
  const parts: Uint8Array[] = [];
  while (end > 0) {
    const start = Math.max(0, end - chunk);
    const buf = new Uint8Array(end - start);
    await file.seek(start, Deno.SeekMode.Start);
    let off = 0;
    while (off < buf.length) {
      const n = await file.read(buf.subarray(off));
      if (n === null) break;
      off += n;
    }
    const nl = buf.subarray(0, off).lastIndexOf(10);
    if (nl >= 0) {
      parts.unshift(buf.subarray(nl + 1, off));
      return { start: start + nl + 1, bytes: concat(parts) };
    }
    parts.unshift(buf.subarray(0, off));
    end = start;
  }
  return { start: 0, bytes: concat(parts) };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Appends one JSON record as a line to `path` (created if missing) with a single `O_APPEND` write and an
 * fsync, so concurrent appenders never interleave inside a line and a crash tears at most the last line.
 *
 * If the file ends in a torn line (a previous writer crashed mid-record), that fragment is first cut off
 * so the new record starts on a line of its own; a last line that is complete JSON but lacks its newline
 * is kept and terminated. Appends from this process to one path are queued; the repair assumes no other
 * process is appending to the same file at the same moment (one writer per log).
 *
 * @example
 * ```ts
 * import { appendJsonl } from "./atomic.ts";
 * const path = await Deno.makeTempFile({ suffix: ".jsonl" });
 * await appendJsonl(path, { step: 1, loss: 3.2 });
 * await appendJsonl(path, { step: 2, loss: 3.1 });
 * ```
 *
 * @category IO
 */
export function appendJsonl(path: string, record: unknown): Promise<void> {
  const line = JSON.stringify(record);
  if (line === undefined) {
    return Promise.reject(new Error(`appendJsonl: record for "${path}" is not JSON-serialisable`));
  }
  // Appends to one path from this process run one at a time, so the torn-tail check never sees another
  // append of ours half written.
  const prev = appendQueues.get(path) ?? Promise.resolve();
  const job = prev.then(() => appendLine(path, line));
  const tail = job.catch(() => {});
  appendQueues.set(path, tail);
  tail.then(() => {
    if (appendQueues.get(path) === tail) appendQueues.delete(path);
  });
  return job;
}

const appendQueues = new Map<string, Promise<void>>();

async function appendLine(path: string, line: string): Promise<void> {
  const { dir } = splitPath(path);
  if (dir !== "." && dir !== "/") await Deno.mkdir(dir, { recursive: true }); // a log's folder may be new
  const file = await Deno.open(path, { read: true, append: true, create: true });
  try {
    let prefix = "";
    const size = (await file.stat()).size;
    if (size > 0) {
      const tail = await readTail(file, size);
      if (tail.bytes.length > 0) {
        const text = new TextDecoder().decode(tail.bytes);
        if (isCompleteJson(text)) prefix = "\n";
        else await file.truncate(tail.start);
      }
    }
    await writeAllBytes(file, new TextEncoder().encode(prefix + line + "\n"));
    await file.syncData();
  } finally {
    file.close();
  }
}

function isCompleteJson(text: string): boolean {
  if (text.trim() === "") return false;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * A line of a `.jsonl` file that could not be used.
 *
 * @category IO
 */
export interface JsonlTornLine {
  /** 1-based line number. */
  line: number;
  /** The raw text of the fragment. */
  text: string;
}

/**
 * Result of {@link readJsonl}.
 *
 * @category IO
 */
export interface JsonlReadResult<T> {
  /** The complete records, in file order. */
  records: T[];
  /** The last line when it is incomplete (a crash during an append), otherwise null. */
  tornTail: JsonlTornLine | null;
}

/**
 * Options of {@link readJsonl}.
 *
 * @category IO
 */
export interface ReadJsonlOptions {
  /** Return no records instead of throwing when the file does not exist. */
  allowMissing?: boolean;
}

/**
 * Reads a `.jsonl` file written by {@link appendJsonl}. A last line that is not valid JSON (and has no
 * trailing newline, or is the final line) is treated as a write torn by a crash: it is returned in
 * `tornTail` instead of throwing. A malformed line anywhere else is corruption and throws, naming the line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { appendJsonl, readJsonl } from "./atomic.ts";
 * const path = await Deno.makeTempFile({ suffix: ".jsonl" });
 * await appendJsonl(path, { a: 1 });
 * await Deno.writeTextFile(path, '{"a": 2', { append: true }); // simulate a crash mid-append
 * const { records, tornTail } = await readJsonl<{ a: number }>(path);
 * assert.deepEqual(records, [{ a: 1 }]); // the complete record survives
 * assert.equal(tornTail?.line, 2); // and the torn line is reported, not parsed
 * ```
 *
 * @category IO
 */
export async function readJsonl<T = unknown>(
  path: string,
  options: ReadJsonlOptions = {},
): Promise<JsonlReadResult<T>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (options.allowMissing && err instanceof Deno.errors.NotFound) return { records: [], tornTail: null };
    throw err;
  }
  const lines = text.split("\n");
  // With a trailing newline the split ends in "", which is not a line.
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  const records: T[] = [];
  let tornTail: JsonlTornLine | null = null;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    if (raw.trim() === "") continue;
    try {
      records.push(JSON.parse(raw) as T);
    } catch (err) {
      if (i === lines.length - 1) {
        tornTail = { line: i + 1, text: raw };
      } else {
        throw new Error(
          `readJsonl: ${path}:${i + 1} is not valid JSON (${(err as Error).message}); ` +
            `only the last line may be torn by a crash, so the file is corrupted`,
        );
      }
    }
  }
  return { records, tornTail };
}
