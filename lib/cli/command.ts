/**
 * The exit-code convention shared by the command-line entry points: a usage error prints the message and
 * the usage and exits 2, `--help` prints the usage and exits 0, a failure while running prints one line
 * naming the command and exits 1.
 *
 * @module
 */

/** What {@linkcode runCommand} needs to know about one command. */
export interface CommandSpec<A> {
  /** Prefix for error lines, e.g. `train`. */
  name: string;
  /** Full usage text. */
  usage: string;
  /** Parses argv: the arguments, `null` for `--help`, or throws on a usage error. */
  parse(argv: string[]): A | null;
  /** Runs the command; resolves to its exit code. */
  run(args: A): Promise<number>;
}

/**
 * Parses `argv` and runs the command, mapping usage errors, help and failures to exit codes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runCommand } from "./command.ts";
 * const code = await runCommand(["--help"], {
 *   name: "hello",
 *   usage: "Usage: hello [--help]",
 *   parse: (argv) => (argv.includes("--help") ? null : {}),
 *   run: () => Promise.resolve(0),
 * });
 * assert.equal(code, 0); // after printing the usage
 * ```
 */
export async function runCommand<A>(argv: string[], spec: CommandSpec<A>): Promise<number> {
  let args: A | null;
  try {
    args = spec.parse(argv);
  } catch (e) {
    console.error(`${spec.name}: ${(e as Error).message}\n\n${spec.usage}`);
    return 2;
  }
  if (args === null) {
    console.log(spec.usage);
    return 0;
  }
  try {
    return await spec.run(args);
  } catch (e) {
    console.error(`${spec.name}: ${(e as Error).message}`);
    return 1;
  }
}
