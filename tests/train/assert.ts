/**
 * Small assertion helpers for the training and data tests (JSR's @std/assert is unreachable here).
 *
 * @module
 */

/** Throws unless `actual` and `expected` are deeply equal (JSON comparison, arrays and typed arrays alike). */
export function assertEquals(actual: unknown, expected: unknown, msg?: string): void {
  const norm = (v: unknown) =>
    JSON.stringify(
      v,
      (_k, x) => (ArrayBuffer.isView(x) && !(x instanceof DataView)) ? Array.from(x as Uint8Array) : x,
    );
  if (norm(actual) !== norm(expected)) {
    throw new Error(`${msg ? msg + ": " : ""}expected ${norm(expected)}, got ${norm(actual)}`);
  }
}

/** Throws unless |actual - expected| <= tolerance. */
export function assertAlmostEquals(actual: number, expected: number, tolerance = 1e-7, msg?: string): void {
  if (!(Math.abs(actual - expected) <= tolerance)) {
    throw new Error(`${msg ? msg + ": " : ""}expected ${expected} ± ${tolerance}, got ${actual}`);
  }
}

/** Throws unless `cond` holds. */
export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

// deno-lint-ignore no-explicit-any
type ErrorClass = new (...args: any[]) => Error;

/** Throws unless `fn` throws an instance of `cls` whose message contains `includes`; returns the error. */
export function assertThrows(fn: () => unknown, cls: ErrorClass = Error, includes?: string): Error {
  try {
    fn();
  } catch (e) {
    check(e, cls, includes);
    return e as Error;
  }
  throw new Error(`expected ${cls.name}${includes ? ` with "${includes}"` : ""} to be thrown`);
}

/** Async {@link assertThrows}. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  cls: ErrorClass = Error,
  includes?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    check(e, cls, includes);
    return e as Error;
  }
  throw new Error(`expected ${cls.name}${includes ? ` with "${includes}"` : ""} to be thrown`);
}

function check(e: unknown, cls: ErrorClass, includes?: string) {
  if (!(e instanceof cls)) throw new Error(`expected ${cls.name}, got ${e}`);
  if (includes && !(e as Error).message.includes(includes)) {
    throw new Error(`expected message containing "${includes}", got "${(e as Error).message}"`);
  }
}
