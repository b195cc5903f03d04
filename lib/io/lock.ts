/**
 * Exclusive lock files: one writer per output (a run folder, a results file). The lock is a small file
 * created with `O_EXCL` holding the owner's pid, host and start time; a second process that finds a live
 * owner refuses with a message naming it. A lock whose owner is gone (the process died, e.g. SIGKILL) is
 * stale and is taken over.
 *
 * @example
 * ```ts
 * import { acquireLock } from "./lock.ts";
 * const dir = await Deno.makeTempDir();
 * const lock = await acquireLock(`${dir}/out.lock`, { what: "the run folder" });
 * // ... write the output ...
 * await lock.release();
 * ```
 *
 * @module
 */

/**
 * What a lock file records about its owner.
 *
 * @category IO
 */
export interface LockOwner {
  /** Process id of the owner. */
  pid: number;
  /** Host name of the owner (a pid is only meaningful on its own host). */
  host: string;
  /** When the lock was taken (ISO time). */
  since: string;
}

/**
 * A held lock.
 *
 * @category IO
 */
export interface HeldLock {
  /** The lock file's path. */
  readonly path: string;
  /** Removes the lock file (idempotent; only removes it while it is still ours). */
  release(): Promise<void>;
  /** Same as {@linkcode HeldLock.release}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Options of {@link acquireLock}.
 *
 * @category IO
 */
export interface AcquireLockOptions {
  /** How the locked thing is named in messages, e.g. `run folder "runs/a"`. */
  what?: string;
  /** Liveness check of a pid (injectable for tests; default: `/proc/<pid>` or a signal-0 probe). */
  isAlive?: (pid: number) => boolean;
}

/**
 * Thrown when another live process holds the lock.
 *
 * @category IO
 */
export class LockHeldError extends Error {
  /** The owner recorded in the lock file. */
  readonly owner: LockOwner;
  /** An error with `message` about the lock held by `owner`. */
  constructor(message: string, owner: LockOwner) {
    super(message);
    this.name = "LockHeldError";
    this.owner = owner;
  }
}

function hostName(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown";
  }
}

/**
 * Whether a process with this pid exists on this host (Linux: `/proc/<pid>`; elsewhere assumed alive,
 * so a lock is never stolen from a process that may still run).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pidAlive } from "./lock.ts";
 * assert.equal(pidAlive(Deno.pid), true);
 * ```
 *
 * @category IO
 */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === Deno.pid) return true;
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      try {
        Deno.statSync("/proc/self");
        return false; // /proc works and has no such pid
      } catch {
        return true; // no /proc: cannot tell, assume alive
      }
    }
    return true;
  }
}

function parseOwner(text: string): LockOwner | null {
  try {
    const v = JSON.parse(text);
    if (v && typeof v === "object" && Number.isInteger(v.pid) && typeof v.host === "string") {
      return { pid: v.pid, host: v.host, since: typeof v.since === "string" ? v.since : "?" };
    }
  } catch { /* torn or foreign */ }
  return null;
}

/**
 * Takes the exclusive lock at `path` (creating the file), or throws {@link LockHeldError} naming the
 * live owner. A lock left by a dead process on this host, or an unreadable one older than a minute, is
 * taken over.
 *
 * @example
 * ```ts
 * import { acquireLock } from "./lock.ts";
 * const dir = await Deno.makeTempDir();
 * const a = await acquireLock(`${dir}/x.lock`);
 * await a.release();
 * ```
 *
 * @category IO
 */
export async function acquireLock(path: string, options: AcquireLockOptions = {}): Promise<HeldLock> {
  const what = options.what ?? path;
  const alive = options.isAlive ?? pidAlive;
  const me: LockOwner = { pid: Deno.pid, host: hostName(), since: new Date().toISOString() };
  const body = new TextEncoder().encode(JSON.stringify(me) + "\n");
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const f = await Deno.open(path, { write: true, createNew: true });
      try {
        let off = 0;
        while (off < body.length) off += await f.write(body.subarray(off));
      } finally {
        f.close();
      }
      return held(path, me);
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    }
    let text = "";
    let mtime = 0;
    try {
      text = await Deno.readTextFile(path);
      mtime = (await Deno.stat(path)).mtime?.getTime() ?? 0;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue; // released meanwhile: try again
      throw err;
    }
    const owner = parseOwner(text);
    const stale = owner ? owner.host === me.host && !alive(owner.pid) : Date.now() - mtime > 60_000; // a torn lock file: only a writer that died mid-write leaves one
    if (!stale) {
      const o = owner ?? { pid: -1, host: "?", since: "?" };
      throw new LockHeldError(
        `${what} is in use by another process (pid ${o.pid} on ${o.host}, since ${o.since}; lock file ` +
          `${path}). Wait for it to finish, or use a different output. If that process is gone, delete ` +
          `the lock file.`,
        o,
      );
    }
    // Stale: move it aside atomically so only one contender removes it, then retry the exclusive create.
    const aside = `${path}.stale-${Deno.pid}-${attempt}`;
    try {
      await Deno.rename(path, aside);
      await Deno.remove(aside).catch(() => {});
    } catch { /* another contender took it over first */ }
  }
  throw new Error(`Could not take the lock ${path} for ${what}: it keeps changing hands`);
}

function held(path: string, me: LockOwner): HeldLock {
  let released = false;
  const lock: HeldLock = {
    path,
    [Symbol.asyncDispose]: () => lock.release(),
    async release() {
      if (released) return;
      released = true;
      try {
        const owner = parseOwner(await Deno.readTextFile(path));
        if (owner && owner.pid === me.pid && owner.since === me.since) await Deno.remove(path);
      } catch { /* already gone */ }
    },
  };
  return lock;
}
