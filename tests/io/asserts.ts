/** Small assertion helpers for the io tests (JSR's @std/assert is unreachable; node:assert does the work). */
import nodeAssert from "node:assert/strict";

type ErrorClass<E extends Error> = new (...args: never[]) => E;

/** Throws unless `cond` is truthy. */
export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

/** Deep strict equality (typed arrays compare by class and contents). */
export function assertEquals(actual: unknown, expected: unknown, msg?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, msg);
}

function check<E extends Error>(err: unknown, cls?: ErrorClass<E>, includes?: string): E {
  if (!(err instanceof Error)) throw new Error(`expected an Error, got ${String(err)}`);
  if (cls && !(err instanceof cls)) {
    throw new Error(`expected ${cls.name}, got ${err.name}: ${err.message}`);
  }
  if (includes !== undefined && !err.message.includes(includes)) {
    throw new Error(`expected message to include ${JSON.stringify(includes)}, got: ${err.message}`);
  }
  return err as E;
}

/** Expects `fn` to throw (optionally an instance of `cls` whose message includes `includes`). */
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  cls?: ErrorClass<E>,
  includes?: string,
): E {
  try {
    fn();
  } catch (err) {
    return check(err, cls, includes);
  }
  throw new Error("expected the function to throw");
}

/** Expects `fn` to reject (optionally an instance of `cls` whose message includes `includes`). */
export async function assertRejects<E extends Error = Error>(
  fn: () => Promise<unknown>,
  cls?: ErrorClass<E>,
  includes?: string,
): Promise<E> {
  try {
    await fn();
  } catch (err) {
    return check(err, cls, includes);
  }
  throw new Error("expected the promise to reject");
}
