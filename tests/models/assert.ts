/** Assertion helpers for the model tests (JSR's @std/assert is unreachable; node:assert does the work). */
import nodeAssert from "node:assert/strict";

/** Throws `msg` unless `cond` is truthy. */
export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

/** Deep equality. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, msg);
}

/** Throws unless `fn` throws an error whose message includes `includes`. */
export function assertThrows(fn: () => unknown, includes: string): Error {
  try {
    fn();
  } catch (e) {
    const m = (e as Error).message;
    if (!m.includes(includes)) throw new Error(`expected an error mentioning '${includes}', got: ${m}`);
    return e as Error;
  }
  throw new Error(`expected an error mentioning '${includes}', nothing was thrown`);
}

/** Async variant of {@linkcode assertThrows}. */
export async function assertRejects(fn: () => Promise<unknown>, includes: string): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    const m = (e as Error).message;
    if (!m.includes(includes)) throw new Error(`expected an error mentioning '${includes}', got: ${m}`);
    return e as Error;
  }
  throw new Error(`expected an error mentioning '${includes}', nothing was thrown`);
}

/** Max |a - b| over two equal-length arrays. */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assertEquals(a.length, b.length, "length mismatch");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
