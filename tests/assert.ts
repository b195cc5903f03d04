/**
 * The assertion helpers every test uses (JSR's @std/assert is unreachable here; node:assert does the deep
 * comparisons).
 *
 * @module
 */
import nodeAssert from "node:assert/strict";

type ErrorClass<E extends Error> = new (...args: never[]) => E;

/** Throws unless `cond` is truthy. */
export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

/** Deep strict equality (typed arrays compare by class and contents). */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, msg);
}

/**
 * Equality of JSON forms: typed arrays compare equal to plain arrays with the same numbers, and NaN equals
 * NaN at the top level. For numeric results whose container type does not matter.
 */
export function assertJsonEquals(actual: unknown, expected: unknown, msg?: string): void {
  const norm = (v: unknown) =>
    JSON.stringify(
      v,
      (_k, x) => (ArrayBuffer.isView(x) && !(x instanceof DataView)) ? Array.from(x as Uint8Array) : x,
    );
  if (norm(actual) !== norm(expected) && !(Number.isNaN(actual) && Number.isNaN(expected))) {
    throw new Error(`${msg ? msg + ": " : ""}expected ${norm(expected)}, got ${norm(actual)}`);
  }
}

/** |actual - expected| <= tol (NaN never passes). */
export function assertAlmostEquals(actual: number, expected: number, tol = 1e-7, msg?: string): void {
  if (!(Math.abs(actual - expected) <= tol)) {
    throw new Error(`${msg ? msg + ": " : ""}expected ${expected} ± ${tol}, got ${actual}`);
  }
}

/** |actual - expected| <= tol elementwise (NaN matches NaN), for numbers or arrays. */
export function assertClose(
  actual: number | ArrayLike<number>,
  expected: number | ArrayLike<number>,
  tol = 1e-5,
  message = "",
): void {
  const a = typeof actual === "number" ? [actual] : Array.from(actual);
  const e = typeof expected === "number" ? [expected] : Array.from(expected);
  if (a.length !== e.length) throw new Error(`${message} length ${a.length} != ${e.length}`);
  for (let i = 0; i < a.length; i++) {
    const ok = (Number.isNaN(a[i]) && Number.isNaN(e[i])) || a[i] === e[i] || Math.abs(a[i] - e[i]) <= tol;
    if (!ok) throw new Error(`${message} index ${i}: ${a[i]} vs ${e[i]} (tol ${tol})`);
  }
}

/** Max |a - b| over two equal-length arrays. */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assertEquals(a.length, b.length, "length mismatch");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function check<E extends Error>(err: unknown, cls?: ErrorClass<E>, includes?: string): E {
  if (!(err instanceof Error)) throw new Error(`expected an Error, got ${String(err)}`);
  if (cls && !(err instanceof cls)) throw new Error(`expected ${cls.name}, got ${err.name}: ${err.message}`);
  if (includes && !err.message.includes(includes)) {
    throw new Error(`expected message to include ${JSON.stringify(includes)}, got: ${err.message}`);
  }
  return err as E;
}

/** `(fn, "text")` or `(fn, ErrorClass?, "text"?)`: the class and the message fragment are both optional. */
function split<E extends Error>(
  clsOrIncludes?: ErrorClass<E> | string,
  includes?: string,
): [ErrorClass<E> | undefined, string | undefined] {
  return typeof clsOrIncludes === "string" ? [undefined, clsOrIncludes] : [clsOrIncludes, includes];
}

/** Expects `fn` to throw (optionally an instance of a class, with a message fragment); returns the error. */
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  clsOrIncludes?: ErrorClass<E> | string,
  includes?: string,
): E {
  const [cls, text] = split(clsOrIncludes, includes);
  try {
    fn();
  } catch (err) {
    return check(err, cls, text);
  }
  throw new Error(`expected the function to throw${text ? ` an error mentioning '${text}'` : ""}`);
}

/** Async {@linkcode assertThrows}. */
export async function assertRejects<E extends Error = Error>(
  fn: () => Promise<unknown>,
  clsOrIncludes?: ErrorClass<E> | string,
  includes?: string,
): Promise<E> {
  const [cls, text] = split(clsOrIncludes, includes);
  try {
    await fn();
  } catch (err) {
    return check(err, cls, text);
  }
  throw new Error(`expected the promise to reject${text ? ` with an error mentioning '${text}'` : ""}`);
}
